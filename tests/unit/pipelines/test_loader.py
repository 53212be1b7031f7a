"""The loader: deployment defaults the config leaves unset, and each DAG's docs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import yaml

from tests.conftest import REPO

if TYPE_CHECKING:
    from pathlib import Path

# Every task of the three DAGs that waits on a job or resource, so each must follow the same setting.
_WAITING = {
    "dl_pipeline_digits": ["label", "train", "tune", "compile", "batch_transform"],
    "dl_drift_monitor_digits": ["check_drift"],
    "dl_retrain_digits": ["train_challenger", "transform_champion", "transform_challenger"],
}


def _dags(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    from airflow_dl_provider.pipelines.loader import dags_from_files

    raw = yaml.safe_load((REPO / "dags" / "configs" / "digits.yaml").read_text())
    raw.update(changes)
    raw["training"]["source_dir"] = str(REPO / "docker" / "training")
    path = tmp_path / "digits.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return dags_from_files([path])


def _deferrable(dags: dict[str, Any]) -> dict[str, bool]:
    return {
        f"{dag_id}.{task_id}": dags[dag_id].get_task(task_id).deferrable
        for dag_id, task_ids in _WAITING.items()
        for task_id in task_ids
        if hasattr(dags[dag_id].get_task(task_id), "deferrable")
    }


@pytest.mark.parametrize("default", [True, False])
def test_unset_deferrable_follows_operators_default_deferrable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, default: bool
) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", str(default))

    deferrable = _deferrable(_dags(tmp_path))

    assert len(deferrable) >= 5
    assert set(deferrable.values()) == {default}, deferrable


def test_deferrable_in_the_config_wins_over_the_deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")

    assert set(_deferrable(_dags(tmp_path, deferrable=False)).values()) == {False}


def test_docs_show_every_stage_in_run_order_and_the_config(tmp_path: Path) -> None:
    dags = _dags(tmp_path)
    pipeline = dags["dl_pipeline_digits"]

    doc = pipeline.doc_md
    stages = doc.split("### Stages")[1].split("###")[0]
    order = [line.split("`")[1] for line in stages.strip().splitlines()]
    assert sorted(order) == sorted(t.task_id for t in pipeline.tasks)
    assert order.index("label") < order.index("prepare_data") < order.index("train") < order.index("tune")
    assert "1. `label` (GroundTruthLabelingOperator)" in doc
    assert "pipeline: digits" in doc and "```yaml" in doc
    assert doc.startswith(f"{pipeline.description}\n\n")  # what the DAG does, then how it was made
    for dag_id in ("dl_drift_monitor_digits", "dl_retrain_digits"):
        assert "`check_drift`" in dags[dag_id].doc_md or "`decide`" in dags[dag_id].doc_md


def test_docs_mask_values_airflow_treats_as_secret() -> None:
    from airflow_dl_provider.pipelines.templates import redacted_yaml

    text = (
        "bucket: my-bucket\n"
        "labeling:\n"
        "  api_key: abc123  # the vendor's\n"
        "  items:\n"
        "    - password: hunter2\n"
        "  workteam_arn: arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/x\n"
    )

    shown = redacted_yaml(text)

    assert "abc123" not in shown and "hunter2" not in shown
    assert "  api_key: '***'" in shown and "    - password: '***'" in shown
    assert "bucket: my-bucket" in shown and "workteam/private-crowd/x" in shown
    assert yaml.safe_load(shown)["labeling"]["api_key"] == "***"
