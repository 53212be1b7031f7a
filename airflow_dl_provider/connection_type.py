"""The provider's connection type: its fields and how the connection form shows them.

A pure core (no Airflow import): :func:`~airflow_dl_provider.get_provider_info.get_provider_info`
declares it for Airflow 3.2+ (``conn-fields``, ``ui-field-behaviour``), and
:class:`~airflow_dl_provider.hooks.sagemaker.SageMakerJobHook` builds the same form for Airflow 2.11
and 3.0/3.1 (``get_connection_form_widgets``, ``get_ui_field_behaviour``) from this one table.

The fields are stored in the connection's extra under their own names (``backend``,
``endpoint_url``, ``local_home``), the keys the hook has always read; an ``aws`` connection with
the same extra works the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

CONN_TYPE = "dl_sagemaker"
HOOK_NAME = "Deep Learning on SageMaker"
BACKENDS = ("aws", "local")


@dataclass(frozen=True)
class ConnectionField:
    """One field of the connection form, stored in the connection's extra under ``name``.

    :param choices: the only values it takes, when it is a choice.
    """

    name: str
    label: str
    description: str
    choices: tuple[str, ...] = ()
    default: str | None = None

    def schema(self) -> dict[str, Any]:
        """The field's JSON schema, as Airflow 3.2+'s ``conn-fields`` reads it."""
        schema: dict[str, Any] = {"type": ["string", "null"]}
        if self.choices:
            schema["enum"] = list(self.choices)
        if self.default is not None:
            schema["default"] = self.default
        return schema


FIELDS: tuple[ConnectionField, ...] = (
    ConnectionField(
        "backend",
        "Backend",
        "aws: SageMaker in your account; local: the embedded local backend on this machine (no AWS).",
        choices=BACKENDS,
        default="aws",
    ),
    ConnectionField(
        "endpoint_url",
        "Local S3 endpoint",
        "local backend only: the embedded S3 server on loopback that `airflow-dl local up` prints.",
    ),
    ConnectionField(
        "local_home",
        "Local home",
        "local backend only: the folder that holds the local jobs (`airflow-dl local up --home`).",
    ),
)

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["host", "schema", "port"],
    "relabeling": {
        "login": "AWS Access Key ID (local: leave empty)",
        "password": "AWS Secret Access Key (local: leave empty)",
    },
    "placeholders": {
        "login": "YOUR_AWS_ACCESS_KEY_ID",
        "password": "YOUR_AWS_SECRET_ACCESS_KEY",
        "extra": json.dumps({"region_name": "us-east-1"}, indent=2),
        "endpoint_url": "http://127.0.0.1:<port>",
        "local_home": "~/.airflow-dl/local",
    },
}


def provider_connection_type(hook_class_name: str) -> dict[str, Any]:
    """The ``connection-types`` entry of the provider info, declared without importing the hook."""
    behaviour = UI_FIELD_BEHAVIOUR
    return {
        "connection-type": CONN_TYPE,
        "hook-class-name": hook_class_name,
        "hook-name": HOOK_NAME,
        "conn-fields": {
            f.name: {"label": f.label, "description": f.description, "schema": f.schema()} for f in FIELDS
        },
        "ui-field-behaviour": {
            "hidden-fields": list(behaviour["hidden_fields"]),
            "relabeling": dict(behaviour["relabeling"]),
            "placeholders": dict(behaviour["placeholders"]),
        },
    }
