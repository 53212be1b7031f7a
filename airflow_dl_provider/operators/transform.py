"""Batch transform: a Model (a :class:`~airflow_dl_provider.specs.model.ModelSource`) -> one CreateTransformJob plan.

A Model the task creates is the plan's prerequisite, named by what it holds (image, artifact,
environment, role), so creating it is idempotent: a retried task finds the Model its earlier try
created, and a new artifact gets a new Model. The endpoint operator stages its Model the same way
(:meth:`~airflow_dl_provider.specs.model.ModelSource.prerequisite`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_dl_provider.exceptions import PreflightError
from airflow_dl_provider.jobs.kinds import JOB_KINDS
from airflow_dl_provider.jobs.plan import JobPlan
from airflow_dl_provider.operators.base import SageMakerJobOperator, _context_ids
from airflow_dl_provider.specs.fields import string_map, tag_list
from airflow_dl_provider.specs.model import ModelSource, compose_model_source, pop_model_arguments
from airflow_dl_provider.validation.preflight import check_s3_prefix

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

SPLIT_TYPES = ("None", "Line", "RecordIO", "TFRecord")
BATCH_STRATEGIES = ("SingleRecord", "MultiRecord")
ASSEMBLE_WITH = ("None", "Line")
JOIN_SOURCES = ("None", "Input")
COMPRESSION = ("None", "Gzip")
# Filters and joins work on records the service can parse: CSV and JSON (Lines).
FILTERABLE_TYPES = ("text/csv", "application/json", "application/jsonlines", "application/x-jsonlines")
# The service's cap on MaxPayloadInMB, alone and times MaxConcurrentTransforms.
MAX_PAYLOAD_TOTAL_MB = 100


class ModelTask:
    """For an operator that creates the Model it uses (transform, endpoints): its ``model`` argument.

    First in the bases: it takes ``model`` and the deprecated flat model arguments out of the keyword
    arguments before the operator's base class sees them, then sets ``self.model``, the task's own
    checked copy (:func:`~airflow_dl_provider.specs.model.compose_model_source`).
    """

    model: ModelSource
    task_id: str

    def __init__(self, *, model: ModelSource | None = None, **kwargs: Any) -> None:
        flat = pop_model_arguments(kwargs)
        super().__init__(**kwargs)
        self.model = compose_model_source(self.task_id, model, flat, require_role=True)


def _media(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_transform(request: Mapping[str, Any]) -> None:
    """The service's rules that the service model does not encode; one line each."""
    source = request["TransformInput"]
    output = request.get("TransformOutput") or {}
    split = source.get("SplitType", "None")
    payload = request.get("MaxPayloadInMB")
    concurrent = request.get("MaxConcurrentTransforms")
    if payload is not None and payload > MAX_PAYLOAD_TOTAL_MB:
        raise PreflightError(f"max_payload_mb: {payload} is over the service's {MAX_PAYLOAD_TOTAL_MB} MB")
    if payload is not None and concurrent and concurrent * payload > MAX_PAYLOAD_TOTAL_MB:
        raise PreflightError(
            f"max_concurrent_transforms x max_payload_mb = {concurrent} x {payload} = {concurrent * payload} MB, "
            f"over the service's {MAX_PAYLOAD_TOTAL_MB} MB; lower either"
        )
    if request.get("BatchStrategy") and split == "None":
        raise PreflightError(
            f"split_type: batch_strategy={request['BatchStrategy']!r} needs split_type Line, RecordIO or "
            "TFRecord (with None each object is one request)"
        )
    processing = request.get("DataProcessing") or {}
    filtered = processing.get("InputFilter", "$") != "$" or processing.get("JoinSource", "None") == "Input"
    if filtered and _media(source.get("ContentType")) not in FILTERABLE_TYPES:
        raise PreflightError(
            f"content_type: input_filter and join_source need CSV or JSON input ({', '.join(FILTERABLE_TYPES)}), "
            f"got {source.get('ContentType')!r}"
        )
    if processing.get("OutputFilter", "$") != "$" and _media(output.get("Accept")) not in FILTERABLE_TYPES:
        raise PreflightError(f"accept: output_filter needs CSV or JSON output, got {output.get('Accept')!r}")


class BatchTransformOperator(ModelTask, SageMakerJobOperator):
    """Run a SageMaker batch transform over every object under an S3 prefix.

    The Model is ``model``: an existing one (``ModelSource(model_name=...)``), or one created first,
    idempotently, from ``ModelSource(model_artifacts=..., role_arn=...)`` (a training or compilation
    output, served by ``inference.py`` inside the artifact's ``code/`` in the PyTorch inference
    container or ``image_uri``) or from a registered ``model_package_arn``. An ``overrides`` of
    ``ModelName`` names the Model that is created.

    :param input_s3_uri: ``s3://`` prefix (or object) to transform. (templated)
    :param output_path: ``s3://`` prefix; ``<input_s3_uri>/<rel>`` becomes ``<output_path>/<rel>.out``. (templated)
    :param model: where the Model comes from (:class:`~airflow_dl_provider.specs.model.ModelSource`). (templated)
    :param content_type: MIME type of the input records. (templated)
    :param accept: MIME type asked of the model. (templated)
    :param split_type: ``None`` (each object is one request), ``Line``, ``RecordIO``, ``TFRecord``.
    :param batch_strategy: ``SingleRecord`` or ``MultiRecord`` (needs a ``split_type``), or None.
    :param assemble_with: ``Line`` (one output per line) or ``None`` (concatenated).
    :param max_payload_mb: ``MaxPayloadInMB``, at most 100, and at most 100 x ``max_concurrent_transforms``.
    :param max_concurrent_transforms: requests in flight per instance.
    :param input_filter: JSONPath of what to send to the model, e.g. ``$[1:]``. (templated)
    :param output_filter: JSONPath of what to keep of the (joined) record, e.g. ``$[0,-1]``. (templated)
    :param join_source: ``Input`` joins each output to its input record.
    :param compression: ``None`` or ``Gzip``: how the input objects are compressed.
    :param instance_type: e.g. ``ml.m5.xlarge``; also picks the default image's accelerator. (templated)
    :param instance_count: instances.
    :param output_kms_key_id: KMS key for the ``.out`` objects.
    :param environment: environment variables of the transform job's container (the Model's own are
        ``ModelSource.environment``). (templated)
    :param tags: tags for the job. (templated)

    Deprecated (this release only): ``model_name``, ``model_artifacts``, ``role_arn``, ``image_uri``,
    ``framework_version``, ``py_version``, ``entry_point`` build ``model`` with a ``DeprecationWarning``.
    """

    job_kind = JOB_KINDS["transform"]
    template_fields: Sequence[str] = (
        *SageMakerJobOperator.template_fields,
        "input_s3_uri",
        "output_path",
        "model",
        "content_type",
        "accept",
        "input_filter",
        "output_filter",
        "instance_type",
        "environment",
        "tags",
    )

    def __init__(
        self,
        *,
        input_s3_uri: str,
        output_path: str,
        model: ModelSource | None = None,
        content_type: str = "text/csv",
        accept: str = "text/csv",
        split_type: str = "Line",
        batch_strategy: str | None = "MultiRecord",
        assemble_with: str = "Line",
        max_payload_mb: int | None = 6,
        max_concurrent_transforms: int | None = None,
        input_filter: str | None = None,
        output_filter: str | None = None,
        join_source: str = "None",
        compression: str = "None",
        instance_type: str = "ml.m5.xlarge",
        instance_count: int = 1,
        output_kms_key_id: str | None = None,
        environment: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model=model, **kwargs)
        task = self.task_id
        for field, value, allowed in (
            ("split_type", split_type, SPLIT_TYPES),
            ("batch_strategy", batch_strategy, (*BATCH_STRATEGIES, None)),
            ("assemble_with", assemble_with, ASSEMBLE_WITH),
            ("join_source", join_source, JOIN_SOURCES),
            ("compression", compression, COMPRESSION),
        ):
            if value not in allowed:
                raise ValueError(f"{task}: {field}: {value!r} is not one of {', '.join(map(str, allowed))}")
        if instance_count < 1:
            raise ValueError(f"{task}: instance_count must be >= 1, got {instance_count}")
        self.input_s3_uri = input_s3_uri
        self.output_path = output_path
        self.content_type = content_type
        self.accept = accept
        self.split_type = split_type
        self.batch_strategy = batch_strategy
        self.assemble_with = assemble_with
        self.max_payload_mb = max_payload_mb
        self.max_concurrent_transforms = max_concurrent_transforms
        self.input_filter = input_filter
        self.output_filter = output_filter
        self.join_source = join_source
        self.compression = compression
        self.instance_type = instance_type
        self.instance_count = instance_count
        self.output_kms_key_id = output_kms_key_id
        self.environment = dict(environment or {})
        self.tags = dict(tags or {})
        try:
            check_transform(self._transform_fields("-"))
        except PreflightError as err:
            raise ValueError(f"{task}: {err}") from None

    def _transform_fields(self, model_name: str) -> dict[str, Any]:
        source: dict[str, Any] = {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": self.input_s3_uri}},
            "ContentType": self.content_type,
            "SplitType": self.split_type,
            "CompressionType": self.compression,
        }
        output: dict[str, Any] = {
            "S3OutputPath": self.output_path,
            "Accept": self.accept,
            "AssembleWith": self.assemble_with,
        }
        if self.output_kms_key_id:
            output["KmsKeyId"] = self.output_kms_key_id
        request: dict[str, Any] = {
            "ModelName": model_name,
            "TransformInput": source,
            "TransformOutput": output,
            "TransformResources": {
                "InstanceType": self.instance_type,
                "InstanceCount": int(self.instance_count),
            },
        }
        if self.batch_strategy:
            request["BatchStrategy"] = self.batch_strategy
        if self.max_payload_mb is not None:
            request["MaxPayloadInMB"] = int(self.max_payload_mb)
        if self.max_concurrent_transforms is not None:
            request["MaxConcurrentTransforms"] = int(self.max_concurrent_transforms)
        processing = {
            k: v
            for k, v in (
                ("InputFilter", self.input_filter),
                ("OutputFilter", self.output_filter),
                ("JoinSource", None if self.join_source == "None" else self.join_source),
            )
            if v
        }
        if processing:
            request["DataProcessing"] = processing
        if self.environment:
            request["Environment"] = string_map(self.environment)
        if self.tags:
            request["Tags"] = tag_list(self.tags)
        return request

    def build(self, context: Any) -> JobPlan:
        try:
            self.model.check(rendered=True)
        except ValueError as err:
            raise PreflightError(str(err)) from None
        if not self.model.creates_model:
            return JobPlan(self._transform_fields(str(self.model.model_name)))
        ids = _context_ids(context)
        model = self.model.prerequisite(
            prefix=self.job_name_prefix or f"{ids['dag_id']}-{ids['task_id']}",
            region=self.hook.region,
            instance_type=self.instance_type,
        )
        assert model is not None
        return JobPlan(self._transform_fields(model.name), prerequisites=(model,))

    def preflight(self, plan: JobPlan, context: Any) -> None:
        request = plan.request
        check_transform(request)
        for prerequisite in plan.prerequisites:
            artifacts = prerequisite.request["PrimaryContainer"].get("ModelDataUrl")
            if artifacts:
                check_s3_prefix(self.hook.s3, artifacts, "model.model_artifacts")
        check_s3_prefix(
            self.hook.s3, request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"], "input_s3_uri"
        )

    def result(self, engine: Any, description: Mapping[str, Any], context: Any) -> dict[str, Any]:
        return {**engine.result(description), "model_name": description.get("ModelName")}

    def execute(self, context: Any) -> dict[str, Any]:
        """Create the Model if needed, then run the transform.

        :return: ``job_name``, ``job_arn``, ``status``, ``output_path`` (where the ``.out`` files are)
            and ``model_name``, JSON-safe.
        """
        return super().execute(context)
