"""Local jobs on disk: one directory per job, its state in a JSON file replaced atomically.

The runner process and the client both update a job's state; an exclusive file lock around each
read-modify-write keeps a stop request and the runner's progress from overwriting each other.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator


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


class LocalJob:
    """One job directory: ``request.json`` (as sent), ``state.json`` (what Describe adds), ``work/``."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.name = directory.name
        self.kind = directory.parent.name

    @property
    def work(self) -> Path:
        return self.dir / "work"

    def request(self) -> dict[str, Any]:
        return json.loads((self.dir / "request.json").read_text())

    def state(self) -> dict[str, Any]:
        return json.loads((self.dir / "state.json").read_text())

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.dir / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def update(self, **changes: Any) -> dict[str, Any]:
        """Merge ``changes`` into the state and stamp ``LastModifiedTime``; return the new state."""
        with self._locked():
            state = self.state()
            state.update(changes)
            state["LastModifiedTime"] = now_iso()
            write_json_atomic(self.dir / "state.json", state)
            return state

    def transition(self, secondary: str, message: str, **changes: Any) -> None:
        """Record a secondary status and close the previous one, as SageMaker's transitions list does."""
        with self._locked():
            state = self.state()
            stamp = now_iso()
            transitions = state.setdefault("SecondaryStatusTransitions", [])
            if transitions and "EndTime" not in transitions[-1]:
                transitions[-1]["EndTime"] = stamp
            transitions.append({"Status": secondary, "StartTime": stamp, "StatusMessage": message})
            state.update(changes, SecondaryStatus=secondary, LastModifiedTime=stamp)
            write_json_atomic(self.dir / "state.json", state)


class JobStore:
    """All local jobs, by kind and name, under ``home``."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)

    def path(self, kind: str, name: str) -> Path:
        return self.home / "jobs" / kind / name

    def get(self, kind: str, name: str) -> LocalJob | None:
        directory = self.path(kind, name)
        return LocalJob(directory) if (directory / "state.json").exists() else None

    def create(self, kind: str, name: str, request: dict[str, Any], state: dict[str, Any]) -> LocalJob | None:
        """Create the job directory; None when the name is taken (creation is atomic via mkdir)."""
        directory = self.path(kind, name)
        directory.parent.mkdir(parents=True, exist_ok=True)
        try:
            directory.mkdir()
        except FileExistsError:
            return None
        write_json_atomic(directory / "request.json", request)
        write_json_atomic(directory / "state.json", state)
        return LocalJob(directory)

    def all(self, kind: str) -> list[LocalJob]:
        root = self.home / "jobs" / kind
        if not root.is_dir():
            return []
        return [LocalJob(d) for d in sorted(root.iterdir()) if (d / "state.json").exists()]
