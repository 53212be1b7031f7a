"""Warm pools on the local backend: ``KeepAlivePeriodInSeconds`` keeps a job's hosts for the next matching job.

Each test runs real jobs through the local client and reads what the scripts themselves saw. A
reused host must start the next job as a fresh ``python train.py`` would (that job's argv, channels,
environment and working directory, nothing left by the job before), and no pool process or host
may outlive its keep-alive, a terminate, or the S3 server it was started against.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_dl_provider.backends.local import warm_pool
from airflow_dl_provider.backends.local.processes import hold_lock, process_alive
from airflow_dl_provider.backends.local.state import write_json_atomic
from airflow_dl_provider.hooks.sagemaker import SageMakerJobHook
from tests.integration.test_local_backend import _upload_script

pytestmark = pytest.mark.skipif(not warm_pool.supported(), reason="warm pools need Linux")

ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerExecution"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311-ubuntu22.04-sagemaker"
TERMINAL = {"Completed", "Failed", "Stopped"}

# What the host saw, written before the script changes anything; then it leaves state behind on
# purpose (a module global, a builtin, an environment variable, a file in its working directory)
# that a host of a later job must not see.
SCRIPT = """\
import builtins, json, os, sys
report = {
    "argv": sys.argv,
    "cwd": os.getcwd(),
    "pid": os.getpid(),
    "ppid": os.getppid(),
    "torch_already_imported": "torch" in sys.modules,
    "env": dict(os.environ),
    "left_behind": getattr(builtins, "left_by_an_earlier_job", None),
    "file_left_behind": os.path.exists("left-behind.txt"),
    "train_files": sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"])),
    "name": __name__,
}
builtins.left_by_an_earlier_job = os.environ["MARKER"]
os.environ["LEAKED"] = os.environ["MARKER"]
open("left-behind.txt", "w").write("x")
with open(os.environ["REPORT"], "w") as out:
    json.dump(report, out)
print("train_loss=0.5", flush=True)
"""


@pytest.fixture
def client(local_backend: Any) -> Any:
    return SageMakerJobHook(aws_conn_id="aws_default").conn


@pytest.fixture
def pools_terminated(local_backend: Any) -> Any:
    """Terminate every pool of the test's home at the end, whatever the test did."""
    yield
    warm_pool.terminate_all(local_backend.home)


def _submit(local_backend: Any, tmp_path: Path) -> str:
    return _upload_script(local_backend, tmp_path, SCRIPT)


def _request(
    local_backend: Any,
    name: str,
    submit: str,
    data: str,
    report: Path,
    *,
    keep_alive: int | None,
    **extra: Any,
) -> dict[str, Any]:
    resources: dict[str, Any] = {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10}
    if keep_alive is not None:
        resources["KeepAlivePeriodInSeconds"] = keep_alive
    resources.update(extra.pop("resources", {}))
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE_ARN,
        "OutputDataConfig": {"S3OutputPath": local_backend.uri("output")},
        "ResourceConfig": resources,
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
        "HyperParameters": {
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": json.dumps(submit),
            **extra.pop("hyperparameters", {}),
        },
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": data}},
            }
        ],
        "Environment": {"REPORT": str(report), "MARKER": name},
        **extra,
    }


def _wait(client: Any, name: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = client.describe_training_job(TrainingJobName=name)
        if described["TrainingJobStatus"] in TERMINAL:
            return described
        assert time.monotonic() < deadline, f"{name} still {described['TrainingJobStatus']}"
        time.sleep(0.2)


def _wait_until(predicate: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)


def _run(client: Any, request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    client.create_training_job(**request)
    described = _wait(client, request["TrainingJobName"])
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    return described, json.loads(Path(request["Environment"]["REPORT"]).read_text())


def _pool_pids(home: Path) -> list[int]:
    return [int(p.record().get("pid") or 0) for p in warm_pool.pools(home)]


@pytest.mark.timeout(300)
def test_a_reused_host_runs_the_next_job_as_a_fresh_host_would(
    local_backend: Any, client: Any, tmp_path: Path, pools_terminated: Any
) -> None:
    submit = _submit(local_backend, tmp_path)
    first_data = local_backend.upload("first/a.csv", "label,p0\n1,2\n")
    second_data = local_backend.upload("second/b.csv", "label,p0\n3,4\n")
    first = _request(
        local_backend, "warm-first", submit, first_data, tmp_path / "first.json", keep_alive=120,
        hyperparameters={"lr": "0.1"},
    )  # fmt: skip
    second = _request(
        local_backend, "warm-second", submit, second_data, tmp_path / "second.json", keep_alive=120,
        hyperparameters={"lr": "0.2", "hidden": "64"},
    )  # fmt: skip

    described_first, seen_first = _run(client, first)
    assert described_first["WarmPoolStatus"]["Status"] == "Available"
    described_second, seen_second = _run(client, second)

    # The same pool process forked both hosts: the second job reused the first one's pool.
    assert seen_second["ppid"] == seen_first["ppid"] == _pool_pids(local_backend.home)[0]
    assert seen_second["pid"] != seen_first["pid"]
    assert client.describe_training_job(TrainingJobName="warm-first")["WarmPoolStatus"] == {
        "Status": "Reused",
        "ReusedByJob": "warm-second",
        "ResourceRetainedBillableTimeInSeconds": pytest.approx(0, abs=60),
    }
    assert described_second["WarmPoolStatus"]["Status"] == "Available"
    # Its own job, as a fresh `python train.py --hidden 64 --lr 0.2` in its own code directory.
    assert seen_second["argv"] == ["train.py", "--hidden", "64", "--lr", "0.2"]
    assert seen_second["name"] == "__main__"
    assert seen_second["train_files"] == ["b.csv"]
    assert seen_second["cwd"].endswith("warm-second/work/code") and seen_second["cwd"] != seen_first["cwd"]
    assert seen_second["env"]["SM_HP_LR"] == "0.2" and seen_second["env"]["MARKER"] == "warm-second"
    # Nothing of the first job: no builtin, no variable it set, no file it wrote, no variable of its request.
    assert seen_second["left_behind"] is None
    assert not seen_second["file_left_behind"]
    assert "LEAKED" not in seen_second["env"]
    assert seen_second["env"]["REPORT"] == str(tmp_path / "second.json")
    # The environment is exactly what the same job's cold host gets, less nothing, plus nothing.
    cold = _request(
        local_backend, "warm-cold", submit, second_data, tmp_path / "cold.json", keep_alive=None,
        hyperparameters={"lr": "0.2", "hidden": "64"},
    )  # fmt: skip
    cold["Environment"]["MARKER"] = "warm-second"
    described_cold, seen_cold = _run(client, cold)
    assert "WarmPoolStatus" not in described_cold
    varying = {"SM_MODEL_DIR", "SM_INPUT_DIR", "SM_INPUT_CONFIG_DIR", "SM_OUTPUT_DIR", "SM_OUTPUT_DATA_DIR",
               "SM_OUTPUT_INTERMEDIATE_DIR", "SM_CHECKPOINT_DIR", "SM_CHANNEL_TRAIN", "REPORT", "OLDPWD", "PWD"}  # fmt: skip
    assert {k: v for k, v in seen_second["env"].items() if k not in varying} == {
        k: v for k, v in seen_cold["env"].items() if k not in varying
    }
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        assert seen_second["torch_already_imported"] and not seen_cold["torch_already_imported"]

    # Terminated: the pool process and every host are gone, and Describe says so.
    pool_pid = seen_second["ppid"]
    assert warm_pool.terminate_all(local_backend.home) == 1
    assert not any(process_alive(pid) for pid in (pool_pid, seen_first["pid"], seen_second["pid"]))
    assert (
        client.describe_training_job(TrainingJobName="warm-second")["WarmPoolStatus"]["Status"]
        == "Terminated"
    )


@pytest.mark.timeout(300)
def test_a_pool_ends_with_its_keep_alive_and_matches_only_the_documented_values(
    local_backend: Any, client: Any, tmp_path: Path, pools_terminated: Any
) -> None:
    submit = _submit(local_backend, tmp_path)
    data = local_backend.upload("data/a.csv", "label,p0\n1,2\n")
    _described, seen_short = _run(
        client, _request(local_backend, "short-keep", submit, data, tmp_path / "short.json", keep_alive=2)
    )
    # Another instance type does not match: it starts a pool of its own instead of taking this one.
    other = _request(
        local_backend, "other-type", submit, data, tmp_path / "other.json", keep_alive=60,
        resources={"InstanceType": "ml.m5.xlarge"},
    )  # fmt: skip
    _described, seen_other = _run(client, other)
    assert seen_other["ppid"] != seen_short["ppid"]
    assert (
        client.describe_training_job(TrainingJobName="other-type")["WarmPoolStatus"]["Status"] == "Available"
    )

    # The 2 s keep-alive runs out: the pool process exits and Describe reports the pool Terminated.
    _wait_until(lambda: not process_alive(seen_short["ppid"]), "the expired pool's process exited")
    assert (
        client.describe_training_job(TrainingJobName="short-keep")["WarmPoolStatus"]["Status"] == "Terminated"
    )
    assert not process_alive(seen_short["pid"])
    # A job that sets no keep-alive does not take an Available pool (the next job must set its own).
    _described, seen_cold = _run(
        client, _request(local_backend, "no-keep", submit, data, tmp_path / "cold.json", keep_alive=None,
                         resources={"InstanceType": "ml.m5.xlarge"})
    )  # fmt: skip
    assert seen_cold["ppid"] != seen_other["ppid"]


@pytest.mark.timeout(300)
def test_pools_go_with_the_s3_server_they_were_started_against(
    local_backend: Any, client: Any, tmp_path: Path, pools_terminated: Any
) -> None:
    """``airflow-dl local down`` stops the server: its pools follow it, with their hosts."""
    home = local_backend.home
    home.mkdir(parents=True, exist_ok=True)
    # Stand in for the server record `local up` writes (the tests' S3 server has none): a held lock.
    server_lock = hold_lock(home / "server.lock")
    write_json_atomic(home / "server.json", {"generation": "g1", "endpoint_url": local_backend.endpoint})
    try:
        submit = _submit(local_backend, tmp_path)
        data = local_backend.upload("data/a.csv", "label,p0\n1,2\n")
        _described, seen = _run(
            client, _request(local_backend, "server-bound", submit, data, tmp_path / "r.json", keep_alive=600)
        )
        assert process_alive(seen["ppid"])
    finally:
        os.close(server_lock)  # the server is gone
        (home / "server.json").unlink()
    _wait_until(lambda: not process_alive(seen["ppid"]), "the pool followed its S3 server")
    assert warm_pool.pools(home)[0].record()["why"] == "the local S3 server it was started against stopped"
