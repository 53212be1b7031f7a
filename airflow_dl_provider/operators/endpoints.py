"""Real-time endpoints: Model -> EndpointConfig (with data capture) -> Endpoint, created or updated.

Endpoints are not jobs (they run until deleted), so they have no row in the job table; this module
waits on them with the engine's backoff. Names are deterministic: the Model and the EndpointConfig are
named by their contents, so a retry finds what its earlier try created, and an existing endpoint is
updated only when its config differs. A Failed endpoint is deleted and created again; DeleteEndpoint
only starts the delete (``service_behaviour.ASYNC_DELETE``), so the new one is created once the old
one is gone, and an endpoint that is ``Deleting`` is never updated.
"""

from __future__ import annotations

import json
import random
import time
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from botocore.exceptions import ClientError

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.exceptions import SageMakerJobError
from airflow_dl_provider.hooks.sagemaker import SageMakerJobHook
from airflow_dl_provider.jobs.naming import deterministic_job_name
from airflow_dl_provider.operators.base import _context_ids
from airflow_dl_provider.operators.transform import (
    check_model_source,
    ensure_model,
    model_request,
)
from airflow_dl_provider.presets.containers import pytorch_image
from airflow_dl_provider.validation.requests import validate_request

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

CAPTURE_MODES = ("Input", "Output")
SERVING = frozenset({"InService"})
IN_PROGRESS = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})
DELETING = service_behaviour.ASYNC_DELETE["Endpoint"].deleting


class EndpointDeployOperator(AwsBaseOperator[SageMakerJobHook]):
    """Deploy a model to a SageMaker endpoint, creating it or updating it to a new config.

    :param endpoint_name: the endpoint; it outlives the DAG run, so it is named, not derived. (templated)
    :param model_name: an existing SageMaker Model; or give ``model_artifacts`` and ``role_arn``. (templated)
    :param model_artifacts: ``s3://.../model.tar.gz`` with ``code/<entry_point>``. (templated)
    :param role_arn: the Model's execution role. (templated)
    :param image_uri: the inference image; defaults to the PyTorch container for ``framework_version``. (templated)
    :param entry_point: ``SAGEMAKER_PROGRAM`` in the artifact's ``code/``.
    :param instance_type: e.g. ``ml.m5.large``. (templated)
    :param instance_count: initial instances of the variant.
    :param variant_name: the production variant.
    :param data_capture_s3_uri: ``s3://`` prefix for captured requests; None turns capture off. (templated)
    :param sampling_percentage: share of requests captured, 0-100.
    :param capture_modes: ``Input``, ``Output`` or both.
    :param csv_content_types: content types captured as CSV text; others as JSON or base64.
    :param json_content_types: content types captured as JSON text.
    :param wait_for_completion: wait until the endpoint is ``InService``.
    :param poll_interval: the longest pause between status checks, in seconds.
    :param max_wait: give up waiting after this many seconds.
    :param tags: tags for the endpoint and its config. (templated)
    """

    aws_hook_class = SageMakerJobHook
    template_fields: Sequence[str] = aws_template_fields(
        "endpoint_name",
        "model_name",
        "model_artifacts",
        "role_arn",
        "image_uri",
        "instance_type",
        "data_capture_s3_uri",
        "tags",
    )
    ui_color = "#e6f3e1"

    def __init__(
        self,
        *,
        endpoint_name: str,
        model_name: str | None = None,
        model_artifacts: str | None = None,
        role_arn: str | None = None,
        image_uri: str | None = None,
        framework_version: str = "2.5.1",
        py_version: str = "py311",
        entry_point: str = "inference.py",
        instance_type: str = "ml.m5.large",
        instance_count: int = 1,
        variant_name: str = "AllTraffic",
        data_capture_s3_uri: str | None = None,
        sampling_percentage: int = 100,
        capture_modes: Sequence[str] = CAPTURE_MODES,
        csv_content_types: Sequence[str] = ("text/csv",),
        json_content_types: Sequence[str] = ("application/json",),
        wait_for_completion: bool = True,
        poll_interval: float = 30.0,
        max_wait: float = 3600.0,
        tags: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        task = self.task_id
        check_model_source(task, model_name, model_artifacts, role_arn)
        if not 0 <= sampling_percentage <= 100:
            raise ValueError(f"{task}: sampling_percentage must be 0-100, got {sampling_percentage}")
        if not capture_modes or set(capture_modes) - set(CAPTURE_MODES):
            raise ValueError(f"{task}: capture_modes must be a non-empty subset of {CAPTURE_MODES}")
        if instance_count < 1 or poll_interval <= 0:
            raise ValueError(f"{task}: instance_count must be >= 1 and poll_interval > 0")
        self.endpoint_name = endpoint_name
        self.model_name = model_name
        self.model_artifacts = model_artifacts
        self.role_arn = role_arn
        self.image_uri = image_uri
        self.framework_version = framework_version
        self.py_version = py_version
        self.entry_point = entry_point
        self.instance_type = instance_type
        self.instance_count = instance_count
        self.variant_name = variant_name
        self.data_capture_s3_uri = data_capture_s3_uri
        self.sampling_percentage = sampling_percentage
        self.capture_modes = list(capture_modes)
        self.csv_content_types = list(csv_content_types)
        self.json_content_types = list(json_content_types)
        self.wait_for_completion = wait_for_completion
        self.poll_interval = poll_interval
        self.max_wait = max_wait
        self.tags = dict(tags or {})

    # -- requests ------------------------------------------------------------------------------------

    def model_request(self, context: Any) -> dict[str, Any] | None:
        if self.model_name:
            return None
        region = self.hook.region
        image = self.image_uri or pytorch_image(
            "inference", region, self.framework_version, self.py_version, self.instance_type
        )
        ids = _context_ids(context)
        return model_request(
            prefix=f"{ids['dag_id']}-{ids['task_id']}",
            image=image,
            model_data_url=str(self.model_artifacts),
            role_arn=str(self.role_arn),
            region=region,
            entry_point=self.entry_point,
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
                "InitialSamplingPercentage": int(self.sampling_percentage),
                "DestinationS3Uri": self.data_capture_s3_uri,
                "CaptureOptions": [{"CaptureMode": mode} for mode in self.capture_modes],
                "CaptureContentTypeHeader": {
                    "CsvContentTypes": self.csv_content_types,
                    "JsonContentTypes": self.json_content_types,
                },
            }
        digest_source = json.dumps(body, sort_keys=True)
        name = deterministic_job_name("endpoint-config", digest_source, "", prefix=self.endpoint_name)
        request = {"EndpointConfigName": name, **body}
        if self.tags:
            request["Tags"] = [{"Key": str(k), "Value": str(v)} for k, v in self.tags.items()]
        return request

    # -- run -----------------------------------------------------------------------------------------

    def _describe(self) -> dict[str, Any] | None:
        try:
            return dict(self.hook.conn.describe_endpoint(EndpointName=self.endpoint_name))
        except ClientError as err:
            if service_behaviour.is_not_found("DescribeEndpoint", err):
                return None
            raise

    def _ensure_config(self, request: Mapping[str, Any]) -> None:
        try:
            self.hook.conn.describe_endpoint_config(EndpointConfigName=request["EndpointConfigName"])
            return
        except ClientError as err:
            if not service_behaviour.is_not_found("DescribeEndpointConfig", err):
                raise
        self.hook.conn.create_endpoint_config(**request)
        self.log.info("Created EndpointConfig %s", request["EndpointConfigName"])

    def _poll(self, done: Callable[[dict[str, Any] | None], bool]) -> dict[str, Any] | None:
        """Describe with the job engine's backoff until ``done(description)`` says True; return it.

        :param done: called with each description (None: the endpoint does not exist); it raises to stop.
        """
        deadline = time.monotonic() + self.max_wait
        delay = min(1.0, self.poll_interval)
        last = None
        while True:
            description = self._describe()
            status = "gone" if description is None else str(description["EndpointStatus"])
            if status != last:
                self.log.info("Endpoint %s: %s", self.endpoint_name, status)
                last = status
            if done(description):
                return description
            if time.monotonic() >= deadline:
                raise SageMakerJobError(
                    f"Endpoint {self.endpoint_name} still {status} after max_wait={self.max_wait:.0f}s",
                    job_name=self.endpoint_name,
                    status=status,
                )
            time.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 1.5, self.poll_interval)

    def wait(self) -> dict[str, Any]:
        """Poll with the job engine's backoff until the endpoint serves or fails."""

        def serving(description: dict[str, Any] | None) -> bool:
            if description is None:
                raise SageMakerJobError(
                    f"Endpoint {self.endpoint_name} does not exist", job_name=self.endpoint_name
                )
            status = description["EndpointStatus"]
            if status in SERVING:
                return True
            if status not in IN_PROGRESS:
                reason = description.get("FailureReason") or ""
                raise SageMakerJobError(
                    f"Endpoint {self.endpoint_name} {status}" + (f": {reason}" if reason else ""),
                    job_name=self.endpoint_name,
                    status=status,
                    failure_reason=reason,
                )
            return False

        return dict(self._poll(serving) or {})

    def wait_deleted(self) -> None:
        """Poll until the endpoint is gone: its name stays taken while it is Deleting."""

        def gone(description: dict[str, Any] | None) -> bool:
            if description is not None and description["EndpointStatus"] != DELETING:
                raise SageMakerJobError(
                    f"Endpoint {self.endpoint_name} is {description['EndpointStatus']} while being deleted; "
                    "someone else is using this endpoint name",
                    job_name=self.endpoint_name,
                    status=description["EndpointStatus"],
                )
            return description is None

        self._poll(gone)

    def execute(self, context: Any) -> dict[str, Any]:
        """Create or update the endpoint and wait until it serves.

        :return: ``endpoint_name``, ``endpoint_arn``, ``endpoint_config_name``, ``model_name``, ``status``,
            ``action`` (``created``, ``updated`` or ``unchanged``) and ``data_capture_s3_uri``, JSON-safe.
        """
        model = self.model_request(context)
        model_name = self.model_name or (model or {}).get("ModelName", "")
        config = self.config_request(str(model_name))
        if model is not None:
            validate_request("CreateModel", model)
        validate_request("CreateEndpointConfig", config)
        endpoint_request = {
            "EndpointName": self.endpoint_name,
            "EndpointConfigName": config["EndpointConfigName"],
        }
        validate_request("CreateEndpoint", endpoint_request)
        if model is not None:
            ensure_model(self.hook.conn, model, self.log)
        self._ensure_config(config)
        current = self._describe()
        if current is not None and current["EndpointStatus"] == "Failed":
            # A failed endpoint cannot be updated (DeleteEndpoint is the only call it takes): replace it.
            self.log.info("Endpoint %s is Failed; deleting it to create it again", self.endpoint_name)
            self.hook.conn.delete_endpoint(EndpointName=self.endpoint_name)
            current = self._describe()
        if current is not None and current["EndpointStatus"] == DELETING:
            # Its name is taken until it is gone: CreateEndpoint now would be refused, and so would Update.
            self.log.info("Endpoint %s is %s; waiting until it is gone", self.endpoint_name, DELETING)
            self.wait_deleted()
            current = None
        if current is None:
            tags = [{"Key": str(k), "Value": str(v)} for k, v in self.tags.items()]
            self.hook.conn.create_endpoint(**endpoint_request, **({"Tags": tags} if tags else {}))
            action = "created"
        elif current.get("EndpointConfigName") == config["EndpointConfigName"]:
            action = "unchanged"
            self.log.info(
                "Endpoint %s already runs %s; nothing to update",
                self.endpoint_name,
                config["EndpointConfigName"],
            )
        else:
            if current["EndpointStatus"] in IN_PROGRESS:
                self.wait()  # an update is refused while another is in flight
            self.hook.conn.update_endpoint(**endpoint_request)
            action = "updated"
        self.log.info("Endpoint %s: %s with %s", self.endpoint_name, action, config["EndpointConfigName"])
        description = self.wait() if self.wait_for_completion else (self._describe() or {})
        return {
            "endpoint_name": self.endpoint_name,
            "endpoint_arn": description.get("EndpointArn"),
            "endpoint_config_name": config["EndpointConfigName"],
            "model_name": model_name,
            "status": description.get("EndpointStatus"),
            "action": action,
            "data_capture_s3_uri": self.data_capture_s3_uri,
        }
