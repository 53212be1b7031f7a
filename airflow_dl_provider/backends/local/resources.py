"""Local SageMaker resources that are not jobs: models, endpoint configs, endpoints, model packages.

Each is one JSON record, ``<home>/resources/<type>/<name>.json``, written atomically; a file lock per
type serialises read-modify-write, so the endpoint server process and the client can both update an
endpoint's record. Fields starting with ``_`` are the backend's own (pids, ports) and never reach a
response.

A resource that SageMaker deletes asynchronously (``service_behaviour.ASYNC_DELETE``) is *retired*:
its record stays, in its deleting status, until ``_gone_at``; from then on every read finds nothing,
as Describe answers not found once the service has finished deleting.
"""

from __future__ import annotations

import fcntl
import json
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow_dl_provider.backends.local.state import now_iso, write_json_atomic

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


class ResourceStore:
    """Records by type and name under ``<home>/resources``; names may hold one ``/`` (group/version)."""

    def __init__(self, home: Path) -> None:
        self.root = home / "resources"

    def path(self, kind: str, name: str) -> Path:
        return self.root / kind / f"{name}.json"

    @contextmanager
    def locked(self, kind: str) -> Iterator[None]:
        directory = self.root / kind
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        gone_at = record.get("_gone_at")
        if gone_at is not None and time.time() >= float(gone_at):
            return None  # retired and past its deleting moment: gone (a create of the name overwrites it)
        return record

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return self._read(self.path(kind, name))

    def create(self, kind: str, name: str, record: dict[str, Any]) -> bool:
        """Store a new record; False (nothing written) when the name is taken, also while it is deleting."""
        with self.locked(kind):
            if self.get(kind, name) is not None:
                return False
            write_json_atomic(self.path(kind, name), {"CreationTime": now_iso(), **record})
            return True

    def update(self, kind: str, name: str, **changes: Any) -> dict[str, Any] | None:
        """Merge ``changes`` into a record and stamp ``LastModifiedTime``; None when it does not exist."""
        with self.locked(kind):
            record = self.get(kind, name)
            if record is None:
                return None
            record.update(changes, LastModifiedTime=now_iso())
            write_json_atomic(self.path(kind, name), record)
            return record

    def retire(self, kind: str, name: str, seconds: float, **changes: Any) -> dict[str, Any] | None:
        """Start an asynchronous delete: apply ``changes`` (the deleting status) now, gone after ``seconds``."""
        return self.update(kind, name, **changes, _gone_at=time.time() + seconds)

    def delete(self, kind: str, name: str) -> bool:
        with self.locked(kind):
            path = self.path(kind, name)
            existed = path.exists()
            path.unlink(missing_ok=True)
            return existed

    def all(self, kind: str) -> list[dict[str, Any]]:
        directory = self.root / kind
        if not directory.is_dir():
            return []
        records = (self._read(p) for p in sorted(directory.rglob("*.json")))
        return [r for r in records if r is not None]


def public(record: dict[str, Any]) -> dict[str, Any]:
    """The record without the backend's own ``_`` fields."""
    return {k: v for k, v in record.items() if not k.startswith("_")}
