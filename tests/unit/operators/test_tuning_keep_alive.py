"""A training definition with a warm pool: its training jobs keep it, a tuning job's request does not carry it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_dl_provider.operators.training import DistributedTrainingOperator
from airflow_dl_provider.operators.tuning import HyperparameterTuningOperator
from airflow_dl_provider.specs.training import Cluster, ScriptMode, TrainingDefinition

if TYPE_CHECKING:
    from pathlib import Path

ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerExecution"


def test_keep_alive_reaches_training_jobs_and_never_the_tuning_request(
    local_backend: Any, tmp_path: Path
) -> None:
    (tmp_path / "train.py").write_text("print('validation_accuracy=0.9')\n")
    definition = TrainingDefinition(
        role_arn=ROLE_ARN,
        output_path=local_backend.uri("output"),
        channels={"train": local_backend.uri("data/train/")},
        cluster=Cluster(instance_type="ml.m5.large", keep_alive_seconds=600),
        script=ScriptMode(entry_point="train.py", source_dir=str(tmp_path)),
        metric_definitions={"validation_accuracy": r"validation_accuracy=([0-9.]+)"},
        max_runtime_seconds=600,
    )
    training = DistributedTrainingOperator(task_id="train", training=definition).build({})
    assert training.request["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 600
    tuning = HyperparameterTuningOperator(
        task_id="tune",
        training=definition,
        objective_metric="validation_accuracy",
        parameter_ranges={"lr": {"type": "continuous", "min": 1e-3, "max": 0.5}},
        strategy="Random",
        max_jobs=2,
    ).build({})
    resources = tuning.request["TrainingJobDefinition"]["ResourceConfig"]
    assert resources == {
        "InstanceType": "ml.m5.large",
        "InstanceCount": 1,
        "VolumeSizeInGB": resources["VolumeSizeInGB"],
    }
