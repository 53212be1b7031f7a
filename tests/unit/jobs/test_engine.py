"""The job engine against a real boto3 SageMaker client whose HTTP layer is a botocore Stubber."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber

from airflow_dl_provider.exceptions import SageMakerJobError
from airflow_dl_provider.jobs.engine import JobEngine
from airflow_dl_provider.jobs.kinds import JOB_KINDS
from airflow_dl_provider.jobs.naming import JobNames, deterministic_job_name

if TYPE_CHECKING:
    from collections.abc import Iterator

TRAINING = JOB_KINDS["training"]
IDS = {"dag_id": "dl", "task_id": "train", "run_id": "manual__1", "map_index": -1}
NAMES = JobNames(**IDS)
NAME = deterministic_job_name(**IDS)
NAME_R2 = deterministic_job_name(**IDS, attempt=2)
NAME_R3 = deterministic_job_name(**IDS, attempt=3)
REQUEST: dict[str, Any] = {
    "AlgorithmSpecification": {"TrainingImage": "img:1", "TrainingInputMode": "File"},
    "RoleArn": "arn:aws:iam::123456789012:role/SageMakerExecution",
    "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
    "StoppingCondition": {"MaxRuntimeInSeconds": 600},
}
NOT_FOUND = {"service_error_code": "ValidationException", "service_message": "Requested resource not found."}


def arn(name: str) -> str:
    return f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}"


def description(name: str, status: str, **extra: Any) -> dict[str, Any]:
    """A DescribeTrainingJob response with every member the model requires (the Stubber checks)."""
    return {
        "TrainingJobName": name,
        "TrainingJobArn": arn(name),
        "TrainingJobStatus": status,
        "SecondaryStatus": {"InProgress": "Training", "Stopping": "Stopping"}.get(status, status),
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://bucket/out/{name}/output/model.tar.gz"},
        "AlgorithmSpecification": REQUEST["AlgorithmSpecification"],
        "ResourceConfig": REQUEST["ResourceConfig"],
        "StoppingCondition": REQUEST["StoppingCondition"],
        "CreationTime": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        **extra,
    }


class FakeClock:
    """Monotonic time that only moves when the engine sleeps (or a test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def client() -> Any:
    return boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture
def stub(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engine(client: Any, clock: FakeClock) -> JobEngine:
    return JobEngine(TRAINING, client, sleep=clock.sleep, clock=clock)


def expect_describe(stub: Stubber, name: str, status: str | None, **extra: Any) -> None:
    if status is None:
        stub.add_client_error("describe_training_job", expected_params={"TrainingJobName": name}, **NOT_FOUND)
    else:
        stub.add_response(
            "describe_training_job", description(name, status, **extra), {"TrainingJobName": name}
        )


def expect_create(stub: Stubber, name: str) -> None:
    stub.add_response(
        "create_training_job", {"TrainingJobArn": arn(name)}, {**REQUEST, "TrainingJobName": name}
    )


# -- ensure -------------------------------------------------------------------------------------------


def test_ensure_creates_when_no_job_has_the_name(engine: JobEngine, stub: Stubber) -> None:
    expect_describe(stub, NAME, None)
    expect_create(stub, NAME)
    handle = engine.ensure(REQUEST, NAMES)
    assert (handle.name, handle.arn, handle.created) == (NAME, arn(NAME), True)


@pytest.mark.parametrize("status", ["InProgress", "Stopping"])
def test_ensure_reattaches_to_a_running_job(
    engine: JobEngine, stub: Stubber, status: str, caplog: pytest.LogCaptureFixture
) -> None:
    expect_describe(stub, NAME, status)
    with caplog.at_level(logging.INFO):
        handle = engine.ensure(REQUEST, NAMES)
    assert (handle.name, handle.created) == (NAME, False)
    assert handle.description["TrainingJobStatus"] == status
    assert "Reattached: waiting on running" in caplog.text


def test_ensure_returns_a_completed_job_without_creating(
    engine: JobEngine, stub: Stubber, caplog: pytest.LogCaptureFixture
) -> None:
    expect_describe(stub, NAME, "Completed")
    with caplog.at_level(logging.INFO):
        handle = engine.ensure(REQUEST, NAMES)
    assert (handle.name, handle.arn, handle.created) == (NAME, arn(NAME), False)
    assert "Reattached: reusing finished" in caplog.text


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_ensure_after_a_failed_job_creates_the_next_attempt(
    engine: JobEngine, stub: Stubber, status: str
) -> None:
    expect_describe(stub, NAME, status, FailureReason="AlgorithmError: boom")
    expect_describe(stub, NAME_R2, None)
    expect_create(stub, NAME_R2)
    handle = engine.ensure(REQUEST, NAMES)
    assert handle.name == NAME_R2 == f"{NAME}-r2"
    assert handle.created


def test_ensure_walks_past_several_failed_attempts_to_a_running_one(engine: JobEngine, stub: Stubber) -> None:
    expect_describe(stub, NAME, "Failed")
    expect_describe(stub, NAME_R2, "Stopped")
    expect_describe(stub, NAME_R3, "InProgress")
    handle = engine.ensure(REQUEST, NAMES)
    assert (handle.name, handle.created) == (NAME_R3, False)


@pytest.mark.parametrize("status", ["InProgress", "Completed", "Failed"])
def test_ensure_if_exists_fail_refuses_any_existing_job(
    engine: JobEngine, stub: Stubber, status: str
) -> None:
    expect_describe(stub, NAME, status)
    with pytest.raises(SageMakerJobError, match="already exists") as caught:
        engine.ensure(REQUEST, NAMES, if_exists="fail")
    assert caught.value.job_name == NAME
    assert caught.value.status == status


def test_ensure_if_exists_new_skips_existing_jobs(engine: JobEngine, stub: Stubber) -> None:
    expect_describe(stub, NAME, "Completed")
    expect_describe(stub, NAME_R2, "InProgress")
    expect_describe(stub, NAME_R3, None)
    expect_create(stub, NAME_R3)
    handle = engine.ensure(REQUEST, NAMES, if_exists="new")
    assert (handle.name, handle.created) == (NAME_R3, True)


def test_ensure_rejects_an_unknown_if_exists(engine: JobEngine, stub: Stubber) -> None:
    with pytest.raises(ValueError, match="if_exists"):
        engine.ensure(REQUEST, NAMES, if_exists="replace")  # type: ignore[arg-type]


def test_ensure_passes_other_client_errors_through(engine: JobEngine, stub: Stubber) -> None:
    from botocore.exceptions import ClientError

    stub.add_client_error("describe_training_job", "ThrottlingException", "Rate exceeded")
    with pytest.raises(ClientError, match="Rate exceeded"):
        engine.ensure(REQUEST, NAMES)


# -- wait ---------------------------------------------------------------------------------------------


def test_wait_polls_until_completed(engine: JobEngine, stub: Stubber, clock: FakeClock) -> None:
    for status in ("InProgress", "InProgress", "InProgress"):
        expect_describe(stub, NAME, status)
    expect_describe(
        stub,
        NAME,
        "Completed",
        FinalMetricDataList=[{"MetricName": "test_accuracy", "Value": 0.97}],
        TrainingTimeInSeconds=10,
        BillableTimeInSeconds=20,
    )
    done = engine.wait(NAME, poll_interval=30)
    assert done["TrainingJobStatus"] == "Completed"
    assert len(clock.sleeps) == 3
    # Backoff: starts around a second and grows, never past poll_interval (+20% jitter).
    assert clock.sleeps[0] <= 1.2
    assert clock.sleeps[2] > clock.sleeps[0]
    result = engine.result(done)
    assert result["metrics"] == {"test_accuracy": 0.97}
    assert result["billable_seconds"] == 20


def test_wait_backoff_grows_past_a_short_poll_interval_to_the_60s_ceiling(
    engine: JobEngine, stub: Stubber, clock: FakeClock
) -> None:
    for _ in range(14):
        expect_describe(stub, NAME, "InProgress")
    expect_describe(stub, NAME, "Completed")
    engine.wait(NAME, poll_interval=5)
    # poll_interval=5 no longer means 720 Describe calls an hour: the pauses go on growing to 60 s.
    assert max(clock.sleeps) == 60.0
    assert clock.sleeps[-2:] == [60.0, 60.0]
    assert all(b > a for a, b in zip(clock.sleeps[:5], clock.sleeps[5:10], strict=True))


def test_wait_raises_with_the_failure_reason(engine: JobEngine, stub: Stubber) -> None:
    expect_describe(stub, NAME, "InProgress")
    reason = "AlgorithmError: ValueError: learning rate must be positive, exit code: 1"
    expect_describe(stub, NAME, "Failed", FailureReason=reason)
    with pytest.raises(SageMakerJobError) as caught:
        engine.wait(NAME, poll_interval=1)
    err = caught.value
    assert reason in str(err)
    assert (err.job_name, err.status, err.failure_reason) == (NAME, "Failed", reason)
    assert "\n" not in str(err)


def test_wait_on_a_stopped_job_raises(engine: JobEngine, stub: Stubber) -> None:
    expect_describe(stub, NAME, "Stopped")
    with pytest.raises(SageMakerJobError, match=f"{NAME} Stopped") as caught:
        engine.wait(NAME)
    assert caught.value.status == "Stopped"


def test_wait_on_a_vanished_job_raises(engine: JobEngine, stub: Stubber) -> None:
    expect_describe(stub, NAME, None)
    with pytest.raises(SageMakerJobError, match="does not exist"):
        engine.wait(NAME)


def test_wait_past_max_wait_stops_the_job(client: Any, stub: Stubber, clock: FakeClock) -> None:
    expect_describe(stub, NAME, "InProgress")  # t=0: poll, not yet past the deadline
    expect_describe(stub, NAME, "InProgress")  # t=100+: poll, past it
    expect_describe(stub, NAME, "InProgress")  # stop(): is it still running?
    stub.add_response("stop_training_job", {}, {"TrainingJobName": NAME})

    def slow_sleep(seconds: float) -> None:
        clock.sleep(seconds + 100)  # each pause takes far longer than asked, as under heavy load

    engine = JobEngine(TRAINING, client, sleep=slow_sleep, clock=clock)
    with pytest.raises(SageMakerJobError, match="max_wait=60s; stopped it") as caught:
        engine.wait(NAME, poll_interval=30, max_wait=60)
    assert caught.value.status == "InProgress"
    assert caught.value.job_name == NAME
    assert len(clock.sleeps) == 1


def test_default_max_wait_is_the_job_limit_plus_slack(engine: JobEngine) -> None:
    assert engine.default_max_wait(REQUEST) == 600 + 3600
    assert engine.default_max_wait({}) is None


# -- stop ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["Completed", "Failed", "Stopped"])
def test_stop_sends_nothing_for_an_ended_job(engine: JobEngine, stub: Stubber, status: str) -> None:
    expect_describe(stub, NAME, status)
    assert engine.stop(NAME) is False


def test_stop_sends_nothing_for_a_missing_job(engine: JobEngine, stub: Stubber) -> None:
    expect_describe(stub, NAME, None)
    assert engine.stop(NAME) is False


def test_stop_a_running_job(engine: JobEngine, stub: Stubber) -> None:
    expect_describe(stub, NAME, "InProgress")
    stub.add_response("stop_training_job", {}, {"TrainingJobName": NAME})
    assert engine.stop(NAME) is True


def test_stop_racing_the_end_of_the_job_is_not_an_error(engine: JobEngine, stub: Stubber) -> None:
    expect_describe(stub, NAME, "InProgress")
    stub.add_client_error(
        "stop_training_job",
        "ValidationException",
        "The request was rejected because the training job is in status Completed.",
        expected_params={"TrainingJobName": NAME},
    )
    assert engine.stop(NAME) is False


# -- logs ---------------------------------------------------------------------------------------------


def test_wait_copies_each_log_line_once_across_polls(
    client: Any, stub: Stubber, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    logs = boto3.client(
        "logs", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    group = "/aws/sagemaker/TrainingJobs"
    stream = f"{NAME}/algo-1-1700000000"
    streams = {"logStreams": [{"logStreamName": stream}]}
    with Stubber(logs) as log_stub:
        expect_describe(stub, NAME, "InProgress")
        log_stub.add_response(
            "describe_log_streams", streams, {"logGroupName": group, "logStreamNamePrefix": f"{NAME}/"}
        )
        # While it runs: one page per stream per look (the rest, if any, at the next look).
        log_stub.add_response(
            "get_log_events",
            {"events": [{"timestamp": 1, "message": "epoch=1\n"}], "nextForwardToken": "f/1"},
            {"logGroupName": group, "logStreamName": stream, "startFromHead": True},
        )
        # Ended: listed once more, each stream read until it hands back the token it was given.
        expect_describe(stub, NAME, "Completed")
        log_stub.add_response(
            "describe_log_streams", streams, {"logGroupName": group, "logStreamNamePrefix": f"{NAME}/"}
        )
        log_stub.add_response(
            "get_log_events",
            {"events": [{"timestamp": 2, "message": "test_accuracy=0.97"}], "nextForwardToken": "f/2"},
            {"logGroupName": group, "logStreamName": stream, "startFromHead": True, "nextToken": "f/1"},
        )
        log_stub.add_response(
            "get_log_events",
            {"events": [], "nextForwardToken": "f/2"},
            {"logGroupName": group, "logStreamName": stream, "startFromHead": True, "nextToken": "f/2"},
        )
        engine = JobEngine(TRAINING, client, logs_client=logs, sleep=clock.sleep, clock=clock)
        cursor: dict[str, str] = {}
        with caplog.at_level(logging.INFO):
            engine.wait(NAME, log_cursor=cursor)
        log_stub.assert_no_pending_responses()
    copied = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[algo-1]")]
    assert copied == ["[algo-1] epoch=1", "[algo-1] test_accuracy=0.97"]
    assert cursor == {stream: "f/2"}


# -- not found, per API ---------------------------------------------------------------------------------

# What each Describe really answers for a name that has no job (not one message for all of them).
REAL_NOT_FOUND = {
    "training": ("ValidationException", "Requested resource not found."),
    "transform": ("ValidationException", "Could not find requested job with name {name}"),
    "processing": ("ValidationException", "Could not find requested job with name {name}"),
    "tuning": ("ResourceNotFound", "Amazon SageMaker can't find a tuning job with name {name}"),
    "labeling": ("ResourceNotFound", "Could not find labeling job {name}"),
    "compilation": ("ValidationException", "Could not find compilation job {name}"),
}


@pytest.mark.parametrize("key", sorted(REAL_NOT_FOUND))
def test_describe_reads_each_apis_own_not_found_answer(client: Any, stub: Stubber, key: str) -> None:
    kind = JOB_KINDS[key]
    code, message = REAL_NOT_FOUND[key]
    stub.add_client_error(
        kind.describe_method,
        code,
        message.format(name="nope"),
        expected_params={kind.name_field: "nope"},
    )
    assert JobEngine(kind, client).describe("nope") is None


def test_describe_passes_a_malformed_request_through(client: Any, stub: Stubber) -> None:
    from botocore.exceptions import ClientError

    kind = JOB_KINDS["transform"]
    stub.add_client_error(
        kind.describe_method,
        "ValidationException",
        "1 validation error detected: Value 'a_b' at 'transformJobName' failed to satisfy constraint",
    )
    with pytest.raises(ClientError, match="1 validation error"):
        JobEngine(kind, client).describe("a_b")


def test_stop_of_a_job_that_vanished_is_not_an_error(engine: JobEngine, stub: Stubber) -> None:
    expect_describe(stub, NAME, "InProgress")
    stub.add_client_error("stop_training_job", expected_params={"TrainingJobName": NAME}, **NOT_FOUND)
    assert engine.stop(NAME) is False


# -- jobs the service stopped ---------------------------------------------------------------------------


def test_a_max_runtime_stop_says_max_runtime_exceeded(engine: JobEngine, stub: Stubber) -> None:
    expect_describe(
        stub,
        NAME,
        "Stopped",
        SecondaryStatus="MaxRuntimeExceeded",
        SecondaryStatusTransitions=[
            {"Status": "Training", "StartTime": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)},
            {"Status": "MaxRuntimeExceeded", "StartTime": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)},
        ],
    )
    with pytest.raises(SageMakerJobError) as caught:
        engine.wait(NAME)
    message = str(caught.value)
    assert message.startswith(f"TrainingJob {NAME} Stopped: MaxRuntimeExceeded: ")
    assert "MaxRuntimeInSeconds" in message and "\n" not in message
    assert caught.value.failure_reason.startswith("MaxRuntimeExceeded")


def test_a_max_runtime_stop_keeps_the_failure_reason_too(engine: JobEngine, stub: Stubber) -> None:
    expect_describe(
        stub, NAME, "Stopped", SecondaryStatus="MaxRuntimeExceeded", FailureReason="Training job timed out"
    )
    with pytest.raises(SageMakerJobError, match=r"MaxRuntimeExceeded: .*; Training job timed out$"):
        engine.wait(NAME)


def test_a_stop_by_request_does_not_blame_a_limit(engine: JobEngine, stub: Stubber) -> None:
    expect_describe(stub, NAME, "Stopped", SecondaryStatus="Stopped")
    with pytest.raises(SageMakerJobError) as caught:
        engine.wait(NAME)
    assert str(caught.value) == f"TrainingJob {NAME} Stopped"


# -- log copying never fails the task ---------------------------------------------------------------------

GROUP = "/aws/sagemaker/TrainingJobs"
STREAM = f"{NAME}/algo-1-1700000000"
STREAMS = {"logStreams": [{"logStreamName": STREAM}]}


@pytest.fixture
def logs() -> Any:
    return boto3.client(
        "logs", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def _expect_streams(log_stub: Stubber) -> None:
    log_stub.add_response(
        "describe_log_streams", STREAMS, {"logGroupName": GROUP, "logStreamNamePrefix": f"{NAME}/"}
    )


def _expect_events(log_stub: Stubber, token: str | None, events: list[str], next_token: str) -> None:
    params: dict[str, Any] = {"logGroupName": GROUP, "logStreamName": STREAM, "startFromHead": True}
    if token:
        params["nextToken"] = token
    response = {"events": [{"timestamp": 1, "message": m} for m in events], "nextForwardToken": next_token}
    log_stub.add_response("get_log_events", response, params)


def _copied(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("[algo-1]")]


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_throttled_get_log_events_warns_once_and_resumes_from_the_cursor(
    client: Any, stub: Stubber, clock: FakeClock, logs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with Stubber(logs) as log_stub:
        expect_describe(stub, NAME, "InProgress")  # look 1: the stream is found, reading it is throttled
        _expect_streams(log_stub)
        log_stub.add_client_error("get_log_events", "ThrottlingException", "Rate exceeded")
        expect_describe(stub, NAME, "InProgress")  # look 2: its one host's stream is known: no listing
        _expect_events(log_stub, None, ["epoch=1"], "f/1")
        expect_describe(stub, NAME, "InProgress")  # look 3: throttled again, from the cursor
        log_stub.add_client_error(
            "get_log_events",
            "ThrottlingException",
            "Rate exceeded",
            expected_params={
                "logGroupName": GROUP,
                "logStreamName": STREAM,
                "startFromHead": True,
                "nextToken": "f/1",
            },
        )
        expect_describe(stub, NAME, "Completed")  # look 4: the rest, nothing twice
        _expect_streams(log_stub)
        _expect_events(log_stub, "f/1", ["epoch=2"], "f/2")
        _expect_events(log_stub, "f/2", [], "f/2")
        engine = JobEngine(TRAINING, client, logs_client=logs, sleep=clock.sleep, clock=clock)
        cursor: dict[str, str] = {}
        with caplog.at_level(logging.INFO):
            done = engine.wait(NAME, log_cursor=cursor)
        log_stub.assert_no_pending_responses()
    assert done["TrainingJobStatus"] == "Completed"
    assert _copied(caplog) == ["[algo-1] epoch=1", "[algo-1] epoch=2"]
    assert cursor == {STREAM: "f/2"}
    warnings = _warnings(caplog)
    assert len(warnings) == 1
    assert "GetLogEvents throttled" in warnings[0] and "ThrottlingException: Rate exceeded" in warnings[0]


def test_failing_describe_log_streams_never_fails_the_task(
    client: Any, stub: Stubber, clock: FakeClock, logs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with Stubber(logs) as log_stub:
        expect_describe(stub, NAME, "InProgress")
        log_stub.add_client_error(
            "describe_log_streams", "ServiceUnavailableException", "The service cannot complete the request."
        )
        expect_describe(stub, NAME, "Completed")
        log_stub.add_client_error("describe_log_streams", "ThrottlingException", "Rate exceeded")
        engine = JobEngine(TRAINING, client, logs_client=logs, sleep=clock.sleep, clock=clock)
        with caplog.at_level(logging.INFO):
            assert engine.wait(NAME)["TrainingJobStatus"] == "Completed"
        log_stub.assert_no_pending_responses()
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "DescribeLogStreams failed" in warnings[0]


def test_a_log_group_not_created_yet_is_quiet(
    client: Any, stub: Stubber, clock: FakeClock, logs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with Stubber(logs) as log_stub:
        expect_describe(stub, NAME, "Completed")
        log_stub.add_client_error(
            "describe_log_streams", "ResourceNotFoundException", "The specified log group does not exist."
        )
        engine = JobEngine(TRAINING, client, logs_client=logs, sleep=clock.sleep, clock=clock)
        with caplog.at_level(logging.INFO):
            engine.wait(NAME)
    assert _warnings(caplog) == []


@pytest.mark.parametrize("key", ["labeling", "compilation"])
def test_labeling_and_compilation_streams_are_named_after_the_job(
    logs: Any, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow_dl_provider.jobs.logs import JobLogStreamer

    group = {"labeling": "/aws/sagemaker/LabelingJobs", "compilation": "/aws/sagemaker/CompilationJobs"}[key]
    with Stubber(logs) as log_stub:
        # No DescribeLogStreams: a prefix search for "job-1" would also find "job-12"'s stream.
        log_stub.add_response(
            "get_log_events",
            {"events": [{"timestamp": 1, "message": "started"}], "nextForwardToken": "f/1"},
            {"logGroupName": group, "logStreamName": "job-1", "startFromHead": True},
        )
        log_stub.add_response(
            "get_log_events",
            {"events": [], "nextForwardToken": "f/1"},
            {"logGroupName": group, "logStreamName": "job-1", "startFromHead": True, "nextToken": "f/1"},
        )
        cursor: dict[str, str] = {}
        with caplog.at_level(logging.INFO):
            copied = JobLogStreamer(logs, key, "job-1", logging.getLogger("t")).copy_new_lines(cursor)
        log_stub.assert_no_pending_responses()
    assert copied == 1
    assert cursor == {"job-1": "f/1"}
    assert "[job-1] started" in caplog.text


def test_an_exact_stream_not_written_yet_is_quiet(logs: Any, caplog: pytest.LogCaptureFixture) -> None:
    from airflow_dl_provider.jobs.logs import JobLogStreamer

    with Stubber(logs) as log_stub:
        log_stub.add_client_error(
            "get_log_events", "ResourceNotFoundException", "The specified log stream does not exist."
        )
        with caplog.at_level(logging.INFO):
            assert JobLogStreamer(logs, "labeling", "job-1", logging.getLogger("t")).copy_new_lines({}) == 0
    assert _warnings(caplog) == []


def test_wait_survives_polls_throttled_past_botocores_retries(
    engine: JobEngine, stub: Stubber, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    expect_describe(stub, NAME, "InProgress")
    for _ in range(4):  # each one is what botocore raises once its own retries are spent
        stub.add_client_error("describe_training_job", "ThrottlingException", "Rate exceeded")
    expect_describe(stub, NAME, "Completed")
    with caplog.at_level(logging.INFO):
        assert engine.wait(NAME, poll_interval=30)["TrainingJobStatus"] == "Completed"
    assert len(_warnings(caplog)) == 1 and "throttled" in _warnings(caplog)[0]


def test_wait_passes_other_errors_through(engine: JobEngine, stub: Stubber) -> None:
    from botocore.exceptions import ClientError

    stub.add_client_error("describe_training_job", "AccessDeniedException", "not authorized")
    with pytest.raises(ClientError, match="not authorized"):
        engine.wait(NAME)


def test_a_throttled_last_copy_is_tried_again_so_no_line_is_lost(
    client: Any, stub: Stubber, clock: FakeClock, logs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with Stubber(logs) as log_stub:
        expect_describe(stub, NAME, "Completed")  # a short job: its one look is its last
        log_stub.add_client_error("describe_log_streams", "ThrottlingException", "Rate exceeded")
        _expect_streams(log_stub)  # tried again after a pause
        _expect_events(log_stub, None, ["done"], "f/1")
        _expect_events(log_stub, "f/1", [], "f/1")
        engine = JobEngine(TRAINING, client, logs_client=logs, sleep=clock.sleep, clock=clock)
        with caplog.at_level(logging.INFO):
            engine.wait(NAME)
        log_stub.assert_no_pending_responses()
    assert _copied(caplog) == ["[algo-1] done"]
    assert clock.sleeps == [1.0]
