"""Failures fail: an error no retry can fix ends the task at once; a transient one leaves it to its retries.

Request validation, pre-flight (a cost ceiling, an empty input), a bad config, missing drift input
and data that fails its expectations are ``AirflowFailException`` in a task (the class Airflow's own
task runner catches), so a bad ``max_cost_usd`` does not burn the retries, and nothing is created.
The same errors raised while a transient error is handled (S3 throttling past botocore's retries
while listing an input) stay retryable, and the retry succeeds. Runs on the AWS path (the contract
suite's SageMaker, moto's S3).
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError
from botocore.retries.standard import DEFAULT_MAX_ATTEMPTS

from airflow_dl_provider.exceptions import (
    DataValidationError,
    DriftInputError,
    NotRetryable,
    PipelineConfigError,
    PreflightError,
    RequestValidationError,
)
from tests.contract.job_cases import training
from tests.faults.task_tries import fail_fast, run_task

if TYPE_CHECKING:
    from tests.contract.conftest import Aws
    from tests.faults.injection import Faults

REPO_CONFIG = Path(__file__).parents[2] / "dags" / "configs" / "digits.yaml"


def _task_runner_fail() -> type[BaseException]:
    """The class Airflow's task runner ends a task on without retrying it (its own import of it)."""
    from airflow.sdk.execution_time import task_runner

    return task_runner.AirflowFailException  # type: ignore[no-any-return]


def _bad_request(aws: Aws, tmp_path: Path) -> Any:
    return training(aws, tmp_path, overrides={"RoleArn": "not-a-role"})


def _cost_ceiling(aws: Aws, tmp_path: Path) -> Any:
    from airflow_dl_provider.specs.training import Cluster

    return training(aws, tmp_path, cluster=Cluster(instance_type="ml.p3dn.24xlarge"), max_cost_usd=1.0)


def _empty_input(aws: Aws, tmp_path: Path) -> Any:
    return training(aws, tmp_path, channels={"train": aws.uri("nothing-here/")})


def _missing_baseline(aws: Aws, tmp_path: Path) -> Any:
    from airflow_dl_provider.operators.drift import DriftDetectionOperator

    aws.upload("batches/new/part-0.csv", "a,b\n1,2\n")
    return DriftDetectionOperator(
        task_id="drift", baseline_uri=aws.uri("baselines/none.json"), data_uri=aws.uri("batches/new/")
    )


def _failing_data(aws: Aws, tmp_path: Path) -> Any:
    from airflow_dl_provider.operators.validation import DataValidationOperator

    return DataValidationOperator(
        task_id="validate",
        data_uri=aws.upload("labeled/table.csv", "label,a\n,1\n,2\n"),
        expectations=[{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "label"}}],
    )


UNFIXABLE = {
    "request_validation": (_bad_request, RequestValidationError),
    "preflight_cost_ceiling": (_cost_ceiling, PreflightError),
    "preflight_empty_input": (_empty_input, PreflightError),
    "missing_drift_input": (_missing_baseline, DriftInputError),
    "data_fails_expectations": (_failing_data, DataValidationError),
}


@pytest.mark.parametrize("what", UNFIXABLE)
def test_an_unfixable_error_fails_the_task_with_0_retries_and_0_jobs(
    aws: Aws, tmp_path: Path, task_context: Any, counts: Any, what: str
) -> None:
    build, error = UNFIXABLE[what]
    tries = []

    def make() -> Any:
        tries.append(1)
        return build(aws, tmp_path)

    with pytest.raises(error) as caught:
        run_task(make, task_context(task_id="task"))

    assert isinstance(caught.value, _task_runner_fail()), f"{type(caught.value).__mro__}"
    assert len(tries) == 1, "the task's two retries were not spent on it"
    assert "\n" not in str(caught.value), "one line"
    assert not [c for c in aws.service.calls if c.operation.startswith("Create")], "nothing was created"
    counts(f"{type(caught.value).__name__} on try 1 of 3; 0 retries, 0 jobs: {caught.value}")


def test_a_bad_pipeline_config_is_a_fail_fast_error(tmp_path: Path) -> None:
    from airflow_dl_provider.pipelines.config import load_config

    config = tmp_path / "typo.yaml"
    config.write_text(REPO_CONFIG.read_text().replace("training:", "trainig:", 1))
    with pytest.raises(PipelineConfigError) as caught:
        load_config(config)
    assert isinstance(caught.value, _task_runner_fail())


def test_throttling_past_botocore_retries_while_listing_input_is_retried_and_makes_1_job(
    aws: Aws, faults: Faults, tmp_path: Path, task_context: Any, counts: Any
) -> None:
    # Every attempt of the first try's pre-flight listing throttled: "cannot list ... (SlowDown)".
    faults.rate, faults.first_calls = 0.0, False
    faults.burst("s3:ListObjectsV2", DEFAULT_MAX_ATTEMPTS)
    context = task_context(task_id="train")
    run = run_task(lambda: training(aws, tmp_path), context)

    (first,) = run.errors
    assert isinstance(first, PreflightError) and "SlowDown" in str(first)
    assert not isinstance(first, fail_fast()), "a transient error must leave the task its retries"
    assert run.result["status"] == "Completed"
    assert len(aws.service.jobs.of("TrainingJob")) == 1
    counts(f"{faults.summary()}; 1 task retry (retryable {type(first).__name__}), then 1 job Completed")


def test_a_5xx_past_botocore_retries_on_create_is_retried_and_makes_1_job(
    aws: Aws, faults: Faults, tmp_path: Path, task_context: Any, counts: Any
) -> None:
    faults.rate, faults.first_calls = 0.0, False
    faults.burst("sagemaker:CreateTrainingJob", DEFAULT_MAX_ATTEMPTS, throttle=False)
    run = run_task(lambda: training(aws, tmp_path), task_context(task_id="train"))

    (first,) = run.errors
    assert isinstance(first, ClientError) and first.response["Error"]["Code"] == "InternalFailure"
    assert not isinstance(first, fail_fast())
    assert run.result["status"] == "Completed"
    assert len(aws.service.jobs.of("TrainingJob")) == 1
    counts(f"{faults.summary()}; 1 task retry, then 1 job Completed")


def test_an_s3_5xx_reading_the_drift_baseline_is_retried(
    aws: Aws, faults: Faults, task_context: Any, counts: Any
) -> None:
    from airflow_dl_provider.operators.drift import DriftBaselineOperator, DriftDetectionOperator
    from tests.contract.test_contract_s3_operators import _Events, _table

    model = aws.upload("models/v1/output/model.tar.gz", b"model")
    baseline = DriftBaselineOperator(
        task_id="baseline", data_uri=aws.upload("train/data.csv", _table(400)), model_artifacts=model
    ).execute(task_context(task_id="baseline"))
    aws.upload("batches/new/part-0.csv", _table(400, shift=1.5, seed=3, label=False))
    faults.rate, faults.first_calls = 0.0, False
    faults.burst("s3:GetObject", DEFAULT_MAX_ATTEMPTS, throttle=False)
    run = run_task(
        lambda: DriftDetectionOperator(
            task_id="drift",
            baseline_uri=baseline["baseline_uri"],
            data_uri=aws.uri("batches/new/"),
            model_name="digits",
        ),
        {**task_context(task_id="drift"), "outlet_events": _Events()},
    )

    (first,) = run.errors
    assert isinstance(first, DriftInputError) and "InternalError" in str(first)
    assert not isinstance(first, fail_fast())
    assert run.result["drifted"] is True
    counts(f"{faults.summary()}; 1 task retry (retryable DriftInputError), then checked")


# -- the exception classes themselves -----------------------------------------------------------------


def test_every_unfixable_error_class_is_fail_fast_where_airflow_runs() -> None:
    for cls in (RequestValidationError, PreflightError, PipelineConfigError, DriftInputError):
        err = cls("field: what is wrong; the fix")
        assert isinstance(err, cls) and isinstance(err, ValueError) and isinstance(err, _task_runner_fail())
        assert type(err).__name__ == cls.__name__
    validation = DataValidationError("3 rows failed", summary={"success": False})
    assert isinstance(validation, _task_runner_fail()) and validation.summary == {"success": False}
    # Pickled (e.g. by a process pool) and back: the same class and attributes.
    again = pickle.loads(pickle.dumps(validation))
    assert type(again) is type(validation) and again.summary == {"success": False}


def test_job_failures_stay_retryable() -> None:
    """A failed job is retried: the retry starts the next attempt (``-r2``), e.g. after a capacity error."""
    from airflow_dl_provider.exceptions import SageMakerJobError

    assert not isinstance(SageMakerJobError("CapacityError"), _task_runner_fail())


def test_the_local_runner_and_the_cli_do_not_load_airflow_for_them() -> None:
    """Without Airflow loaded (a local job's runner, ``airflow-dl stack``) they are plain: no 1.7 s import."""
    probe = (
        "import json, sys\n"
        "from airflow_dl_provider.exceptions import PreflightError\n"
        "err = PreflightError('x')\n"
        "print(json.dumps(['airflow' in sys.modules, [c.__name__ for c in type(err).__mro__]]))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded, mro = json.loads(out.stdout)
    assert loaded is False
    assert mro == [
        "PreflightError",
        "NotRetryable",
        "DLProviderError",
        "ValueError",
        "Exception",
        "BaseException",
        "object",
    ]
    assert NotRetryable.__name__ in mro
