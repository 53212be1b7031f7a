"""The one job runner every operator shares.

build request -> apply ``overrides`` -> validate against the service model -> pre-flight checks ->
stage inputs -> create or reattach -> persist the console link -> wait or defer -> result.
A job family writes ``build_request`` (and, where it has them, ``preflight`` and ``stage``); it
never writes the create, wait, defer, stop or log code again. :class:`S3Operator` is the base of the
operators that start no job and only read and write S3.
"""

from __future__ import annotations

import copy
import posixpath
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.configuration import conf
from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from airflow_dl_provider.exceptions import SageMakerJobError
from airflow_dl_provider.hooks.sagemaker import SageMakerJobHook
from airflow_dl_provider.jobs.naming import IF_EXISTS_CHOICES, IfExists, deterministic_job_name
from airflow_dl_provider.links.console import SageMakerJobLink

if TYPE_CHECKING:
    import re

    from airflow_dl_provider.jobs.engine import JobEngine
    from airflow_dl_provider.jobs.kinds import JobKind
    from airflow_dl_provider.jobs.logs import LogCursor


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``overrides`` into a copy of ``base``: dicts merge key by key, anything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _context_ids(context: Mapping[str, Any]) -> dict[str, Any]:
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    return {
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "run_id": context["run_id"],
        "map_index": -1 if map_index is None else int(map_index),
    }


class SageMakerJobOperator(AwsBaseOperator[SageMakerJobHook]):
    """Base class: start (or reattach to) one SageMaker job and wait for it.

    :param job_name_prefix: readable start of the job name; the rest is a hash of the dag, task,
        run and map index, so a retry finds its job. Defaults to ``<dag_id>-<task_id>``. (templated)
    :param if_exists: ``reattach`` (default): a retry waits on its running job or returns its
        completed one, and a failed or stopped job is followed by a new attempt name; ``fail``:
        an existing job is an error; ``new``: always start a new job.
    :param overrides: deep-merged into the request last, for any API field the arguments don't
        cover; not the job's name (``TrainingJobName``, ...), which ``job_name_prefix`` and the task's
        ids decide. (templated)
    :param wait_for_completion: wait for the job to end (default True).
    :param deferrable: wait in the triggerer; defaults to ``[operators] default_deferrable``.
    :param poll_interval: the longest pause between status checks, in seconds.
    :param max_wait: give up (and stop the job) after this many seconds; defaults to the job's own
        time limit plus an hour, or no limit when the request sets none.
    """

    aws_hook_class = SageMakerJobHook
    job_kind: ClassVar[JobKind]
    operator_extra_links = (SageMakerJobLink(),)
    template_fields: Sequence[str] = aws_template_fields("job_name_prefix", "overrides")
    template_fields_renderers: ClassVar[dict[str, str]] = {"overrides": "json"}
    ui_color = "#e6f3e1"

    def __init__(
        self,
        *,
        job_name_prefix: str | None = None,
        if_exists: IfExists = "reattach",
        overrides: Mapping[str, Any] | None = None,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 30.0,
        max_wait: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if if_exists not in IF_EXISTS_CHOICES:
            raise ValueError(
                f"{self.task_id}: if_exists must be one of {', '.join(IF_EXISTS_CHOICES)}, got {if_exists!r}"
            )
        if poll_interval <= 0:
            raise ValueError(f"{self.task_id}: poll_interval must be > 0 seconds, got {poll_interval}")
        self.job_name_prefix = job_name_prefix
        self.if_exists = if_exists
        self.overrides = dict(overrides or {})
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_wait = max_wait
        self.job_name: str | None = None

    # -- what a job family writes ---------------------------------------------------------------------

    def build_request(self, context: Any) -> dict[str, Any]:
        """The Create request from this operator's (rendered) arguments, without the job name."""
        raise NotImplementedError

    def preflight(self, request: Mapping[str, Any], context: Any) -> None:
        """Checks that need the rendered request or the account (S3, price); raise PreflightError."""

    def stage(self, request: Mapping[str, Any], context: Any) -> None:
        """Upload what the request points at (code, configs); must be idempotent for retries."""

    def result(self, engine: JobEngine, description: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """The XCom value; families may add fields to the engine's (which is JSON-safe)."""
        return engine.result(description)

    # -- the one runner ----------------------------------------------------------------------------------

    def engine(self) -> JobEngine:
        from airflow_dl_provider.jobs.engine import JobEngine

        return JobEngine(self.job_kind, self.hook.conn, logs_client=self.hook.logs, log=self.log)

    def render_request(self, context: Any) -> dict[str, Any]:
        """Build, merge ``overrides`` and validate; the first attempt's name stands in for validation."""
        # Imported here, not at parse time: DAG files stay light (the service model loads on first use).
        from airflow_dl_provider.validation.requests import validate_request

        request = deep_merge(self.build_request(context), self.overrides)
        name_field = self.job_kind.name_field
        if name_field in self.overrides:
            # The name comes from job_name_prefix and the task's ids so a retry finds its job; an
            # invalid one is reported as the service would, a valid one is refused all the same.
            validate_request(self.job_kind.create_operation, request)
            raise ValueError(
                f"{self.task_id}: overrides: {name_field} is set by the operator (deterministic, so a retry "
                "reattaches); use job_name_prefix instead"
            )
        name = deterministic_job_name(
            **_context_ids(context), max_length=self.job_kind.max_name_length, prefix=self.job_name_prefix
        )
        validate_request(self.job_kind.create_operation, {**request, name_field: name})
        return request

    def execute(self, context: Any) -> dict[str, Any]:
        """Run the job.

        :return: ``job_name``, ``job_arn``, ``status`` and the job kind's own fields (model artifact
            URI, metrics, ...), JSON-safe.
        """
        request = self.render_request(context)
        self.preflight(request, context)
        self.stage(request, context)
        engine = self.engine()
        handle = engine.ensure(
            request, **_context_ids(context), prefix=self.job_name_prefix, if_exists=self.if_exists
        )
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
            if description.get(self.job_kind.status_field) in self.job_kind.terminal:
                return self.result(engine, engine.check(description), context)
            self.defer(
                trigger=SageMakerJobTrigger(
                    job_kind=self.job_kind.key,
                    job_name=handle.name,
                    poll_interval=self.poll_interval,
                    deadline=None if max_wait is None else time.time() + max_wait,
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


class S3Operator(AwsBaseOperator[AwsBaseHook]):
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
