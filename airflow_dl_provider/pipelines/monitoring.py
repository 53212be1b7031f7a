"""The closed loop: a scheduled drift monitor, and a retrain DAG scheduled on its drift Asset.

``dl_drift_monitor_<pipeline>``: find the champion (the newest Approved model package); none yet, the
check is skipped and says why -> compare the watched data (``drift.data_uri``, else the deploy stage's
endpoint data capture) with the champion's baseline; on drift the drift Asset gets an event with the
evidence.

``dl_retrain_<pipeline>`` (scheduled on that Asset): split the newest labeled data -> train a
challenger -> batch-transform the same holdout with challenger and champion -> score both ->
register the challenger -> promote it only if it wins; the decision and its reason are recorded ->
with ``approval``, the pipeline's own gate and deploy (``approve_challenger`` -> ``deploy_challenger``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.assets import Asset

try:  # Airflow 3: the standard provider
    from airflow.providers.standard.operators.python import ShortCircuitOperator
except ImportError:  # Airflow 2.x
    from airflow.operators.python import ShortCircuitOperator  # type: ignore[no-redef,attr-defined]

from airflow_dl_provider.operators.datasets import SplitDatasetOperator
from airflow_dl_provider.operators.drift import DriftBaselineOperator, DriftDetectionOperator
from airflow_dl_provider.operators.evaluation import (
    ChampionChallengerOperator,
    ChampionLookupOperator,
    ModelEvaluationOperator,
)
from airflow_dl_provider.operators.registry import RegisterModelOperator
from airflow_dl_provider.operators.transform import BatchTransformOperator
from airflow_dl_provider.pipelines.factory import approval_and_deploy, training_definition, training_task
from airflow_dl_provider.pipelines.templates import DAG, RUN_FOLDER, dag_arguments, xcom
from airflow_dl_provider.specs.model import ModelSource

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_dl_provider.pipelines.config import PipelineConfig
    from airflow_dl_provider.specs.training import TrainingDefinition


def build_drift_monitor_dag(config: PipelineConfig, dag_arguments: dict[str, Any]) -> Any:
    drift, registry = config.drift, config.registry
    assert drift is not None and registry is not None
    watched = config.watched_data_uri
    # No data_uri: the endpoint's data capture, JSON Lines SageMaker writes; none yet is no drift.
    capture = drift.data_uri is None
    with DAG(
        dag_id=f"dl_drift_monitor_{config.pipeline}",
        description=f"Watch {watched} for drift from the {registry.model_package_group} champion",
        schedule=drift.schedule,
        **dag_arguments,
    ) as dag:
        champion = ChampionLookupOperator(
            task_id="find_champion", model_package_group_name=registry.model_package_group
        )
        gate = ShortCircuitOperator(
            task_id="has_champion",
            python_callable=champion_found,
            op_kwargs={"found": xcom("find_champion", "found"), "group": registry.model_package_group},
        )
        check = DriftDetectionOperator(
            task_id="check_drift",
            baseline_uri=xcom("find_champion", "baseline_uri"),
            data_uri=watched,
            data_format="data_capture" if capture and drift.data_format == "auto" else drift.data_format,
            columns=None,
            thresholds=drift.thresholds or None,
            report_prefix=config.s3_uri("drift", "reports", RUN_FOLDER),
            model_version=xcom("find_champion", "model_package_version"),
            model_name=config.pipeline,
            asset_uri=config.drift_asset_uri,
            soft_fail=capture,
        )
        champion >> gate >> check
    return dag


def champion_found(found: Any, group: str) -> bool:
    """The drift check's gate: without an approved champion there is no baseline to compare with."""
    if str(found).strip().lower() == "true":
        return True
    import logging

    logging.getLogger(__name__).info(
        "No approved model package in %s yet, so no baseline: the drift check is skipped", group
    )
    return False


def build_retrain_dag(
    config: PipelineConfig, dag_arguments: dict[str, Any], training: TrainingDefinition
) -> Any:
    """Retrain on drift: the challenger is the pipeline's own training definition on the newest data."""
    retraining, registry = config.retraining, config.registry
    assert retraining is not None and registry is not None
    transform = config.transform
    transform_arguments: dict[str, Any] = {
        "instance_type": transform.instance_type if transform else "ml.m5.xlarge",
        "instance_count": transform.instance_count if transform else 1,
        "input_s3_uri": xcom("prepare_data", "test_features"),
        "deferrable": config.deferrable,
        "poll_interval": config.poll_interval,
    }
    with DAG(
        dag_id=f"dl_retrain_{config.pipeline}",
        description=f"Retrain {config.pipeline} on drift; promote the challenger only if it beats the champion",
        schedule=[Asset(config.drift_asset_uri)],
        **dag_arguments,
    ) as dag:
        prepare = SplitDatasetOperator(
            task_id="prepare_data",
            source=retraining.labeled_data_prefix.rstrip("/") + "/",
            output_prefix=config.s3_uri("datasets"),
            label_column=config.data.label_column,
            validation_fraction=config.data.validation_fraction,
            test_fraction=config.data.test_fraction or 0.2,
            seed=config.data.seed,
        )
        champion = ChampionLookupOperator(
            task_id="find_champion", model_package_group_name=registry.model_package_group
        )
        train = training_task(config, training, "train_challenger", "challenger")
        scores: dict[str, tuple[Any, Any]] = {}
        for role, artifacts in (
            ("challenger", xcom("train_challenger", "model_artifacts")),
            ("champion", xcom("find_champion", "model_artifacts")),
        ):
            predict = BatchTransformOperator(
                task_id=f"transform_{role}",
                job_name_prefix=f"{config.pipeline}-eval-{role}",
                model=ModelSource(model_artifacts=artifacts, role_arn=config.role_arn),
                output_path=config.s3_uri("evaluation", RUN_FOLDER, role),
                **transform_arguments,
            )
            score = ModelEvaluationOperator(
                task_id=f"evaluate_{role}",
                predictions_uri=xcom(f"transform_{role}", "output_path"),
                labels_uri=xcom("prepare_data", "test"),
                label_column=config.data.label_column,
            )
            predict >> score
            scores[role] = (predict, score)
        register = RegisterModelOperator(
            task_id="register_challenger",
            model_package_group_name=registry.model_package_group,
            model=ModelSource(model_artifacts=xcom("train_challenger", "model_artifacts")),
            training_job_name=xcom("train_challenger", "job_name"),
            data_uris={c: xcom("prepare_data", c) for c in ("train", "validation", "test")},
            approval_status="PendingManualApproval",
            description=f"Challenger retrained on drift ({config.pipeline})",
        )
        baseline = DriftBaselineOperator(
            task_id="baseline_challenger",
            data_uri=xcom("prepare_data", "train"),
            model_artifacts=xcom("train_challenger", "model_artifacts"),
            label_column=config.data.label_column,
        )
        decide = ChampionChallengerOperator(
            task_id="decide",
            challenger_package_arn=xcom("register_challenger", "model_package_arn"),
            challenger_score=xcom("evaluate_challenger", "value"),
            champion_score=xcom("evaluate_champion", "value"),
            champion_package_arn=xcom("find_champion", "model_package_arn"),
            metric="accuracy",
            min_improvement=retraining.min_improvement,
            decision_prefix=config.s3_uri("decisions"),
            # With a gate after it, the gate sets the challenger's status: a person decides first.
            update_package=not config.approval,
        )
        prepare >> train >> [scores["challenger"][0], register, baseline]
        upstream: list[Any] = [prepare, champion]
        upstream >> scores["champion"][0]
        inputs: list[Any] = [scores["challenger"][1], scores["champion"][1], register, baseline]
        inputs >> decide
        if config.approval:
            # The challenger goes through the pipeline's own gate and deploy; auto follows decide.
            approval_and_deploy(
                config,
                package_task="register_challenger",
                upstream=[decide],
                score=xcom("evaluate_challenger", "value"),
                passed=xcom("decide", "decision"),
                reason=xcom("decide", "reason"),
                suffix="_challenger",
            )
    return dag


def monitoring_dags(config: PipelineConfig, config_path: Path) -> dict[str, Any]:
    """The drift monitor and retrain DAGs of a config that asks for them."""
    arguments = dag_arguments(config, config_path)
    dags: dict[str, Any] = {}
    if config.drift:
        dag = build_drift_monitor_dag(config, arguments)
        dags[dag.dag_id] = dag
    if config.retraining:
        dag = build_retrain_dag(config, arguments, training_definition(config, config_path))
        dags[dag.dag_id] = dag
    return dags
