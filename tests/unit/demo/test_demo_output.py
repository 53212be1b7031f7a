"""The demo's own output and data: each local job printed once across its DAG runs; the digits uploaded whole."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from airflow_dl_provider import demo
from airflow_dl_provider.backends.local.state import write_json_atomic

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def _job(home: Path, name: str, status: str, secondary: str) -> None:
    write_json_atomic(
        home / "jobs" / "training" / name / "state.json",
        {"TrainingJobName": name, "TrainingJobStatus": status, "SecondaryStatus": secondary},
    )


def _watch(home: Path, change: Any, monkeypatch: pytest.MonkeyPatch, expected: int) -> list[str]:
    """Run the watcher as one DAG run does; ``change`` writes job states once it has read the store."""
    from airflow_dl_provider.backends.local import state
    from airflow_dl_provider.backends.local.workers import LOCAL_WORKERS

    printed: list[str] = []
    scans: list[str] = []

    class Store(state.JobStore):
        def all(self, kind: str) -> list[state.LocalJob]:
            found = super().all(kind)
            scans.append(kind)
            return found

    monkeypatch.setattr(state, "JobStore", Store)
    monkeypatch.setattr(demo, "say", printed.append)
    done = threading.Event()
    watcher = threading.Thread(target=demo.watch_jobs, args=(home, done, time.monotonic()))
    watcher.start()
    try:
        _until(lambda: len(scans) >= len(LOCAL_WORKERS))  # its first look at the store is over
        change()
        _until(lambda: len(printed) >= expected)
    finally:
        done.set()
        watcher.join()
    return [line.split("s  ", 1)[1] for line in printed]


def _until(predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_job_of_an_earlier_dag_run_is_not_printed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _job(tmp_path, "earlier", "Completed", "Completed")
    printed = _watch(tmp_path, lambda: _job(tmp_path, "this-run", "InProgress", "Training"), monkeypatch, 1)
    assert printed == ["training job this-run: InProgress/Training"]
    # The next DAG run: both jobs are earlier ones now; only a change is news, printed once.
    printed = _watch(tmp_path, lambda: _job(tmp_path, "this-run", "Completed", "Completed"), monkeypatch, 1)
    assert printed == ["training job this-run: Completed/Completed"]


def test_the_digits_upload_is_whole(local_backend: Any) -> None:
    seeded = demo.seed_digits(local_backend.s3, local_backend.bucket, "demo")
    keys = [
        obj["Key"]
        for page in local_backend.s3.get_paginator("list_objects_v2").paginate(
            Bucket=local_backend.bucket, Prefix="demo/images/"
        )
        for obj in page.get("Contents", [])
    ]
    assert seeded["images"] == len(keys) == 1797
    assert keys == [f"demo/images/{i:04d}.png" for i in range(1797)]
    _data, images = demo.digits_csv()
    body = local_backend.s3.get_object(Bucket=local_backend.bucket, Key="demo/images/1796.png")["Body"].read()
    assert body == demo.encode_png_gray(images[1796][1])
