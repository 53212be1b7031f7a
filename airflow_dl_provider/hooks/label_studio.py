"""The Label Studio connection type and its hook: the server URL and an API token.

A connection of type ``label_studio``: ``host`` is the server's URL (``https://label-studio.example.com``,
or the local server's ``http://127.0.0.1:<port>``), ``password`` an API token: a personal access
token (Account & Settings -> Personal Access Token; the default kind in recent Label Studio) or a
legacy token where the organization still accepts them. Extra ``timeout`` (seconds per request).

The token's user is the one the operator acts as: it creates projects and imports tasks, and its
annotations are never counted as anyone's labels. Give it a service account, not a labeler's.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

try:  # Airflow 3
    from airflow.sdk import BaseHook
except ImportError:  # Airflow 2.x
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]

from airflow_dl_provider.label_studio.connection import (
    CONN_TYPE,
    DEFAULT_CONN_ID,
    HOOK_NAME,
    UI_FIELD_BEHAVIOUR,
)

if TYPE_CHECKING:
    from airflow_dl_provider.label_studio.api import LabelStudioClient


class LabelStudioHook(BaseHook):
    """The Label Studio REST client for one connection.

    :param label_studio_conn_id: a connection of type ``label_studio``.
    """

    conn_name_attr = "label_studio_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = HOOK_NAME

    def __init__(self, label_studio_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.label_studio_conn_id = label_studio_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {key: (list(v) if isinstance(v, list) else dict(v)) for key, v in UI_FIELD_BEHAVIOUR.items()}

    @cached_property
    def client(self) -> LabelStudioClient:
        from airflow_dl_provider.label_studio.api import LabelStudioClient

        conn = self.get_connection(self.label_studio_conn_id)
        host = str(conn.host or "")
        if host and "://" not in host:
            host = f"{conn.schema or 'https'}://{host}"
        if conn.port and host.count(":") < 2:
            host = f"{host}:{conn.port}"
        extra = conn.extra_dejson
        try:
            return LabelStudioClient(host, str(conn.password or ""), timeout=float(extra.get("timeout", 60)))
        except ValueError as err:
            raise ValueError(f"connection {self.label_studio_conn_id!r}: {err}") from None

    def get_conn(self) -> LabelStudioClient:
        return self.client

    def test_connection(self) -> tuple[bool, str]:
        try:
            user = self.client.whoami()
        except Exception as err:
            return False, str(err)
        return True, f"connected to {self.client.url} as {user.get('email')}"
