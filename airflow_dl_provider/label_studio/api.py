"""Label Studio's REST API, through ``requests`` (already installed wherever Airflow is).

Why not ``label-studio-sdk``: its 2.x line needs ``numpy>=2.2`` and cannot install on MWAA (which
pins 1.26.4); 1.0.20 resolves, but brings ``opencv-python``, ``nltk``, ``pandas`` and a pinned
``datamodel-code-generator`` onto every worker for the dozen calls used here. The calls and their
answers are recorded in :mod:`airflow_dl_provider.label_studio.behaviour`, each with its source.

Authentication (``Authorization`` header): a *personal access token* (a JWT refresh token, the
default kind since Label Studio 1.17) is exchanged at ``POST /api/token/refresh/`` for a short-lived
access token sent as ``Bearer <access>``; a *legacy token* (40 hex characters) is sent as
``Token <token>``, and works only where the organization has legacy tokens enabled.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow_dl_provider.exceptions import DLProviderError
from airflow_dl_provider.label_studio.behaviour import ACCESS_TOKEN_REFRESH_SECONDS, token_kind

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

PAGE_SIZE = 1000


def is_labeled(task: Mapping[str, Any]) -> bool:
    """Whether a listed task has as many (not skipped) annotations as its overlap."""
    return bool(task.get("is_labeled")) or int(task.get("total_annotations") or 0) >= int(
        task.get("overlap") or 1
    )


class LabelStudioApiError(DLProviderError):
    """A Label Studio API call failed; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class LabelStudioClient:
    """The calls the labeling operator, its trigger and the local simulated workforce make.

    :param url: the server's base URL, e.g. ``http://127.0.0.1:8081``.
    :param token: a personal access token or a legacy token (see the module docstring).
    :param timeout: seconds per HTTP request.
    """

    def __init__(self, url: str, token: str, *, timeout: float = 60.0) -> None:
        import requests

        if not url.startswith(("http://", "https://")):
            raise ValueError(
                f"url: {url!r} is not an http(s) URL; set the connection's host to the server URL"
            )
        if not token:
            raise ValueError("token: empty; set the connection's password to a Label Studio API token")
        self.url = url.rstrip("/")
        self.token = token
        self.kind = token_kind(token)
        self.timeout = timeout
        self.session = requests.Session()
        self._access: tuple[str, float] | None = None

    # -- transport --------------------------------------------------------------------------------------

    def _authorization(self) -> str:
        if self.kind == "legacy":
            return f"Token {self.token}"
        if self._access is None or time.monotonic() >= self._access[1]:
            answer = self._send("POST", "/api/token/refresh/", json={"refresh": self.token}, auth=False)
            self._access = (str(answer["access"]), time.monotonic() + ACCESS_TOKEN_REFRESH_SECONDS)
        return f"Bearer {self._access[0]}"

    def _send(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> Any:
        import requests

        headers = {"Authorization": self._authorization()} if auth else {}
        try:
            response = self.session.request(
                method, f"{self.url}{path}", headers=headers, timeout=self.timeout, **kwargs
            )
        except requests.RequestException as err:
            raise LabelStudioApiError(f"Label Studio at {self.url}: {method} {path}: {err}") from None
        if response.status_code >= 400:
            detail = response.text.strip().replace("\n", " ")[:300]
            raise LabelStudioApiError(
                f"Label Studio at {self.url}: {method} {path}: HTTP {response.status_code}: {detail}",
                status=response.status_code,
            )
        return response.json() if response.content else None

    # -- the calls --------------------------------------------------------------------------------------

    def whoami(self) -> dict[str, Any]:
        return dict(self._send("GET", "/api/current-user/whoami"))

    def projects(self, title: str | None = None) -> list[dict[str, Any]]:
        """Projects, oldest first; ``title`` filters by exact title (the API's filter is ``icontains``)."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            params: dict[str, Any] = {"page": page, "page_size": 100, "ordering": "id"}
            if title:
                params["title"] = title
            answer = self._send("GET", "/api/projects", params=params)
            found += answer["results"]
            if not answer.get("next"):
                break
            page += 1
        if title is not None:
            found = [p for p in found if p.get("title") == title]
        return sorted(found, key=lambda p: int(p["id"]))

    def create_project(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self._send("POST", "/api/projects", json=dict(fields)))

    def project(self, project_id: int) -> dict[str, Any]:
        return dict(self._send("GET", f"/api/projects/{int(project_id)}"))

    def s3_import_storages(self, project_id: int) -> list[dict[str, Any]]:
        return list(self._send("GET", "/api/storages/s3", params={"project": int(project_id)}))

    def create_s3_import_storage(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self._send("POST", "/api/storages/s3", json=dict(fields)))

    def tasks(self, project_id: int) -> Iterator[dict[str, Any]]:
        """Every task of the project with its ``data``, ``meta``, ``annotators`` and ``is_labeled``."""
        page = 1
        seen = 0
        while True:
            answer = self._send(
                "GET",
                "/api/tasks",
                params={
                    "project": int(project_id),
                    "page": page,
                    "page_size": PAGE_SIZE,
                    "fields": "all",
                    "resolve_uri": "false",
                },
            )
            batch = answer.get("tasks") or []
            yield from batch
            seen += len(batch)
            if not batch or seen >= int(answer.get("total", 0)):
                return
            page += 1

    def labeled(self, project_id: int) -> tuple[int, int]:
        """(labeled, total) tasks, counted from the tasks themselves.

        A task is labeled when it has as many annotations as its overlap. Not the project's
        ``finished_task_number``: each task's ``is_labeled`` flag behind it can stay false when
        annotations of one task arrive at once (:data:`~.behaviour.IS_LABELED_CAN_LAG`).
        """
        tasks = list(self.tasks(project_id))
        done = sum(1 for t in tasks if is_labeled(t))
        return done, len(tasks)

    def import_tasks(self, project_id: int, tasks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """``POST /api/projects/{id}/import``: tasks (``data``, ``meta``, inline ``predictions``)."""
        return dict(self._send("POST", f"/api/projects/{int(project_id)}/import", json=list(tasks)))

    def create_annotation(
        self,
        task_id: int,
        result: Sequence[Mapping[str, Any]],
        *,
        completed_by: int | None = None,
        lead_time: float | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"result": list(result)}
        if completed_by is not None:
            body["completed_by"] = int(completed_by)
        if lead_time is not None:
            body["lead_time"] = float(lead_time)
        return dict(self._send("POST", f"/api/tasks/{int(task_id)}/annotations/", json=body))

    def export(self, project_id: int) -> list[dict[str, Any]]:
        """``GET /api/projects/{id}/export?exportType=JSON``, every task (``download_all_tasks``)."""
        answer = self._send(
            "GET",
            f"/api/projects/{int(project_id)}/export",
            params={"exportType": "JSON", "download_all_tasks": "true"},
        )
        return list(answer)

    def users(self) -> list[dict[str, Any]]:
        return list(self._send("GET", "/api/users/"))

    def create_user(self, email: str, first_name: str, last_name: str) -> dict[str, Any]:
        return dict(
            self._send(
                "POST",
                "/api/users/",
                json={
                    "email": email,
                    "username": email.split("@")[0],
                    "first_name": first_name,
                    "last_name": last_name,
                },
            )
        )
