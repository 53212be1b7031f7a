"""Pipeline config -> DAG. The first template: prepare data -> train."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pendulum

from airflow_dl_provider.operators.datasets import SplitDatasetOperator
from airflow_dl_provider.operators.training import DistributedTrainingOperator
from airflow_dl_provider.pipelines.config import PipelineConfig, load_config

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.x
    from airflow import DAG  # type: ignore[no-redef,attr-defined]

if TYPE_CHECKING:
    from collections.abc import Iterable


def _channel(name: str) -> str:
    return "{{ ti.xcom_pull(task_ids='prepare_data')['" + name + "'] }}"


def _source_dir(config: PipelineConfig, config_path: Path) -> str | None:
    source = config.training.source_dir
    if source is None or source.startswith("s3://"):
        return source
    return str((config_path.parent / source).resolve())


def build_dag(config: PipelineConfig, config_path: Path) -> Any:
    """One DAG for one pipeline config."""
    training = config.training
    with DAG(
        dag_id=config.dag_id,
        description=config.description or f"Deep-learning pipeline {config.pipeline}: prepare data -> train",
        schedule=config.schedule,
        start_date=pendulum.instance(datetime.fromisoformat(config.start_date), tz="UTC"),
        catchup=False,
        tags=["deep-learning", *config.tags],
        default_args={
            "aws_conn_id": config.aws_conn_id,
            "retries": config.retries,
            "retry_delay": timedelta(seconds=config.retry_delay_seconds),
        },
        doc_md=f"Generated from `{config_path.name}` by airflow_dl_provider.",
    ) as dag:
        prepare = SplitDatasetOperator(
            task_id="prepare_data",
            source=config.data.source,
            output_prefix=config.s3_uri("datasets"),
            label_column=config.data.label_column,
            validation_fraction=config.data.validation_fraction,
            test_fraction=config.data.test_fraction,
            seed=config.data.seed,
        )
        channels = {"train": _channel("train")}
        if config.data.validation_fraction:
            channels["validation"] = _channel("validation")
        if config.data.test_fraction:
            channels["test"] = _channel("test")
        train = DistributedTrainingOperator(
            task_id="train",
            job_name_prefix=f"{config.pipeline}-train",
            role_arn=config.role_arn,
            output_path=config.s3_uri("models"),
            channels=channels,
            entry_point=training.entry_point,
            source_dir=_source_dir(config, config_path),
            image_uri=training.image_uri,
            framework_version=training.framework_version,
            instance_type=training.instance_type,
            instance_count=training.instance_count,
            distribution=training.distribution,
            hyperparameters=training.hyperparameters,
            metric_definitions=training.metric_definitions,
            max_runtime_seconds=training.max_runtime_seconds,
            max_cost_usd=training.max_cost_usd,
            use_spot=training.use_spot,
            spot_max_wait_seconds=training.spot_max_wait_seconds,
            allow_no_efa=training.allow_no_efa,
            volume_size_gb=training.volume_size_gb,
            subnets=training.subnets or None,
            security_group_ids=training.security_group_ids or None,
            tags={"pipeline": config.pipeline, **training.tags},
            overrides=training.overrides,
            deferrable=config.deferrable,
            poll_interval=config.poll_interval,
        )
        prepare >> train
    return dag


def dags_from_directory(directory: str | Path, pattern: str = "*.yaml") -> dict[str, Any]:
    """Every config in ``directory`` as ``{dag_id: DAG}``, for a DAG file's ``globals()``."""
    return dags_from_files(sorted(Path(directory).glob(pattern)))


def dags_from_files(paths: Iterable[Path]) -> dict[str, Any]:
    dags: dict[str, Any] = {}
    for path in paths:
        config = load_config(path)
        dags[config.dag_id] = build_dag(config, path)
    return dags
