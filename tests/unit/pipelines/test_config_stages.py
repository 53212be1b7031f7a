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
    assert _error(tmp_path, digits).startswith(
        "labeling.workteam_arn: Value error, Ground Truth needs a private or vendor work team; set it, "
        "or use service: label_studio"
    )


def test_label_studio_labeling_needs_no_work_team(tmp_path: Path, digits: dict[str, Any]) -> None:
    del digits["labeling"]["workteam_arn"]
    digits["labeling"]["service"] = "label_studio"
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(digits))
    labeling = load_config(path).labeling
    assert labeling is not None and labeling.service == "label_studio" and labeling.workteam_arn is None


def test_vendor_work_team_loads(tmp_path: Path, digits: dict[str, Any]) -> None:
    digits["labeling"]["workteam_arn"] = "arn:aws:sagemaker:us-east-1:123456789012:workteam/vendor-crowd/acme"
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(digits))
    assert load_config(path).labeling is not None


# -- the compile stage ---------------------------------------------------------------------------------------


def test_compile_version_neo_does_not_list_is_refused(tmp_path: Path, digits: dict[str, Any]) -> None:
    digits["compilation"]["framework_version"] = "2.5"
    message = _error(tmp_path, digits)
    assert message.startswith("compilation.framework_version: ")
    assert "Neo does not compile PyTorch 2.5 for cloud instances; use one of 1.4" in message


def test_inferentia_version_is_checked_against_its_own_table(tmp_path: Path, digits: dict[str, Any]) -> None:
    digits["compilation"].update(target_device="ml_inf1", framework_version="2.0")
    assert "Neo does not compile PyTorch 2.0 for ml_inf1 (Inferentia)" in _error(tmp_path, digits)


def test_compile_stage_compiles_the_trained_archive_as_a_version_neo_lists(
    tmp_path: Path, digits: dict[str, Any]
) -> None:
    from airflow_dl_provider.pipelines.factory import build_dag, neo_framework_version

    config = load_config(DIGITS_YAML)
    compile_task = build_dag(config, DIGITS_YAML).get_task("compile")
    assert compile_task.framework_version == "2.0"
    assert compile_task.data_input_config == {"input0": [1, 64]}
    assert "ti.xcom_pull(task_ids='tune')['model_artifacts']" in compile_task.model.model_artifacts

    del digits["compilation"]["framework_version"]  # derived from training.framework_version (2.5.1)
    path = tmp_path / "derived.yaml"
    path.write_text(yaml.safe_dump(digits))
    assert neo_framework_version(load_config(path)) == "2.0"
    digits["training"]["framework_version"] = "1.13.1"
    path.write_text(yaml.safe_dump(digits))
    assert neo_framework_version(load_config(path)) == "1.13"
