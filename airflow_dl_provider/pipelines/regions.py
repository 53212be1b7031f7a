"""The same job in several regions, the data staying where it was made.

A config with ``regions: [...]`` runs its label -> validate -> prepare -> train stages once per region,
each in a TaskGroup named after the region (``eu-west-1.train``), on that region's data: every task of
the group takes the region's connection, ``region_name``, bucket and role, so no request of one region
names another's bucket. ``compare_regions`` then lays the regional models side by side (a metric table
in XCom); it reads only the groups' XCom, never their data.

A TaskGroup per region rather than dynamic task mapping: the operators check their typed specs when
the DAG is parsed (a bad bucket or role fails the import, naming the field), and their connection and
region decide which client they build; mapped arguments would be known only at run time.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from airflow_dl_provider.pipelines.config import PipelineConfig

# https://docs.aws.amazon.com/general/latest/gr/rande.html (us-east-1, eu-west-1, us-gov-west-1 ...)
REGION_PATTERN = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$"
ROLE_PATTERN = r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$"
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
# The sections a regional pipeline runs per region; the others have no regional form yet.
NOT_REGIONAL = (
    "tuning",
    "compilation",
    "registry",
    "transform",
    "drift",
    "retraining",
    "deploy",
    "approval",
    "arrival",
)
COMPARE_TASK = "compare_regions"


class RegionConfig(BaseModel):
    """One entry of ``regions:``: where that region's data, jobs and models live.

    :param region: the AWS region, e.g. ``eu-west-1``; the TaskGroup and the job names carry it.
    :param bucket: the region's bucket (a bucket lives in one region); its outputs go under the
        pipeline's ``prefix`` there.
    :param role_arn: the region's SageMaker execution role.
    :param aws_conn_id: the Airflow connection its tasks use.
    :param data_source: the region's CSV; default: ``data.source``'s key in this bucket.
    :param input_prefix: the region's objects to label; default: ``labeling.input_prefix``'s key in this bucket.
    :param workteam_arn: the region's Ground Truth work team (a work team lives in one region);
        default: ``labeling.workteam_arn``, which must then be in this region.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str = Field(pattern=REGION_PATTERN)
    bucket: str = Field(pattern=BUCKET_PATTERN)
    role_arn: str = Field(pattern=ROLE_PATTERN)
    aws_conn_id: str = "aws_default"
    data_source: str | None = None
    input_prefix: str | None = None
    workteam_arn: str | None = None

    @model_validator(mode="after")
    def _own_bucket(self) -> RegionConfig:
        for name in ("data_source", "input_prefix"):
            value = getattr(self, name)
            if value is not None and not value.startswith(f"s3://{self.bucket}/"):
                raise ValueError(
                    f"{name}: {value!r} is not in this region's bucket s3://{self.bucket}/; the data stays in its region"
                )
        return self


def _distinct(regions: list[RegionConfig]) -> list[RegionConfig]:
    for field in ("region", "bucket"):
        values = [getattr(r, field) for r in regions]
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise ValueError(f"{field} {', '.join(twice)} is listed twice; each region has its own")
    return regions


Regions = Annotated[list[RegionConfig], AfterValidator(_distinct)]


def in_bucket(uri: str | None, bucket: str) -> str | None:
    """``uri``'s key in ``bucket``: ``s3://home/raw/x.csv`` -> ``s3://<bucket>/raw/x.csv``."""
    if uri is None:
        return None
    key = uri.removeprefix("s3://").partition("/")[2]
    return f"s3://{bucket}/{key}"


def regional_config(config: PipelineConfig, region: RegionConfig) -> PipelineConfig:
    """The config as one region runs it: its bucket, role, connection and data; its name carries the region."""
    data = config.data.model_copy(
        update={"source": region.data_source or in_bucket(config.data.source, region.bucket)}
    )
    labeling = config.labeling
    if labeling is not None:
        prefix = region.input_prefix or in_bucket(labeling.input_prefix, region.bucket)
        labeling = labeling.model_copy(
            update={"input_prefix": prefix, "workteam_arn": region.workteam_arn or labeling.workteam_arn}
        )
    return config.model_copy(
        update={
            "pipeline": f"{config.pipeline}_{region.region.replace('-', '_')}",
            "bucket": region.bucket,
            "role_arn": region.role_arn,
            "aws_conn_id": region.aws_conn_id,
            "data": data,
            "labeling": labeling,
            "regions": [],
        }
    )


def check_regional(config: PipelineConfig, config_path: Path) -> None:
    """One line naming the file when a section the regional pipeline does not run is set."""
    from airflow_dl_provider.exceptions import PipelineConfigError

    extra = [name for name in NOT_REGIONAL if getattr(config, name, None)]
    if extra:
        raise PipelineConfigError(
            f"{config_path}: regions: a regional pipeline runs label, validate, prepare and train in each region; "
            f"{', '.join(extra)} have no regional form yet: drop them or the regions"
        )
    source_dir = config.training.source_dir or ""
    if source_dir.startswith("s3://"):
        raise PipelineConfigError(
            f"{config_path}: training.source_dir: {source_dir} is one bucket's; give a local directory, which "
            "each region uploads to its own bucket"
        )
    for index, region in enumerate(config.regions):
        labeling = regional_config(config, region).labeling
        team = labeling.workteam_arn if labeling is not None and labeling.service == "ground_truth" else None
        if team and team.split(":")[3] != region.region:
            raise PipelineConfigError(
                f"{config_path}: regions.{index}.workteam_arn: {team} is in {team.split(':')[3]}, not "
                f"{region.region}; give the region's own work team"
            )


_TASK_IDS = re.compile(r"task_ids='([^']+)'")


def in_group(value: Any, group: str, task_ids: frozenset[str]) -> Any:
    """``value`` with its XCom templates naming the group's own tasks by their ids inside ``group``.

    The stage builders name their upstream as the pipeline DAG knows it (``task_ids='prepare_data'``);
    inside a region's TaskGroup that task is ``<region>.prepare_data``. Specs are walked through their
    ``template_fields``, as Airflow renders them.
    """
    if isinstance(value, str):
        return _TASK_IDS.sub(
            lambda m: f"task_ids='{group}.{m[1]}'" if m[1] in task_ids else m[0],
            value,
        )
    if isinstance(value, dict):
        return {k: in_group(v, group, task_ids) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(in_group(v, group, task_ids) for v in value)
    for name in getattr(value, "template_fields", ()):
        setattr(value, name, in_group(getattr(value, name), group, task_ids))
    return value


def compare_models(results: Mapping[str, Mapping[str, Any] | None], metric: str | None) -> dict[str, Any]:
    """The regional models side by side: one row per region, and the region whose ``metric`` is highest.

    :param results: region -> its ``train`` task's XCom (None when it has none).
    :return: ``{"metric", "regions": [{"region", "job_name", "model_artifacts", "metrics"}], "best_region"}``
    """
    rows: list[dict[str, Any]] = []
    scores: dict[str, float] = {}
    for region, result in results.items():
        metrics = dict((result or {}).get("metrics") or {})
        rows.append(
            {
                "region": region,
                "job_name": (result or {}).get("job_name"),
                "model_artifacts": (result or {}).get("model_artifacts"),
                "metrics": metrics,
            }
        )
        if metric and metric in metrics:
            scores[region] = float(metrics[metric])
    best = max(scores, key=scores.__getitem__) if scores else None
    return {"metric": metric, "regions": rows, "best_region": best}


def regional_dag(config: PipelineConfig, config_path: Path) -> Any:
    """The pipeline DAG of a config with ``regions``: a group of stages per region, then the comparison."""
    from airflow_dl_provider.operators.regions import RegionalModelComparisonOperator
    from airflow_dl_provider.pipelines.factory import data_stages, training_definition, training_task
    from airflow_dl_provider.pipelines.templates import DAG, dag_arguments

    try:  # Airflow 3
        from airflow.sdk import TaskGroup
    except ImportError:  # Airflow 2.x
        from airflow.utils.task_group import TaskGroup  # type: ignore[no-redef]

    check_regional(config, config_path)
    names = ", ".join(r.region for r in config.regions)
    arguments = dag_arguments(config, config_path)
    metric = next(iter(config.training.metric_definitions), None)
    with DAG(
        dag_id=config.dag_id,
        description=config.description or f"Deep-learning pipeline {config.pipeline} in {names}",
        schedule=config.schedule,
        **arguments,
    ) as dag:
        groups = []
        for region in config.regions:
            local = regional_config(config, region)
            defaults: dict[str, Any] = {"aws_conn_id": region.aws_conn_id, "region_name": region.region}
            # attrs types default_args through its copy.deepcopy converter, which mypy reads as a TypeVar.
            with TaskGroup(group_id=region.region, default_args=defaults) as group:  # type: ignore[arg-type]
                prepare = data_stages(local)
                prepare >> training_task(local, training_definition(local, config_path), "train", "train")
            ids = frozenset(task_id.removeprefix(f"{region.region}.") for task_id in group.children)
            for task in group.children.values():
                in_group(task, region.region, ids)
            groups.append(group)
        groups >> RegionalModelComparisonOperator(
            task_id=COMPARE_TASK,
            train_tasks={r.region: f"{r.region}.train" for r in config.regions},
            metric=metric,
        )
    return dag
