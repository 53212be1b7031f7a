"""Pipeline config rules of the labeling and compile stages: refused at DAG import, one line naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_dl_provider.exceptions import PipelineConfigError
from airflow_dl_provider.pipelines.config import load_config

DIGITS_YAML = Path(__file__).resolve().parents[3] / "dags" / "configs" / "digits.yaml"
PUBLIC = "arn:aws:sagemaker:us-east-1:394669845002:workteam/public-crowd/default"


@pytest.fixture
def digits() -> dict[str, Any]:
    return yaml.safe_load(DIGITS_YAML.read_text())


def _error(tmp_path: Path, content: dict[str, Any]) -> str:
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(PipelineConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: "), message
    return message.removeprefix(f"{path}: ")


def test_public_workteam_is_refused(tmp_path: Path, digits: dict[str, Any]) -> None:
    digits["labeling"]["workteam_arn"] = PUBLIC
    message = _error(tmp_path, digits)
    assert message.startswith("labeling.workteam_arn: ")
    assert "Amazon Mechanical Turk (the public workforce) closed on 2026-09-30" in message
    assert "private or vendor work team" in message


def test_a_price_per_task_is_refused(tmp_path: Path, digits: dict[str, Any]) -> None:
    digits["labeling"]["task_price_usd"] = 0.036
    message = _error(tmp_path, digits)
    assert message.startswith("labeling.task_price_usd: ")
    assert "closed on 2026-09-30" in message and "no longer open to new AWS customers" in message


def test_labeling_needs_a_work_team(tmp_path: Path, digits: dict[str, Any]) -> None:
    del digits["labeling"]["workteam_arn"]
    assert _error(tmp_path, digits) == "labeling.workteam_arn: required key is missing"


def test_vendor_work_team_loads(tmp_path: Path, digits: dict[str, Any]) -> None:
    digits["labeling"]["workteam_arn"] = "arn:aws:sagemaker:us-east-1:123456789012:workteam/vendor-crowd/acme"
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(digits))
    assert load_config(path).labeling is not None
