"""A config with ``regions``: a TaskGroup of stages per region, nothing crossing regions, one comparison."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider.exceptions import PipelineConfigError
from airflow_dl_provider.pipelines.config import load_config
from airflow_dl_provider.pipelines.factory import build_dag
from airflow_dl_provider.pipelines.regions import compare_models, in_group

if TYPE_CHECKING:
    from pathlib import Path

CONFIG = """
pipeline: digits
role_arn: arn:aws:iam::123456789012:role/SageMakerExecution
bucket: home-bucket
prefix: digits
data:
  source: s3://home-bucket/digits/raw/digits.csv
labeling:
  input_prefix: s3://home-bucket/digits/images/
  labels: [a, b]
  workteam_arn: arn:aws:sagemaker:eu-west-1:123456789012:workteam/private-crowd/team
label_validation: {{}}
training:
  entry_point: train.py
  source_dir: {source_dir}
  instance_type: ml.m5.xlarge
  metric_definitions: {{test_accuracy: "test_accuracy=([0-9.]+)"}}
regions:
  - {{region: eu-west-1, bucket: data-eu, role_arn: "arn:aws:iam::123456789012:role/SMEu", aws_conn_id: aws_eu}}
  - region: us-west-2
    bucket: data-us
    role_arn: arn:aws:iam::123456789012:role/SMUs
    aws_conn_id: aws_us
    workteam_arn: arn:aws:sagemaker:us-west-2:123456789012:workteam/private-crowd/team-us
{extra}
"""
REGIONS = {"eu-west-1": ("data-eu", "aws_eu", "SMEu"), "us-west-2": ("data-us", "aws_us", "SMUs")}


def _write(tmp_path: Path, extra: str = "") -> Path:
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    (source / "train.py").write_text("print('test_accuracy=0.9')\n")
    path = tmp_path / "multi.yaml"
    path.write_text(CONFIG.format(source_dir=source, extra=extra))
    return path


def _strings(value: Any) -> list[str]:
    """Every string an operator's template fields hold, through nested specs, as Airflow renders them."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return [s for name in getattr(value, "template_fields", ()) for s in _strings(getattr(value, name))]


def test_each_region_runs_its_own_stages_with_its_own_connection_bucket_and_role(tmp_path: Path) -> None:
    path = _write(tmp_path)
    dag = build_dag(load_config(path), path)

    downstream = {t.task_id: t.downstream_task_ids for t in dag.tasks}
    for region in REGIONS:
        assert downstream[f"{region}.label"] == {f"{region}.validate_labels"}
        assert downstream[f"{region}.validate_labels"] == {f"{region}.prepare_data"}
        assert downstream[f"{region}.prepare_data"] == {f"{region}.train"}
        assert downstream[f"{region}.train"] == {"compare_regions"}
    assert len(dag.tasks) == 9
    for task in dag.tasks:
        if task.task_id == "compare_regions":
            continue
        region, _, _ = task.task_id.partition(".")
        bucket, conn, role = REGIONS[region]
        assert (task.aws_conn_id, task.region_name) == (conn, region), task.task_id
        strings = _strings(task)
        other = next(b for r, (b, _, _) in REGIONS.items() if r != region)
        assert not [s for s in strings if other in s or "home-bucket" in s], task.task_id
        assert all(s.startswith(f"s3://{bucket}/") for s in strings if s.startswith("s3://")), task.task_id
        # Upstream XCom is the region's own task's.
        for s in strings:
            if "task_ids=" in s:
                assert f"task_ids='{region}." in s, (task.task_id, s)
        if hasattr(task, "role_arn"):
            assert task.role_arn.endswith(f"role/{role}")
    train = dag.get_task("eu-west-1.train")
    assert train.training.output_path == "s3://data-eu/digits/models"
    assert train.job_name_prefix == "digits_eu_west_1-train"
    assert dag.get_task("us-west-2.label").workteam_arn.endswith("team-us")
    assert dag.get_task("us-west-2.label").input_prefix == "s3://data-us/digits/images/"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "tuning: {objective_metric: test_accuracy, parameter_ranges: {lr: {type: continuous, min: 0.1, max: 1}}}",
            r"regions: a regional pipeline runs label, validate, prepare and train in each region; tuning have",
        ),
    ],
)
def test_sections_without_a_regional_form_are_refused(tmp_path: Path, extra: str, message: str) -> None:
    path = _write(tmp_path, extra)
    with pytest.raises(PipelineConfigError, match=message):
        build_dag(load_config(path), path)


def test_code_in_one_regions_bucket_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path)
    path.write_text(
        path.read_text().replace(f"source_dir: {tmp_path / 'src'}", "source_dir: s3://home-bucket/src.tar.gz")
    )
    with pytest.raises(
        PipelineConfigError, match=r"training\.source_dir: s3://home-bucket/src\.tar\.gz is one bucket's"
    ):
        build_dag(load_config(path), path)


def test_a_work_team_of_another_region_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path)
    path.write_text(
        path.read_text().replace("workteam/private-crowd/team-us", "x").replace("us-west-2:1", "us-east-1:1")
    )
    with pytest.raises(
        PipelineConfigError, match=r"regions\.1\.workteam_arn: .* is in us-east-1, not us-west-2"
    ):
        build_dag(load_config(path), path)


@pytest.mark.parametrize(
    ("region", "message"),
    [
        (
            "{region: eu-west-1, bucket: data-eu, role_arn: 'arn:aws:iam::123456789012:role/R'}",
            "region eu-west-1 is listed twice",
        ),
        (
            "{region: eu-central-1, bucket: data-eu, role_arn: 'arn:aws:iam::123456789012:role/R'}",
            "bucket data-eu is listed twice",
        ),
        (
            "{region: eu-central-1, bucket: data-de, role_arn: 'arn:aws:iam::123456789012:role/R', "
            "data_source: 's3://data-eu/x.csv'}",
            r"data_source: 's3://data-eu/x.csv' is not in this region's bucket s3://data-de/",
        ),
        (
            "{region: europe, bucket: data-de, role_arn: 'arn:aws:iam::123456789012:role/R'}",
            r"regions\.2\.region",
        ),
    ],
)
def test_bad_regions_are_one_line_naming_the_field(tmp_path: Path, region: str, message: str) -> None:
    path = _write(tmp_path)
    path.write_text(path.read_text().rstrip() + f"\n  - {region}\n")
    with pytest.raises(PipelineConfigError, match=message) as caught:
        load_config(path)
    assert "\n" not in str(caught.value)


def test_the_comparison_lays_the_models_side_by_side() -> None:
    table = compare_models(
        {
            "eu-west-1": {"job_name": "a", "model_artifacts": "s3://data-eu/m", "metrics": {"acc": 0.8}},
            "us-west-2": {"job_name": "b", "model_artifacts": "s3://data-us/m", "metrics": {"acc": 0.9}},
            "ap-south-1": None,  # its training failed: a row without a model
        },
        "acc",
    )
    assert table["best_region"] == "us-west-2"
    assert [row["region"] for row in table["regions"]] == ["eu-west-1", "us-west-2", "ap-south-1"]
    assert table["regions"][2] == {
        "region": "ap-south-1",
        "job_name": None,
        "model_artifacts": None,
        "metrics": {},
    }
    assert compare_models({"eu-west-1": {"metrics": {}}}, "acc")["best_region"] is None


def test_in_group_renames_only_the_groups_own_tasks() -> None:
    value = {"a": ["{{ ti.xcom_pull(task_ids='train')['x'] }}", "{{ ti.xcom_pull(task_ids='other')['y'] }}"]}
    assert in_group(value, "eu-west-1", frozenset({"train"})) == {
        "a": [
            "{{ ti.xcom_pull(task_ids='eu-west-1.train')['x'] }}",
            "{{ ti.xcom_pull(task_ids='other')['y'] }}",
        ]
    }
