"""HyperparameterTuningOperator builds exactly one CreateHyperParameterTuningJob request, pinned with a Stubber.

As for training: S3 is the embedded server (pre-flight prefix checks, source upload), SageMaker is a
real boto3 client stubbed at the HTTP layer. Bad inputs fail with one line and create nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber

from airflow_dl_provider.exceptions import PreflightError, RequestValidationError
from airflow_dl_provider.jobs.naming import deterministic_job_name
from airflow_dl_provider.operators.training import source_archive
from airflow_dl_provider.operators.tuning import HyperparameterTuningOperator
from airflow_dl_provider.validation.requests import validate_request
from tests.conftest import ROLE_ARN

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311-ubuntu22.04-sagemaker"
METRIC = r"validation_accuracy=([0-9.]+)"
NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}")
RANGES: dict[str, Any] = {
    "lr": {"type": "continuous", "min": 1e-3, "max": 0.5, "scaling": "Logarithmic"},
    "hidden": {"type": "integer", "min": 32, "max": 256},
    "optimizer": {"type": "categorical", "values": ["sgd", "adam"]},
}


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    (root / "train.py").write_text("print('validation_accuracy=0.9')\n")
    return root


@pytest.fixture
def data(local_backend: Any) -> str:
    return local_backend.upload("data/train/part-0000.csv", "label,p0\n1,2\n")


@pytest.fixture
def sagemaker() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def _operator(local_backend: Any, source: Path, **kwargs: Any) -> HyperparameterTuningOperator:
    args: dict[str, Any] = {
        "task_id": "tune",
        "role_arn": ROLE_ARN,
        "output_path": local_backend.uri("output"),
        "channels": {"train": local_backend.uri("data/train/")},
        "entry_point": "train.py",
        "source_dir": str(source),
        "instance_type": "ml.m5.large",
        "hyperparameters": {"epochs": 5, "lr": 0.1},
        "metric_definitions": {"validation_accuracy": METRIC},
        "max_runtime_seconds": 600,
        "objective_metric": "validation_accuracy",
        "parameter_ranges": RANGES,
        "strategy": "Random",
        "max_jobs": 6,
        "max_parallel_jobs": 2,
    }
    args.update(kwargs)
    return HyperparameterTuningOperator(**args)


def _use(op: HyperparameterTuningOperator, client: Any) -> None:
    op.hook.__dict__["conn"] = client


def _describe(name: str, request: dict[str, Any], status: str = "InProgress") -> dict[str, Any]:
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/{name}",
        "HyperParameterTuningJobConfig": request["HyperParameterTuningJobConfig"],
        "HyperParameterTuningJobStatus": status,
        "CreationTime": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        "TrainingJobStatusCounters": {},
        "ObjectiveStatusCounters": {},
    }


def test_full_configuration_sends_exactly_this_request(
    local_backend: Any, source_dir: Path, data: str, sagemaker: Any, task_context: Any
) -> None:
    client, stub = sagemaker
    context = task_context("manual__2024-05-01", dag_id="vision", task_id="tune")
    name = deterministic_job_name("vision", "tune", "manual__2024-05-01", max_length=32, prefix="vision-tune")
    bucket = local_backend.bucket
    submit = f"s3://{bucket}/output/source/{source_archive(source_dir)[1]}/sourcedir.tar.gz"
    expected: dict[str, Any] = {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation_accuracy"},
            "ResourceLimits": {
                "MaxParallelTrainingJobs": 3,
                "MaxNumberOfTrainingJobs": 20,
                "MaxRuntimeInSeconds": 7200,
            },
            "ParameterRanges": {
                "ContinuousParameterRanges": [
                    {"Name": "lr", "MinValue": "0.001", "MaxValue": "0.5", "ScalingType": "Logarithmic"}
                ],
                "IntegerParameterRanges": [
                    {"Name": "hidden", "MinValue": "32", "MaxValue": "256", "ScalingType": "Auto"}
                ],
                "CategoricalParameterRanges": [{"Name": "optimizer", "Values": ['"sgd"', '"adam"']}],
            },
            "TrainingJobEarlyStoppingType": "Auto",
            "TuningJobCompletionCriteria": {
                "TargetObjectiveMetricValue": 0.99,
                "BestObjectiveNotImproving": {"MaxNumberOfTrainingJobsNotImproving": 5},
                "ConvergenceDetected": {"CompleteOnConvergence": "Enabled"},
            },
            "RandomSeed": 42,
        },
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {
                "TrainingImage": IMAGE,
                "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": "validation_accuracy", "Regex": METRIC}],
            },
            "RoleArn": ROLE_ARN,
            "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 100},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
            # The tuned lr is left out of the static hyperparameters; epochs stays.
            "StaticHyperParameters": {
                "epochs": "5",
                "sagemaker_program": '"train.py"',
                "sagemaker_submit_directory": json.dumps(submit),
                "sagemaker_region": '"us-east-1"',
                "sagemaker_container_log_level": "20",
            },
            "EnableNetworkIsolation": False,
            "EnableInterContainerTrafficEncryption": False,
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": f"s3://{bucket}/data/train/",
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                }
            ],
            "RetryStrategy": {"MaximumRetryAttempts": 2},
        },
        "WarmStartConfig": {
            "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "vision-tune-earlier"}],
            "WarmStartType": "IdenticalDataAndAlgorithm",
        },
        "Tags": [{"Key": "team", "Value": "vision"}],
    }
    stub.add_response(
        "describe_hyper_parameter_tuning_job",
        _describe("vision-tune-earlier", expected, "Completed"),
        {"HyperParameterTuningJobName": "vision-tune-earlier"},
    )
    stub.add_client_error(
        "describe_hyper_parameter_tuning_job",
        "ResourceNotFound",
        "Amazon SageMaker can't find a tuning job",
        expected_params={"HyperParameterTuningJobName": name},
    )
    stub.add_response(
        "create_hyper_parameter_tuning_job",
        {"HyperParameterTuningJobArn": _describe(name, expected)["HyperParameterTuningJobArn"]},
        expected,
    )
    stub.add_response(
        "describe_hyper_parameter_tuning_job",
        _describe(name, expected),
        {"HyperParameterTuningJobName": name},
    )

    op = _operator(
        local_backend,
        source_dir,
        job_name_prefix="vision-tune",
        strategy="Bayesian",
        max_jobs=20,
        max_parallel_jobs=3,
        max_tuning_runtime_seconds=7200,
        early_stopping="Auto",
        completion_criteria={
            "target_objective_value": 0.99,
            "max_jobs_not_improving": 5,
            "complete_on_convergence": True,
        },
        warm_start_parents=["vision-tune-earlier"],
        random_seed=42,
        tags={"team": "vision"},
        overrides={"TrainingJobDefinition": {"RetryStrategy": {"MaximumRetryAttempts": 2}}},
        wait_for_completion=False,
    )
    _use(op, client)
    result = op.execute(context)

    assert result["job_name"] == name
    assert result["status"] == "InProgress"
    json.dumps(result)
    link = context["ti"].pushed["sagemaker_dl_job"]
    assert link["console_fragment"] == f"hyper-tuning-jobs/{name}"
    # The training source went where the definition points, as for a training job.
    body = local_backend.s3.get_object(Bucket=bucket, Key=submit.split(f"{bucket}/", 1)[1])["Body"]
    assert body.read() == source_archive(source_dir)[0]


def test_grid_request_leaves_the_job_count_to_the_grid(
    local_backend: Any, source_dir: Path, task_context: Any
) -> None:
    ranges = {
        "optimizer": {"type": "categorical", "values": ["sgd", "adam"]},
        "hidden": {"type": "categorical", "values": [64, 128, 256]},
    }
    op = _operator(local_backend, source_dir, strategy="Grid", max_jobs=None, parameter_ranges=ranges)
    request = op.render_plan(task_context(task_id="tune")).request
    config = request["HyperParameterTuningJobConfig"]
    assert config["ResourceLimits"] == {"MaxParallelTrainingJobs": 2}
    assert config["ParameterRanges"] == {
        "CategoricalParameterRanges": [
            {"Name": "optimizer", "Values": ['"sgd"', '"adam"']},
            {"Name": "hidden", "Values": ["64", "128", "256"]},
        ]
    }
    assert op.total_jobs(request) == 6
    validate_request("CreateHyperParameterTuningJob", {**request, "HyperParameterTuningJobName": "t"})


def _one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(err.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"strategy": "Grid", "max_jobs": None}, "Grid takes categorical ranges only; lr, hidden"),
        (
            {
                "strategy": "Grid",
                "max_jobs": 5,
                "parameter_ranges": {"o": {"type": "categorical", "values": [1, 2]}},
            },
            "Grid runs every combination (2)",
        ),
        (
            {"strategy": "Hyperband", "early_stopping": "Auto"},
            "TrainingJobEarlyStoppingType must be Off with Hyperband",
        ),
        ({"max_jobs": None}, "max_jobs: Random search needs max_jobs"),
        ({"strategy": "Evolutionary"}, "strategy: 'Evolutionary' is not one of"),
        ({"objective_metric": "loss"}, "objective_metric 'loss' is not in metric_definitions"),
        ({"parameter_ranges": {}}, "parameter_ranges: name at least one"),
        ({"parameter_ranges": {"lr": {"type": "float", "min": 0, "max": 1}}}, "needs 'type'"),
        (
            {
                "parameter_ranges": {
                    "lr": {"type": "continuous", "min": 0, "max": 1, "scaling": "Logarithmic"}
                }
            },
            "Logarithmic scaling needs min > 0",
        ),
        ({"parameter_ranges": {"n": {"type": "integer", "min": 1.5, "max": 4}}}, "min must be an integer"),
        ({"parameter_ranges": {"n": {"type": "integer", "min": 4, "max": 4}}}, "must be below max"),
        (
            {"parameter_ranges": {"n": {"type": "integer", "min": 1, "max": 4, "step": 1}}},
            "unknown key(s) ['step']",
        ),
        ({"completion_criteria": {"max_jobs_not_improving": 2}}, "max_jobs_not_improving must be >= 3"),
        ({"completion_criteria": {"patience": 2}}, "completion_criteria has unknown key(s)"),
        ({"hyperband_min_resource": 1}, "only apply to Hyperband"),
        ({"warm_start_parents": [f"p{i}" for i in range(6)]}, "warm_start_parents takes 1 to 5"),
    ],
)
def test_bad_arguments_fail_at_construction_in_one_line(
    local_backend: Any, source_dir: Path, kwargs: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ValueError) as err:
        _operator(local_backend, source_dir, **kwargs)
    message = _one_line(err)
    assert message.startswith("tune: ")
    assert fragment in message


def test_hyperband_with_early_stopping_through_overrides_creates_nothing(
    local_backend: Any, source_dir: Path, data: str, sagemaker: Any, task_context: Any
) -> None:
    client, _stub = sagemaker  # no response queued: any SageMaker call would fail the test
    op = _operator(
        local_backend,
        source_dir,
        strategy="Hyperband",
        overrides={"HyperParameterTuningJobConfig": {"TrainingJobEarlyStoppingType": "Auto"}},
    )
    _use(op, client)
    with pytest.raises(PreflightError) as err:
        op.execute(task_context(task_id="tune"))
    assert "TrainingJobEarlyStoppingType must be Off with Hyperband" in _one_line(err)


def test_cost_ceiling_counts_every_training_job(
    local_backend: Any, source_dir: Path, data: str, sagemaker: Any, task_context: Any
) -> None:
    client, _stub = sagemaker
    # One job: $1/h x 600 s = $0.17; twenty of them exceed $2.
    op = _operator(local_backend, source_dir, max_jobs=20, max_cost_usd=2.0, price_per_hour=1.0)
    _use(op, client)
    with pytest.raises(PreflightError) as err:
        op.execute(task_context(task_id="tune"))
    assert _one_line(err).startswith(
        "max_cost_usd: worst case for 20 trials x $0.17 (1 x ml.m5.large for max_runtime_seconds=600 at "
        "$1.00/h) = $3.33 exceeds $2.00"
    )


def test_cost_ceiling_and_log_are_the_whole_search(
    local_backend: Any, source_dir: Path, data: str, task_context: Any, task_log: Any
) -> None:
    # One trial ($0.17) is far under the ceiling; six trials ($1.00) are what it bounds and what is logged.
    context = task_context(task_id="tune")
    op = _operator(local_backend, source_dir, max_jobs=6, max_cost_usd=1.5, price_per_hour=1.0)
    op.preflight(op.render_plan(context), context)
    assert (
        "Worst-case cost of the whole search: up to $1.00: worst case for 6 trials x $0.17 (1 x ml.m5.large "
        "for max_runtime_seconds=600 at $1.00/h) = $1.00 (within max_cost_usd=1.5)"
    ) in task_log.text
    assert "Worst-case cost: up to $0.17" not in task_log.text
    grid = _operator(
        local_backend,
        source_dir,
        strategy="Grid",
        max_jobs=None,
        max_cost_usd=0.5,
        price_per_hour=1.0,
        parameter_ranges={"hidden": {"type": "categorical", "values": [64, 128, 256, 512]}},
    )
    with pytest.raises(PreflightError) as err:
        grid.preflight(grid.render_plan(context), context)
    assert _one_line(err).startswith("max_cost_usd: worst case for 4 trials x $0.17")


def test_bring_your_own_image_gets_plain_string_values(
    local_backend: Any, source_dir: Path, task_context: Any
) -> None:
    # No script mode, no JSON: the SDK's plain Estimator sends str() for static and categorical values.
    op = _operator(
        local_backend,
        source_dir,
        entry_point=None,
        source_dir=None,
        image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/mine:1",
        hyperparameters={"epochs": 5, "optimizer_name": "sgd", "amp": True},
    )
    request = op.render_plan(task_context(task_id="tune")).request
    ranges = request["HyperParameterTuningJobConfig"]["ParameterRanges"]
    assert ranges["CategoricalParameterRanges"] == [{"Name": "optimizer", "Values": ["sgd", "adam"]}]
    assert request["TrainingJobDefinition"]["StaticHyperParameters"] == {
        "epochs": "5",
        "optimizer_name": "sgd",
        "amp": "True",
    }


def test_network_isolation_stages_the_code_channel_of_the_definition(
    local_backend: Any, source_dir: Path, data: str, task_context: Any
) -> None:
    context = task_context(task_id="tune")
    op = _operator(local_backend, source_dir, enable_network_isolation=True)
    plan = op.render_plan(context)
    request = plan.request
    definition = request["TrainingJobDefinition"]
    assert json.loads(definition["StaticHyperParameters"]["sagemaker_submit_directory"]) == (
        "/opt/ml/input/data/code/sourcedir.tar.gz"
    )
    code = next(c for c in definition["InputDataConfig"] if c["ChannelName"] == "code")
    key = code["DataSource"]["S3DataSource"]["S3Uri"].split(f"{local_backend.bucket}/", 1)[1]
    op.preflight(plan, context)
    op.stage(plan)
    body = local_backend.s3.get_object(Bucket=local_backend.bucket, Key=key)["Body"]
    assert body.read() == source_archive(source_dir)[0]


def test_missing_warm_start_parent_creates_nothing(
    local_backend: Any, source_dir: Path, data: str, sagemaker: Any, task_context: Any
) -> None:
    client, stub = sagemaker
    stub.add_client_error(
        "describe_hyper_parameter_tuning_job",
        "ResourceNotFound",
        "Amazon SageMaker can't find a tuning job",
        expected_params={"HyperParameterTuningJobName": "gone"},
    )
    op = _operator(local_backend, source_dir, warm_start_parents=["gone"])
    _use(op, client)
    with pytest.raises(PreflightError) as err:
        op.execute(task_context(task_id="tune"))
    assert _one_line(err) == "warm_start_parents: tuning job 'gone' does not exist"


def test_generated_names_fit_the_32_character_limit(
    local_backend: Any, source_dir: Path, task_context: Any, task_log: Any
) -> None:
    prefix = "nightly_retraining_of_the_vision_model_for_team_42"  # as rendered from a template
    op = _operator(local_backend, source_dir, job_name_prefix=prefix)
    for run in ("manual__1", "scheduled__2024-05-01T00:00:00+00:00"):
        op.render_plan(task_context(run, task_id="tune"))
        name = deterministic_job_name("dl_test", "tune", run, max_length=32, prefix=prefix)
        assert len(name) <= 32
        assert NAME_PATTERN.fullmatch(name)
        assert name.startswith("nightly-retraining")
    assert any("job_name_prefix" in m and "at most 32 characters" in m for m in task_log.messages)


def test_an_overlong_name_in_overrides_is_refused_by_the_validator(
    local_backend: Any, source_dir: Path, task_context: Any
) -> None:
    op = _operator(local_backend, source_dir, overrides={"HyperParameterTuningJobName": "x" * 40})
    with pytest.raises(RequestValidationError) as err:
        op.render_plan(task_context(task_id="tune"))
    message = _one_line(err)
    assert message.startswith("CreateHyperParameterTuningJob.HyperParameterTuningJobName:")
    assert "the maximum is 32" in message


def test_a_valid_name_in_overrides_is_refused_too(
    local_backend: Any, source_dir: Path, task_context: Any
) -> None:
    op = _operator(local_backend, source_dir, overrides={"HyperParameterTuningJobName": "mine"})
    with pytest.raises(ValueError, match="use job_name_prefix instead") as err:
        op.render_plan(task_context(task_id="tune"))
    _one_line(err)
