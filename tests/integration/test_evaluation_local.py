"""Retraining's building blocks on the local backend: baseline, evaluation, champion lookup, promotion."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_dl_provider.drift import load_baseline
from airflow_dl_provider.exceptions import DriftInputError
from airflow_dl_provider.operators.drift import DriftBaselineOperator
from airflow_dl_provider.operators.evaluation import (
    ChampionChallengerOperator,
    ChampionLookupOperator,
    ModelEvaluationOperator,
)
from airflow_dl_provider.operators.registry import RegisterModelOperator

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311-ubuntu22.04-sagemaker"


def _read(backend: Any, uri: str) -> bytes:
    key = uri.removeprefix(f"s3://{backend.bucket}/")
    return backend.s3.get_object(Bucket=backend.bucket, Key=key)["Body"].read()


def test_evaluation_scores_transform_output_against_labels(local_backend: Any, task_context: Any) -> None:
    # Two transform outputs (one per input part, as batch transform names them), plus a non-output object.
    local_backend.upload("holdout/predictions/part-0.csv.out", "1\n2\n3\n")
    local_backend.upload("holdout/predictions/part-1.csv.out", "3\n0\n")
    local_backend.upload("holdout/predictions/_manifest.json", "{}")
    local_backend.upload(
        "holdout/test/data.csv", "label,p0,p1\n1,0.1,0.2\n2,0.3,0.4\n0,0.5,0.6\n3,0,0\n0,1,1\n"
    )
    op = ModelEvaluationOperator(
        task_id="evaluate",
        predictions_uri=local_backend.uri("holdout/predictions/"),
        labels_uri=local_backend.uri("holdout/test/"),
    )

    result = op.execute(task_context())

    json.dumps(result)
    assert result == {
        "metric": "accuracy",
        "value": 0.8,
        "records": 5,
        "predictions_uri": local_backend.uri("holdout/predictions/"),
        "labels_uri": local_backend.uri("holdout/test/"),
    }


def test_evaluation_count_mismatch_is_one_line(local_backend: Any, task_context: Any) -> None:
    local_backend.upload("short/predictions/data.csv.out", "1\n2\n")
    labels = local_backend.upload("short/labels.csv", "label\n1\n2\n3\n")
    op = ModelEvaluationOperator(
        task_id="evaluate", predictions_uri=local_backend.uri("short/predictions"), labels_uri=labels
    )

    with pytest.raises(ValueError) as excinfo:
        op.execute(task_context())

    message = str(excinfo.value)
    assert "\n" not in message
    assert f"predictions_uri {local_backend.uri('short/predictions')} holds 2 predictions" in message
    assert f"labels_uri {labels} holds 3 labels" in message


def test_baseline_is_written_next_to_the_model_without_the_label(
    local_backend: Any, task_context: Any
) -> None:
    rows = "\n".join(f"{i % 3},{i * 0.5},{(i * 7) % 11},{'ab'[i % 2]}" for i in range(200))
    local_backend.upload("data/train/part-0.csv", "label,x,y,colour\n" + rows + "\n")
    local_backend.upload("data/train/_SUCCESS", "")
    model = local_backend.uri("models/job-1/output/model.tar.gz")
    op = DriftBaselineOperator(
        task_id="baseline", data_uri=local_backend.uri("data/train/"), model_artifacts=model
    )

    result = op.execute(task_context())

    json.dumps(result)
    assert result == {
        "baseline_uri": local_backend.uri("models/job-1/output/drift-baseline.json"),
        "features": ["x", "y", "colour"],
        "rows": 200,
    }
    profile = load_baseline(local_backend.s3, result["baseline_uri"])
    assert list(profile.features) == ["x", "y", "colour"]
    assert profile.features["colour"].kind == "categorical"
    assert profile.rows == 200
    assert profile.model_version == model

    one_object = DriftBaselineOperator(
        task_id="baseline",
        data_uri=local_backend.uri("data/train/part-0.csv"),
        model_artifacts=local_backend.uri("models/job-2/output/"),
        features=["x"],
    ).execute(task_context())
    assert one_object == {
        "baseline_uri": local_backend.uri("models/job-2/output/drift-baseline.json"),
        "features": ["x"],
        "rows": 200,
    }

    missing = DriftBaselineOperator(
        task_id="baseline",
        data_uri=local_backend.uri("data/train/"),
        model_artifacts=model,
        label_column="y_true",
    )
    with pytest.raises(DriftInputError, match="label_column: 'y_true' is not a column of"):
        missing.execute(task_context())


def _register(backend: Any, context: Any, job: str, approval: str) -> dict[str, Any]:
    return RegisterModelOperator(
        task_id="register",
        model_package_group_name="digits",
        model_artifacts=backend.uri(f"models/{job}/output/model.tar.gz"),
        image_uri=IMAGE,
        training_job_name=job,
        metrics={"test_accuracy": 0.9},
        approval_status=approval,
    ).execute(context)


def test_champion_is_promoted_only_when_beaten(local_backend: Any, task_context: Any) -> None:
    def champion() -> dict[str, Any]:
        return ChampionLookupOperator(task_id="champion", model_package_group_name="digits").execute(
            task_context()
        )

    assert champion()["found"] is False
    first = _register(local_backend, task_context("manual__1", task_id="register"), "job-1", "Approved")
    found = champion()
    assert found == {
        "found": True,
        "model_package_arn": first["model_package_arn"],
        "model_package_version": 1,
        "model_artifacts": local_backend.uri("models/job-1/output/model.tar.gz"),
        "baseline_uri": local_backend.uri("models/job-1/output/drift-baseline.json"),
        "training_job_name": "job-1",
        "metrics": {"test_accuracy": 0.9},
    }

    second = _register(
        local_backend, task_context("manual__2", task_id="register"), "job-2", "PendingManualApproval"
    )
    decide = ChampionChallengerOperator(
        task_id="decide",
        challenger_package_arn=second["model_package_arn"],
        challenger_score="0.95",
        champion_score="0.9",
        champion_package_arn=found["model_package_arn"],
        decision_prefix=local_backend.uri("decisions/digits"),
        metric="accuracy",
    )
    result = decide.execute(task_context("asset_triggered__2024-01-01T00:00:00+00:00", task_id="decide"))

    reason = "challenger accuracy 0.9500 beats champion 0.9000 by 0.0500 (> min_improvement 0.0000): promoted"
    assert result["decision"] == "promoted"
    assert result["reason"] == reason
    assert result["decision_uri"] == local_backend.uri(
        "decisions/digits/asset_triggered__2024-01-01T00-00-00-00-00/decision.json"
    )
    record = json.loads(_read(local_backend, result["decision_uri"]))
    assert record["decision"] == "promoted"
    assert record["approval_status"] == "Approved"
    assert record["challenger_score"] == 0.95
    assert record["champion_package_arn"] == first["model_package_arn"]
    assert record["timestamp"].startswith("20")
    assert champion()["model_package_arn"] == second["model_package_arn"]
    described = decide.hook.conn.describe_model_package(ModelPackageName=second["model_package_arn"])
    assert described["ApprovalDescription"] == reason

    # A worse challenger is rejected, and the champion stays.
    third = _register(
        local_backend, task_context("manual__3", task_id="register"), "job-3", "PendingManualApproval"
    )
    kept = ChampionChallengerOperator(
        task_id="decide",
        challenger_package_arn=third["model_package_arn"],
        challenger_score=0.93,
        champion_score=0.95,
        champion_package_arn=second["model_package_arn"],
        metric="accuracy",
    ).execute(task_context("manual__3", task_id="decide"))
    assert kept["decision"] == "kept_champion"
    assert kept["decision_uri"] is None
    assert champion()["model_package_arn"] == second["model_package_arn"]
    rejected = decide.hook.conn.describe_model_package(ModelPackageName=third["model_package_arn"])
    assert rejected["ModelApprovalStatus"] == "Rejected"
    assert rejected["ApprovalDescription"] == kept["reason"]
