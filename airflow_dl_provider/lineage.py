"""OpenLineage for every operator: S3 inputs and outputs as datasets, the job's ARN, the model package.

Follows the Amazon provider's SageMaker operators (``get_openlineage_facets_on_complete`` reads the
job's description: ``InputDataConfig``/``TransformInput``/``ProcessingInputs`` are inputs, the model
artifacts and output paths are outputs; an S3 URI is the dataset ``s3://<bucket>`` / ``<key>``), and
adds what they leave out: the job's ARN as an ``externalQuery`` run facet (source ``sagemaker``) and a
model package as a dataset of namespace ``arn:<partition>:sagemaker:<region>:<account>`` named
``model-package/<group>/<version>``.

The OpenLineage provider is optional: every import of it is inside :func:`operator_lineage`, which
returns None when it is not installed, so nothing else changes (the listener that would ask is absent
then too). :func:`lineage_datasets` is the pure part, tested without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Parts of a request or description whose S3 locations are not the job's data: its own code, checkpoints,
# debugger and profiler output. The data a job reads and writes is what lineage is about.
_NOT_DATA = frozenset(
    {
        "CheckpointConfig",
        "DebugHookConfig",
        "DebugRuleConfigurations",
        "TensorBoardOutputConfig",
        "ProfilerConfig",
        "ProfilerRuleConfigurations",
        "HyperParameters",
        "StaticHyperParameters",
        "Environment",
        "AlgorithmSpecification",
        "UiConfig",
        "HumanTaskConfig",
    }
)
# The fields of a SageMaker description that hold S3 locations of data.
_S3_FIELDS = frozenset(
    {"S3Uri", "S3OutputPath", "S3OutputLocation", "ManifestS3Uri", "S3ModelArtifacts", "OutputDatasetS3Uri"}
)
# Result fields (the operators' XCom) that name what a task read; every other s3:// value it wrote.
INPUT_RESULT_FIELDS = frozenset(
    {
        "data_uri",
        "baseline_uri",
        "source",
        "input_s3_uri",
        "predictions_uri",
        "labels_uri",
        "model_data_uri",
    }
)
# Result fields that name a model package, and whether the task made it (else it read it).
_PACKAGE_FIELDS = {"model_package_arn": True, "champion_model_package_arn": False}


def _is_output(path: tuple[str, ...]) -> bool:
    # OutputDataConfig, TransformOutput, ProcessingOutputConfig, OutputConfig, LabelingJobOutput,
    # ModelArtifacts: the service's own names say which side a location is on.
    return any("Output" in part or part == "ModelArtifacts" for part in path)


def _walk(value: Any, path: tuple[str, ...], found: dict[str, list[str]]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in _NOT_DATA:
                continue
            if key in _S3_FIELDS and isinstance(item, str) and item.startswith("s3://"):
                found["outputs" if _is_output((*path, key)) else "inputs"].append(item)
            else:
                _walk(item, (*path, str(key)), found)
    elif isinstance(value, list):
        for item in value:
            _walk(item, path, found)


def _result_uris(result: Mapping[str, Any], inputs: frozenset[str], found: dict[str, list[str]]) -> None:
    for key, value in result.items():
        side = "inputs" if key in inputs else "outputs"
        if isinstance(value, str) and value.startswith("s3://"):
            found[side].append(value)
        elif isinstance(value, Mapping):  # e.g. a processing job's {output name: uri}
            found[side].extend(v for v in value.values() if isinstance(v, str) and v.startswith("s3://"))


def _unique(items: list[Any]) -> list[Any]:
    return list(dict.fromkeys(items))


def lineage_datasets(
    result: Mapping[str, Any] | None,
    description: Mapping[str, Any] | None = None,
    inputs: frozenset[str] = frozenset(),
) -> dict[str, list[tuple[str, str]]]:
    """``{"inputs": [(namespace, name)], "outputs": [...]}`` of a task, from its description and result.

    :param result: the task's returned value (its XCom).
    :param description: the job's Describe answer, when the task ran a job.
    :param inputs: result fields this operator reads besides :data:`INPUT_RESULT_FIELDS` (a
        registration reads ``model_artifacts``, which a training job writes).
    """
    found: dict[str, list[str]] = {"inputs": [], "outputs": []}
    if description:
        _walk(description, (), found)
    packages: dict[str, list[str]] = {"inputs": [], "outputs": []}
    if result:
        _result_uris(result, INPUT_RESULT_FIELDS | inputs, found)
        for key, made in _PACKAGE_FIELDS.items():
            arn = result.get(key)
            if isinstance(arn, str) and ":model-package/" in arn:
                packages["outputs" if made else "inputs"].append(arn)
    out: dict[str, list[tuple[str, str]]] = {}
    for side in ("inputs", "outputs"):
        datasets = [s3_dataset_id(uri) for uri in found[side]] + [
            package_dataset_id(a) for a in packages[side]
        ]
        out[side] = _unique(datasets)
    # A location both read and written (a prefix the job appends to) is an output.
    out["inputs"] = [d for d in out["inputs"] if d not in out["outputs"]]
    return out


def s3_dataset_id(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` as OpenLineage's ``(namespace, name)``: ``("s3://bucket", "key")``."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return f"s3://{bucket}", key.rstrip("/") or "/"


def package_dataset_id(arn: str) -> tuple[str, str]:
    """A model package ARN as ``("arn:aws:sagemaker:<region>:<account>", "model-package/<group>/<n>")``."""
    namespace, _, name = arn.rpartition(":")
    return namespace, name


def job_arn_of(result: Mapping[str, Any] | None) -> str | None:
    """The ARN of the job or resource the task ran, where its result names one."""
    for key in ("job_arn", "endpoint_arn"):
        value = (result or {}).get(key)
        if isinstance(value, str) and value.startswith("arn:"):
            return value
    return None


def operator_lineage(
    result: Mapping[str, Any] | None,
    description: Mapping[str, Any] | None = None,
    inputs: frozenset[str] = frozenset(),
) -> Any:
    """An ``OperatorLineage`` of the task, or None when the OpenLineage provider is not installed.

    :param inputs: see :func:`lineage_datasets`.
    """
    try:
        from airflow.providers.common.compat.openlineage.facet import Dataset, ExternalQueryRunFacet
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None
    ids = lineage_datasets(result, description, inputs)
    run_facets: dict[str, Any] = {}
    arn = job_arn_of(result)
    if arn:
        run_facets["externalQuery"] = ExternalQueryRunFacet(externalQueryId=arn, source="sagemaker")
    return OperatorLineage(
        inputs=[Dataset(namespace=ns, name=name, facets={}) for ns, name in ids["inputs"]],
        outputs=[Dataset(namespace=ns, name=name, facets={}) for ns, name in ids["outputs"]],
        run_facets=run_facets,
    )
