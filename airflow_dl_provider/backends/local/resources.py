"""Local SageMaker resources that are not jobs: models, endpoint configs, endpoints, model packages.

Each is one JSON record, ``<home>/resources/<type>/<name>.json``, written atomically; a file lock per
type serialises read-modify-write, so the endpoint server process and the client can both update an
endpoint's record. Fields starting with ``_`` are the backend's own (pids, ports) and never reach a
response.
"""

from __future__ import annotations

import fcntl
import json
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

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        path = self.path(kind, name)
        return json.loads(path.read_text()) if path.exists() else None

    def create(self, kind: str, name: str, record: dict[str, Any]) -> bool:
        """Store a new record; False (nothing written) when the name is taken."""
        with self.locked(kind):
            if self.path(kind, name).exists():
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
        return [json.loads(p.read_text()) for p in sorted(directory.rglob("*.json"))]


def public(record: dict[str, Any]) -> dict[str, Any]:
    """The record without the backend's own ``_`` fields."""
    return {k: v for k, v in record.items() if not k.startswith("_")}
