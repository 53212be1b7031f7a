"""The task process SIGKILLed at each point of a job's life, on the local backend: the retry reattaches.

Each test runs the training operator in its own process (a worker running the task), kills it with
SIGKILL (no ``finally``, no ``on_kill``) at one point, then runs the retry as Airflow would, in a fresh
process state with the same task instance. The job is real: a runner process running a script that
prints its steps and holds until the test lets it finish, so it is surely running when the task dies.
Each test counts jobs per task instance, runners left alive and log lines copied by the retry.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_dl_provider.backends.local.processes import lock_held
from airflow_dl_provider.backends.local.state import RUNNER_LOCK, LocalJob
from airflow_dl_provider.jobs.naming import deterministic_job_name

# At module level, before any fixture runs: the first import of Airflow sets up its logging, which
# must happen before ``task_log`` starts capturing.
from airflow_dl_provider.operators.training import DistributedTrainingOperator
from tests.faults.task_tries import log_mark, log_since, one_try

pytestmark = pytest.mark.slow  # real task and runner processes

REPO = Path(__file__).resolve().parents[2]
ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerExecution"
STEPS = 6
SCRIPT = f"""\
import os, pathlib, time
for step in range(3):
    print(f"step {{step}}", flush=True)
deadline = time.time() + 90
while not pathlib.Path(os.environ["GO_FILE"]).exists() and time.time() < deadline:
    time.sleep(0.05)
for step in range(3, {STEPS}):
    print(f"step {{step}}", flush=True)
"""

# The task process: builds the operator as the DAG does, dies (SIGKILL) at the point it is told.
TASK = """
import json, os, signal, sys, types

args = json.loads(sys.argv[1])

def die(*_args, **_kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

from airflow_dl_provider.backends.local.client import LocalSageMakerClient
from airflow_dl_provider.jobs.polling import JobWatch
from airflow_dl_provider.operators.training import DistributedTrainingOperator

point = args["kill_at"]
if point == "before_create_returns":  # the job exists and its runner runs; Create has not returned
    start_runner = LocalSageMakerClient._start_runner
    LocalSageMakerClient._start_runner = lambda self, created: (start_runner(self, created), die())
elif point == "before_the_runner_starts":  # the job's directory is in place, its runner not started
    LocalSageMakerClient._start_runner = die
elif point == "right_after_create":  # CreateTrainingJob has returned its ARN; nothing else happened
    create = LocalSageMakerClient.create_training_job
    LocalSageMakerClient.create_training_job = lambda self, **request: (create(self, **request), die())
elif point == "while_waiting":  # polling a running job, its first lines copied
    # Every look of the engine's wait goes through JobWatch.see (classify, log, copy lines).
    see, polls = JobWatch.see, []
    def look(self, description):
        outcome = see(self, description)
        polls.append(outcome.status)
        if polls.count("InProgress") >= 3:
            die()
        return outcome
    JobWatch.see = look

ti = types.SimpleNamespace(
    dag_id="dl_test", task_id="train", map_index=-1, xcom_push=lambda key, value: None
)
operator = DistributedTrainingOperator(**args["operator"])
try:
    operator.execute({"ti": ti, "run_id": args["run_id"]})
except BaseException as err:
    if type(err).__name__ == "TaskDeferred" and point == "while_deferred":
        die()  # deferred: the worker process is gone before the triggerer picks the trigger up
    raise
print("the task was not killed", file=sys.stderr)
sys.exit(3)
"""


def _operator_args(local_backend: Any, src: Path, go: Path, **kwargs: Any) -> dict[str, Any]:
    return {
        "task_id": "train",
        "role_arn": ROLE_ARN,
        "output_path": local_backend.uri("output"),
        "channels": {"train": local_backend.uri("data/train/")},
        "entry_point": "train.py",
        "source_dir": str(src),
        "instance_type": "ml.m5.large",
        "max_runtime_seconds": 120,
        "poll_interval": 0.2,
        "environment": {"GO_FILE": str(go)},
        **kwargs,
    }


def _runner_processes(home: Path) -> list[int]:
    """Live runner processes of jobs under ``home`` (their command line names the job's directory)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        ours = any(str(home).encode() in part for part in cmdline)
        if b"airflow_dl_provider.backends.local.runner" in cmdline and state != "Z" and ours:
            pids.append(int(proc.name))
    return pids


def _runners_exit(home: Path, within: float = 30) -> None:
    """Every job under ``home`` has ended and its runner exits (it records the end, then returns)."""
    deadline = time.monotonic() + within
    while True:
        held = [job.name for job in _jobs(home) if lock_held(job.dir / RUNNER_LOCK)]
        alive = _runner_processes(home)
        if not held and not alive:
            return
        assert time.monotonic() < deadline, f"orphaned runners: locks held by {held}, processes {alive}"
        time.sleep(0.1)


def _jobs(home: Path) -> list[LocalJob]:
    root = home / "jobs" / "training"
    return (
        [LocalJob(d) for d in sorted(root.iterdir()) if not d.name.startswith(".")] if root.is_dir() else []
    )


def _go_once_reattached(task_log: Any, mark: tuple[int, int], go: Path) -> None:
    """Let the job finish once the retry has reattached to it (or after a minute: the test then fails)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(m.startswith("Reattached:") for m in log_since(task_log, mark)):
            break
        time.sleep(0.05)
    go.touch()


def _killed_task(local_backend: Any, operator: dict[str, Any], kill_at: str, run_id: str) -> None:
    args = {"operator": operator, "kill_at": kill_at, "run_id": run_id}
    done = subprocess.run(
        [sys.executable, "-c", TASK, json.dumps(args)], cwd=REPO, capture_output=True, timeout=180
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-3000:]


@pytest.fixture
def job_inputs(local_backend: Any, tmp_path: Path) -> tuple[Path, Path]:
    local_backend.upload("data/train/part-0000.csv", "label,p0\n1,2\n")
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text(textwrap.dedent(SCRIPT))
    return src, tmp_path / "go"


POINTS = ["before_create_returns", "right_after_create", "while_waiting", "while_deferred"]


@pytest.mark.parametrize("kill_at", POINTS)
def test_task_sigkilled_then_retried_makes_1_job_per_task_instance_0_orphaned_runners(
    local_backend: Any,
    job_inputs: tuple[Path, Path],
    task_context: Any,
    task_log: Any,
    counts: Any,
    kill_at: str,
) -> None:
    src, go = job_inputs
    deferrable = kill_at == "while_deferred"
    args = _operator_args(local_backend, src, go, deferrable=deferrable)
    # Its own run: the embedded server's log streams outlive a test, and a job's are found by its name.
    run_id = f"manual__{kill_at}"
    _killed_task(local_backend, args, kill_at, run_id)
    name = deterministic_job_name("dl_test", "train", run_id)
    (job,) = _jobs(local_backend.home)
    assert job.name == name and job.status() == "InProgress", "the job outlives the task that started it"

    # The retry, with the task instance's same ids; the job is let finish once the retry has found it.
    mark = log_mark(task_log)
    threading.Thread(target=_go_once_reattached, args=(task_log, mark, go), daemon=True).start()
    result = one_try(lambda: DistributedTrainingOperator(**args), task_context(run_id, task_id="train"))
    retry_log = log_since(task_log, mark)

    assert result["job_name"] == name and result["status"] == "Completed"
    assert [j.name for j in _jobs(local_backend.home)] == [name], "jobs per task instance = 1"
    assert any(m.startswith("Reattached: waiting on running") for m in retry_log), retry_log
    assert not any(m.startswith("Creating TrainingJob") for m in retry_log)
    _runners_exit(local_backend.home)
    for step in range(STEPS):
        assert sum(m.endswith(f"] step {step}") for m in retry_log) == 1, f"step {step} copied once"
    counts(
        f"killed {kill_at}; retry reattached; 1 job per task instance; 0 orphaned runners; {STEPS} lines once"
    )


def test_task_sigkilled_before_its_job_runner_starts_leaves_0_orphans_and_1_job_that_ran(
    local_backend: Any, job_inputs: tuple[Path, Path], task_context: Any, counts: Any
) -> None:
    """The one window the local backend has and SageMaker has not: the task is the job's launcher.

    Killed between the job's creation (its directory in place) and its runner's start, the job can never
    run; Describe reports it Failed, so the retry starts the next attempt. Two job records, one that ran.
    """
    src, go = job_inputs
    go.touch()
    args = _operator_args(local_backend, src, go)
    run_id = "manual__before_the_runner_starts"
    _killed_task(local_backend, args, "before_the_runner_starts", run_id)
    name = deterministic_job_name("dl_test", "train", run_id)

    result = one_try(lambda: DistributedTrainingOperator(**args), task_context(run_id, task_id="train"))

    first, second = _jobs(local_backend.home)
    assert (first.name, second.name) == (name, f"{name}-r2") and result["job_name"] == second.name
    described = DistributedTrainingOperator(**args).hook.conn.describe_training_job(TrainingJobName=name)
    assert described["TrainingJobStatus"] == "Failed"
    assert "the local runner never started" in described["FailureReason"]
    assert "_runner_started" not in first.state(), "the first job never ran"
    _runners_exit(local_backend.home)
    counts(
        "killed before the runner started; 2 job records, 1 ran (the first Failed unrun); 0 orphaned runners"
    )
