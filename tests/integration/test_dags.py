"""Every DAG in dags/ imports cleanly, and the digits pipeline runs start to end with ``dag.test()``.

``test_dag_files_import`` is one of the compat tests (``make test-compat``): it must pass on every
Airflow version MWAA offers, so it touches only the DagBag API common to 2.11, 3.0 and 3.3.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
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

    assert {"dl_drift_monitor_digits", "dl_retrain_digits"} <= set(dagbag.dags)

    dag = dagbag.dags[DAG_ID]
    downstream = {t.task_id: t.downstream_task_ids for t in dag.tasks}
    assert downstream == {
        "label": {"validate_labels"},
        "validate_labels": {"prepare_data"},
        "prepare_data": {"train"},
        "train": {"tune"},
        "tune": {"compile", "register", "baseline", "batch_transform"},
        "compile": set(),
        "register": {"approve"},
        "baseline": set(),
        "batch_transform": {"evaluate"},
        "evaluate": {"approve"},
        "approve": {"deploy"},
        "deploy": set(),
    }
    assert {"deep-learning", "demo"} <= set(dag.tags)  # a list on 2.x, a set on 3.x

    retrain = dagbag.dags["dl_retrain_digits"]
    assert retrain.get_task("decide").upstream_task_ids == {
        "evaluate_challenger",
        "evaluate_champion",
        "register_challenger",
        "baseline_challenger",
    }
    assert retrain.get_task("approve_challenger").upstream_task_ids == {"decide"}
    assert retrain.get_task("deploy_challenger").upstream_task_ids == {"approve_challenger"}
    assert dagbag.dags["dl_drift_monitor_digits"].get_task("check_drift").outlets

    from airflow_dl_provider.operators.training import DistributedTrainingOperator

    train = dag.get_task("train")
    assert isinstance(train, DistributedTrainingOperator)
    assert train.training.cluster.instance_count == 2
    assert train.training.distribution == "torch_distributed"
    assert train.training.cluster.instance_type == "ml.p3dn.24xlarge"
    # One definition, two copies: Airflow renders nested specs in place, each task its own.
    tune = dag.get_task("tune")
    assert tune.training == train.training and tune.training is not train.training


def _write_dags_folder(folder: Path, config_text: str) -> Path:
    """A DAG folder holding a copy of dl_pipeline.py and one config; returns the config's path."""
    (folder / "configs").mkdir(parents=True)
    shutil.copy(DAGS / "dl_pipeline.py", folder / "dl_pipeline.py")
    config = folder / "configs" / "digits.yaml"
    # The copy lives elsewhere: point source_dir at the repository's training directory.
    config.write_text(config_text.replace("../../docker/training", str(REPO / "docker" / "training")))
    return config


def test_bad_config_is_its_own_import_error_and_hides_no_other_pipeline(tmp_path: Path) -> None:
    text = DIGITS_YAML.read_text()
    assert "  instance_type:" in text and "pipeline: digits\n" in text
    # The first instance_type is the training section's.
    config = _write_dags_folder(tmp_path, text.replace("  instance_type:", "  instnce_type:", 1))
    good = config.with_name("other.yaml")
    good.write_text(
        text.replace("pipeline: digits\n", "pipeline: other\n").replace(
            "../../docker/training", str(REPO / "docker" / "training")
        )
    )
    expected = f"{config}: training.instnce_type: unknown key; did you mean 'instance_type'?"

    dagbag = _dagbag(tmp_path)

    # The good config's three DAGs are listed; the bad one's error is one line of the file's import error.
    assert set(dagbag.dags) == {"dl_pipeline_other", "dl_drift_monitor_other", "dl_retrain_other"}
    assert [Path(p).name for p in dagbag.import_errors] == ["dl_pipeline.py"]
    (message,) = dagbag.import_errors.values()
    assert message == f"PipelineConfigError: {expected}"


def test_each_bad_config_has_its_own_line(tmp_path: Path) -> None:
    text = DIGITS_YAML.read_text()
    config = _write_dags_folder(tmp_path, text.replace("  instance_type:", "  instnce_type:", 1))
    broken_yaml = config.with_name("broken.yaml")
    broken_yaml.write_text("pipeline: [unclosed\n")

    (message,) = _dagbag(tmp_path).import_errors.values()

    first, second = message.removeprefix("PipelineConfigError: ").splitlines()
    # The YAML parser's own wording differs between libyaml and PyYAML: only where and what is fixed.
    assert first.startswith(f"{broken_yaml}: line 2 is not valid YAML: ")
    assert second == f"{config}: training.instnce_type: unknown key; did you mean 'instance_type'?"


# A pipeline of its own, from a CSV, training only: the full template runs in tests/e2e (the demo).
CSV_PIPELINE = """
pipeline: digits_csv
role_arn: arn:aws:iam::123456789012:role/SageMakerExecution
bucket: {bucket}
prefix: digits
retries: 0
poll_interval: 2
data:
  source: s3://{bucket}/digits/raw/digits.csv
training:
  entry_point: train.py
  source_dir: {source_dir}
  instance_count: 2
  distribution: torch_distributed
  hyperparameters: {{epochs: 15}}
  metric_definitions: {{test_accuracy: "test_accuracy=([0-9.]+)"}}
  max_runtime_seconds: 600
"""


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_csv_pipeline_runs_on_local_backend(
    local_backend: Any, airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_dl_provider.demo import seed_digits

    seed_digits(local_backend.s3, local_backend.bucket, "digits", with_images=False)
    folder = tmp_path / "dags"
    (folder / "configs").mkdir(parents=True)
    shutil.copy(DAGS / "dl_pipeline.py", folder / "dl_pipeline.py")
    (folder / "configs" / "digits_csv.yaml").write_text(
        CSV_PIPELINE.format(bucket=local_backend.bucket, source_dir=REPO / "docker" / "training")
    )
    dagbag = _dagbag(folder)
    assert dagbag.import_errors == {}
    assert {t.task_id for t in dagbag.dags["dl_pipeline_digits_csv"].tasks} == {"prepare_data", "train"}

    # dag.test() in its own process, as `airflow-dl dag-test` runs it: on 3.3 it only runs DAGs inside
    # [core] dags_folder, which a process fixes at its first parse.
    results = tmp_path / "results.json"
    env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(folder)}
    command = [sys.executable, "-m", "airflow_dl_provider.cli", "dag-test", "dl_pipeline_digits_csv"]
    proc = subprocess.run(
        [*command, "--dags-folder", str(folder), "--results", str(results)],
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    run = json.loads(results.read_text())

    assert run["state"].endswith("success"), run
    split = run["tasks"]["prepare_data"]["result"]
    assert split["rows"]["train"] + split["rows"]["validation"] + split["rows"]["test"] == 1797
    assert split["train"].startswith(f"s3://{local_backend.bucket}/digits/datasets/")
    result = run["tasks"]["train"]["result"]
    assert result["status"] == "Completed", result
    assert result["metrics"]["test_accuracy"] >= 0.90, result["metrics"]
    assert result["model_artifacts"].startswith(f"s3://{local_backend.bucket}/digits/models/")
