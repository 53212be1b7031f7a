"""Hyperparameters as SageMaker carries them: a map of strings, each the JSON of its value where it has one.

A pure core (no Airflow, no backend): the local backend's training toolkit decodes a job's
hyperparameters with it, and the tuning operator the trials' tuned ones, so both read one value the
same way.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping


def decode_hyperparameters(raw: Mapping[str, str]) -> dict[str, Any]:
    """Each value JSON-decoded where it is JSON (``"0.1"`` -> 0.1, ``'"adam"'`` -> ``"adam"``), else as sent.

    What SageMaker's training toolkit does before it builds the script's environment and argv.
    """
    return {key: _json_or_text(value) for key, value in raw.items()}


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value
