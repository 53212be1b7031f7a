"""Local jobs on disk: one directory per job, its state in a JSON file replaced atomically.

The rules that keep a job from being lost or invented (docs/local-backend.rst, "Durability"):

* A job comes into being by one ``rename``: its directory is built beside the name, complete with
  its request, its state and its runner's lock, then renamed into place. A name is either free or
  names a whole job; a creator that dies half-way leaves a hidden staging directory, swept later.
* Its runner is alive exactly while ``runner.lock`` is locked (:mod:`.processes`): the creator takes
  the lock before the rename and hands it to the runner, so no moment exists in which a job that
  was just created looks abandoned, and a creator that dies before starting the runner drops it.
* Every state change is a check-and-set under ``state.lock``: a finished job stays finished, and a
  job that Stop reached ends Stopped (as the service says: "After SageMaker stops the job, it sets
  the status to Stopped"), never Completed.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_dl_provider.backends.local.processes import hold_lock, lock_held
from airflow_dl_provider.jobs.kinds import JOB_KINDS

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator

RUNNER_LOCK = "runner.lock"
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
# Where a job may go once Stop was accepted: the service sets Stopped once it has stopped the job.
_AFTER_STOPPING = frozenset({"Stopping", "Stopped", "Failed"})
_STAGING_SUFFIX = ".creating"
# A staging directory younger than this may belong to a creator that has not locked it yet.
_STAGING_GRACE_SECONDS = 60.0


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON so that readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=True, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class StatusConflict(Exception):
    """A status change the job's current status does not allow (the check of a check-and-set)."""

    def __init__(self, name: str, current: str, wanted: str) -> None:
        super().__init__(f"local job {name} is {current}; it cannot become {wanted}")
        self.current = current
        self.wanted = wanted


class LocalJob:
    """One job directory: ``request.json`` (as sent), ``state.json`` (what Describe adds), ``work/``."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.name = directory.name
        self.kind = directory.parent.name

    @property
    def work(self) -> Path:
        return self.dir / "work"

    @property
    def status_field(self) -> str:
        return JOB_KINDS[self.kind].status_field

    def request(self) -> dict[str, Any]:
        return json.loads((self.dir / "request.json").read_text())

    def state(self) -> dict[str, Any]:
        return json.loads((self.dir / "state.json").read_text())

    def status(self) -> str:
        return str(self.state()[self.status_field])

    def runner_alive(self) -> bool:
        """Is the job's runner (or, until it starts, its creator) alive? A lock probe: no pid, no signal."""
        return lock_held(self.dir / RUNNER_LOCK)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.dir / "state.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _change(
        self, expect: Collection[str] | None, change: Callable[[dict[str, Any], str], None]
    ) -> dict[str, Any]:
        """Read, check, change and write the state under the lock; return the new state.

        :param expect: the statuses the job must be in (None: any that allows the change).
        :raises StatusConflict: the job is not in ``expect``, or the change would move it out of a
            terminal status, or from Stopping to anything but Stopped or Failed.
        """
        with self._locked():
            state = self.state()
            current = str(state[self.status_field])
            stamp = now_iso()
            change(state, stamp)
            wanted = str(state[self.status_field])
            if expect is not None and current not in expect:
                raise StatusConflict(self.name, current, wanted)
            if wanted != current and (
                current in TERMINAL or (current == "Stopping" and wanted not in _AFTER_STOPPING)
            ):
                raise StatusConflict(self.name, current, wanted)
            state["LastModifiedTime"] = stamp
            write_json_atomic(self.dir / "state.json", state)
            return state

    def update(self, **changes: Any) -> dict[str, Any]:
        """Merge ``changes`` into the state and stamp ``LastModifiedTime``; return the new state.

        :raises StatusConflict: see :meth:`_change`.
        """
        return self._change(None, lambda state, _: state.update(changes))

    def update_if(self, expected: Collection[str], /, **changes: Any) -> dict[str, Any]:
        """:meth:`update` as a check-and-set: only a job in one of the ``expected`` statuses changes."""
        return self._change(expected, lambda state, _: state.update(changes))

    def transition(self, secondary: str, message: str, /, **changes: Any) -> dict[str, Any]:
        """Record a secondary status and close the previous one, as SageMaker's transitions list does.

        :raises StatusConflict: see :meth:`_change`.
        """
        return self._change(None, self._transition(secondary, message, changes))

    def transition_if(
        self, expected: Collection[str], secondary: str, message: str, /, **changes: Any
    ) -> dict[str, Any]:
        """:meth:`transition` as a check-and-set: only a job in one of the ``expected`` statuses changes."""
        return self._change(expected, self._transition(secondary, message, changes))

    @staticmethod
    def _transition(
        secondary: str, message: str, changes: dict[str, Any]
    ) -> Callable[[dict[str, Any], str], None]:
        def change(state: dict[str, Any], stamp: str) -> None:
            transitions = state.setdefault("SecondaryStatusTransitions", [])
            if transitions and "EndTime" not in transitions[-1]:
                transitions[-1]["EndTime"] = stamp
            transitions.append({"Status": secondary, "StartTime": stamp, "StatusMessage": message})
            state.update(changes, SecondaryStatus=secondary)

        return change

    def end_without_runner(self, noun: str) -> dict[str, Any]:
        """End a job whose runner is gone: Stopped if Stop reached it, else Failed; return the state.

        Called only once :meth:`runner_alive` said no, which is final: a runner never comes back. A
        job that recorded its own end meanwhile keeps it.
        """
        state = self.state()
        if state[self.status_field] in TERMINAL:
            return state
        running = {str(state[self.status_field])}
        try:
            if state[self.status_field] == "Stopping":
                return self.transition_if(
                    running, "Stopped", f"{noun} stopped", **{self.status_field: "Stopped"}
                )
            if "_runner_started" in state:
                reason = "the local runner process exited before the job ended"
            else:
                reason = "the local runner never started (the process that created the job exited first)"
            reason = f"InternalServerError: {reason}; see {self.dir / 'runner.log'}"
            return self.update_if(running, **{self.status_field: "Failed", "FailureReason": reason})
        except StatusConflict:
            return self.state()  # another caller ended it first


@dataclass
class NewJob:
    """A job just renamed into place, and the descriptor holding its runner lock until a runner has it."""

    job: LocalJob
    runner_lock: int


class JobStore:
    """All local jobs, by kind and name, under ``home``."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)

    def path(self, kind: str, name: str) -> Path:
        return self.home / "jobs" / kind / name

    def get(self, kind: str, name: str) -> LocalJob | None:
        directory = self.path(kind, name)
        return LocalJob(directory) if (directory / "state.json").exists() else None

    @contextmanager
    def creating(
        self, kind: str, name: str, request: dict[str, Any], state: dict[str, Any]
    ) -> Iterator[NewJob | None]:
        """Create the job in one rename; yield it (None when the name is taken) with its runner lock.

        Start the runner inside the block, handing it ``runner_lock``; the block's end closes this
        process's copy, so a creator that never starts a runner leaves a job that Describe reports
        Failed instead of one that is InProgress forever.
        """
        root = self.home / "jobs" / kind
        root.mkdir(parents=True, exist_ok=True)
        self._sweep(root)
        staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}.", suffix=_STAGING_SUFFIX))
        lock = hold_lock(staging / RUNNER_LOCK)
        try:
            write_json_atomic(staging / "request.json", request)
            write_json_atomic(staging / "state.json", state)
            try:
                os.rename(staging, root / name)  # the create: atomic, and refused if the name is a job
            except OSError as err:
                if err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                shutil.rmtree(staging, ignore_errors=True)
                yield None
                return
            yield NewJob(LocalJob(root / name), lock)
        finally:
            os.close(lock)
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    @staticmethod
    def _sweep(root: Path) -> None:
        """Remove what creators that died before their rename left behind (their lock is free)."""
        for staging in root.glob(f".*{_STAGING_SUFFIX}"):
            try:
                old = time.time() - staging.stat().st_mtime > _STAGING_GRACE_SECONDS
            except FileNotFoundError:
                continue
            if old and not lock_held(staging / RUNNER_LOCK):
                shutil.rmtree(staging, ignore_errors=True)

    def all(self, kind: str) -> list[LocalJob]:
        root = self.home / "jobs" / kind
        if not root.is_dir():
            return []
        return [
            LocalJob(d)
            for d in sorted(root.iterdir())
            if not d.name.startswith(".") and (d / "state.json").exists()
        ]
