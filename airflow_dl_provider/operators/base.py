"""The one job runner every operator shares.

build a plan -> apply ``overrides`` to the whole plan -> make its derived inputs -> validate against the
service model -> pre-flight checks -> upload what is absent, ensure each prerequisite -> create or
reattach -> persist the console link -> wait or defer -> result. A job family writes ``build`` (a pure
:class:`~airflow_dl_provider.jobs.plan.JobPlan`) and, where it has them, ``preflight`` and ``result``;
it never writes the staging, create, wait, defer, stop or log code again. :class:`S3Operator` is the
base of the operators that start no job and only read and write S3.
"""

from __future__ import annotations

import posixpath
import time
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.configuration import conf
from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from airflow_dl_provider.exceptions import PreflightError, RequestValidationError, SageMakerJobError
from airflow_dl_provider.hooks.sagemaker import SageMakerJobHook
from airflow_dl_provider.jobs.naming import IF_EXISTS_CHOICES, IfExists, JobNames
from airflow_dl_provider.jobs.plan import JobPlan, deep_merge
from airflow_dl_provider.links.console import JobOutputLink, ModelArtifactsLink, SageMakerJobLink
from airflow_dl_provider.links.published import PublishedOutputs
from airflow_dl_provider.specs.fields import check_choice

if TYPE_CHECKING:
    import re
    from collections.abc import Mapping, Sequence

    from airflow_dl_provider.jobs.engine import JobEngine
    from airflow_dl_provider.jobs.kinds import JobKind
    from airflow_dl_provider.jobs.logs import LogCursor
    from airflow_dl_provider.jobs.plan import Prerequisite, Upload

__all__ = [
    "S3Objects",
    "S3Operator",
    "SageMakerJobOperator",
    "WaitingOperator",
    "deep_merge",
    "ensure_prerequisite",
]


def _context_ids(context: Mapping[str, Any]) -> dict[str, Any]:
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    return {
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "run_id": context["run_id"],
        "map_index": -1 if map_index is None else int(map_index),
    }


def _error_code(err: Exception) -> str:
    return str(getattr(err, "response", {}).get("Error", {}).get("Code", type(err).__name__))


class S3Objects:
    """The reads a plan's derived inputs make (:class:`~airflow_dl_provider.jobs.plan.ObjectReader`)."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3

    def keys(self, uri: str) -> list[str]:
        from airflow_dl_provider.validation.preflight import split_s3_uri

        bucket, prefix = split_s3_uri(uri)
        try:
            return [
                item["Key"]
                for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                for item in page.get("Contents", [])
            ]
        except Exception as err:
            raise PreflightError(f"cannot list {uri} ({_error_code(err)})") from None

    def read(self, uri: str) -> bytes:
        from airflow_dl_provider.validation.preflight import split_s3_uri

        bucket, key = split_s3_uri(uri)
        try:
            return bytes(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except Exception as err:
            raise PreflightError(f"cannot read {uri} ({_error_code(err)})") from None


def upload_if_absent(s3: Any, upload: Upload, log: Any) -> bool:
    """Put the object unless its (content-addressed) key exists; True when it was uploaded."""
    from botocore.exceptions import ClientError

    from airflow_dl_provider import service_behaviour
    from airflow_dl_provider.validation.preflight import split_s3_uri

    bucket, key = split_s3_uri(upload.uri, upload.argument or "S3Uri")
    try:
        s3.head_object(Bucket=bucket, Key=key)
        log.info("%s %s already uploaded", upload.argument or "Input", upload.uri)
        return False
    except ClientError as err:
        if not service_behaviour.is_not_found("HeadObject", err):
            raise
    data = upload.data()
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    log.info("Uploaded %s to %s (%d bytes)", upload.argument or "input", upload.uri, len(data))
    return True


def ensure_prerequisite(client: Any, prerequisite: Prerequisite, log: Any) -> str:
    """Create the resource unless one of its name exists (reattach-style); return its name.

    Names are content-addressed (or the user's own, through ``overrides``), so an existing resource
    of that name is the one to use.
    """
    from botocore import xform_name
    from botocore.exceptions import ClientError

    from airflow_dl_provider import service_behaviour

    name, noun = prerequisite.name, prerequisite.noun
    try:
        getattr(client, xform_name(prerequisite.describe_operation))(**{prerequisite.name_field: name})
        log.info("%s %s exists; reusing it", noun, name)
        return name
    except ClientError as err:
        if not service_behaviour.is_not_found(prerequisite.describe_operation, err):
            raise
    try:
        getattr(client, xform_name(prerequisite.create_operation))(**prerequisite.request)
        log.info("Created %s %s", noun, name)
    except ClientError as err:
        # Another try created it between describe and create: same name, same contents.
        if not service_behaviour.is_name_in_use(prerequisite.create_operation, err):
            raise
    return name


class WaitingOperator(PublishedOutputs, AwsBaseOperator[SageMakerJobHook]):
    """Base class of the operators that start work on a service and wait for it, here or deferred.

    What is started is named from the task's ids (so a retry finds it); how often and how long it is
    waited for is the same four arguments everywhere (a SageMaker job, a Label Studio project).

    :param job_name_prefix: readable start of the name; the rest is a hash of the dag, task, run and
        map index, so a retry finds what its earlier try started. (templated)
    :param deferrable: wait in the triggerer; defaults to ``[operators] default_deferrable``.
    :param poll_interval: the longest pause between status checks, in seconds (> 0).
    :param max_wait: give up after this many seconds of waiting; None: the operator's own default.
    """

    aws_hook_class = SageMakerJobHook
    template_fields: Sequence[str] = aws_template_fields("job_name_prefix")

    def __init__(
        self,
        *,
        job_name_prefix: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 30.0,
        max_wait: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if poll_interval <= 0:
            raise ValueError(f"{self.task_id}: poll_interval must be > 0 seconds, got {poll_interval}")
        self.job_name_prefix = job_name_prefix
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_wait = max_wait
        self.job_name: str | None = None


class SageMakerJobOperator(WaitingOperator):
    """Base class: start (or reattach to) one SageMaker job and wait for it.

    :param job_name_prefix: readable start of the job name; the rest is a hash of the dag, task,
        run and map index, so a retry finds its job. Defaults to ``<dag_id>-<task_id>``. (templated)
    :param if_exists: ``reattach`` (default): a retry waits on its running job or returns its
        completed one, and a failed or stopped job is followed by a new attempt name; ``fail``:
        an existing job is an error; ``new``: always start a new job.
    :param overrides: deep-merged into the whole plan before anything runs, for any API field the
        arguments don't cover: the request, and what it names follows (an overridden source location
        is where the code is uploaded; an overridden ``ModelName`` is the Model created). Not the
        job's name (``TrainingJobName``, ...), which ``job_name_prefix`` and the task's ids decide.
        (templated)
    :param wait_for_completion: wait for the job to end (default True).
    :param deferrable: wait in the triggerer; defaults to ``[operators] default_deferrable``.
    :param poll_interval: the longest pause between status checks, in seconds.
    :param max_wait: give up (and stop the job) after this many seconds; defaults to the job's own
        time limit plus an hour, or no limit when the request sets none.
    """

    job_kind: ClassVar[JobKind]
    operator_extra_links = (SageMakerJobLink(), ModelArtifactsLink(), JobOutputLink())
    template_fields: Sequence[str] = aws_template_fields("job_name_prefix", "overrides")
    template_fields_renderers: ClassVar[dict[str, str]] = {"overrides": "json"}
    ui_color = "#e6f3e1"

    def __init__(
        self,
        *,
        if_exists: IfExists = "reattach",
        overrides: Mapping[str, Any] | None = None,
        wait_for_completion: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_choice(f"{self.task_id}: if_exists", if_exists, IF_EXISTS_CHOICES)
        self.if_exists = if_exists
        self.overrides = dict(overrides or {})
        self.wait_for_completion = wait_for_completion

    # -- what a job family writes ---------------------------------------------------------------------

    def build(self, context: Any) -> JobPlan:
        """The plan from this operator's (rendered) specs: no I/O, nothing kept on ``self``."""
        raise NotImplementedError

    def preflight(self, plan: JobPlan, context: Any) -> None:
        """Checks of the final plan that need the account (S3, prices); raise PreflightError."""

    def result(self, engine: JobEngine, description: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """The XCom value; families may add fields to the engine's (which is JSON-safe)."""
        return engine.result(description)

    # -- the one runner ----------------------------------------------------------------------------------

    def engine(self) -> JobEngine:
        from airflow_dl_provider.jobs.engine import JobEngine

        return JobEngine(self.job_kind, self.hook.conn, logs_client=self.hook.logs, log=self.log)

    def job_names(self, context: Any) -> JobNames:
        """The task instance's job names, computed once: the engine only walks them."""
        return JobNames(
            **_context_ids(context), max_length=self.job_kind.max_name_length, prefix=self.job_name_prefix
        )

    def first_job_name(self, context: Any) -> str:
        """The first of :meth:`job_names`: the name validation and the console link stand on."""
        name = self.job_names(context).first
        if self.job_name_prefix and not name.startswith(self.job_name_prefix):
            self.log.info(
                "job_name_prefix %r becomes %s: %s names are at most %d characters of [a-zA-Z0-9-]",
                self.job_name_prefix,
                name,
                self.job_kind.noun,
                self.job_kind.max_name_length,
            )
        return name

    def render_plan(self, context: Any, job_name: str | None = None) -> JobPlan:
        """Build, apply ``overrides`` to the whole plan, make derived inputs, validate every request.

        :param job_name: the first attempt's name, which stands in for validation; computed when None.
        """
        # Imported here, not at parse time: DAG files stay light (the service model loads on first use).
        from airflow_dl_provider.validation.requests import validate_request

        plan = self.build(context)
        name_field = self.job_kind.name_field
        if name_field in self.overrides:
            # The name comes from job_name_prefix and the task's ids so a retry finds its job; an
            # invalid one is reported as the service would, a valid one is refused all the same.
            validate_request(self.job_kind.create_operation, deep_merge(plan.request, self.overrides))
            raise RequestValidationError(
                f"{self.task_id}: overrides: {name_field} is set by the operator (deterministic, so a retry "
                "reattaches); use job_name_prefix instead"
            )
        plan = plan.with_overrides(self.overrides).resolved(S3Objects(self.hook.s3))
        name = job_name or self.first_job_name(context)
        validate_request(self.job_kind.create_operation, {**plan.request, name_field: name})
        for prerequisite in plan.prerequisites:
            validate_request(prerequisite.create_operation, prerequisite.request)
        return plan

    def stage(self, plan: JobPlan) -> None:
        """Upload what is absent, then ensure each prerequisite; idempotent, so a retry adds nothing."""
        for upload in plan.uploads:
            upload_if_absent(self.hook.s3, upload, self.log)
        for prerequisite in plan.prerequisites:
            ensure_prerequisite(self.hook.conn, prerequisite, self.log)

    def execute(self, context: Any) -> dict[str, Any]:
        """Run the job.

        :return: ``job_name``, ``job_arn``, ``status`` and the job kind's own fields (model artifact
            URI, metrics, ...), JSON-safe.
        """
        plan = self.render_plan(context, self.first_job_name(context))
        self.preflight(plan, context)
        self.stage(plan)
        request = plan.request
        engine = self.engine()
        handle = engine.ensure(request, self.job_names(context), if_exists=self.if_exists)
        self.job_name = handle.name
        SageMakerJobLink.persist(
            context=context,
            operator=self,
            region_name=self.hook.region,
            aws_partition=self.hook.partition,
            console_fragment=self.job_kind.console_fragment.format(job_name=handle.name),
        )
        description = handle.description or engine.describe(handle.name) or {}
        if not self.wait_for_completion:
            # The job has just started: only the engine's fields (name, ARN, status) exist yet.
            return engine.result(description)
        max_wait = self.max_wait if self.max_wait is not None else engine.default_max_wait(request)
        cursor: LogCursor = {}
        if self.deferrable:
            from airflow_dl_provider.triggers.job import SageMakerJobTrigger

            engine.copy_logs(handle.name, cursor)
            description = engine.describe(handle.name) or description
            if engine.poll_once(description, name=handle.name).done:
                return self.result(engine, engine.check(description), context)
            self.defer(
                trigger=SageMakerJobTrigger(
                    job_kind=self.job_kind.key,
                    job_name=handle.name,
                    poll_interval=self.poll_interval,
                    deadline=None if max_wait is None else time.time() + max_wait,
                    undo={"action": "stop"},  # killed while deferred: stop the job, as on_kill does
                    aws_conn_id=self.aws_conn_id,
                    region_name=self.region_name,
                    verify=self.verify,
                    botocore_config=self.botocore_config,
                ),
                method_name="execute_complete",
                kwargs={"log_cursor": cursor},
            )
        description = engine.wait(
            handle.name, poll_interval=self.poll_interval, max_wait=max_wait, log_cursor=cursor
        )
        return self.result(engine, description, context)

    def execute_complete(
        self, context: Any, event: Mapping[str, Any] | None = None, log_cursor: LogCursor | None = None
    ) -> dict[str, Any]:
        """Resume after the trigger: copy the log lines written meanwhile, then succeed or raise."""
        if not event:
            raise SageMakerJobError("resumed without a trigger event")
        engine = self.engine()
        name = event["job_name"]
        self.job_name = name
        engine.copy_logs(name, dict(log_cursor or {}))
        if event["status"] == "timeout":
            engine.stop(name)
            raise SageMakerJobError(f"{event['message']}; stopped it", job_name=name)
        description = engine.describe(name)
        if description is None:
            raise SageMakerJobError(event["message"], job_name=name)
        return self.result(engine, engine.check(description), context)

    def on_kill(self) -> None:
        """Stop the job this task started or attached to: a killed task leaves no cluster running."""
        if self.job_name:
            self.engine().stop(self.job_name)


class S3Operator(PublishedOutputs, AwsBaseOperator[AwsBaseHook]):
    """``self.hook.conn`` is a boto3 S3 client from the task's AWS connection, region and config.

    The generic hook with ``client_type="s3"`` rather than ``S3Hook``: these operators need only the
    client, and not importing the S3 hook's module keeps DAG parsing light.
    """

    aws_hook_class = AwsBaseHook

    @property
    def _hook_parameters(self) -> dict[str, Any]:
        return {**super()._hook_parameters, "client_type": "s3"}

    def data_keys(
        self,
        uri: str,
        *,
        skip_name: re.Pattern[str],
        error: type[Exception],
        exclude_prefix: str | None = None,
        hint: str = "is the upstream task done?",
    ) -> tuple[str, list[str]]:
        """The data objects a URI names: itself when it is an object, else the non-empty objects under it.

        :param skip_name: object names that are not data (markers, checksums, our own outputs).
        :param error: the exception type raised, with one line naming ``uri``.
        :param exclude_prefix: a key prefix to leave out, e.g. where an earlier run wrote results.
        :return: the bucket and the keys, sorted.
        """
        from airflow_dl_provider.validation.preflight import split_s3_uri

        try:
            bucket, key = split_s3_uri(uri, "data_uri")
        except ValueError as err:
            raise error(str(err)) from None
        under = "" if not key or key.endswith("/") else key + "/"
        keys: list[str] = []
        try:
            for page in self.hook.conn.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
                for item in page.get("Contents", []):
                    if item["Key"] == key:
                        return bucket, [key]
                    name = posixpath.basename(item["Key"])
                    inside = item["Key"].startswith(under) if under else True
                    excluded = exclude_prefix is not None and item["Key"].startswith(exclude_prefix)
                    if item["Size"] > 0 and name and inside and not excluded and not skip_name.search(name):
                        keys.append(item["Key"])
        except Exception as err:
            code = getattr(err, "response", {}).get("Error", {}).get("Code", type(err).__name__)
            raise error(f"data_uri: cannot list {uri} ({code})") from None
        if not keys:
            raise error(f"data_uri: {uri} holds no data objects; {hint}")
        return bucket, sorted(keys)
