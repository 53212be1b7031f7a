"""One operator per job kind, built as a DAG author would, with its inputs in (moto's) S3.

Arguments are the plain, documented ones, the specs where an operator composes them (no deprecated
flat arguments); what each case asserts of a finished run is what the
operator's docstring promises (its XCom fields) and what the service left in S3.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.contract.conftest import Aws

ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerExecution"
WORKTEAM = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/pets"
METRIC = r"validation_accuracy=([0-9.]+)"
# Fast polls: the fake advances per Describe, so the pauses are all there is to wait for.
POLL = 0.01


def _source(tmp_path: Path) -> str:
    root = tmp_path / "src"
    root.mkdir(exist_ok=True)
    (root / "train.py").write_text("print('validation_accuracy=0.91')\n")
    return str(root)


def training(aws: Aws, tmp_path: Path, **kwargs: Any) -> Any:
    from airflow_dl_provider.operators.training import DistributedTrainingOperator
    from airflow_dl_provider.specs.training import Cluster, ScriptMode

    aws.upload("data/train/part-0.csv", "label,p0\n1,2\n")
    args: dict[str, Any] = {
        "task_id": "train",
        "role_arn": ROLE_ARN,
        "output_path": aws.uri("output"),
        "channels": {"train": aws.uri("data/train/")},
        "script": ScriptMode(entry_point="train.py", source_dir=_source(tmp_path)),
        "cluster": Cluster(instance_type="ml.m5.xlarge", instance_count=2),
        "metric_definitions": {"validation_accuracy": METRIC},
        "max_runtime_seconds": 3600,
        "poll_interval": POLL,
    }
    return DistributedTrainingOperator(**{**args, **kwargs})


def tuning(aws: Aws, tmp_path: Path, **kwargs: Any) -> Any:
    from airflow_dl_provider.operators.tuning import HyperparameterTuningOperator
    from airflow_dl_provider.specs.training import Cluster, ScriptMode, TrainingDefinition

    aws.upload("data/train/part-0.csv", "label,p0\n1,2\n")
    args: dict[str, Any] = {
        "task_id": "tune",
        "training": TrainingDefinition(
            role_arn=ROLE_ARN,
            output_path=aws.uri("output"),
            channels={"train": aws.uri("data/train/")},
            cluster=Cluster(instance_type="ml.m5.xlarge"),
            script=ScriptMode(entry_point="train.py", source_dir=_source(tmp_path)),
            hyperparameters={"epochs": 2},
            metric_definitions={"validation_accuracy": METRIC},
            max_runtime_seconds=600,
        ),
        "objective_metric": "validation_accuracy",
        "parameter_ranges": {
            "lr": {"type": "continuous", "min": 0.001, "max": 0.1},
            "optimizer": {"type": "categorical", "values": ["sgd", "adam"]},
        },
        "strategy": "Random",
        "max_jobs": 3,
        "max_parallel_jobs": 1,
        "poll_interval": POLL,
    }
    return HyperparameterTuningOperator(**{**args, **kwargs})


def labeling(aws: Aws, tmp_path: Path, **kwargs: Any) -> Any:
    from airflow_dl_provider.operators.labeling import GroundTruthLabelingOperator

    for name in ("a", "b", "c"):
        aws.upload(f"pets/{name}.png", b"\x89PNG\r\n\x1a\n")
    args: dict[str, Any] = {
        "task_id": "label",
        "task_type": "image_classification",
        "labels": ["cat", "dog"],
        "input_prefix": aws.uri("pets/"),
        "output_path": aws.uri("labels"),
        "role_arn": ROLE_ARN,
        "workteam_arn": WORKTEAM,
        "poll_interval": POLL,
    }
    return GroundTruthLabelingOperator(**{**args, **kwargs})


def compilation(aws: Aws, tmp_path: Path, **kwargs: Any) -> Any:
    from airflow_dl_provider.operators.compilation import NeoCompilationOperator
    from airflow_dl_provider.specs.model import ModelSource

    args: dict[str, Any] = {
        "task_id": "compile",
        "role_arn": ROLE_ARN,
        "model": ModelSource(model_artifacts=aws.upload("models/job/output/model.tar.gz", b"model")),
        "output_path": aws.uri("compiled"),
        "framework": "PYTORCH",
        "framework_version": "1.13",
        "data_input_config": {"input0": [1, 64]},
        "target_device": "ml_c5",
        "poll_interval": POLL,
    }
    return NeoCompilationOperator(**{**args, **kwargs})


def transform(aws: Aws, tmp_path: Path, **kwargs: Any) -> Any:
    from airflow_dl_provider.operators.transform import BatchTransformOperator
    from airflow_dl_provider.specs.model import ModelSource

    aws.upload("batch/in/part-0.csv", "1,2\n3,4\n5,6\n")
    args: dict[str, Any] = {
        "task_id": "transform",
        "input_s3_uri": aws.uri("batch/in/"),
        "output_path": aws.uri("batch/out"),
        "model": ModelSource(
            model_artifacts=aws.upload("models/job/output/model.tar.gz", b"model"), role_arn=ROLE_ARN
        ),
        "instance_type": "ml.m5.xlarge",
        "poll_interval": POLL,
    }
    return BatchTransformOperator(**{**args, **kwargs})


def processing(aws: Aws, tmp_path: Path, **kwargs: Any) -> Any:
    from airflow_dl_provider.operators.processing import (
        ProcessingInput,
        ProcessingOperator,
        ProcessingOutput,
        ProcessingScript,
    )

    aws.upload("raw/part-0.csv", "x,y\n1,2\n")
    code = tmp_path / "prepare.py"
    code.write_text("print('prepared')\n")
    args: dict[str, Any] = {
        "task_id": "prepare",
        "role_arn": ROLE_ARN,
        "inputs": [ProcessingInput("raw", aws.uri("raw/"), "/opt/ml/processing/input/raw")],
        "outputs": [ProcessingOutput("clean", aws.uri("clean"), "/opt/ml/processing/output")],
        "script": ProcessingScript(code=str(code), code_location=aws.uri("code"), arguments=["--rows", "1"]),
        "poll_interval": POLL,
    }
    return ProcessingOperator(**{**args, **kwargs})


def _training_done(aws: Aws, result: dict[str, Any]) -> None:
    assert result["model_artifacts"] == aws.uri(f"output/{result['job_name']}/output/model.tar.gz")
    assert aws.exists(result["model_artifacts"])
    assert result["metrics"] == {"validation_accuracy": 0.91}
    assert result["training_seconds"] == 60 and result["billable_seconds"] == 60


def _tuning_done(aws: Aws, result: dict[str, Any]) -> None:
    best = result["best_training_job"]
    assert best.startswith(f"{result['job_name']}-001-")
    assert result["objective"] == "validation_accuracy" and result["objective_value"] == 0.91
    assert result["model_artifacts"] == aws.uri(f"output/{best}/output/model.tar.gz")
    assert aws.exists(result["model_artifacts"])
    board = result["leaderboard"]
    assert board[0]["training_job"] == best and len(board) == 3
    values = [row["objective_value"] for row in board]
    assert values == sorted(values, reverse=True)
    assert set(board[0]["hyperparameters"]) == {"lr", "optimizer"}
    assert result["training_job_counts"]["Completed"] == 3


def _labeling_done(aws: Aws, result: dict[str, Any]) -> None:
    manifest = aws.read(result["output_manifest"]).decode().splitlines()
    assert result["output_manifest"] == aws.uri(
        f"labels/{result['job_name']}/manifests/output/output.manifest"
    )
    assert [json.loads(line)["source-ref"] for line in manifest] == [aws.uri(f"pets/{n}.png") for n in "abc"]
    assert result["label_counters"]["TotalLabeled"] == 3
    assert result["label_attribute_name"] == "label" and result["task_type"] == "image_classification"


def _compilation_done(aws: Aws, result: dict[str, Any]) -> None:
    assert result["compiled_artifacts"] == aws.uri("compiled/model-ml_c5.tar.gz")
    assert aws.exists(result["compiled_artifacts"])


def _transform_done(aws: Aws, result: dict[str, Any]) -> None:
    assert result["output_path"] == aws.uri("batch/out")
    assert aws.read(aws.uri("batch/out/part-0.csv.out")).decode().splitlines() == ["0", "0", "0"]
    assert result["model_name"] in aws.service.hosting.models
    assert aws.service.count("CreateModel") == 1


def _processing_done(aws: Aws, result: dict[str, Any]) -> None:
    assert result["outputs"] == {"clean": aws.uri("clean")}
    # The service read the data input and the uploaded script (the ``code`` input), then wrote the output.
    assert aws.read(aws.uri("clean/part-0")) == b"code,raw"
    request = aws.service.jobs.get("ProcessingJob", result["job_name"]).request
    code = next(i for i in request["ProcessingInputs"] if i["InputName"] == "code")["S3Input"]["S3Uri"]
    assert aws.read(code) == b"print('prepared')\n"


@dataclass(frozen=True)
class JobCase:
    """A job kind on the AWS path: its API noun, how to build its operator, what a finished run gives."""

    key: str
    noun: str
    build: Callable[..., Any]
    done: Callable[[Aws, dict[str, Any]], None]
    completed: str = "Completed"
    stopped: str = "Stopped"

    def __str__(self) -> str:
        return self.key


CASES = (
    JobCase("training", "TrainingJob", training, _training_done),
    JobCase("tuning", "HyperParameterTuningJob", tuning, _tuning_done),
    JobCase("labeling", "LabelingJob", labeling, _labeling_done),
    JobCase("compilation", "CompilationJob", compilation, _compilation_done, "COMPLETED", "STOPPED"),
    JobCase("transform", "TransformJob", transform, _transform_done),
    JobCase("processing", "ProcessingJob", processing, _processing_done),
)
