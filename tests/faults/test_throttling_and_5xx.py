"""Throttling and 5xx on every API, at random (seeded): every pipeline stage completes, 0 duplicate jobs.

On the AWS path (the contract suite's SageMaker, moto's S3 and Logs), :class:`~tests.faults.injection.Faults`
answers the first call of every API, and one in twenty of the rest, with throttling or a 5xx. Each stage
runs as Airflow runs a task with the pipelines' two retries: a transient fault may cost a try, never
a second job, and never fails the task for good (``AirflowFailException``). A Create whose answer is
lost after the service acted (its botocore retry meets "already exists") makes no second job either.
Each test prints its counts.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from tests.contract.job_cases import CASES, POLL, ROLE_ARN, JobCase
from tests.faults.task_tries import log_since, run_task

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311-ubuntu22.04-sagemaker"

if TYPE_CHECKING:
    from pathlib import Path

    from tests.contract.conftest import Aws
    from tests.faults.injection import Faults


def _creates_per_name(aws: Aws, operation: str, name_field: str) -> Counter[str]:
    """Create requests the service accepted, per name (a retried create it refused is not counted)."""
    return Counter(params[name_field] for params in aws.service.requests(operation))


def _lines_once_per_stream(aws: Aws, case: JobCase, job_name: str, messages: list[str]) -> int:
    """Every line the job logged is in the (last try's) task log once per stream; return how many."""
    job = aws.service.jobs.get(case.noun, job_name)
    streams = aws.service.jobs.streams(job)
    for line in job.plan.log_lines:
        copied = [m for m in messages if m.endswith(f"] {line}")]
        assert len(copied) == len(streams), (line, copied, streams)
    return len(job.plan.log_lines) * len(streams)


@pytest.mark.parametrize("deferrable", [False, True], ids=["waiting", "deferred"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_throttling_and_5xx_on_every_api_0_duplicate_jobs(
    aws: Aws,
    faults: Faults,
    tmp_path: Path,
    task_context: Any,
    task_log: Any,
    counts: Any,
    case: JobCase,
    deferrable: bool,
) -> None:
    from airflow_dl_provider.jobs.kinds import JOB_KINDS

    kind = JOB_KINDS[case.key]
    context = task_context(task_id=case.build(aws, tmp_path).task_id)
    run = run_task(
        lambda: case.build(aws, tmp_path, deferrable=deferrable),
        context,
        task_log=task_log,
    )
    result = run.result

    assert result["status"] == case.completed
    jobs = [job.name for job in aws.service.jobs.of(case.noun)]
    assert jobs == [result["job_name"]], "one job, and no -r2 attempt"
    creates = _creates_per_name(aws, kind.create_operation, kind.name_field)
    assert creates == {result["job_name"]: 1}
    case.done(aws, result)
    assert faults.unfaulted() == [], "every API called met a fault"
    assert faults.calls[f"sagemaker:{kind.create_operation}"] >= 1
    assert faults.calls["sagemaker:" + kind.describe_operation] > 1
    lines = 0
    if case.key != "tuning":  # a tuning job's trials log, the tuning job does not
        assert faults.calls["logs:GetLogEvents"] >= 1
        lines = _lines_once_per_stream(
            aws, case, result["job_name"], log_since(task_log, run.try_log_starts[-1])
        )
    counts(
        f"{faults.summary()}; {run.retries} task retries; {len(jobs)} job, "
        f"{sum(creates.values())} Create accepted, 0 duplicates; {lines} log lines copied once"
    )


@pytest.mark.parametrize("deferrable", [False, True], ids=["waiting", "deferred"])
def test_endpoint_deploy_under_faults_creates_each_resource_once(
    aws: Aws, faults: Faults, task_context: Any, counts: Any, deferrable: bool
) -> None:
    run = run_task(
        lambda: _endpoint_deploy(aws, deferrable=deferrable, data_capture_s3_uri=aws.uri("capture")),
        task_context(task_id="deploy"),
    )
    result = run.result

    assert result["status"] == "InService"
    hosting = aws.service.hosting
    assert list(hosting.endpoints) == ["Digits-Live"]
    assert list(hosting.models) == [result["model_name"]]
    assert list(hosting.configs) == [result["endpoint_config_name"]]
    assert _creates_per_name(aws, "CreateEndpoint", "EndpointName") == {"Digits-Live": 1}
    assert aws.service.count("UpdateEndpoint") == 0
    assert faults.unfaulted() == []
    counts(f"{faults.summary()}; {run.retries} task retries; 1 model, 1 config, 1 endpoint, 0 duplicates")


def test_registry_and_champion_under_faults_register_one_version(
    aws: Aws, faults: Faults, task_context: Any, counts: Any
) -> None:
    from airflow_dl_provider.operators.evaluation import ChampionChallengerOperator, ChampionLookupOperator
    from airflow_dl_provider.operators.registry import RegisterModelOperator

    group = "digits-classifier"
    aws.service.jobs.add_completed_training_job("train-v1", {"validation_accuracy": 0.93})

    def register() -> RegisterModelOperator:
        return RegisterModelOperator(
            task_id="register",
            model_package_group_name=group,
            model_artifacts=aws.upload("models/v1/output/model.tar.gz", b"model"),
            image_uri=IMAGE,
            training_job_name="train-v1",
            data_uris={"train": aws.uri("data/train/")},
        )

    tries = 0
    registered = run_task(register, task_context(task_id="register"))
    tries += registered.retries
    package = registered.result["model_package_arn"]
    decided = run_task(
        lambda: ChampionChallengerOperator(
            task_id="decide",
            challenger_package_arn=package,
            challenger_score=0.93,
            champion_score=None,
            decision_prefix=aws.uri("decisions"),
            metric="validation_accuracy",
        ),
        task_context(task_id="decide"),
    )
    tries += decided.retries
    found = run_task(
        lambda: ChampionLookupOperator(task_id="champion", model_package_group_name=group),
        task_context(task_id="champion"),
    )
    tries += found.retries

    versions = [arn for arn, p in aws.service.registry.packages.items() if p.group == group]
    assert versions == [package], "one version, however many times CreateModelPackage was sent"
    assert decided.result["decision"] == "promoted"
    assert found.result["found"] is True and found.result["model_package_arn"] == package
    assert faults.unfaulted() == []
    counts(f"{faults.summary()}; {tries} task retries; 1 model package version, 0 duplicates")


def test_s3_stages_under_faults_complete(aws: Aws, faults: Faults, task_context: Any, counts: Any) -> None:
    """Validate, split, drift baseline and detection, evaluation: S3 alone, every call of it faulted."""
    from airflow_dl_provider.operators.datasets import SplitDatasetOperator
    from airflow_dl_provider.operators.drift import DriftBaselineOperator, DriftDetectionOperator
    from airflow_dl_provider.operators.evaluation import ModelEvaluationOperator
    from airflow_dl_provider.operators.validation import DataValidationOperator
    from tests.contract.test_contract_s3_operators import _Events, _table

    table = aws.upload("labeled/table.csv", _table(600))
    model = aws.upload("models/v1/output/model.tar.gz", b"model")
    aws.upload("batches/shifted/part-0.csv", _table(1500, shift=1.5, seed=7, label=False))
    tries = 0

    def stage(make: Any, task_id: str, **extra: Any) -> Any:
        nonlocal tries
        run = run_task(make, {**task_context(task_id=task_id), **extra})
        tries += run.retries
        return run.result

    checked = stage(
        lambda: DataValidationOperator(
            task_id="validate",
            data_uri=table,
            expectations=[{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "label"}}],
        ),
        "validate",
    )
    split = stage(
        lambda: SplitDatasetOperator(task_id="split", source=table, output_prefix=aws.uri("channels")),
        "split",
    )
    baseline = stage(
        lambda: DriftBaselineOperator(task_id="baseline", data_uri=split["train"], model_artifacts=model),
        "baseline",
    )
    drift = stage(
        lambda: DriftDetectionOperator(
            task_id="drift",
            baseline_uri=baseline["baseline_uri"],
            data_uri=aws.uri("batches/shifted/"),
            model_name="digits",
        ),
        "drift",
        outlet_events=_Events(),
    )
    labels = [
        line.split(",", 1)[0] for line in aws.read(f"{split['test']}data.csv").decode().splitlines()[1:]
    ]
    aws.upload("predictions/features.csv.out", "\n".join(labels) + "\n")
    scored = stage(
        lambda: ModelEvaluationOperator(
            task_id="evaluate", predictions_uri=aws.uri("predictions/"), labels_uri=split["test"]
        ),
        "evaluate",
    )

    assert checked["success"] is True and checked["rows"] == 600
    assert sum(split["rows"].values()) == 600
    assert baseline["rows"] == split["rows"]["train"]
    assert drift["drifted"] is True and "b" in drift["features_drifted"]
    assert scored["records"] == len(labels) and scored["value"] == pytest.approx(1.0)
    assert faults.unfaulted() == []
    assert all(api.startswith("s3:") for api in faults.calls), "S3-only stages call S3 alone"
    counts(f"{faults.summary()}; {tries} task retries; 5 stages completed")


# -- answers lost after the service acted -------------------------------------------------------------

# A lost Create answer costs no task try: botocore's retry of the Create meets the service's "name in
# use", and the engine (and the endpoint's config step) attach to what the first call created.


def _endpoint_deploy(aws: Aws, **kwargs: Any) -> Any:
    from airflow_dl_provider.operators.endpoints import EndpointDeployOperator

    return EndpointDeployOperator(
        task_id="deploy",
        endpoint_name="Digits-Live",
        model_artifacts=aws.upload("models/v1/model.tar.gz", b"model"),
        role_arn=ROLE_ARN,
        instance_type="ml.m5.large",
        poll_interval=POLL,
        **kwargs,
    )


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_lost_create_answer_makes_0_duplicate_jobs(
    aws: Aws, faults: Faults, tmp_path: Path, task_context: Any, counts: Any, case: JobCase
) -> None:
    from airflow_dl_provider.jobs.kinds import JOB_KINDS

    kind = JOB_KINDS[case.key]
    faults.rate, faults.first_calls = 0.0, False
    faults.lose(kind.create_operation)
    context = task_context(task_id=case.build(aws, tmp_path).task_id)
    run = run_task(lambda: case.build(aws, tmp_path), context)

    assert run.result["status"] == case.completed
    assert [job.name for job in aws.service.jobs.of(case.noun)] == [run.result["job_name"]]
    assert _creates_per_name(aws, kind.create_operation, kind.name_field) == {run.result["job_name"]: 1}
    assert faults.injected["lost"] == 1
    counts(f"1 Create answer lost; {run.retries} task retries; 1 job, 0 duplicates")


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_lost_create_answer_costs_0_task_tries(
    aws: Aws, faults: Faults, tmp_path: Path, task_context: Any, case: JobCase
) -> None:
    from airflow_dl_provider.jobs.kinds import JOB_KINDS

    faults.rate, faults.first_calls = 0.0, False
    faults.lose(JOB_KINDS[case.key].create_operation)
    run = run_task(lambda: case.build(aws, tmp_path), task_context(task_id=case.build(aws, tmp_path).task_id))
    assert run.retries == 0, run.errors


@pytest.mark.parametrize(
    "operation",
    ["CreateModel", "CreateEndpointConfig", "CreateEndpoint"],
)
def test_a_lost_endpoint_create_answer_costs_0_task_tries_and_0_duplicates(
    aws: Aws, faults: Faults, task_context: Any, counts: Any, operation: str
) -> None:
    faults.rate, faults.first_calls = 0.0, False
    faults.lose(operation)
    run = run_task(lambda: _endpoint_deploy(aws), task_context(task_id="deploy"))

    hosting = aws.service.hosting
    assert run.result["status"] == "InService"
    assert (len(hosting.models), len(hosting.configs), len(hosting.endpoints)) == (1, 1, 1)
    counts(f"{operation} answer lost; {run.retries} task retries; 1 model, 1 config, 1 endpoint")
    assert run.retries == 0, run.errors


def test_a_lost_model_package_answer_registers_1_version(
    aws: Aws, faults: Faults, task_context: Any, counts: Any
) -> None:
    """botocore's retry carries the same ClientToken (the API's idempotency token): one version, no try lost."""
    from airflow_dl_provider.operators.registry import RegisterModelOperator

    faults.rate, faults.first_calls = 0.0, False
    faults.lose("CreateModelPackage")
    aws.service.jobs.add_completed_training_job("train-v1", {"validation_accuracy": 0.93})
    run = run_task(
        lambda: RegisterModelOperator(
            task_id="register",
            model_package_group_name="digits-classifier",
            model_artifacts=aws.upload("models/v1/output/model.tar.gz", b"model"),
            image_uri=IMAGE,
            training_job_name="train-v1",
        ),
        task_context(task_id="register"),
    )

    assert list(aws.service.registry.packages) == [run.result["model_package_arn"]]
    assert aws.service.count("CreateModelPackage") == 2 and run.retries == 0
    counts("CreateModelPackage answer lost; 0 task retries; 1 version, 0 duplicates")
