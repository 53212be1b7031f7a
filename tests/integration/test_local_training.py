"""DistributedTrainingOperator end to end on the local backend: real processes, real S3 and logs.

Each test runs ``operator.execute`` as a worker would, against jobs that the local backend runs as
detached processes on this machine. Tiny scripts written per test keep most jobs to a few seconds;
only ``test_two_instances_train_one_model`` runs the real digits trainer.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import tarfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_dl_provider.exceptions import SageMakerJobError
from airflow_dl_provider.jobs.naming import deterministic_job_name
from airflow_dl_provider.operators.training import DistributedTrainingOperator

# Not imported from tests.conftest: importing conftest.py a second time, as a module of that name,
# would run its module code again and point AIRFLOW_HOME at a new, unmigrated directory.
ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerExecution"
REPO = Path(__file__).resolve().parents[2]
TRAINING_DIR = REPO / "docker" / "training"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
HEADER = ["label"] + [f"p{i}" for i in range(64)]


def _digits_csvs() -> dict[str, str]:
    """train/validation/test splits of scikit-learn's digits as CSV text with a ``label,p0..p63`` header."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x, y = digits.data.astype(int), digits.target.astype(int)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    x_train, x_val, y_train, y_val = train_test_split(
        x_train, y_train, test_size=0.15, stratify=y_train, random_state=0
    )
    out = {}
    for name, (features, labels) in {
        "train": (x_train, y_train),
        "validation": (x_val, y_val),
        "test": (x_test, y_test),
    }.items():
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(HEADER)
        writer.writerows([int(label), *map(int, row)] for label, row in zip(labels, features, strict=True))
        out[name] = text.getvalue()
    return out


def _script_dir(root: Path, body: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.py").write_text(textwrap.dedent(body))
    return root


def _operator(local_backend: Any, source_dir: Path, **kwargs: Any) -> DistributedTrainingOperator:
    args: dict[str, Any] = {
        "task_id": "train",
        "role_arn": ROLE_ARN,
        "output_path": local_backend.uri("output"),
        "channels": {"train": local_backend.uri("data/train/")},
        "entry_point": "train.py",
        "source_dir": str(source_dir),
        "instance_type": "ml.m5.large",
        "max_runtime_seconds": 120,
        "poll_interval": 1,
    }
    args.update(kwargs)
    return DistributedTrainingOperator(**args)


def _job_dirs(local_backend: Any) -> list[str]:
    return sorted(p.name for p in (local_backend.home / "jobs" / "training").glob("*") if p.is_dir())


def _host_lines(task_log: Any, host: str) -> list[str]:
    prefix = f"[{host}] "
    return [m[len(prefix) :] for m in task_log.messages if m.startswith(prefix)]


# A script that holds until the test says go, so a test can act while the job is surely running.
WAIT_FOR_GO = """\
import os, pathlib, time
deadline = time.time() + 60
while not pathlib.Path(os.environ["GO_FILE"]).exists() and time.time() < deadline:
    time.sleep(0.05)
"""


def _wait_until(predicate: Any, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def train_data(local_backend: Any) -> str:
    return local_backend.upload("data/train/part-0000.csv", "label,p0\n1,2\n")


# -- the real trainer ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_instances_train_one_model(local_backend: Any, task_context: Any) -> None:
    for name, text in _digits_csvs().items():
        local_backend.upload(f"digits/{name}/{name}.csv", text)
    op = DistributedTrainingOperator(
        task_id="train",
        role_arn=ROLE_ARN,
        output_path=local_backend.uri("models"),
        channels={name: local_backend.uri(f"digits/{name}/") for name in ("train", "validation", "test")},
        entry_point="train.py",
        source_dir=str(TRAINING_DIR),
        instance_type="ml.p3dn.24xlarge",
        instance_count=2,
        distribution="torch_distributed",
        hyperparameters={"epochs": 20, "batch_size": 64},
        metric_definitions={
            "test_accuracy": r"^test_accuracy=([0-9.]+)",
            "validation_accuracy": r"^validation_accuracy=([0-9.]+)",
        },
        max_runtime_seconds=600,
        poll_interval=1,
    )
    context = task_context("manual__digits")
    result = op.execute(context)

    job_name = deterministic_job_name("dl_test", "train", "manual__digits")
    assert result["job_name"] == job_name
    assert result["status"] == "Completed"
    assert result["metrics"]["test_accuracy"] >= 0.90, result["metrics"]
    assert 0.0 < result["metrics"]["validation_accuracy"] <= 1.0

    model_uri = local_backend.uri(f"models/{job_name}/output/model.tar.gz")
    assert result["model_artifacts"] == model_uri
    body = local_backend.s3.get_object(
        Bucket=local_backend.bucket, Key=f"models/{job_name}/output/model.tar.gz"
    )
    with tarfile.open(fileobj=io.BytesIO(body["Body"].read())) as tar:
        members = set(tar.getnames())
    assert {"model.ckpt", "model.pth", "code/inference.py"} <= members

    streams = local_backend.logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=job_name)
    hosts = sorted(s["logStreamName"].split("/", 1)[1].rsplit("-", 1)[0] for s in streams["logStreams"])
    assert hosts == ["algo-1", "algo-2"]

    described = op.hook.conn.describe_training_job(TrainingJobName=job_name)
    assert described["TrainingJobStatus"] == "Completed"
    assert described["TrainingTimeInSeconds"] >= 1
    assert described["BillableTimeInSeconds"] == 2 * described["TrainingTimeInSeconds"]
    assert result["billable_seconds"] == described["BillableTimeInSeconds"]


# -- retries never double-spend -----------------------------------------------------------------------


def test_same_task_run_twice_creates_one_job(
    local_backend: Any, task_context: Any, train_data: str, tmp_path: Path, task_log: Any
) -> None:
    go = tmp_path / "go"
    src = _script_dir(tmp_path / "src", WAIT_FOR_GO + 'print("score=0.75", flush=True)\n')
    metrics = {"score": r"score=([\d.]+)"}
    env = {"GO_FILE": str(go)}
    context = task_context("manual__twice")
    first = _operator(
        local_backend, src, wait_for_completion=False, metric_definitions=metrics, environment=env
    )
    started = first.execute(context)
    assert started["status"] == "InProgress"

    # The retry finds the running job and waits on it instead of starting a second one.
    second = _operator(local_backend, src, metric_definitions=metrics, environment=env)
    outcome: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: outcome.update(result=second.execute(context)), daemon=True)
    worker.start()
    _wait_until(lambda: any(m.startswith("Reattached: waiting on running") for m in task_log.messages))
    go.touch()
    worker.join(timeout=60)
    done = outcome["result"]
    assert done["job_name"] == started["job_name"]
    assert done["status"] == "Completed"
    assert done["metrics"] == {"score": 0.75}

    # Cleared after success: the finished job is returned, nothing runs again.
    third = _operator(local_backend, src, metric_definitions=metrics, environment=env)
    again = third.execute(context)
    assert again == done
    assert any(m.startswith("Reattached: reusing finished") for m in task_log.messages)
    assert sum(m.startswith("Creating TrainingJob") for m in task_log.messages) == 1

    assert _job_dirs(local_backend) == [started["job_name"]]
    listed = second.hook.conn.list_training_jobs()["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in listed] == [started["job_name"]]


def test_retry_after_a_failed_job_creates_the_next_attempt(
    local_backend: Any, task_context: Any, train_data: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    _script_dir(src, "raise SystemExit('CUDA error: out of memory')\n")
    context = task_context("manual__retry")
    with pytest.raises(SageMakerJobError) as caught:
        _operator(local_backend, src).execute(context)
    first = deterministic_job_name("dl_test", "train", "manual__retry")
    assert caught.value.job_name == first

    _script_dir(src, "print('fixed')\n")
    result = _operator(local_backend, src).execute(context)
    assert result["job_name"] == f"{first}-r2"
    assert result["status"] == "Completed"
    assert _job_dirs(local_backend) == [first, f"{first}-r2"]


# -- failures and stops -------------------------------------------------------------------------------


def test_script_error_reaches_the_raised_error(
    local_backend: Any, task_context: Any, train_data: str, tmp_path: Path, task_log: Any
) -> None:
    src = _script_dir(
        tmp_path / "src",
        """
        import sys
        print("loading data", flush=True)
        lr = -0.1
        if lr <= 0:
            raise ValueError("learning rate must be positive")
        """,
    )
    op = _operator(local_backend, src)
    with pytest.raises(SageMakerJobError) as caught:
        op.execute(task_context("manual__script_error"))
    err = caught.value
    assert err.status == "Failed"
    assert "ValueError: learning rate must be positive" in str(err)
    assert err.failure_reason.startswith("AlgorithmError: ValueError: learning rate must be positive")
    assert "\n" not in str(err)
    # The traceback itself reached the task log before the error was raised.
    assert "ValueError: learning rate must be positive" in _host_lines(task_log, "algo-1")


def test_failure_reason_names_the_host_that_failed(
    local_backend: Any, task_context: Any, train_data: str, tmp_path: Path
) -> None:
    src = _script_dir(
        tmp_path / "src",
        """
        import os, time
        if os.environ["SM_CURRENT_HOST"] == "algo-2":
            time.sleep(1)
            raise RuntimeError("rank 1 ran out of data")
        print("rank 0 waiting for its peer", flush=True)
        time.sleep(60)
        """,
    )
    op = _operator(local_backend, src, instance_count=2)
    started = time.monotonic()
    with pytest.raises(SageMakerJobError) as caught:
        op.execute(task_context("manual__culprit"))
    assert time.monotonic() - started < 30  # the healthy host was not left to run out its sleep
    assert "RuntimeError: rank 1 ran out of data" in caught.value.failure_reason


def test_on_kill_stops_the_running_job(
    local_backend: Any, task_context: Any, train_data: str, tmp_path: Path
) -> None:
    pid_file = tmp_path / "script.pid"
    src = _script_dir(
        tmp_path / "src",
        """
        import os, time
        with open(os.environ["PID_FILE"], "w") as handle:
            handle.write(str(os.getpid()))
        print("training for a minute", flush=True)
        time.sleep(60)
        """,
    )
    op = _operator(local_backend, src, environment={"PID_FILE": str(pid_file)})
    outcome: dict[str, BaseException | None] = {}

    def run() -> None:
        try:
            op.execute(task_context("manual__kill"))
            outcome["error"] = None
        except BaseException as err:
            outcome["error"] = err

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pid_file.exists(), "the training script never started"
    script_pid = int(pid_file.read_text())
    assert op.job_name

    killed_at = time.monotonic()
    op.on_kill()
    worker.join(timeout=20)
    assert not worker.is_alive(), "execute kept waiting after on_kill"
    assert time.monotonic() - killed_at < 15

    described = op.hook.conn.describe_training_job(TrainingJobName=op.job_name)
    assert described["TrainingJobStatus"] == "Stopped"
    assert described["SecondaryStatus"] == "Stopped"
    error = outcome["error"]
    assert isinstance(error, SageMakerJobError)
    assert error.status == "Stopped"
    with pytest.raises(ProcessLookupError):
        os.kill(script_pid, 0)
    # Killing again (a second SIGTERM to the task) sends nothing for an ended job.
    op.on_kill()


# -- deferral and logs --------------------------------------------------------------------------------


def _task_deferred() -> type[BaseException]:
    try:
        from airflow.sdk.exceptions import TaskDeferred  # Airflow 3
    except ImportError:  # Airflow 2
        from airflow.exceptions import TaskDeferred
    return TaskDeferred


def _first_event(trigger: Any, timeout: float = 60) -> Any:
    async def first() -> Any:
        async for event in trigger.run():
            return event
        return None

    return asyncio.run(asyncio.wait_for(first(), timeout=timeout))


def _wait_for_log_line(local_backend: Any, job_name: str, line: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    logs = local_backend.logs
    while time.monotonic() < deadline:
        try:
            streams = logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job_name}/")
        except logs.exceptions.ResourceNotFoundException:  # the job has not created the group yet
            streams = {"logStreams": []}
        for stream in streams["logStreams"]:
            events = local_backend.logs.get_log_events(
                logGroupName=LOG_GROUP, logStreamName=stream["logStreamName"], startFromHead=True
            )["events"]
            if any(e["message"] == line for e in events):
                return
        time.sleep(0.2)
    raise AssertionError(f"{line!r} never reached CloudWatch")


def test_deferred_run_completes_through_the_trigger(
    local_backend: Any, task_context: Any, train_data: str, tmp_path: Path, task_log: Any
) -> None:
    go = tmp_path / "go"
    src = _script_dir(
        tmp_path / "src",
        'print("epoch=1 loss=0.9", flush=True)\n' + WAIT_FOR_GO + 'print("epoch=2 loss=0.4", flush=True)\n',
    )
    metrics = {"loss": r"loss=([\d.]+)"}
    env = {"GO_FILE": str(go)}
    context = task_context("manual__deferred")
    # An earlier try started the job; this try reattaches, copies what is logged so far, then defers.
    started = _operator(
        local_backend, src, wait_for_completion=False, metric_definitions=metrics, environment=env
    ).execute(context)
    _wait_for_log_line(local_backend, started["job_name"], "epoch=1 loss=0.9")

    op = _operator(local_backend, src, deferrable=True, metric_definitions=metrics, environment=env)
    with pytest.raises(_task_deferred()) as caught:
        op.execute(context)
    go.touch()
    deferred = caught.value
    assert deferred.method_name == "execute_complete"
    assert deferred.kwargs["log_cursor"], "lines copied before deferring must be remembered"
    assert "epoch=1 loss=0.9" in _host_lines(task_log, "algo-1")
    path, kwargs = deferred.trigger.serialize()
    assert path == "airflow_dl_provider.triggers.job.SageMakerJobTrigger"
    assert kwargs["job_name"] == started["job_name"] == op.job_name
    assert kwargs["deadline"] is not None and kwargs["deadline"] > time.time()

    # The triggerer rebuilds the trigger from its serialized form.
    event = _first_event(type(deferred.trigger)(**kwargs))
    assert event.payload == {
        "status": "success",
        "job_name": op.job_name,
        "message": f"TrainingJob {op.job_name} Completed",
    }

    resumed = _operator(local_backend, src, deferrable=True, metric_definitions=metrics, environment=env)
    result = resumed.execute_complete(context, event=event.payload, **deferred.kwargs)
    assert result["status"] == "Completed"
    assert result["metrics"] == {"loss": 0.4}
    lines = _host_lines(task_log, "algo-1")
    assert lines.count("epoch=1 loss=0.9") == 1
    assert lines.count("epoch=2 loss=0.4") == 1


def test_deferred_run_past_max_wait_stops_the_job(
    local_backend: Any, task_context: Any, train_data: str, tmp_path: Path
) -> None:
    src = _script_dir(tmp_path / "src", "import time\ntime.sleep(60)\n")
    op = _operator(local_backend, src, deferrable=True, max_wait=1)
    context = task_context("manual__deferred_timeout")
    with pytest.raises(_task_deferred()) as caught:
        op.execute(context)
    event = _first_event(caught.value.trigger)
    assert event.payload["status"] == "timeout"
    with pytest.raises(SageMakerJobError, match="still InProgress at the deadline; stopped it"):
        op.execute_complete(context, event=event.payload, **caught.value.kwargs)
    deadline = time.monotonic() + 15
    while (
        status := op.hook.conn.describe_training_job(TrainingJobName=op.job_name)["TrainingJobStatus"]
    ) != "Stopped":
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


def test_deferred_run_of_a_failing_job_raises_with_the_reason(
    local_backend: Any, task_context: Any, train_data: str, tmp_path: Path
) -> None:
    src = _script_dir(
        tmp_path / "src",
        """
        import time
        time.sleep(2)
        raise KeyError("label")
        """,
    )
    op = _operator(local_backend, src, deferrable=True)
    context = task_context("manual__deferred_fail")
    with pytest.raises(_task_deferred()) as caught:
        op.execute(context)
    event = _first_event(caught.value.trigger)
    assert event.payload["status"] == "error"
    assert "KeyError: 'label'" in event.payload["message"]
    with pytest.raises(SageMakerJobError, match="KeyError: 'label'"):
        op.execute_complete(context, event=event.payload, **caught.value.kwargs)


def test_log_lines_reach_the_task_log_per_host(
    local_backend: Any, task_context: Any, train_data: str, tmp_path: Path, task_log: Any
) -> None:
    src = _script_dir(
        tmp_path / "src",
        """
        import json, os, sys
        host = os.environ["SM_CURRENT_HOST"]
        for i in range(3):
            print(f"{host} step {i}", flush=True)
        print(f"{host} to stderr", file=sys.stderr, flush=True)
        print("hosts " + json.dumps(json.loads(os.environ["SM_HOSTS"])), flush=True)
        """,
    )
    _operator(local_backend, src, instance_count=2).execute(task_context("manual__log_lines"))
    for host in ("algo-1", "algo-2"):
        lines = _host_lines(task_log, host)
        assert [line for line in lines if " step " in line] == [f"{host} step {i}" for i in range(3)]
        assert f"{host} to stderr" in lines
        assert 'hosts ["algo-1", "algo-2"]' in lines
    # The backend says what it simulates, in the job's own log.
    assert any("simulated instances" in line for line in _host_lines(task_log, "algo-1"))


def test_hyperparameters_reach_the_script_as_the_toolkit_passes_them(
    local_backend: Any, task_context: Any, train_data: str, tmp_path: Path, task_log: Any
) -> None:
    # Network isolation too: the code must come from the 'code' channel, not from S3.
    src = _script_dir(
        tmp_path / "src",
        """
        import json, os, sys
        print("argv " + json.dumps(sys.argv[1:]), flush=True)
        for name in ("LAYERS", "OPTS", "AMP", "NAME", "LR"):
            print(f"SM_HP_{name} " + os.environ[f"SM_HP_{name}"], flush=True)
        print("SM_HPS " + os.environ["SM_HPS"], flush=True)
        print("SM_CHANNELS " + os.environ["SM_CHANNELS"], flush=True)
        print("SM_MODULE_DIR " + os.environ["SM_MODULE_DIR"], flush=True)
        """,
    )
    hyperparameters = {
        "layers": [64, 32],
        "opts": {"b": "x", "a": 1},
        "amp": True,
        "name": "resnet",
        "lr": 0.1,
    }
    op = _operator(local_backend, src, hyperparameters=hyperparameters, enable_network_isolation=True)
    op.execute(task_context("manual__toolkit_hyperparameters"))
    lines = _host_lines(task_log, "algo-1")
    # The command line: sorted names, dicts as k=v pairs, anything else str() (sagemaker_training.mapping).
    assert (
        'argv ["--amp", "True", "--layers", "[64, 32]", "--lr", "0.1", "--name", "resnet", "--opts", "a=1,b=x"]'
        in lines
    )
    # The environment: JSON for lists, dicts and booleans, strings as they are; never a Python repr.
    assert "SM_HP_LAYERS [64,32]" in lines
    assert 'SM_HP_OPTS {"a":1,"b":"x"}' in lines
    assert "SM_HP_AMP true" in lines
    assert "SM_HP_NAME resnet" in lines
    assert "SM_HP_LR 0.1" in lines
    assert 'SM_HPS {"amp":true,"layers":[64,32],"lr":0.1,"name":"resnet","opts":{"a":1,"b":"x"}}' in lines
    assert 'SM_CHANNELS ["code","train"]' in lines
    assert "SM_MODULE_DIR /opt/ml/input/data/code/sourcedir.tar.gz" in lines
