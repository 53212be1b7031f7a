"""What MWAA runs, put in the bucket so that only what changed is uploaded.

``requirements.txt`` and ``plugins.zip`` are staged under content-addressed keys
(``mwaa/requirements/<sha256>/requirements.txt``): the same bytes are the same key, found by a HEAD
and not uploaded again, so their S3 object versions do not change and the environment's parameters
do not either (a new version or key is what makes MWAA reinstall and restart). New bytes get a new
key beside the live one; the environment is switched to it only by the change set that
``stack deploy`` executes after its replacement guard, so a refused or failed deploy leaves the live
environment reading exactly what it read before.

``dags/`` is read continuously by MWAA, so it cannot be staged: :func:`sync_dags` runs after the
environment update succeeded, uploads only files whose SHA-256 differs from the object's, and
deletes the DAG files the package no longer has.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from airflow_dl_provider.stacks.render import StackError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

STAGING_PREFIX = "mwaa/"
DAGS_PREFIX = "dags/"
# The object's own record of its bytes: S3's ETag is no MD5 for SSE-KMS objects, so it cannot tell.
SHA256_METADATA = "sha256"
ARTIFACTS = ("requirements.txt", "plugins.zip")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def staged_key(name: str, data: bytes) -> str:
    """``mwaa/<stem>/<first 16 hex of sha256>/<name>``: one key per content."""
    stem = name.split(".", 1)[0]
    return f"{STAGING_PREFIX}{stem}/{sha256(data)[:16]}/{name}"


@dataclass(frozen=True)
class Staged:
    """One artifact in the bucket.

    :param key: its content-addressed key.
    :param version: its S3 object version ("" when the bucket is not versioned).
    :param uploaded: False when the same bytes were already there.
    """

    name: str
    key: str
    version: str
    uploaded: bool


def _head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return dict(s3.head_object(Bucket=bucket, Key=key))
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def put_if_changed(s3: Any, bucket: str, key: str, data: bytes) -> tuple[str, bool]:
    """Upload ``data`` to ``key`` unless the object there holds the same bytes; (version, uploaded)."""
    digest = sha256(data)
    head = _head(s3, bucket, key)
    if head is not None and head.get("Metadata", {}).get(SHA256_METADATA) == digest:
        return str(head.get("VersionId") or ""), False
    response = s3.put_object(Bucket=bucket, Key=key, Body=data, Metadata={SHA256_METADATA: digest})
    return str(response.get("VersionId") or ""), True


def read_package(package_dir: Path) -> dict[str, bytes]:
    """``requirements.txt`` and ``plugins.zip`` from the package folder, before anything is uploaded."""
    contents = {}
    for name in ARTIFACTS:
        path = package_dir / name
        if not path.is_file():
            raise StackError(f"--package-dir: {path} is missing; run 'airflow-dl stack package' first")
        contents[name] = path.read_bytes()
    return contents


def stage(s3: Any, bucket: str, contents: dict[str, bytes]) -> dict[str, Staged]:
    """Put each artifact under its content-addressed key (if not there already)."""
    staged = {}
    for name, data in contents.items():
        key = staged_key(name, data)
        version, uploaded = put_if_changed(s3, bucket, key, data)
        staged[name] = Staged(name, key, version, uploaded)
    return staged


def stack_parameters(staged: dict[str, Staged]) -> dict[str, str]:
    """The root stack's parameters that point MWAA at the staged artifacts."""
    requirements, plugins = staged["requirements.txt"], staged["plugins.zip"]
    return {
        "RequirementsS3Path": requirements.key,
        "RequirementsObjectVersion": requirements.version,
        "PluginsS3Path": plugins.key,
        "PluginsObjectVersion": plugins.version,
    }


@dataclass(frozen=True)
class DagSync:
    uploaded: tuple[str, ...]
    deleted: tuple[str, ...]
    unchanged: int


def sync_dags(s3: Any, bucket: str, dags_dir: Path, say: Callable[[str], None] = print) -> DagSync:
    """Make ``s3://bucket/dags/`` hold exactly ``dags_dir``'s files, writing only what differs."""
    local = {
        f"{DAGS_PREFIX}{path.relative_to(dags_dir).as_posix()}": path
        for path in sorted(p for p in dags_dir.rglob("*") if p.is_file())
    }
    remote: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=DAGS_PREFIX):
        remote.update(obj["Key"] for obj in page.get("Contents", []))
    uploaded = []
    for key, path in local.items():
        if put_if_changed(s3, bucket, key, path.read_bytes())[1]:
            uploaded.append(key)
    deleted = sorted(remote - set(local))
    for key in deleted:
        s3.delete_object(Bucket=bucket, Key=key)
    result = DagSync(tuple(uploaded), tuple(deleted), len(local) - len(uploaded))
    say(
        f"dags: s3://{bucket}/{DAGS_PREFIX} {len(result.uploaded)} uploaded, {len(result.deleted)} deleted, "
        f"{result.unchanged} unchanged"
    )
    return result
