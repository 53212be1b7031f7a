"""Real-time endpoints: Model -> EndpointConfig (with data capture) -> Endpoint, created or updated blue/green.

An endpoint is a row of the kinds table (``RESOURCE_KINDS["endpoint"]``), so the job engine runs it:
create or attach (:meth:`~airflow_dl_provider.jobs.engine.JobEngine.ensure_named`), wait or defer to
the one :class:`~airflow_dl_provider.triggers.job.SageMakerJobTrigger` (each poll classified by
``poll_once``), undo on kill, console link. The Model and the EndpointConfig are named by their
contents, so a retry finds what its earlier try created, and an existing endpoint is updated only
when its config differs. A Failed endpoint is deleted and created again; DeleteEndpoint only starts
the delete (``service_behaviour.ASYNC_DELETE``), so the new one is created once the old one is gone,
and an endpoint that is ``Deleting`` is never updated. The Model and the EndpointConfig are staged as
a job's prerequisites are (:func:`~airflow_dl_provider.operators.base.ensure_prerequisite`).

An update rolls out as :class:`~airflow_dl_provider.specs.deployment.Deployment` says: SageMaker's
blue/green traffic shift (all at once, canary or linear, each step baked), rolled back by CloudWatch
alarms, the new fleet's own created first with PutMetricAlarm. A rollback leaves the endpoint
``InService`` on its old config (``service_behaviour.BLUE_GREEN``): the task then fails and says why.

Killed, the task takes back what this try started and nothing else: an endpoint it created is
deleted; an update it started is rolled back with UpdateEndpoint to the config the endpoint ran
before. The service takes neither call while the endpoint is still Creating or Updating
(``service_behaviour.IN_PROGRESS``) and nothing cancels those: the kill waits as long as Airflow
lets it, then logs what is left to do.
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

from airflow.configuration import conf
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from botocore.exceptions import ClientError

from airflow_dl_provider.exceptions import SageMakerJobError
from airflow_dl_provider.hooks.sagemaker import SageMakerJobHook
from airflow_dl_provider.jobs.kinds import RESOURCE_KINDS
from airflow_dl_provider.jobs.naming import deterministic_job_name
from airflow_dl_provider.jobs.plan import Prerequisite
from airflow_dl_provider.links.console import SageMakerEndpointLink, persist_console_link
from airflow_dl_provider.links.published import PublishedOutputs
from airflow_dl_provider.operators.base import _context_ids, ensure_prerequisite
from airflow_dl_provider.operators.transform import ModelTask
from airflow_dl_provider.specs.deployment import Deployment
from airflow_dl_provider.specs.fields import tag_list
from airflow_dl_provider.validation.requests import validate_request

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_dl_provider.jobs.engine import JobEngine
    from airflow_dl_provider.specs.model import ModelSource

CAPTURE_MODES = ("Input", "Output")
ENDPOINT = RESOURCE_KINDS["endpoint"]
# Airflow sends SIGKILL 5 s after the SIGTERM that runs on_kill: the rollback has this long.
KILL_BUDGET_SECONDS = 4.0


class EndpointDeployOperator(PublishedOutputs, ModelTask, AwsBaseOperator[SageMakerJobHook]):
    """Deploy a model to a SageMaker endpoint, creating it or updating it to a new config.

    :param endpoint_name: the endpoint; it outlives the DAG run, so it is named, not derived. (templated)
    :param model: the Model to serve (:class:`~airflow_dl_provider.specs.model.ModelSource`): an
        existing one, artifacts (``model.tar.gz`` with ``code/<entry_point>``) and a role, or a
        registered model package and a role. (templated)
    :param instance_type: e.g. ``ml.m5.large``; also picks the default container (CPU or GPU). (templated)
    :param instance_count: initial instances of the variant.
    :param variant_name: the production variant.
    :param deployment: how an update rolls out (:class:`~airflow_dl_provider.specs.deployment.Deployment`:
        traffic shift, baking periods, rollback alarms); None: SageMaker's default, blue/green all at
        once with no alarms. A creation has no old fleet and ignores it. (templated: ``alarms``)
    :param data_capture_s3_uri: ``s3://`` prefix for captured requests; None turns capture off. The
        service writes ``<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl``, which
        :mod:`airflow_dl_provider.drift.capture` reads. (templated)
    :param sampling_percentage: share of requests captured, 0-100.
    :param capture_modes: ``Input``, ``Output`` or both.
    :param csv_content_types: content types captured as CSV text; others as JSON or base64.
    :param json_content_types: content types captured as JSON text.
    :param wait_for_completion: wait until the endpoint is ``InService``.
    :param deferrable: wait in the triggerer; defaults to ``[operators] default_deferrable``.
    :param poll_interval: the longest pause between status checks, in seconds.
    :param max_wait: give up waiting after this many seconds (the endpoint is left as it is).
    :param tags: tags for the endpoint and its config. (templated)

    Deprecated (this release only): ``model_name``, ``model_artifacts``, ``role_arn``, ``image_uri``,
    ``framework_version``, ``py_version``, ``entry_point`` build ``model`` with a ``DeprecationWarning``.
    """

    aws_hook_class = SageMakerJobHook
    operator_extra_links = (SageMakerEndpointLink(),)
    template_fields: Sequence[str] = aws_template_fields(
        "endpoint_name", "model", "instance_type", "deployment", "data_capture_s3_uri", "tags"
    )
    ui_color = "#e6f3e1"

    def __init__(
        self,
        *,
        endpoint_name: str,
        model: ModelSource | None = None,
        instance_type: str = "ml.m5.large",
        instance_count: int = 1,
        variant_name: str = "AllTraffic",
        deployment: Deployment | None = None,
        data_capture_s3_uri: str | None = None,
        sampling_percentage: int = 100,
        capture_modes: Sequence[str] = CAPTURE_MODES,
        csv_content_types: Sequence[str] = ("text/csv",),
        json_content_types: Sequence[str] = ("application/json",),
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 30.0,
        max_wait: float = 3600.0,
        tags: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model=model, **kwargs)
        task = self.task_id
        if not 0 <= sampling_percentage <= 100:
            raise ValueError(f"{task}: sampling_percentage must be 0-100, got {sampling_percentage}")
        if not capture_modes or set(capture_modes) - set(CAPTURE_MODES):
            raise ValueError(f"{task}: capture_modes must be a non-empty subset of {CAPTURE_MODES}")
        if instance_count < 1 or poll_interval <= 0:
            raise ValueError(f"{task}: instance_count must be >= 1 and poll_interval > 0")
        if deployment is not None and not isinstance(deployment, Deployment):
            raise ValueError(f"{task}: deployment: expected a Deployment, got {type(deployment).__name__}")
        self.endpoint_name, self.variant_name = endpoint_name, variant_name
        self.instance_type, self.instance_count = instance_type, instance_count
        # Airflow renders nested specs in place: this task renders its own copy.
        self.deployment = copy.deepcopy(deployment)
        self.data_capture_s3_uri = data_capture_s3_uri
        # DataCaptureConfig but its destination, which is templated.
        self.capture_options = {
            "InitialSamplingPercentage": int(sampling_percentage),
            "CaptureOptions": [{"CaptureMode": mode} for mode in capture_modes],
            "CaptureContentTypeHeader": {
                "CsvContentTypes": list(csv_content_types),
                "JsonContentTypes": list(json_content_types),
            },
        }
        self.wait_for_completion, self.deferrable = wait_for_completion, deferrable
        self.poll_interval, self.max_wait = poll_interval, max_wait
        self.tags = dict(tags or {})
        # What this try started, for on_kill and the trigger: see JobEngine.undo.
        self.undo: dict[str, Any] | None = None

    # -- requests ------------------------------------------------------------------------------------

    def model_prerequisite(self, context: Any) -> Prerequisite | None:
        """CreateModel for the source (content-addressed), or None for an existing Model."""
        ids = _context_ids(context)
        return self.model.prerequisite(
            prefix=f"{ids['dag_id']}-{ids['task_id']}",
            region=self.hook.region,
            instance_type=self.instance_type,
            at=None,
        )

    def config_request(self, model_name: str) -> dict[str, Any]:
        """CreateEndpointConfig, named ``<endpoint>-<hash of its contents>``."""
        body: dict[str, Any] = {
            "ProductionVariants": [
                {
                    "VariantName": self.variant_name,
                    "ModelName": model_name,
                    "InitialInstanceCount": int(self.instance_count),
                    "InstanceType": self.instance_type,
                    "InitialVariantWeight": 1.0,
                }
            ]
        }
        if self.data_capture_s3_uri:
            body["DataCaptureConfig"] = {
                "EnableCapture": True,
                "DestinationS3Uri": self.data_capture_s3_uri,
                **self.capture_options,
            }
        digest_source = json.dumps(body, sort_keys=True)
        name = deterministic_job_name("endpoint-config", digest_source, "", prefix=self.endpoint_name)
        request = {"EndpointConfigName": name, **body}
        if self.tags:
            request["Tags"] = tag_list(self.tags)
        return request

    def update_request(self, config_name: str) -> dict[str, Any]:
        """UpdateEndpoint to ``config_name``, rolled out as ``deployment`` says."""
        request: dict[str, Any] = {"EndpointName": self.endpoint_name, "EndpointConfigName": config_name}
        if self.deployment is not None:
            request["DeploymentConfig"] = self.deployment.to_request(config_name)
        return request

    # -- run -----------------------------------------------------------------------------------------

    def engine(self) -> JobEngine:
        from airflow_dl_provider.jobs.engine import JobEngine

        return JobEngine(ENDPOINT, self.hook.conn, log=self.log)

    def _ensure_alarms(self, config_name: str) -> None:
        """Create the new fleet's alarms (PutMetricAlarm replaces one of the same name); check the given exist.

        Refused before UpdateEndpoint: an alarm that does not exist never trips, so it would guard nothing.
        """
        if self.deployment is None:
            return
        cloudwatch = self.hook.client_for("cloudwatch")
        for alarm in self.deployment.own_alarms(self.endpoint_name, self.variant_name, config_name):
            cloudwatch.put_metric_alarm(**alarm)
            self.log.info("Alarm %s: the new fleet's %s", alarm["AlarmName"], alarm["MetricName"])
        given = self.deployment.alarms
        if given:
            found = {a["AlarmName"] for a in cloudwatch.describe_alarms(AlarmNames=given)["MetricAlarms"]}
            missing = [name for name in given if name not in found]
            if missing:
                raise ValueError(
                    f"{self.task_id}: deployment.alarms: no CloudWatch alarm named {', '.join(missing)} in "
                    f"{self.hook.region}; create it or leave it out"
                )

    def _converge(self, engine: JobEngine, config_name: str) -> str:
        """Create the endpoint, or bring the one of that name to ``config_name``; record what to undo."""
        tags = tag_list(self.tags)
        create = {"EndpointConfigName": config_name, **({"Tags": tags} if tags else {})}
        handle = engine.ensure_named(
            self.endpoint_name, create, poll_interval=self.poll_interval, max_wait=self.max_wait
        )
        if handle.created:
            self.undo = {"action": "delete"}
            return "created"
        current = handle.description
        if not engine.poll_once(current, name=self.endpoint_name).done:
            # An update is refused while another is in flight (perhaps one an earlier try started).
            current = engine.wait(
                self.endpoint_name, poll_interval=self.poll_interval, max_wait=self.max_wait
            )
        if current.get("EndpointConfigName") == config_name:
            self.log.info("Endpoint %s already runs %s; nothing to update", self.endpoint_name, config_name)
            return "unchanged"
        self._ensure_alarms(config_name)
        self.hook.conn.update_endpoint(**self.update_request(config_name))
        self.undo = {"action": "restore", "fields": {"EndpointConfigName": current["EndpointConfigName"]}}
        return "updated"

    def execute(self, context: Any) -> dict[str, Any]:
        """Create or update the endpoint and wait (or defer) until it serves.

        :return: ``endpoint_name``, ``endpoint_arn``, ``endpoint_config_name``, ``model_name``, ``status``,
            ``action`` (``created``, ``updated`` or ``unchanged``), ``data_capture_s3_uri`` and
            ``traffic_shift`` (the update's ``ALL_AT_ONCE``, ``CANARY`` or ``LINEAR``; None unless an
            update rolled out with a ``deployment``), JSON-safe.
        :raises SageMakerJobError: the endpoint failed, or an alarm rolled the update back.
        """
        try:
            self.model.check(rendered=True)
        except ValueError as err:
            raise ValueError(f"{self.task_id}: {err}") from None
        model = self.model_prerequisite(context)
        model_name = str(self.model.model_name) if model is None else model.name
        config = self.config_request(model_name)
        if model is not None:
            validate_request("CreateModel", model.request)
        validate_request("CreateEndpointConfig", config)
        validate_request(
            "CreateEndpoint",
            {"EndpointName": self.endpoint_name, "EndpointConfigName": config["EndpointConfigName"]},
        )
        validate_request("UpdateEndpoint", self.update_request(config["EndpointConfigName"]))
        for prerequisite in (
            model,
            Prerequisite("EndpointConfig", "CreateEndpointConfig", "EndpointConfigName", config),
        ):
            if prerequisite is not None:
                ensure_prerequisite(self.hook.conn, prerequisite, self.log)
        engine = self.engine()
        action = self._converge(engine, config["EndpointConfigName"])
        self.log.info("Endpoint %s: %s with %s", self.endpoint_name, action, config["EndpointConfigName"])
        persist_console_link(SageMakerEndpointLink, context, self, ENDPOINT, self.endpoint_name)
        partial = {
            "endpoint_config_name": config["EndpointConfigName"],
            "model_name": model_name,
            "action": action,
            "data_capture_s3_uri": self.data_capture_s3_uri,
            "traffic_shift": self.deployment.traffic_shift
            if self.deployment and action == "updated"
            else None,
        }
        if not self.wait_for_completion:
            return self.result(partial, engine.describe(self.endpoint_name) or {})
        if self.deferrable:
            description = engine.describe(self.endpoint_name)
            if not engine.poll_once(description, name=self.endpoint_name).done:
                from airflow_dl_provider.triggers.job import SageMakerJobTrigger

                self.defer(
                    trigger=SageMakerJobTrigger.for_task(
                        self,
                        job_kind=ENDPOINT.key,
                        job_name=self.endpoint_name,
                        max_wait=self.max_wait,
                        undo=self.undo,
                    ),
                    method_name="execute_complete",
                    kwargs={"partial": partial, "undo": self.undo},
                )
            return self.served(partial, engine.check(description or {}, name=self.endpoint_name))
        description = engine.wait(
            self.endpoint_name, poll_interval=self.poll_interval, max_wait=self.max_wait
        )
        return self.served(partial, description)

    def execute_complete(
        self,
        context: Any,
        event: Mapping[str, Any] | None = None,
        partial: Mapping[str, Any] | None = None,
        undo: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Resume after the trigger: the endpoint serves, or raise with why it does not."""
        self.undo = dict(undo) if undo else None
        if not event:
            raise SageMakerJobError("resumed without a trigger event")
        if event["status"] == "timeout":
            raise SageMakerJobError(event["message"], job_name=self.endpoint_name)
        engine = self.engine()
        description = engine.describe(self.endpoint_name)
        if description is None:
            raise SageMakerJobError(event["message"], job_name=self.endpoint_name)
        return self.served(dict(partial or {}), engine.check(description, name=self.endpoint_name))

    def served(self, partial: Mapping[str, Any], description: Mapping[str, Any]) -> dict[str, Any]:
        """The result once the endpoint serves; raise if it serves another config than this task's.

        A blue/green update that an alarm rolled back ends InService on the old config
        (``service_behaviour.BLUE_GREEN``): the deploy did not happen, so the task fails.
        """
        wanted, serving = partial.get("endpoint_config_name"), description.get("EndpointConfigName")
        if wanted and serving != wanted:
            reason = description.get("FailureReason") or "no reason given"
            raise SageMakerJobError(
                f"Endpoint {self.endpoint_name}: the update to {wanted} was rolled back and it serves "
                f"{serving} again: {reason}",
                job_name=self.endpoint_name,
            )
        return self.result(partial, description)

    def result(self, partial: Mapping[str, Any], description: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "endpoint_name": self.endpoint_name,
            "endpoint_arn": description.get("EndpointArn"),
            "endpoint_config_name": partial.get("endpoint_config_name"),
            "model_name": partial.get("model_name"),
            "status": description.get("EndpointStatus"),
            "action": partial.get("action"),
            "data_capture_s3_uri": partial.get("data_capture_s3_uri"),
            "traffic_shift": partial.get("traffic_shift"),
        }

    def on_kill(self) -> None:
        """Take back what this try started: delete the endpoint it created, roll back its update."""
        if not self.undo:
            return
        try:
            self.engine().undo(
                self.endpoint_name,
                self.undo,
                budget=KILL_BUDGET_SECONDS,
                poll_interval=min(self.poll_interval, 1.0),
            )
        except ClientError as err:
            # The task is being killed either way: say what could not be taken back, and why.
            self.log.error("Endpoint %s: could not undo %s: %s", self.endpoint_name, self.undo, err)
