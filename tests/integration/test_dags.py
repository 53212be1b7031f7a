"""Every DAG in dags/ imports cleanly, and the digits pipeline runs start to end with ``dag.test()``.

``test_dag_files_import`` is one of the compat tests (``make test-compat``): it must pass on every
Airflow version MWAA offers, so it touches only the DagBag API common to 2.11, 3.0 and 3.3.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
DIGITS_YAML = DAGS / "configs" / "digits.yaml"
DAG_ID = "dl_pipeline_digits"


def _dagbag(folder: Path) -> Any:
    """A DagBag that imports every .py file of ``folder`` (no examples, no "looks like a DAG" filter)."""
    try:  # Airflow 3.3+: the DAG processor's own DagBag; examples are a bundle, not an argument.
        from airflow.dag_processing.dagbag import DagBag

        return DagBag(dag_folder=str(folder), safe_mode=False)
    except ImportError:  # Airflow 2.11 and 3.0
        from airflow.models.dagbag import DagBag

        return DagBag(dag_folder=str(folder), include_examples=False, safe_mode=False)


def test_dag_files_import() -> None:
    dagbag = _dagbag(DAGS)

    assert dagbag.import_errors == {}
    dag_files = sorted(p.name for p in DAGS.glob("*.py"))
    assert dag_files, f"no DAG files in {DAGS}"
    # The DagBag saw every file (3.3 records them relative to the folder, older versions absolute).
    assert sorted(Path(f).name for f in dagbag.file_last_changed) == dag_files
    assert DAG_ID in dagbag.dags

    dag = dagbag.dags[DAG_ID]
    assert {t.task_id for t in dag.tasks} == {"prepare_data", "train"}
    assert dag.get_task("prepare_data").downstream_task_ids == {"train"}
    assert dag.get_task("train").upstream_task_ids == {"prepare_data"}
    assert {"deep-learning", "demo"} <= set(dag.tags)  # a list on 2.x, a set on 3.x

    from airflow_dl_provider.operators.training import DistributedTrainingOperator

    train = dag.get_task("train")
    assert isinstance(train, DistributedTrainingOperator)
    assert train.instance_count == 2
    assert train.distribution == "torch_distributed"
    assert train.instance_type == "ml.p3dn.24xlarge"


def _write_dags_folder(folder: Path, config_text: str) -> Path:
    """A DAG folder holding a copy of dl_pipeline.py and one config; returns the config's path."""
    (folder / "configs").mkdir(parents=True)
    shutil.copy(DAGS / "dl_pipeline.py", folder / "dl_pipeline.py")
    config = folder / "configs" / "digits.yaml"
    # The copy lives elsewhere: point source_dir at the repository's training directory.
    config.write_text(config_text.replace("../../docker/training", str(REPO / "docker" / "training")))
    return config


def test_misspelled_key_fails_import_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = DIGITS_YAML.read_text()
    assert "  instance_type:" in text
    config = _write_dags_folder(tmp_path, text.replace("  instance_type:", "  instnce_type:"))
    dag_file = str(tmp_path / "dl_pipeline.py")
    expected = f"{config}: training.instnce_type: unknown key; did you mean 'instance_type'?"

    # What the UI shows by default: a traceback whose last line is our message, alone on its line.
    errors = _dagbag(tmp_path).import_errors
    assert list(errors) == [dag_file]
    last_line = errors[dag_file].strip().splitlines()[-1]
    assert last_line == f"airflow_dl_provider.exceptions.PipelineConfigError: {expected}"

    # With tracebacks off the import error is the message itself: exactly one line.
    monkeypatch.setenv("AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACKS", "False")
    errors = _dagbag(tmp_path).import_errors
    assert errors == {dag_file: expected}


def _seed_config_bucket(backend: Any) -> str:
    """Seed the digits into the bucket the shipped config names (the session's S3 may hold it already)."""
    from airflow_dl_provider.demo import seed_digits
    from airflow_dl_provider.pipelines.config import load_config

    config = load_config(DIGITS_YAML)
    bucket, key = config.data.source.removeprefix("s3://").split("/", 1)
    assert key.endswith("/raw/digits.csv")
    # seed_digits tolerates BucketAlreadyOwnedByYou; the PNGs are not read by this DAG.
    seed_digits(backend.s3, bucket, key.removesuffix("/raw/digits.csv"), with_images=False)
    return bucket


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_digits_pipeline_runs_on_local_backend(local_backend: Any, airflow_db: Path) -> None:
    # The shipped DAG file from the shipped folder: on 3.3, dag.test() only runs DAGs that live inside
    # [core] dags_folder, which conftest points at the repository's dags/.
    bucket = _seed_config_bucket(local_backend)
    dagbag = _dagbag(DAGS)
    assert dagbag.import_errors == {}
    dag = dagbag.dags[DAG_ID]

    dag_run = dag.test()

    assert str(dag_run.state).endswith("success"), f"dag run state: {dag_run.state}"
    split = dag_run.get_task_instance("prepare_data").xcom_pull(task_ids="prepare_data")
    assert split["rows"]["train"] + split["rows"]["validation"] + split["rows"]["test"] == 1797
    assert split["train"].startswith(f"s3://{bucket}/digits/datasets/")
    result = dag_run.get_task_instance("train").xcom_pull(task_ids="train")
    assert result["status"] == "Completed", result
    assert result["metrics"]["test_accuracy"] >= 0.90, result["metrics"]
    assert result["model_artifacts"].startswith(f"s3://{bucket}/digits/models/")
