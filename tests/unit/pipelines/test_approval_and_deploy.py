"""The approval and deploy stages of the pipeline template, and the drift monitor reading the endpoint's capture."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_dl_provider.exceptions import PipelineConfigError
from airflow_dl_provider.pipelines.config import load_config
from airflow_dl_provider.pipelines.loader import dags_from_files

DIGITS_YAML = Path(__file__).resolve().parents[3] / "dags" / "configs" / "digits.yaml"


@pytest.fixture
def digits() -> dict[str, Any]:
    content = yaml.safe_load(DIGITS_YAML.read_text())
    # The copy lives elsewhere: its source_dir, relative to the config, points at the repository's.
    content["training"]["source_dir"] = str(
        (DIGITS_YAML.parent / content["training"]["source_dir"]).resolve()
    )
    # The closed loop, whatever the demo config holds: approve, deploy, watch the endpoint's capture.
    content["registry"].pop("approval_status", None)
    content.update(
        approval="auto",
        min_accuracy=0.9,
        deploy={"traffic_shift": "canary", "traffic_percent": 10, "wait_seconds": 0},
    )
    content["drift"] = {"schedule": "@hourly"}
    return content


def _write(tmp_path: Path, content: dict[str, Any]) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(content))
    return path


def _error(tmp_path: Path, content: dict[str, Any]) -> str:
    path = _write(tmp_path, content)
    with pytest.raises(PipelineConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message, message
    return message.removeprefix(f"{path}: ")


def _dags(tmp_path: Path, content: dict[str, Any]) -> dict[str, Any]:
    dags = dags_from_files([_write(tmp_path, content)])
    assert "dl_pipeline_config_errors" not in dags, dags["dl_pipeline_config_errors"].config_errors
    return dags


def test_deploy_needs_an_approval(tmp_path: Path, digits: dict[str, Any]) -> None:
    del digits["approval"]
    assert _error(tmp_path, digits) == (
        "deploy: serves an approved model package; add a registry section and approval: human | auto"
    )


def test_a_preapproved_registration_would_skip_the_gate(tmp_path: Path, digits: dict[str, Any]) -> None:
    digits["registry"]["approval_status"] = "Approved"
    assert _error(tmp_path, digits).startswith(
        "registry.approval_status: Approved skips the approval stage; leave it PendingManualApproval"
    )


def test_auto_approval_needs_an_evaluation(tmp_path: Path, digits: dict[str, Any]) -> None:
    del digits["transform"]
    assert _error(tmp_path, digits).startswith(
        "approval: auto approves on the test split's evaluation; add a transform section"
    )


def test_a_linear_step_under_ten_percent_is_refused(tmp_path: Path, digits: dict[str, Any]) -> None:
    digits["deploy"].update(traffic_shift="linear", traffic_percent=5)
    assert _error(tmp_path, digits) == (
        "deploy.traffic_percent: Value error, a linear step must be 10-50 (percent of the capacity) (got 5)"
    )


def test_drift_without_data_or_endpoint_is_refused(tmp_path: Path, digits: dict[str, Any]) -> None:
    del digits["deploy"]
    assert _error(tmp_path, digits) == (
        "drift.data_uri: set the data to watch, or add a deploy section whose data capture it reads"
    )


def test_deploy_follows_the_gate_with_capture_on(tmp_path: Path, digits: dict[str, Any]) -> None:
    from airflow_dl_provider.operators.approval import AutoApprovalOperator
    from airflow_dl_provider.operators.endpoints import EndpointDeployOperator

    dag = _dags(tmp_path, digits)["dl_pipeline_digits"]

    approve, deploy = dag.get_task("approve"), dag.get_task("deploy")
    assert isinstance(approve, AutoApprovalOperator) and isinstance(deploy, EndpointDeployOperator)
    assert approve.upstream_task_ids == {"register", "evaluate"}
    assert deploy.upstream_task_ids == {"approve"}
    assert approve.min_score == 0.9 and "'evaluate'" in str(approve.score)
    assert deploy.endpoint_name == "digits"
    assert deploy.data_capture_s3_uri == "s3://airflow-dl-demo/digits/capture"
    assert deploy.capture_options["InitialSamplingPercentage"] == 100
    # The config's traffic shift: a blue/green update, a 10% canary first.
    routing = deploy.deployment.to_request("cfg")["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {
        "Type": "CANARY",
        "WaitIntervalInSeconds": 0,
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
    }
    assert "'register'" in str(deploy.model.model_package_arn)
    assert (
        "`approve` (AutoApprovalOperator)" in dag.doc_md and "`deploy` (EndpointDeployOperator)" in dag.doc_md
    )


def test_human_approval_is_the_gate_of_this_airflow(tmp_path: Path, digits: dict[str, Any]) -> None:
    from airflow_dl_provider.operators.approval import hitl_available

    digits["approval"] = "human"
    approve = _dags(tmp_path, digits)["dl_pipeline_digits"].get_task("approve")
    expected = "HumanApprovalOperator" if hitl_available() else "ModelApprovalSensor"
    assert type(approve).__name__ == expected
    if hitl_available():
        assert "| accuracy | {{ ti.xcom_pull(task_ids='evaluate')['value'] }} |" in approve.body


def test_the_challenger_goes_through_the_same_gate_and_deploy(tmp_path: Path, digits: dict[str, Any]) -> None:
    retrain = _dags(tmp_path, digits)["dl_retrain_digits"]

    approve, deploy = retrain.get_task("approve_challenger"), retrain.get_task("deploy_challenger")
    assert approve.upstream_task_ids == {"decide"} and deploy.upstream_task_ids == {"approve_challenger"}
    assert "'decide'" in str(approve.passed) and "'register_challenger'" in str(approve.model_package_arn)
    assert deploy.endpoint_name == "digits"
    assert "'register_challenger'" in str(deploy.model.model_package_arn)
    # The gate sets the challenger's status, not decide: with human, a person decides first.
    assert retrain.get_task("decide").update_package is False


def test_drift_monitor_reads_the_endpoints_capture(tmp_path: Path, digits: dict[str, Any]) -> None:
    monitor = _dags(tmp_path, digits)["dl_drift_monitor_digits"]

    check = monitor.get_task("check_drift")
    # SageMaker's layout: <destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl
    assert check.data_uri == "s3://airflow-dl-demo/digits/capture/digits/"
    assert check.data_format == "data_capture"
    # No request captured yet is no evidence of drift: the check skips.
    assert check.soft_fail is True
    assert check.upstream_task_ids == {"has_champion"}


def test_a_given_data_uri_is_watched_as_before(tmp_path: Path, digits: dict[str, Any]) -> None:
    digits["drift"].update(data_uri="s3://airflow-dl-demo/digits/incoming/", data_format="csv")
    check = _dags(tmp_path, digits)["dl_drift_monitor_digits"].get_task("check_drift")
    assert (check.data_uri, check.data_format, check.soft_fail) == (
        "s3://airflow-dl-demo/digits/incoming/",
        "csv",
        False,
    )


def test_drift_check_before_any_champion_is_skipped_with_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from airflow_dl_provider.pipelines.monitoring import champion_found

    caplog.set_level(logging.INFO)
    # find_champion's "found" as the template renders it.
    assert champion_found("False", "digits") is False
    assert (
        "No approved model package in digits yet, so no baseline: the drift check is skipped" in caplog.text
    )
    assert champion_found("True", "digits") is True
