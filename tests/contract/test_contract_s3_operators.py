"""The operators that start no job, on the AWS path: only S3 (moto's), through the task's AWS connection.

One chain, as the pipeline runs it: validate the labeled table, split it, profile the training
channel as the drift baseline, check a shifted batch against it, score transform predictions.
None of them may call SageMaker.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.contract.conftest import Aws


def _table(rows: int, *, shift: float = 0.0, seed: int = 0, label: bool = True) -> str:
    """CSV of features ``a`` and ``b`` (``b`` moved by ``shift``), with a ``label`` column first."""
    rng = random.Random(seed)
    lines = ["label,a,b" if label else "a,b"]
    for index in range(rows):
        features = f"{rng.gauss(0, 1):.4f},{rng.gauss(shift, 1):.4f}"
        lines.append(f"{index % 3},{features}" if label else features)
    return "\n".join(lines) + "\n"


class _Events(dict):  # type: ignore[type-arg]
    """``context["outlet_events"]``, keyed by the Asset's URI."""

    def __getitem__(self, asset: Any) -> Any:
        return self.setdefault(asset.uri, type("Event", (), {"extra": {}})())


@pytest.fixture
def table(aws: Aws) -> str:
    return aws.upload("labeled/table.csv", _table(600))


def test_validation_reads_s3_and_writes_its_result_there(aws: Aws, table: str, task_context: Any) -> None:
    from airflow_dl_provider.operators.validation import DataValidationOperator

    op = DataValidationOperator(
        task_id="validate",
        data_uri=table,
        expectations=[
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "label"}},
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "label", "value_set": [0, 1, 2]},
            },
        ],
    )
    summary = op.execute(task_context(task_id="validate"))

    assert summary["success"] is True and summary["rows"] == 600
    assert aws.exists(summary["result_json"]) and aws.exists(summary["data_docs"])
    assert aws.service.calls == []


def test_split_baseline_drift_and_evaluation_chain(aws: Aws, table: str, task_context: Any) -> None:
    from airflow_dl_provider.operators.datasets import SplitDatasetOperator
    from airflow_dl_provider.operators.drift import DriftBaselineOperator, DriftDetectionOperator
    from airflow_dl_provider.operators.evaluation import ModelEvaluationOperator

    split = SplitDatasetOperator(task_id="split", source=table, output_prefix=aws.uri("channels")).execute(
        task_context(task_id="split")
    )
    assert sum(split["rows"].values()) == 600
    for channel in ("train", "validation", "test"):
        assert aws.exists(split[channel])

    model = aws.upload("models/v1/output/model.tar.gz", b"model")
    baseline = DriftBaselineOperator(
        task_id="baseline", data_uri=split["train"], model_artifacts=model
    ).execute(task_context(task_id="baseline"))
    assert baseline["features"] == ["a", "b"] and baseline["rows"] == split["rows"]["train"]
    assert aws.exists(baseline["baseline_uri"])

    aws.upload("batches/shifted/part-0.csv", _table(1500, shift=1.5, seed=7, label=False))
    drift = DriftDetectionOperator(
        task_id="drift",
        baseline_uri=baseline["baseline_uri"],
        data_uri=aws.uri("batches/shifted/"),
        model_name="digits",
    )
    context = {**task_context(task_id="drift"), "outlet_events": _Events()}
    summary = drift.execute(context)
    assert summary["drifted"] is True and "b" in summary["features_drifted"]
    assert aws.exists(summary["report_json"]) and aws.exists(summary["report_html"])
    assert context["outlet_events"][drift.asset].extra["features_drifted"] == summary["features_drifted"]

    # Transform output for the test split: one predicted label per line, in input order.
    labels = [
        line.split(",", 1)[0] for line in aws.read(f"{split['test']}data.csv").decode().splitlines()[1:]
    ]
    predicted = [label if index % 4 else "9" for index, label in enumerate(labels)]
    aws.upload("predictions/features.csv.out", "\n".join(predicted) + "\n")
    scored = ModelEvaluationOperator(
        task_id="evaluate", predictions_uri=aws.uri("predictions/"), labels_uri=split["test"]
    ).execute(task_context(task_id="evaluate"))
    wrong = sum(1 for index in range(len(labels)) if index % 4 == 0)
    assert scored["records"] == len(labels)
    assert scored["value"] == pytest.approx(1 - wrong / len(labels))

    assert aws.service.calls == [], "S3-only operators must not call SageMaker"
