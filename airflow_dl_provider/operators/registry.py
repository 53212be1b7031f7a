"""Model registry: a versioned model package that names its training job, data and metrics.

This is the traceability link: a prediction file's transform job names its Model, the Model its
artifact, and the package registered for that artifact names the training job, the data URIs and the
metrics (``CustomerMetadataProperties``, and a metrics JSON that ``ModelMetrics`` points at).

A model package is a row of the kinds table (``RESOURCE_KINDS["model_package"]``): versions have no
name, so the engine finds the one this task instance registered by the task key in its metadata
(:meth:`~airflow_dl_provider.jobs.engine.JobEngine.ensure_versioned`), and waits for the service to
finish registering it (``Pending``, ``InProgress``, then ``Completed``) with ``poll_once``. A version
is not deleted on kill: it costs nothing, and a retry reattaches to it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from botocore.exceptions import ClientError

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.hooks.sagemaker import SageMakerJobHook
from airflow_dl_provider.jobs.engine import TASK_KEY_PROPERTY
from airflow_dl_provider.jobs.kinds import RESOURCE_KINDS
from airflow_dl_provider.jobs.naming import deterministic_job_name
from airflow_dl_provider.links.console import (
    ModelArtifactsLink,
    SageMakerModelPackageLink,
    persist_console_link,
)
from airflow_dl_provider.links.published import PublishedOutputs
from airflow_dl_provider.operators.base import _context_ids
from airflow_dl_provider.specs.model import ModelSource, compose_model_source, pop_model_arguments
from airflow_dl_provider.validation.preflight import split_s3_uri
from airflow_dl_provider.validation.requests import validate_request

if TYPE_CHECKING:
    from airflow_dl_provider.jobs.engine import JobEngine

APPROVAL_STATUSES = ("Approved", "Rejected", "PendingManualApproval")
TASK_KEY = TASK_KEY_PROPERTY
MODEL_PACKAGE = RESOURCE_KINDS["model_package"]


class RegisterModelOperator(PublishedOutputs, AwsBaseOperator[SageMakerJobHook]):
    """Register a model artifact as a new version in a model package group.

    :param model_package_group_name: the group; created when missing. (templated)
    :param model: what to register (:class:`~airflow_dl_provider.specs.model.ModelSource`):
        ``model_artifacts`` (a training or compilation output) with its image (or the PyTorch inference
        container for ``framework_version``), ``entry_point`` and environment. A package creates no
        Model, so no role is needed. (templated)
    :param training_job_name: the training job that made the artifact. (templated)
    :param data_uris: name -> ``s3://`` URI of the data it was trained and tested on. (templated)
    :param metrics: name -> value; when None, the training job's final metrics are used. (templated)
    :param metrics_s3_uri: where to write the metrics JSON; defaults to
        ``<artifact dir>/model-metrics-<task key>.json``. (templated)
    :param approval_status: ``PendingManualApproval`` (default), ``Approved`` or ``Rejected``.
    :param description: the package description. (templated)
    :param group_description: the group description, used when the group is created.
    :param content_types: request MIME types the model accepts.
    :param response_types: response MIME types it returns.
    :param instance_types: instance types for real-time inference and batch transform.
    :param problem_type: prefix of the metrics section, as in model quality reports.
    :param poll_interval: the longest pause between status checks while the service registers it.
    :param max_wait: give up waiting for ``Completed`` after this many seconds.

    Deprecated (this release only): ``model_artifacts``, ``image_uri``, ``framework_version``,
    ``py_version``, ``entry_point`` build ``model`` with a ``DeprecationWarning``.
    """

    aws_hook_class = SageMakerJobHook
    operator_extra_links = (SageMakerModelPackageLink(), ModelArtifactsLink())
    lineage_inputs = frozenset({"model_artifacts"})  # registered, not written
    template_fields: Sequence[str] = aws_template_fields(
        "model_package_group_name",
        "model",
        "training_job_name",
        "data_uris",
        "metrics",
        "metrics_s3_uri",
        "description",
    )
    template_fields_renderers = {"data_uris": "json", "metrics": "json"}
    ui_color = "#e6f3e1"

    def __init__(
        self,
        *,
        model_package_group_name: str,
        model: ModelSource | None = None,
        training_job_name: str | None = None,
        data_uris: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        metrics_s3_uri: str | None = None,
        approval_status: str = "PendingManualApproval",
        description: str | None = None,
        group_description: str | None = None,
        content_types: Sequence[str] = ("text/csv",),
        response_types: Sequence[str] = ("text/csv",),
        instance_types: Sequence[str] = ("ml.m5.large",),
        problem_type: str = "multiclass_classification",
        poll_interval: float = 5.0,
        max_wait: float | None = 1800.0,
        **kwargs: Any,
    ) -> None:
        flat = pop_model_arguments(kwargs)
        super().__init__(**kwargs)
        self.model = compose_model_source(self.task_id, model, flat)
        if not self.model.model_artifacts:
            raise ValueError(
                f"{self.task_id}: model: a package is registered from model_artifacts; "
                "model_name and model_package_arn cannot be registered"
            )
        if poll_interval <= 0:
            raise ValueError(f"{self.task_id}: poll_interval must be > 0 seconds, got {poll_interval}")
        if approval_status not in APPROVAL_STATUSES:
            raise ValueError(
                f"{self.task_id}: approval_status: {approval_status!r} is not one of {', '.join(APPROVAL_STATUSES)}"
            )
        if isinstance(data_uris, Mapping):
            bad = [k for k, v in data_uris.items() if not str(v).startswith(("s3://", "{{"))]
            if bad:
                raise ValueError(f"{self.task_id}: data_uris: {bad} are not s3:// URIs")
        self.model_package_group_name = model_package_group_name
        self.training_job_name = training_job_name
        self.data_uris = data_uris
        self.metrics = metrics
        self.metrics_s3_uri = metrics_s3_uri
        self.approval_status = approval_status
        self.description = description
        self.group_description = group_description
        self.content_types = list(content_types)
        self.response_types = list(response_types)
        self.instance_types = list(instance_types)
        self.problem_type = problem_type
        self.poll_interval = poll_interval
        self.max_wait = max_wait

    def task_key(self, context: Any) -> str:
        """The task instance's stable key: the same on every try of it."""
        return deterministic_job_name(**_context_ids(context), prefix="ti")

    def resolved_metrics(self) -> dict[str, float]:
        if self.metrics is not None:
            return {str(k): float(v) for k, v in dict(self.metrics).items()}
        if not self.training_job_name:
            return {}
        described = self.hook.conn.describe_training_job(TrainingJobName=self.training_job_name)
        return {m["MetricName"]: float(m["Value"]) for m in described.get("FinalMetricDataList") or []}

    def metadata(self, key: str, metrics: Mapping[str, float]) -> dict[str, str]:
        """CustomerMetadataProperties: the task key, training job, data and metrics (at most 50 entries)."""
        properties = {TASK_KEY: key}
        if self.training_job_name:
            properties["training-job"] = str(self.training_job_name)
        properties.update({f"data:{name}": str(uri) for name, uri in dict(self.data_uris or {}).items()})
        properties.update({f"metric:{name}": repr(value) for name, value in metrics.items()})
        return properties

    def build_request(self, key: str, metrics: Mapping[str, float], metrics_uri: str) -> dict[str, Any]:
        container = self.model.container(self.hook.region, self.instance_types[0])
        request: dict[str, Any] = {
            "ModelPackageGroupName": self.model_package_group_name,
            "InferenceSpecification": {
                "Containers": [container],
                "SupportedContentTypes": self.content_types,
                "SupportedResponseMIMETypes": self.response_types,
                "SupportedRealtimeInferenceInstanceTypes": self.instance_types,
                "SupportedTransformInstanceTypes": self.instance_types,
            },
            "ModelApprovalStatus": self.approval_status,
            "ModelMetrics": {
                "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": metrics_uri}}
            },
            "CustomerMetadataProperties": self.metadata(key, metrics),
            # The service's own idempotency token; the metadata scan covers retries after it expires.
            "ClientToken": key,
        }
        if self.description:
            request["ModelPackageDescription"] = self.description
        return request

    def _ensure_group(self) -> None:
        conn = self.hook.conn
        try:
            conn.describe_model_package_group(ModelPackageGroupName=self.model_package_group_name)
            return
        except ClientError as err:
            if not service_behaviour.is_not_found("DescribeModelPackageGroup", err):
                raise
        request = {"ModelPackageGroupName": self.model_package_group_name}
        if self.group_description:
            request["ModelPackageGroupDescription"] = self.group_description
        conn.create_model_package_group(**request)
        self.log.info("Created model package group %s", self.model_package_group_name)

    def _result(self, described: Mapping[str, Any], metrics_uri: str) -> dict[str, Any]:
        return {
            "model_package_arn": described["ModelPackageArn"],
            "model_package_version": described.get("ModelPackageVersion"),
            "model_package_group": self.model_package_group_name,
            "approval_status": described.get("ModelApprovalStatus"),
            "model_artifacts": self.model.model_artifacts,
            "training_job_name": self.training_job_name,
            "metrics_s3_uri": metrics_uri,
        }

    def engine(self) -> JobEngine:
        from airflow_dl_provider.jobs.engine import JobEngine

        return JobEngine(MODEL_PACKAGE, self.hook.conn, log=self.log)

    def execute(self, context: Any) -> dict[str, Any]:
        """Register the model version, or return the one an earlier try of this task registered.

        :return: ``model_package_arn`` (the version ARN), ``model_package_version``, ``model_package_group``,
            ``approval_status``, ``model_artifacts``, ``training_job_name`` and ``metrics_s3_uri``, JSON-safe.
        """
        try:
            self.model.check(rendered=True)
        except ValueError as err:
            raise ValueError(f"{self.task_id}: {err}") from None
        key = self.task_key(context)
        metrics = self.resolved_metrics()
        artifact_dir = str(self.model.model_artifacts).rsplit("/", 1)[0]
        metrics_uri = self.metrics_s3_uri or f"{artifact_dir}/model-metrics-{key}.json"
        request = self.build_request(key, metrics, metrics_uri)
        validate_request("CreateModelPackage", request)
        bucket, object_key = split_s3_uri(metrics_uri, "metrics_s3_uri")
        self._ensure_group()

        def upload_metrics() -> None:
            report = {
                "version": 0.0,
                f"{self.problem_type}_metrics": {name: {"value": value} for name, value in metrics.items()},
            }
            self.hook.s3.put_object(
                Bucket=bucket, Key=object_key, Body=json.dumps(report, sort_keys=True).encode()
            )

        engine = self.engine()
        handle = engine.ensure_versioned(request, key, stage=upload_metrics)
        persist_console_link(
            SageMakerModelPackageLink,
            context,
            self,
            MODEL_PACKAGE,
            handle.name,
            {"ModelPackageGroupName": self.model_package_group_name},
        )
        described = engine.wait(handle.name, poll_interval=self.poll_interval, max_wait=self.max_wait)
        self.log.info("Registered %s (%s)", handle.name, described.get("ModelApprovalStatus"))
        return self._result(described, metrics_uri)
