"""A job's name is the operator's (deterministic, so a retry reattaches): every kind refuses it in overrides.

One rule in the base class: the name field of the kind's Create call (``TrainingJobName``,
``TransformJobName``, ...) in ``overrides`` fails in one line, before anything is uploaded or created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from airflow_dl_provider.exceptions import NotRetryable, RequestValidationError
from airflow_dl_provider.jobs.kinds import JOB_KINDS
from airflow_dl_provider.jobs.plan import JobPlan
from airflow_dl_provider.operators.base import SageMakerJobOperator
from tests.conftest import ROLE_ARN

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311-ubuntu22.04-sagemaker"


class ProcessingJob(SageMakerJobOperator):
    """Processing has a row and no operator of its own yet: the smallest one, for the rule."""

    job_kind: ClassVar = JOB_KINDS["processing"]

    def build(self, context: Any) -> JobPlan:
        return JobPlan(
            {
                "ProcessingResources": {
                    "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
                },
                "AppSpecification": {"ImageUri": IMAGE},
                "RoleArn": ROLE_ARN,
            }
        )


def _training(backend: Any, source: Path, **kwargs: Any) -> Any:
    from airflow_dl_provider.operators.training import DistributedTrainingOperator

    return DistributedTrainingOperator(
        task_id="job",
        role_arn=ROLE_ARN,
        output_path=backend.uri("output"),
        channels={"train": backend.uri("data/train/")},
        entry_point="train.py",
        source_dir=str(source),
        **kwargs,
    )


def _tuning(backend: Any, source: Path, **kwargs: Any) -> Any:
    from airflow_dl_provider.operators.tuning import HyperparameterTuningOperator

    return HyperparameterTuningOperator(
        task_id="job",
        role_arn=ROLE_ARN,
        output_path=backend.uri("output"),
        channels={"train": backend.uri("data/train/")},
        entry_point="train.py",
        source_dir=str(source),
        instance_type="ml.m5.large",
        metric_definitions={"validation_accuracy": r"validation_accuracy=([0-9.]+)"},
        objective_metric="validation_accuracy",
        parameter_ranges={"lr": {"type": "continuous", "min": 1e-3, "max": 0.5}},
        strategy="Random",
        max_jobs=2,
        max_parallel_jobs=1,
        **kwargs,
    )


def _labeling(backend: Any, source: Path, **kwargs: Any) -> Any:
    from airflow_dl_provider.operators.labeling import GroundTruthLabelingOperator

    return GroundTruthLabelingOperator(
        task_id="job",
        task_type="image_classification",
        labels=["cat", "dog"],
        input_prefix=backend.uri("pets/"),
        output_path=backend.uri("labels"),
        role_arn=ROLE_ARN,
        workteam_arn="arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/pets",
        **kwargs,
    )


def _compilation(backend: Any, source: Path, **kwargs: Any) -> Any:
    from airflow_dl_provider.operators.compilation import NeoCompilationOperator

    return NeoCompilationOperator(
        task_id="job",
        role_arn=ROLE_ARN,
        model_artifacts=backend.uri("models/model.tar.gz"),
        output_path=backend.uri("compiled"),
        framework_version="1.13",
        data_input_config={"input0": [1, 64]},
        target_device="ml_c5",
        **kwargs,
    )


def _transform(backend: Any, source: Path, **kwargs: Any) -> Any:
    from airflow_dl_provider.operators.transform import BatchTransformOperator

    return BatchTransformOperator(
        task_id="job",
        input_s3_uri=backend.uri("batch/in/"),
        output_path=backend.uri("batch/out"),
        model_name="digits-v3",
        **kwargs,
    )


def _processing(backend: Any, source: Path, **kwargs: Any) -> Any:
    return ProcessingJob(task_id="job", **kwargs)


BUILDERS: dict[str, Callable[..., Any]] = {
    "training": _training,
    "tuning": _tuning,
    "labeling": _labeling,
    "compilation": _compilation,
    "transform": _transform,
    "processing": _processing,
}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    (root / "train.py").write_text("print('validation_accuracy=0.9')\n")
    return root


@pytest.fixture
def backend(local_backend: Any) -> Any:
    local_backend.upload("data/train/part-0.csv", "label,p0\n1,2\n")
    local_backend.upload("pets/a.png", b"\x89PNG")
    local_backend.upload("models/model.tar.gz", b"model")
    local_backend.upload("batch/in/part-0.csv", "1,2\n")
    return local_backend


def test_every_job_kind_is_covered() -> None:
    assert set(BUILDERS) == set(JOB_KINDS)


@pytest.mark.parametrize("key", sorted(BUILDERS))
def test_a_job_name_in_overrides_is_refused_in_one_line(
    backend: Any, source: Path, task_context: Any, key: str
) -> None:
    field = JOB_KINDS[key].name_field
    op = BUILDERS[key](backend, source, overrides={field: "my-own-name"})
    # Not a plain ValueError: RequestValidationError is NotRetryable, so no retry is burnt on it.
    with pytest.raises(RequestValidationError) as caught:
        op.render_plan(task_context(task_id="job"))
    assert isinstance(caught.value, NotRetryable)
    message = str(caught.value)
    assert message == (
        f"job: overrides: {field} is set by the operator (deterministic, so a retry reattaches); "
        "use job_name_prefix instead"
    )


@pytest.mark.parametrize("key", sorted(BUILDERS))
def test_other_overrides_still_merge(backend: Any, source: Path, task_context: Any, key: str) -> None:
    op = BUILDERS[key](backend, source, overrides={"Tags": [{"Key": "team", "Value": "vision"}]})
    request = op.render_plan(task_context(task_id="job")).request
    assert request["Tags"] == [{"Key": "team", "Value": "vision"}]
    assert JOB_KINDS[key].name_field not in request
