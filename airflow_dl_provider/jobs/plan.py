"""What a job family builds: a plan, not side effects.

A family turns its (rendered) specs into a :class:`JobPlan`: the Create request without the job name,
the objects it must find in S3 (:class:`Upload`), the resources it must find in the account
(:class:`Prerequisite`: a Model, a model package group) and the facts its pre-flight checks read.
Building does no I/O. The operator base class then applies ``overrides`` to the whole plan
(:meth:`JobPlan.with_overrides`), makes what must be read first (:meth:`JobPlan.resolved`), validates,
checks, uploads what is absent, ensures each prerequisite and creates the job, written once.

A pure core: no Airflow, no client; reads go through the :class:`ObjectReader` the caller hands in.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from airflow_dl_provider.exceptions import PreflightError

# In an upload's URI, the first 16 hex digits of the body's sha256: a content address, so an
# unchanged input has one key and a retry uploads nothing new.
DIGEST = "{digest}"

# A path to one value of a request: dict keys, and ``(key, value)`` for the element of a list whose
# ``key`` is ``value`` (``("ChannelName", "code")``): overrides may reorder a list, not rename a channel.
PathStep = str | tuple[str, str]
RequestPath = tuple[PathStep, ...]
OnOverride = Literal["follow", "replace"]


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``overrides`` into a copy of ``base``: dicts merge key by key, anything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def path_text(path: RequestPath) -> str:
    """``InputDataConfig[ChannelName=code].DataSource``: how messages name a request field."""
    out = ""
    for step in path:
        out += f"[{step[0]}={step[1]}]" if isinstance(step, tuple) else f".{step}"
    return out.lstrip(".")


_MISSING = object()


def _parent(request: Any, path: RequestPath) -> tuple[Any, PathStep] | None:
    node = request
    for step in path[:-1]:
        node = _step(node, step)
        if node is _MISSING:
            return None
    return node, path[-1]


def _step(node: Any, step: PathStep) -> Any:
    if isinstance(step, tuple):
        key, value = step
        if not isinstance(node, list):
            return _MISSING
        return next((item for item in node if isinstance(item, Mapping) and item.get(key) == value), _MISSING)
    if not isinstance(node, Mapping) or step not in node:
        return _MISSING
    return node[step]


def get_path(request: Mapping[str, Any], path: RequestPath) -> Any:
    """The value at ``path``, or :data:`_MISSING`."""
    parent = _parent(request, path)
    return _MISSING if parent is None else _step(*parent)


def set_path(request: dict[str, Any], path: RequestPath, value: Any) -> None:
    parent = _parent(request, path)
    if parent is None or isinstance(parent[1], tuple) or not isinstance(parent[0], dict):
        raise KeyError(path_text(path))
    parent[0][parent[1]] = value


class ObjectReader(Protocol):
    """The reads a derived upload may make; the operator hands in one built from its S3 client."""

    def keys(self, uri: str) -> list[str]:
        """Every object key under the ``s3://bucket/prefix`` ``uri`` (the bucket's keys, not URIs)."""
        ...

    def read(self, uri: str) -> bytes:
        """The bytes of the object ``uri``."""
        ...


@dataclass(frozen=True)
class Derived:
    """A body made from what S3 or the local disk holds, at pre-flight: building reads nothing.

    :param what: for messages and logs, e.g. ``manifest of the objects under s3://b/pets/``.
    :param make: the bytes, from reads through the reader it is handed.
    """

    what: str
    make: Callable[[ObjectReader], bytes]


Body = bytes | Path | Derived


@dataclass(frozen=True)
class Upload:
    """An object the request names, which must be in S3 before the job starts.

    :param uri: where it goes; :data:`DIGEST` in it becomes the body's content address.
    :param body: the bytes, a local file, or :class:`Derived` (made at pre-flight).
    :param at: the request field that names ``uri``.
    :param json_encoded: the field holds ``json.dumps(uri)`` (a script-mode hyperparameter).
    :param on_override: what an override of the field ``at`` means: ``follow``: upload the same body
        to the URI the override names; ``replace``: the override names an object that is already
        there (e.g. your own manifest), so this body is not uploaded.
    :param argument: the operator argument the body comes from, for messages (``source_dir``).
    """

    uri: str
    body: Body
    at: RequestPath
    json_encoded: bool = False
    on_override: OnOverride = "follow"
    argument: str = ""

    def data(self) -> bytes:
        """The body's bytes (a :class:`Derived` body must be resolved first)."""
        if isinstance(self.body, Derived):
            raise TypeError(f"{self.uri}: a derived body is made by JobPlan.resolved")
        return self.body.read_bytes() if isinstance(self.body, Path) else self.body


@dataclass(frozen=True)
class Prerequisite:
    """A resource the job's request names, created first unless it exists (reattach-style).

    :param noun: for logs, e.g. ``Model``.
    :param create_operation: e.g. ``CreateModel``; ``Describe`` + the same noun finds an existing one.
    :param name_field: the resource's name in ``request``, e.g. ``ModelName``.
    :param request: the Create request.
    :param at: the job request's field that names this resource: an override there renames it.
    """

    noun: str
    create_operation: str
    name_field: str
    request: dict[str, Any]
    at: RequestPath | None = None

    @property
    def describe_operation(self) -> str:
        return "Describe" + self.create_operation.removeprefix("Create")

    @property
    def name(self) -> str:
        return str(self.request[self.name_field])


@dataclass(frozen=True)
class JobPlan:
    """One job's request and everything it needs first; pure data, built without I/O.

    :param request: the Create request, without the job's name (the operator decides it).
    :param uploads: objects the request names, uploaded if absent.
    :param prerequisites: resources the request names, created if absent, in order.
    :param facts: what pre-flight checks read besides the request (prices, cost ceilings, the
        distribution); a fact a family derives from an upload goes with it (an override that
        replaces the upload makes the family read the object named instead).
    """

    request: dict[str, Any]
    uploads: tuple[Upload, ...] = ()
    prerequisites: tuple[Prerequisite, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)

    def upload_at(self, path: RequestPath) -> Upload | None:
        """The upload the request field ``path`` names, if the plan has one."""
        return next((u for u in self.uploads if u.at == path), None)

    def with_overrides(self, overrides: Mapping[str, Any]) -> JobPlan:
        """``overrides`` deep-merged into the request; what the uploads and prerequisites are follows it.

        An upload moves to the URI the override names (``follow``) or is dropped (``replace``); a
        prerequisite named at an overridden field takes that name (``ModelName`` names the Model that is
        created).

        :raises PreflightError: an override removed the field that names an upload.
        """
        if not overrides:
            return self
        request = deep_merge(self.request, overrides)
        uploads = []
        for upload in self.uploads:
            value = get_path(request, upload.at)
            if value is _MISSING:
                raise PreflightError(
                    f"overrides: {path_text(upload.at)} is gone, but it names where the job finds its "
                    f"{upload.argument or 'input'} ({upload.uri}); keep it"
                )
            uri = json.loads(value) if upload.json_encoded and isinstance(value, str) else value
            if uri == upload.uri:
                uploads.append(upload)
            elif upload.on_override == "follow":
                uploads.append(dataclasses.replace(upload, uri=str(uri)))
        prerequisites = []
        for prerequisite in self.prerequisites:
            name = None if prerequisite.at is None else get_path(request, prerequisite.at)
            if name is None or name is _MISSING or name == prerequisite.name:
                prerequisites.append(prerequisite)
                continue
            renamed = {**prerequisite.request, prerequisite.name_field: name}
            prerequisites.append(dataclasses.replace(prerequisite, request=renamed))
        return dataclasses.replace(
            self, request=request, uploads=tuple(uploads), prerequisites=tuple(prerequisites)
        )

    def resolved(self, reader: ObjectReader) -> JobPlan:
        """Derived bodies made (through ``reader``) and every :data:`DIGEST` filled in, in the request too."""
        request = copy.deepcopy(self.request)
        uploads = []
        for upload in self.uploads:
            body: Body = upload.body
            if isinstance(body, Derived):
                try:
                    body = body.make(reader)
                except ValueError as err:  # PreflightError from the reader, or the maker's own
                    raise PreflightError(f"{upload.argument or upload.uri}: {err}") from None
            uri = upload.uri
            if DIGEST in uri:
                data = body.read_bytes() if isinstance(body, Path) else body
                assert isinstance(data, bytes)
                uri = uri.replace(DIGEST, content_address(data))
                set_path(request, upload.at, json.dumps(uri) if upload.json_encoded else uri)
            uploads.append(dataclasses.replace(upload, uri=uri, body=body))
        return dataclasses.replace(self, request=request, uploads=tuple(uploads))


def content_address(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]
