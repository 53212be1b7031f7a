"""Pipeline config -> the pipeline DAG, built from typed specs.

The pipeline template, each stage present when its config section is: label -> validate labels ->
prepare data -> train -> tune -> compile, register, baseline, batch transform -> evaluate; then
register and evaluate -> approve (``approval: auto | human``) -> deploy (an endpoint with data capture,
updated blue/green). Stages
hand each other S3 URIs through XCom, never data. One
:class:`~airflow_dl_provider.specs.training.TrainingDefinition` is the ``train`` task's job and each
``tune`` trial's. The drift monitor and retrain DAGs are :mod:`.monitoring`'s; reading configs from
disk is :mod:`.loader`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_dl_provider.operators.datasets import SplitDatasetOperator
from airflow_dl_provider.operators.labeling import GroundTruthLabelingOperator
from airflow_dl_provider.operators.training import DistributedTrainingOperator
from airflow_dl_provider.operators.tuning import HyperparameterTuningOperator
from airflow_dl_provider.pipelines.arrival import arrival_schedule
from airflow_dl_provider.pipelines.templates import DAG, RUN_FOLDER, dag_arguments, xcom
from airflow_dl_provider.specs.model import ModelSource
from airflow_dl_provider.specs.training import Cluster, ScriptMode, Spot, TrainingDefinition, Vpc

CLUSTER_FIELDS = ("instance_type", "instance_count", "volume_size_gb", "allow_no_efa", "keep_alive_seconds")

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_dl_provider.pipelines.config import PipelineConfig


def _source_dir(config: PipelineConfig, config_path: Path) -> str | None:
    source = config.training.source_dir
    if source is None or source.startswith("s3://"):
        return source
    return str((config_path.parent / source).resolve())


def training_definition(config: PipelineConfig, config_path: Path) -> TrainingDefinition:
    """The training job of a config: ``train``'s, each ``tune`` trial's and ``train_challenger``'s."""
    training = config.training
    channels = {"train": xcom("prepare_data", "train")}
    if config.data.validation_fraction:
        channels["validation"] = xcom("prepare_data", "validation")
    if config.data.test_fraction:
        channels["test"] = xcom("prepare_data", "test")
    script = None
    if training.entry_point:
        script = ScriptMode(
            entry_point=training.entry_point,
            source_dir=str(_source_dir(config, config_path)),
            framework_version=training.framework_version,
            distribution=training.distribution,
        )
    return TrainingDefinition(
        role_arn=config.role_arn,
        output_path=config.s3_uri("models"),
        channels=channels,
        cluster=Cluster(**training.model_dump(include=set(CLUSTER_FIELDS))),
        script=script,
        image_uri=training.image_uri,
        hyperparameters=training.hyperparameters,
        metric_definitions=training.metric_definitions,
        max_runtime_seconds=training.max_runtime_seconds,
        spot=Spot(max_wait_seconds=training.spot_max_wait_seconds) if training.use_spot else None,  # type: ignore[arg-type]
        vpc=Vpc(training.subnets, training.security_group_ids) if training.subnets else None,
        tags={"pipeline": config.pipeline, **training.tags},
    )


def training_task(
    config: PipelineConfig, definition: TrainingDefinition, task_id: str, name: str
) -> DistributedTrainingOperator:
    """A training task of the config's: the pipeline's ``train``, the retrain DAG's challenger.

    :param name: the job names' part after the pipeline's (``<pipeline>-<name>-...``).
    """
    return DistributedTrainingOperator(
        task_id=task_id,
        job_name_prefix=f"{config.pipeline}-{name}",
        training=definition,
        max_cost_usd=config.training.max_cost_usd,
        overrides=config.training.overrides,
        deferrable=config.deferrable,
        poll_interval=config.poll_interval,
    )


def _labeling(config: PipelineConfig) -> Any:
    labeling = config.labeling
    assert labeling is not None
    # What both labeling services take; each adds its own workforce or connection.
    common: dict[str, Any] = {
        "task_id": "label",
        "job_name_prefix": f"{config.pipeline}-label",
        "task_type": labeling.task_type,
        "labels": labeling.labels,
        "input_prefix": labeling.input_prefix,
        "output_path": config.s3_uri("labels"),
        "workers_per_object": labeling.workers_per_object,
        "auto_labeling": labeling.auto_labeling,
        "max_human_labeled_objects": labeling.max_human_labeled_objects,
        "task_title": labeling.task_title,
        "tags": {"pipeline": config.pipeline, **labeling.tags},
        "deferrable": config.deferrable,
        "poll_interval": config.poll_interval,
    }
    if labeling.service == "label_studio":
        from airflow_dl_provider.operators.label_studio import LabelStudioLabelingOperator

        return LabelStudioLabelingOperator(label_studio_conn_id=labeling.label_studio_conn_id, **common)
    return GroundTruthLabelingOperator(
        role_arn=config.role_arn,
        workteam_arn=labeling.workteam_arn,
        overrides=labeling.overrides,
        **common,
    )


def _label_validation(config: PipelineConfig) -> Any:
    from airflow_dl_provider.operators.validation import DataValidationOperator
    from airflow_dl_provider.presets.labeling import default_label_attribute_name

    checks = config.label_validation
    assert checks is not None and config.labeling is not None
    return DataValidationOperator(
        task_id="validate_labels",
        data_uri=xcom("label", "output_manifest"),
        data_format="manifest",
        label_manifest_checks={
            "label_attribute": default_label_attribute_name(config.labeling.task_type),
            "classes": config.labeling.labels,
            "min_confidence": checks.min_confidence,
            "min_class_fraction": checks.min_class_fraction,
            "max_class_fraction": checks.max_class_fraction,
        },
        result_prefix=config.s3_uri("validation"),
        soft_fail=checks.soft_fail,
    )


def neo_framework_version(config: PipelineConfig) -> str | None:
    """The compile stage's ``FrameworkVersion``: the config's, else for PyTorch the newest one Neo lists
    for the target that is not newer than the PyTorch the model was trained with."""
    from airflow_dl_provider.presets.compilation import newest_pytorch_version

    compilation = config.compilation
    assert compilation is not None
    if compilation.framework_version or compilation.framework.upper() != "PYTORCH":
        return compilation.framework_version
    return newest_pytorch_version(compilation.target_device, config.training.framework_version)


def _after_training(config: PipelineConfig, best: str, upstream: Any) -> None:
    """Compile, register, baseline and batch-transform the best model; score the transform."""
    from airflow_dl_provider.operators.compilation import NeoCompilationOperator
    from airflow_dl_provider.operators.drift import DriftBaselineOperator
    from airflow_dl_provider.operators.evaluation import ModelEvaluationOperator
    from airflow_dl_provider.operators.registry import RegisterModelOperator
    from airflow_dl_provider.operators.transform import BatchTransformOperator

    artifacts = xcom(best, "model_artifacts")
    job = xcom(best, "best_training_job" if best == "tune" else "job_name")
    if config.compilation:
        compilation = config.compilation
        # The trained model.tar.gz: its model.pth is the traced TorchScript model Neo compiles.
        upstream >> NeoCompilationOperator(
            task_id="compile",
            job_name_prefix=f"{config.pipeline}-compile",
            role_arn=config.role_arn,
            model=ModelSource(model_artifacts=artifacts),
            output_path=config.s3_uri("compiled"),
            framework_version=neo_framework_version(config),
            deferrable=config.deferrable,
            poll_interval=config.poll_interval,
            # The rest of the section's fields are the operator's arguments, by name.
            **compilation.model_dump(exclude={"framework_version"}),
        )
    register = None
    if config.registry:
        register = RegisterModelOperator(
            task_id="register",
            model_package_group_name=config.registry.model_package_group,
            model=ModelSource(model_artifacts=artifacts),
            training_job_name=job,
            data_uris={c: xcom("prepare_data", c) for c in ("train", "validation", "test")},
            approval_status=config.registry.approval_status,
            description=config.registry.description,
        )
        upstream >> register
    if config.drift:
        upstream >> DriftBaselineOperator(
            task_id="baseline",
            data_uri=xcom("prepare_data", "train"),
            model_artifacts=artifacts,
            label_column=config.data.label_column,
        )
    gated: list[Any] = []  # what the approval waits for besides the registration
    if config.transform and config.data.test_fraction:
        transform = BatchTransformOperator(
            task_id="batch_transform",
            job_name_prefix=f"{config.pipeline}-transform",
            model=ModelSource(model_artifacts=artifacts, role_arn=config.role_arn),
            input_s3_uri=xcom("prepare_data", "test_features"),
            output_path=config.s3_uri("predictions", RUN_FOLDER),
            instance_type=config.transform.instance_type,
            instance_count=config.transform.instance_count,
            max_payload_mb=config.transform.max_payload_mb,
            deferrable=config.deferrable,
            poll_interval=config.poll_interval,
        )
        evaluate = ModelEvaluationOperator(
            task_id="evaluate",
            predictions_uri=xcom("batch_transform", "output_path"),
            labels_uri=xcom("prepare_data", "test"),
            label_column=config.data.label_column,
        )
        upstream >> transform >> evaluate
        gated.append(evaluate)
    if register is not None and config.approval:
        approval_and_deploy(
            config, package_task="register", upstream=[register, *gated], score=xcom("evaluate", "value")
        )


def approval_and_deploy(
    config: PipelineConfig,
    *,
    package_task: str,
    upstream: list[Any],
    score: str | None = None,
    passed: str | None = None,
    reason: str | None = None,
    suffix: str = "",
) -> list[Any]:
    """The gate before production and the deploy of the package ``package_task`` registered:
    ``approve<suffix>`` -> ``deploy<suffix>``; a rejection skips the deploy.

    :param score: the evaluation's accuracy (a template): what ``auto`` judges, what a person reads.
    :param passed: a template of an upstream decision (the retrain DAG's ``decide``) that ``auto``
        follows instead of the bar; ``reason`` is its reason.
    """
    from airflow_dl_provider.operators.approval import (
        AutoApprovalOperator,
        evaluation_summary,
        human_approval,
    )

    arn = xcom(package_task, "model_package_arn")
    gate: Any
    if config.approval == "auto":
        gate = AutoApprovalOperator(
            task_id=f"approve{suffix}",
            model_package_arn=arn,
            score=score,
            min_score=config.min_accuracy,
            passed=passed,
            reason=reason,
        )
    else:
        gate = human_approval(
            task_id=f"approve{suffix}",
            model_package_arn=arn,
            summary=evaluation_summary(arn, score, min_score=config.min_accuracy, note=reason),
            deferrable=config.deferrable,
            poll_interval=config.poll_interval,
        )
    upstream >> gate
    tasks = [gate]
    if config.deploy:
        deploy = _deploy(config, arn, f"deploy{suffix}")
        gate >> deploy
        tasks.append(deploy)
    return tasks


def _deploy(config: PipelineConfig, package_arn: str, task_id: str) -> Any:
    """The approved package on the config's endpoint: data capture on, updated blue/green."""
    from airflow_dl_provider.operators.endpoints import EndpointDeployOperator
    from airflow_dl_provider.specs.deployment import Deployment

    deploy = config.deploy
    assert deploy is not None
    arguments: dict[str, Any] = {
        "task_id": task_id,
        "endpoint_name": config.endpoint_name,
        "model": ModelSource(model_package_arn=package_arn, role_arn=config.role_arn),
        "instance_type": deploy.instance_type,
        "instance_count": deploy.instance_count,
        "data_capture_s3_uri": config.capture_s3_uri,
        "sampling_percentage": deploy.capture_sampling_percentage,
        "deferrable": config.deferrable,
        "poll_interval": config.poll_interval,
    }
    return EndpointDeployOperator(
        deployment=Deployment(
            traffic_shift=deploy.traffic_shift,
            traffic_percent=deploy.traffic_percent,
            wait_seconds=deploy.wait_seconds,
            alarms=list(deploy.alarms),
        ),
        **arguments,
    )


def data_stages(config: PipelineConfig, labeled_output: str | None = None) -> SplitDatasetOperator:
    """label -> validate labels (where the config has them) -> ``prepare_data``, which is returned.

    The pipeline's, and each region's (:mod:`airflow_dl_provider.pipelines.regions`).
    """
    upstream: list[Any] = []
    source, source_format = config.data.source, "csv"
    if config.labeling:
        label = _labeling(config)
        upstream = [label]
        source, source_format = xcom("label", "output_manifest"), "manifest"
        if config.label_validation:
            validate = _label_validation(config)
            label >> validate
            upstream = [validate]
    prepare = SplitDatasetOperator(
        task_id="prepare_data",
        source=str(source),
        source_format=source_format,
        labeled_output=labeled_output,
        output_prefix=config.s3_uri("datasets"),
        label_column=config.data.label_column,
        validation_fraction=config.data.validation_fraction,
        test_fraction=config.data.test_fraction,
        seed=config.data.seed,
    )
    upstream >> prepare
    return prepare


def build_dag(config: PipelineConfig, config_path: Path) -> Any:
    """The pipeline DAG of one config (with ``regions``: :func:`~.regions.regional_dag`'s)."""
    if config.regions:
        from airflow_dl_provider.pipelines.regions import regional_dag

        return regional_dag(config, config_path)
    stages = ["label", "validate labels"] if config.labeling else []
    stages += ["prepare data", "train"] + (["tune"] if config.tuning else [])
    stages += [s for s, on in (("compile", config.compilation), ("register", config.registry)) if on]
    stages += ["batch transform"] if config.transform else []
    stages += [f"approval ({config.approval})"] if config.approval and config.registry else []
    stages += ["deploy"] if config.deploy else []
    arguments = dag_arguments(config, config_path)
    with DAG(
        dag_id=config.dag_id,
        description=config.description or f"Deep-learning pipeline {config.pipeline}: {' -> '.join(stages)}",
        schedule=arrival_schedule(config) if config.arrival else config.schedule,
        **arguments,
    ) as dag:
        labeled_output = None
        if config.retraining:
            labeled_output = f"{config.retraining.labeled_data_prefix.rstrip('/')}/{RUN_FOLDER}.csv"
        prepare = data_stages(config, labeled_output)
        definition = training_definition(config, config_path)
        train = training_task(config, definition, "train", "train")
        prepare >> train
        best: Any = train
        if config.tuning:
            # The tuning section's fields are the operator's arguments, by name.
            tune = HyperparameterTuningOperator(
                task_id="tune",
                job_name_prefix=f"{config.pipeline}-tune",
                training=definition,
                deferrable=config.deferrable,
                poll_interval=config.poll_interval,
                **config.tuning.model_dump(),
            )
            train >> tune
            best = tune
        _after_training(config, best.task_id, best)
    return dag
