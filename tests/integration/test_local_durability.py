"""The local backend never loses or invents a job: one test per window in which it used to.

Each window is opened for real: a creator process killed at the exact point, a runner that records
its end while Stop is on its way, a runner killed with SIGKILL, an S3 server restarted under a job,
four processes creating the same twenty jobs at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from airflow_dl_provider.backends.local import server
from airflow_dl_provider.backends.local.client import LocalSageMakerClient
from airflow_dl_provider.backends.local.processes import process_alive
from airflow_dl_provider.backends.local.server import LOCAL_CREDENTIALS
from airflow_dl_provider.backends.local.state import LocalJob
from airflow_dl_provider.hooks.sagemaker import SageMakerJobHook
from airflow_dl_provider.jobs.engine import JobEngine
from airflow_dl_provider.jobs.kinds import JOB_KINDS
from airflow_dl_provider.jobs.naming import JobNames
from airflow_dl_provider.operators.training import source_archive
from airflow_dl_provider.service_behaviour import is_not_found
from airflow_dl_provider.validation.requests import validate_response

ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerExecution"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311-ubuntu22.04-sagemaker"
TERMINAL = {"Completed", "Failed", "Stopped"}
REPO = Path(__file__).parents[2]


def _runner_env(endpoint: str) -> dict[str, str]:
    return {
        "AIRFLOW_DL_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["login"],
        "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["password"],
    }


def _client(home: Path, endpoint: str) -> LocalSageMakerClient:
    return LocalSageMakerClient(
        home=home, endpoint_url=endpoint, region="us-east-1", runner_env=_runner_env(endpoint)
    )


def _script(s3: Any, bucket: str, tmp_path: Path, body: str) -> str:
    src = tmp_path / f"src-{abs(hash(body))}"
    src.mkdir()
    (src / "train.py").write_text(textwrap.dedent(body))
    data, digest = source_archive(src)
    s3.put_object(Bucket=bucket, Key=f"code/{digest}/sourcedir.tar.gz", Body=data)
    return f"s3://{bucket}/code/{digest}/sourcedir.tar.gz"


def _request(
    name: str, bucket: str, submit: str, environment: dict[str, str] | None = None
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE_ARN,
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
        "HyperParameters": {
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": json.dumps(submit),
        },
    }
    if environment:
        request["Environment"] = environment
    return request


def _wait(client: Any, name: str, *, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = client.describe_training_job(TrainingJobName=name)
        if described["TrainingJobStatus"] in TERMINAL or time.monotonic() > deadline:
            return described
        time.sleep(0.2)


def _wait_for(predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


# A task process that creates one job and is killed (SIGKILL: no finally, no atexit) at one point.
CREATOR = """
import json, os, signal, subprocess, sys
from pathlib import Path
from airflow_dl_provider.backends.local import state
from airflow_dl_provider.backends.local.client import LocalSageMakerClient

args = json.loads(sys.argv[1])

def die(*_args, **_kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if args["die_at"] == "runner start":
    subprocess.Popen = die
elif args["die_at"] == "first state write":
    state.write_json_atomic = die
client = LocalSageMakerClient(
    home=Path(args["home"]), endpoint_url=args["endpoint"], region="us-east-1", runner_env=args["env"]
)
client.create_training_job(**args["request"])
"""


def _killed_creator(local_backend: Any, request: dict[str, Any], die_at: str) -> None:
    args = {
        "home": str(local_backend.home),
        "endpoint": local_backend.endpoint,
        "env": _runner_env(local_backend.endpoint),
        "request": request,
        "die_at": die_at,
    }
    done = subprocess.run([sys.executable, "-c", CREATOR, json.dumps(args)], cwd=REPO, capture_output=True)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]


@pytest.fixture
def client(local_backend: Any) -> Any:
    return _client(local_backend.home, local_backend.endpoint)


def test_a_job_whose_creator_died_before_starting_its_runner_fails(
    local_backend: Any, client: Any, tmp_path: Path
) -> None:
    submit = _script(local_backend.s3, local_backend.bucket, tmp_path, "print('never runs')\n")
    _killed_creator(local_backend, _request("orphan-job", local_backend.bucket, submit), "runner start")

    described = client.describe_training_job(TrainingJobName="orphan-job")
    # Not InProgress forever: nobody will ever run it, and a retry must be free to start another.
    assert described["TrainingJobStatus"] == "Failed"
    assert described["FailureReason"].startswith("InternalServerError: the local runner never started")
    validate_response("DescribeTrainingJob", described)
    assert client.describe_training_job(TrainingJobName="orphan-job")["TrainingJobStatus"] == "Failed"


def test_a_job_whose_runner_is_still_starting_is_in_progress_with_the_full_shape(
    local_backend: Any, client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the create and the runner's first write the job is InProgress, not Failed or half there."""
    holders: list[subprocess.Popen[bytes]] = []

    def slow_runner(self: Any, created: Any) -> None:  # holds the runner lock, writes nothing yet
        holders.append(
            subprocess.Popen(
                [sys.executable, "-c", "import time; time.sleep(60)"], pass_fds=(created.runner_lock,)
            )
        )

    monkeypatch.setattr(LocalSageMakerClient, "_start_runner", slow_runner)
    submit = _script(local_backend.s3, local_backend.bucket, tmp_path, "print('later')\n")
    client.create_training_job(**_request("starting-job", local_backend.bucket, submit))
    try:
        described = client.describe_training_job(TrainingJobName="starting-job")
        assert described["TrainingJobStatus"] == "InProgress"
        assert described["LastModifiedTime"] == described["CreationTime"]
        validate_response("DescribeTrainingJob", described)
        listed = client.list_training_jobs()["TrainingJobSummaries"]
        assert [(s["TrainingJobName"], s["TrainingJobStatus"]) for s in listed] == [
            ("starting-job", "InProgress")
        ]
    finally:
        holders[0].kill()
        holders[0].wait()
    assert client.describe_training_job(TrainingJobName="starting-job")["TrainingJobStatus"] == "Failed"


def test_a_creator_that_died_before_writing_the_job_leaves_the_name_free(
    local_backend: Any, client: Any, tmp_path: Path
) -> None:
    submit = _script(local_backend.s3, local_backend.bucket, tmp_path, "print('ran')\n")
    request = _request("half-job", local_backend.bucket, submit)
    _killed_creator(local_backend, request, "first state write")

    with pytest.raises(ClientError) as caught:
        client.describe_training_job(TrainingJobName="half-job")
    assert is_not_found("DescribeTrainingJob", caught.value)
    assert client.list_training_jobs()["TrainingJobSummaries"] == []
    # The name is not poisoned: the retry creates the job and it runs.
    client.create_training_job(**request)
    assert _wait(client, "half-job")["TrainingJobStatus"] == "Completed"
    assert [s["TrainingJobName"] for s in client.list_training_jobs()["TrainingJobSummaries"]] == ["half-job"]


def test_stop_that_arrives_as_the_job_completes_leaves_it_completed(
    local_backend: Any, client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    go, started = tmp_path / "go", tmp_path / "started"
    submit = _script(
        local_backend.s3,
        local_backend.bucket,
        tmp_path,
        """
        import os, pathlib, time
        pathlib.Path(os.environ["STARTED"]).write_text("yes")
        while not pathlib.Path(os.environ["GO"]).exists():
            time.sleep(0.05)
        """,
    )
    environment = {"GO": str(go), "STARTED": str(started)}
    client.create_training_job(**_request("race-job", local_backend.bucket, submit, environment))
    _wait_for(started.exists)
    state_file = local_backend.home / "jobs" / "training" / "race-job" / "state.json"
    read_state = LocalJob.state
    fired = []

    def runner_completes_after_this_read(job: LocalJob) -> dict[str, Any]:
        state = read_state(job)
        if not fired:  # Stop's first look at the job: the runner records Completed right after it
            fired.append(state["TrainingJobStatus"])
            go.write_text("go")
            _wait_for(lambda: json.loads(state_file.read_text())["TrainingJobStatus"] == "Completed")
        return state

    monkeypatch.setattr(LocalJob, "state", runner_completes_after_this_read)
    with pytest.raises(ClientError) as caught:
        client.stop_training_job(TrainingJobName="race-job")
    assert fired == ["InProgress"]
    assert caught.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": "The request was rejected because the training job is in status Completed.",
    }
    monkeypatch.undo()
    described = _wait(client, "race-job")
    assert described["TrainingJobStatus"] == "Completed"
    assert described["SecondaryStatusTransitions"][-1]["Status"] == "Completed"
    assert "Stopping" not in [t["Status"] for t in described["SecondaryStatusTransitions"]]


def _killed_runner_job(local_backend: Any, client: Any, tmp_path: Path, name: str) -> int:
    """Start a job whose host sleeps, SIGKILL its runner; return the host's pid."""
    pids = tmp_path / "pids"
    submit = _script(
        local_backend.s3,
        local_backend.bucket,
        tmp_path,
        """
        import os, time
        open(os.environ["PIDS"], "w").write(f"{os.getpid()} {os.getppid()}")
        time.sleep(60)
        """,
    )
    client.create_training_job(**_request(name, local_backend.bucket, submit, {"PIDS": str(pids)}))
    _wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 2)
    host, runner = map(int, pids.read_text().split())
    os.kill(runner, signal.SIGKILL)
    _wait_for(lambda: not process_alive(runner))
    return host


def test_the_hosts_of_a_killed_runner_die_with_it(local_backend: Any, client: Any, tmp_path: Path) -> None:
    host = _killed_runner_job(local_backend, client, tmp_path, "orphaned-hosts-job")
    # The kernel ends them with their runner: nobody has to find them and signal them later.
    _wait_for(lambda: not process_alive(host), timeout=15)


def test_describe_of_a_job_whose_runner_was_killed_signals_nothing(
    local_backend: Any, client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _killed_runner_job(local_backend, client, tmp_path, "killed-job")
    signals: list[tuple[str, int, int]] = []
    real_kill = os.kill

    def record_kill(pid: int, sig: int) -> None:
        if sig != 0:
            signals.append(("kill", pid, sig))
        real_kill(pid, sig)

    monkeypatch.setattr(os, "kill", record_kill)
    monkeypatch.setattr(os, "killpg", lambda pgid, sig: signals.append(("killpg", pgid, sig)))
    described = client.describe_training_job(TrainingJobName="killed-job")
    assert described["TrainingJobStatus"] == "Failed"
    assert described["FailureReason"].startswith("InternalServerError: the local runner process exited")
    failed = client.list_training_jobs(StatusEquals="Failed")["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in failed] == ["killed-job"]
    assert signals == []  # a Describe from the triggerer, or anyone, never kills a process


def test_jobs_of_a_restarted_s3_server_are_failed_and_a_retry_starts_a_new_attempt(tmp_path: Path) -> None:
    home = tmp_path / "local"
    first = server.start(home)
    try:
        s3 = server.s3_client(first["endpoint_url"])
        s3.create_bucket(Bucket="gen-test")
        submit = _script(s3, "gen-test", tmp_path, "print('trained')\n")
        request = _request("placeholder", "gen-test", submit)
        request.pop("TrainingJobName")
        client = _client(home, first["endpoint_url"])
        engine = JobEngine(JOB_KINDS["training"], client)
        names = JobNames("gen_dag", "train", "manual__1")
        handle = engine.ensure(request, names)
        assert _wait(client, handle.name)["TrainingJobStatus"] == "Completed"
        assert engine.ensure(request, names).created is False  # same server: reattached

        server.stop(home)
        stopped = client.describe_training_job(TrainingJobName=handle.name)
        assert stopped["TrainingJobStatus"] == "Failed"
        assert stopped["FailureReason"] == (
            f"InternalServerError: the local S3 server of generation {first['generation']} is not running; "
            "its artifacts are gone"
        )

        second = server.start(home)
        client = _client(home, second["endpoint_url"])
        described = client.describe_training_job(TrainingJobName=handle.name)
        assert described["TrainingJobStatus"] == "Failed"
        assert described["FailureReason"] == (
            f"InternalServerError: the local S3 server was restarted (generation {first['generation']} -> "
            f"{second['generation']}); its artifacts are gone"
        )
        validate_response("DescribeTrainingJob", described)
        retry = JobEngine(JOB_KINDS["training"], client).ensure(request, names)
        assert retry.created is True
        assert retry.name != handle.name
    finally:
        server.stop(home)


def test_a_connection_without_credentials_runs_local_jobs(
    local_backend: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = {
        "backend": "local",
        "endpoint_url": local_backend.endpoint,
        "local_home": str(local_backend.home),
    }
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", "extra": extra}))
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    hook = SageMakerJobHook(aws_conn_id="aws_default")
    submit = _script(hook.s3, local_backend.bucket, tmp_path, "print('no keys needed')\n")
    hook.conn.create_training_job(**_request("keyless-job", local_backend.bucket, submit))
    assert _wait(hook.conn, "keyless-job")["TrainingJobStatus"] == "Completed"
    assert hook.s3.head_object(Bucket=local_backend.bucket, Key="output/keyless-job/output/model.tar.gz")


# One of four processes on one local home, all creating the same twenty jobs at the same moment, as
# Airflow workers retrying the same tasks would.
CONTENDER = """
import json, sys, time
from pathlib import Path
from botocore.exceptions import ClientError
from airflow_dl_provider.backends.local.client import LocalSageMakerClient

args = json.loads(sys.argv[1])
client = LocalSageMakerClient(
    home=Path(args["home"]), endpoint_url=args["endpoint"], region="us-east-1", runner_env=args["env"]
)
go = Path(args["go"])
while not go.exists():
    time.sleep(0.01)
created = []
for name in args["names"]:
    request = dict(args["request"], TrainingJobName=name, Environment={"RUNS": args["runs"], "JOB": name})
    try:
        client.create_training_job(**request)
        created.append(name)
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceInUse":
            raise
print(json.dumps(created))
"""


def test_twenty_jobs_from_four_processes_none_lost_none_duplicated(
    local_backend: Any, client: Any, tmp_path: Path
) -> None:
    runs, go = tmp_path / "runs.txt", tmp_path / "go"
    submit = _script(
        local_backend.s3,
        local_backend.bucket,
        tmp_path,
        """
        import os
        with open(os.environ["RUNS"], "a") as runs:  # one short append: atomic between processes
            runs.write(os.environ["JOB"] + "\\n")
        """,
    )
    names = [f"crowd-job-{i:02d}" for i in range(20)]
    contenders = []
    for offset in range(4):
        args = {
            "home": str(local_backend.home),
            "endpoint": local_backend.endpoint,
            "env": _runner_env(local_backend.endpoint),
            "go": str(go),
            "runs": str(runs),
            "names": names[offset * 5 :] + names[: offset * 5],  # each starts at a different job
            "request": _request("placeholder", local_backend.bucket, submit),
        }
        contenders.append(
            subprocess.Popen(
                [sys.executable, "-c", CONTENDER, json.dumps(args)],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    go.write_text("go")
    created: list[str] = []
    for proc in contenders:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err.decode()[-2000:]
        created += json.loads(out.decode().strip().splitlines()[-1])

    assert sorted(created) == names  # each job created exactly once, by one of the four
    ended = {name: _wait(client, name, timeout=240) for name in names}
    assert {name: d["TrainingJobStatus"] for name, d in ended.items()} == dict.fromkeys(names, "Completed")
    assert sorted(runs.read_text().split()) == names  # each ran exactly once
    listed = client.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
    assert sorted(s["TrainingJobName"] for s in listed) == names
