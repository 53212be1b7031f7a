"""``labeling: service: label_studio`` makes the pipeline's label task a LabelStudioLabelingOperator."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import yaml

from tests.conftest import REPO

if TYPE_CHECKING:
    from pathlib import Path


def _dags(tmp_path: Path, labeling: dict[str, object]) -> dict[str, object]:
    from airflow_dl_provider.pipelines.loader import dags_from_files

    raw = yaml.safe_load((REPO / "dags" / "configs" / "digits.yaml").read_text())
    raw["labeling"].update(labeling)
    raw["training"]["source_dir"] = str(REPO / "docker" / "training")
    path = tmp_path / "digits.yaml"
    path.write_text(yaml.safe_dump(raw))
    return dags_from_files([path])


def test_label_studio_service_builds_the_label_studio_operator(tmp_path: Path) -> None:
    from airflow_dl_provider.operators.label_studio import LabelStudioLabelingOperator

    dag = _dags(tmp_path, {"service": "label_studio", "label_studio_conn_id": "studio"})["dl_pipeline_digits"]
    label = dag.get_task("label")  # type: ignore[attr-defined]

    assert isinstance(label, LabelStudioLabelingOperator)
    assert (label.label_studio_conn_id, label.workers_per_object, label.auto_labeling) == ("studio", 3, True)
    assert label.tags["airflow-dl:simulated-truth"].endswith("digits-truth.json")
    # Validation and everything after read the same manifest as with Ground Truth.
    assert (
        dag.get_task("validate_labels").data_uri == "{{ ti.xcom_pull(task_ids='label')['output_manifest'] }}"
    )  # type: ignore[attr-defined]


def test_ground_truth_stays_the_default(tmp_path: Path) -> None:
    from airflow_dl_provider.operators.labeling import GroundTruthLabelingOperator

    dag = _dags(tmp_path, {})["dl_pipeline_digits"]

    assert isinstance(dag.get_task("label"), GroundTruthLabelingOperator)  # type: ignore[attr-defined]


@pytest.mark.parametrize("task_type", ["bounding_box", "named_entity_recognition"])
def test_a_type_label_studio_is_not_wired_for_fails_the_import(tmp_path: Path, task_type: str) -> None:
    from airflow_dl_provider.pipelines.loader import CONFIG_ERRORS_DAG_ID

    dags = _dags(tmp_path, {"service": "label_studio", "task_type": task_type, "auto_labeling": False})

    # The loader reports a bad config as the DAG file's import error (one line) instead of raising.
    assert "dl_pipeline_digits" not in dags
    (error,) = dags[CONFIG_ERRORS_DAG_ID].config_errors  # type: ignore[attr-defined]
    assert f"label: task_type: '{task_type}' is not labeled through Label Studio" in error
