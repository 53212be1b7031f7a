"""The ``label_studio`` connection type, declared once for the hook and the provider info (no imports)."""

from __future__ import annotations

from typing import Any

CONN_TYPE = "label_studio"
HOOK_NAME = "Label Studio"
HOOK_CLASS = "airflow_dl_provider.hooks.label_studio.LabelStudioHook"
DEFAULT_CONN_ID = "label_studio_default"
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["schema", "port", "login"],
    "relabeling": {"host": "Label Studio URL", "password": "API token"},
    "placeholders": {
        "host": "https://label-studio.example.com",
        "password": "personal access token (or a legacy token)",
    },
}
CONN_FIELDS: dict[str, Any] = {
    "timeout": {
        "label": "Timeout (seconds)",
        "description": "Seconds per Label Studio API request (default 60).",
        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
    }
}


def provider_connection_type() -> dict[str, Any]:
    """The ``connection-types`` entry of the provider info."""
    return {
        "connection-type": CONN_TYPE,
        "hook-class-name": HOOK_CLASS,
        "hook-name": HOOK_NAME,
        "conn-fields": CONN_FIELDS,
        "ui-field-behaviour": {
            "hidden-fields": list(UI_FIELD_BEHAVIOUR["hidden_fields"]),
            "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
            "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
        },
    }
