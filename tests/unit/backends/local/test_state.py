"""The job store's rules: creation is one rename, status changes are check-and-set, liveness is a lock."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider.backends.local.processes import hold_lock, lock_held
from airflow_dl_provider.backends.local.state import RUNNER_LOCK, JobStore, StatusConflict

if TYPE_CHECKING:
    from pathlib import Path


def _state(status: str = "InProgress") -> dict[str, Any]:
    return {"TrainingJobName": "job-1", "TrainingJobStatus": status, "CreationTime": "2026-01-01T00:00:00"}


def _job(store: JobStore, status: str = "InProgress") -> Any:
    with store.creating("training", "job-1", {"TrainingJobName": "job-1"}, _state(status)) as created:
        assert created is not None
        return created.job


def test_one_of_many_concurrent_creates_wins(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    barrier, won = threading.Barrier(8), []

    def create(i: int) -> None:
        barrier.wait()
        with store.creating("training", "job-1", {"from": i}, _state()) as created:
            if created is not None:
                won.append(i)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert [j.name for j in store.all("training")] == ["job-1"]
    assert store.get("training", "job-1").request() == {"from": won[0]}  # the winner's, whole
    assert [p.name for p in (tmp_path / "jobs" / "training").iterdir()] == ["job-1"]  # no staging left


def test_an_empty_directory_left_at_the_name_does_not_poison_it(tmp_path: Path) -> None:
    """What an older creator left when it died between mkdir and its first write."""
    (tmp_path / "jobs" / "training" / "job-1").mkdir(parents=True)
    job = _job(JobStore(tmp_path))
    assert job.status() == "InProgress"


def test_a_dead_creators_staging_directory_is_hidden_then_swept(tmp_path: Path) -> None:
    root = tmp_path / "jobs" / "training"
    root.mkdir(parents=True)
    staging = root / ".job-0.abc.creating"
    staging.mkdir()
    (staging / "state.json").write_text("{}")
    (staging / RUNNER_LOCK).write_text("")
    store = JobStore(tmp_path)
    assert store.all("training") == []
    _job(store)
    assert staging.exists()  # too young: its creator may not have locked it yet
    old = time.time() - 3600
    os.utime(staging, (old, old))
    with store.creating("training", "job-2", {}, _state()):
        pass
    assert not staging.exists()


def test_a_live_creators_staging_directory_is_not_swept(tmp_path: Path) -> None:
    root = tmp_path / "jobs" / "training"
    staging = root / ".job-0.abc.creating"
    staging.mkdir(parents=True)
    fd = hold_lock(staging / RUNNER_LOCK)
    try:
        old = time.time() - 3600
        os.utime(staging, (old, old))
        _job(JobStore(tmp_path))
        assert staging.exists()
    finally:
        os.close(fd)


def test_a_finished_job_stays_finished(tmp_path: Path) -> None:
    job = _job(JobStore(tmp_path))
    job.transition("Completed", "done", TrainingJobStatus="Completed")
    for status in ("Stopping", "Stopped", "Failed", "InProgress"):
        with pytest.raises(StatusConflict, match="is Completed; it cannot become"):
            job.update(TrainingJobStatus=status)
    job.update(FinalMetricDataList=[])  # other fields may still be written
    assert job.status() == "Completed"


def test_a_stopping_job_ends_stopped_or_failed_never_completed(tmp_path: Path) -> None:
    job = _job(JobStore(tmp_path))
    job.transition_if({"InProgress"}, "Stopping", "stop", TrainingJobStatus="Stopping")
    with pytest.raises(StatusConflict) as caught:
        job.transition("Completed", "done", TrainingJobStatus="Completed")
    assert (caught.value.current, caught.value.wanted) == ("Stopping", "Completed")
    job.transition("Stopped", "stopped", TrainingJobStatus="Stopped")
    assert job.status() == "Stopped"


def test_check_and_set_refuses_a_job_not_in_the_expected_status(tmp_path: Path) -> None:
    job = _job(JobStore(tmp_path))
    job.update(TrainingJobStatus="Completed")
    with pytest.raises(StatusConflict):
        job.transition_if({"InProgress"}, "Stopping", "stop", TrainingJobStatus="Stopping")
    assert job.status() == "Completed"
    assert "Stopping" not in [t["Status"] for t in job.state().get("SecondaryStatusTransitions", [])]


def test_a_job_whose_runner_never_took_the_lock_ends_failed_once(tmp_path: Path) -> None:
    job = _job(JobStore(tmp_path))  # the creating block is over: nobody holds its runner lock
    assert not job.runner_alive()
    ended = job.end_without_runner("TrainingJob")
    assert ended["TrainingJobStatus"] == "Failed"
    assert ended["FailureReason"].startswith("InternalServerError: the local runner never started")
    assert job.end_without_runner("TrainingJob") == job.state()  # ending it again changes nothing


def test_a_stopping_job_whose_runner_is_gone_ends_stopped(tmp_path: Path) -> None:
    job = _job(JobStore(tmp_path), "Stopping")
    assert job.end_without_runner("TrainingJob")["TrainingJobStatus"] == "Stopped"


def test_the_runner_lock_lives_exactly_as_long_as_the_process_holding_it(tmp_path: Path) -> None:
    path = tmp_path / "runner.lock"
    assert not lock_held(path)  # never created: nobody ever held it
    fd = hold_lock(path)
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE, pass_fds=(fd,)
    )
    os.close(fd)  # the starter lets go: the child holds it now
    try:
        assert lock_held(path)
        with pytest.raises(BlockingIOError):
            hold_lock(path)
    finally:
        child.communicate(b"")
    assert not lock_held(path)
