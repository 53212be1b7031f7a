"""Two regions end to end on the local backend: each trains on its own bucket's data, nothing crosses.

Each region is its own bucket on the embedded server and its own connection (``region_name`` in its
extra); the DAG runs with ``dag.test()`` in its own process, as ``airflow-dl dag-test`` runs it.
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
REGIONS = {"eu-west-1": ("aws_eu", 40), "us-west-2": ("aws_us", 60)}
TRAIN = """
import os, pathlib
rows = sum(len(p.read_text().splitlines()) - 1 for p in pathlib.Path(os.environ["SM_CHANNEL_TRAIN"]).rglob("*.csv"))
print(f"train_rows={rows}")
pathlib.Path(os.environ["SM_MODEL_DIR"], "model.txt").write_text(str(rows))
"""
CONFIG = """
pipeline: regional
role_arn: arn:aws:iam::123456789012:role/SageMakerExecution
bucket: {home}
prefix: digits
retries: 0
poll_interval: 1
data:
  source: s3://{home}/digits/raw/data.csv
training:
  entry_point: train.py
  source_dir: {source_dir}
  instance_type: ml.m5.xlarge
  metric_definitions: {{train_rows: "train_rows=([0-9]+)"}}
  max_runtime_seconds: 300
regions:
{regions}
"""


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _two_regions(
    local_backend: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, str], Path]:
    """Each region's bucket (with its own rows) and local connection; a DAG folder with the regional config."""
    from airflow_dl_provider.backends.local.server import LOCAL_CREDENTIALS

    buckets = {region: f"{local_backend.bucket}-{region}" for region in REGIONS}
    entries = []
    for region, (conn, rows) in REGIONS.items():
        local_backend.s3.create_bucket(Bucket=buckets[region])
        body = "label,p0,p1\n" + "".join(f"{i % 2},{i},{i * 2}\n" for i in range(rows))
        local_backend.s3.put_object(Bucket=buckets[region], Key="digits/raw/data.csv", Body=body)
        extra = {
            "backend": "local",
            "endpoint_url": local_backend.endpoint,
            "region_name": region,
            "local_home": str(local_backend.home),
        }
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn.upper()}",
            json.dumps({"conn_type": "aws", **LOCAL_CREDENTIALS, "extra": extra}),
        )
        role = f"arn:aws:iam::123456789012:role/SM-{region}"
        entries.append(
            f"  - {{region: {region}, bucket: {buckets[region]}, role_arn: '{role}', aws_conn_id: {conn}}}"
        )
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(TRAIN)
    folder = tmp_path / "dags"
    (folder / "configs").mkdir(parents=True)
    shutil.copy(REPO / "dags" / "dl_pipeline.py", folder / "dl_pipeline.py")
    (folder / "configs" / "regional.yaml").write_text(
        CONFIG.format(home=local_backend.bucket, source_dir=source, regions="\n".join(entries))
    )

    return buckets, folder


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_regions_train_on_their_own_data_and_are_compared(
    local_backend: Any, airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    buckets, folder = _two_regions(local_backend, tmp_path, monkeypatch)
    results = tmp_path / "results.json"
    env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(folder)}
    command = [sys.executable, "-m", "airflow_dl_provider.cli", "dag-test", "dl_pipeline_regional"]
    proc = subprocess.run(
        [*command, "--dags-folder", str(folder), "--results", str(results)],
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    run = json.loads(results.read_text())
    assert run["state"].endswith("success"), run

    for region, (_conn, rows) in REGIONS.items():
        other = next(b for r, b in buckets.items() if r != region)
        for task in ("prepare_data", "train"):
            result = run["tasks"][f"{region}.{task}"]["result"]
            uris = [s for s in _strings(result) if s.startswith("s3://")]
            assert uris and all(u.startswith(f"s3://{buckets[region]}/") for u in uris), (region, task, uris)
            assert not any(other in s for s in _strings(result))
        train = run["tasks"][f"{region}.train"]["result"]
        assert train["job_arn"].startswith(f"arn:aws:sagemaker:{region}:")
        split = run["tasks"][f"{region}.prepare_data"]["result"]["rows"]
        assert sum(split.values()) == rows
        assert train["metrics"] == {"train_rows": float(split["train"])}

    # What each region's job was asked to do names its own bucket only.
    jobs = sorted((local_backend.home / "jobs" / "training").iterdir())
    assert len(jobs) == 2
    for job in jobs:
        region = json.loads((job / "state.json").read_text())["_region"]
        request = json.loads((job / "request.json").read_text())
        uris = [s for s in _strings(request) if "s3://" in s]
        assert uris and all(buckets[region] in u for u in uris), (region, uris)
        assert request["RoleArn"].endswith(f"role/SM-{region}")

    table = run["tasks"]["compare_regions"]["result"]
    assert table["metric"] == "train_rows"
    assert [row["region"] for row in table["regions"]] == list(REGIONS)
    assert table["best_region"] == "us-west-2"  # more rows of its own
    assert all(
        row["model_artifacts"].startswith(f"s3://{buckets[row['region']]}/") for row in table["regions"]
    )


def test_no_request_of_one_region_names_the_others_bucket(
    local_backend: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, task_context: Any
) -> None:
    """Each region's prepare_data and train run here, every botocore request and local job recorded."""
    import botocore.client

    from airflow_dl_provider.backends.local.client import LocalSageMakerClient
    from airflow_dl_provider.pipelines.config import load_config
    from airflow_dl_provider.pipelines.factory import build_dag

    buckets, folder = _two_regions(local_backend, tmp_path, monkeypatch)
    path = folder / "configs" / "regional.yaml"
    dag = build_dag(load_config(path), path)
    calls: list[tuple[str, str, Any]] = []
    make_call = botocore.client.BaseClient._make_api_call

    def recorded(client: Any, operation: str, params: Any) -> Any:
        calls.append((client.meta.region_name, operation, params))
        return make_call(client, operation, params)

    def created(client: Any, **request: Any) -> Any:
        calls.append((client.region, "CreateTrainingJob", request))
        return LocalSageMakerClient._create(client, "training", **request)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recorded)
    monkeypatch.setattr(LocalSageMakerClient, "create_training_job", created)
    for region in REGIONS:
        prepare = dag.get_task(f"{region}.prepare_data")
        split = prepare.execute(task_context(task_id=prepare.task_id))
        train = dag.get_task(f"{region}.train")
        # The channels render from this region's prepare_data, as Airflow renders them.
        train.training.channels = {name: split[name] for name in train.training.channels}
        train.wait_for_completion = False
        train.execute(task_context(task_id=train.task_id))

    seen = {region for region, _, _ in calls}
    assert seen == set(REGIONS), seen
    assert sorted(r for r, op, _ in calls if op == "CreateTrainingJob") == sorted(REGIONS)
    for region, operation, params in calls:
        other = next(b for r, b in buckets.items() if r != region)
        named = json.dumps(params, default=str)
        assert other not in named and f'"{local_backend.bucket}"' not in named, (
            region,
            operation,
            named[:300],
        )
