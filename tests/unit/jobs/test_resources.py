"""Resource rows (endpoint, model package), poll_once, and undo, against botocore's real model and a Stubber."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
import pytest
from botocore.stub import Stubber

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.exceptions import SageMakerJobError
from airflow_dl_provider.jobs.engine import FAILURE, SUCCESS, WAITING, JobEngine, poll_once
from airflow_dl_provider.jobs.kinds import JOB_KINDS, KINDS, RESOURCE_KINDS, job_kind
from tests.unit.jobs.test_engine import FakeClock

if TYPE_CHECKING:
    from collections.abc import Iterator

ENDPOINT = RESOURCE_KINDS["endpoint"]
PACKAGE = RESOURCE_KINDS["model_package"]
NAME = "digits"
ARN = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{NAME}"
NOW = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
# DescribeEndpoint's own answer once the endpoint is gone.
GONE = {"service_error_code": "ValidationException", "service_message": f'Could not find endpoint "{ARN}".'}


@pytest.fixture(scope="module")
def model() -> Any:
    return botocore.session.get_session().get_service_model("sagemaker")


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
    return JobEngine(ENDPOINT, client, sleep=clock.sleep, clock=clock)


def endpoint(status: str, config: str = "config-a", **extra: Any) -> dict[str, Any]:
    return {
        "EndpointName": NAME,
        "EndpointArn": ARN,
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
        **extra,
    }


def described(stub: Stubber, status: str | None, config: str = "config-a", **extra: Any) -> None:
    if status is None:
        stub.add_client_error("describe_endpoint", expected_params={"EndpointName": NAME}, **GONE)
    else:
        stub.add_response("describe_endpoint", endpoint(status, config, **extra), {"EndpointName": NAME})


# -- the rows --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(RESOURCE_KINDS))
def test_resource_rows_name_real_operations_and_fields(client: Any, model: Any, key: str) -> None:
    kind = RESOURCE_KINDS[key]
    methods = [kind.create_method, kind.describe_method, kind.delete_method]
    methods += [kind.list_method] if kind.versioned_in else [kind.update_method]
    mapping = client.meta.method_to_api_mapping
    for method in methods:
        assert method in mapping, f"boto3 sagemaker has no {method}"
    describe = model.operation_model(kind.describe_operation)
    assert kind.name_field in describe.input_shape.required_members
    assert {kind.arn_field, kind.status_field} <= set(describe.output_shape.members)
    assert list(model.operation_model(kind.delete_operation).input_shape.members) == [kind.name_field]
    if kind.versioned_in:
        listed = model.operation_model(f"List{kind.noun}s")
        assert kind.versioned_in in listed.input_shape.members
        assert kind.summaries_field in listed.output_shape.members
        assert kind.versioned_in in model.operation_model(kind.create_operation).input_shape.members


@pytest.mark.parametrize("key", sorted(RESOURCE_KINDS))
def test_resource_states_are_the_services_and_each_has_one_meaning(model: Any, key: str) -> None:
    kind = RESOURCE_KINDS[key]
    states = set(model.operation_model(kind.describe_operation).output_shape.members[kind.status_field].enum)
    deleting = {kind.deleting}
    for group in (kind.running, kind.succeeded, kind.failed, deleting, kind.only_deletable):
        assert group <= states
    assert not kind.running & kind.succeeded and not kind.running & kind.failed
    assert not (kind.running | kind.terminal) & deleting
    assert not states - kind.running - kind.terminal - deleting, "a state no poll would classify"
    # The rows read the recorded behaviour: what the service refuses meanwhile, how it deletes.
    assert kind.deleting == service_behaviour.ASYNC_DELETE[kind.noun].deleting


def test_the_endpoint_row_waits_while_the_service_refuses_changes() -> None:
    assert service_behaviour.IN_PROGRESS["Endpoint"].statuses == ENDPOINT.running
    assert ENDPOINT.only_deletable == {"Failed"}


def test_one_lookup_for_jobs_and_resources() -> None:
    assert set(KINDS) == set(JOB_KINDS) | set(RESOURCE_KINDS)
    assert job_kind("endpoint") is ENDPOINT and job_kind("model_package") is PACKAGE
    with pytest.raises(ValueError, match="endpoint"):
        job_kind("endpiont")


def test_console_paths() -> None:
    assert ENDPOINT.console_path(NAME) == "endpoints/digits"
    package = {"ModelPackageGroupName": "digits-classifier", "ModelPackageVersion": 3}
    assert PACKAGE.console_path("arn:...:model-package/digits-classifier/3", package) == (
        "model-registry/digits-classifier"
    )
    assert JOB_KINDS["training"].console_path("job-1") == "jobs/job-1"


# -- poll_once: the one classifier -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        ("Creating", WAITING),
        ("Updating", WAITING),
        ("SystemUpdating", WAITING),
        ("RollingBack", WAITING),
        ("InService", SUCCESS),
        ("Failed", FAILURE),
        ("OutOfService", FAILURE),
        ("UpdateRollbackFailed", FAILURE),
        ("Deleting", FAILURE),
    ],
)
def test_poll_once_classifies_every_endpoint_state(status: str, verdict: str) -> None:
    outcome = poll_once(ENDPOINT, endpoint(status))
    assert (outcome.verdict, outcome.status, outcome.name) == (verdict, status, NAME)
    assert outcome.done is (verdict != WAITING)


def test_a_failed_endpoint_says_why() -> None:
    outcome = poll_once(ENDPOINT, endpoint("Failed", FailureReason="CapacityError: no ml.g5.xlarge"))
    assert outcome.message == "Endpoint digits Failed: CapacityError: no ml.g5.xlarge"
    error = outcome.error()
    assert isinstance(error, SageMakerJobError)
    assert (error.status, error.failure_reason, error.job_name) == (
        "Failed",
        "CapacityError: no ml.g5.xlarge",
        NAME,
    )


def test_an_endpoint_being_deleted_is_no_success_to_wait_for() -> None:
    outcome = poll_once(ENDPOINT, endpoint("Deleting"))
    assert outcome.verdict == FAILURE and "being deleted" in outcome.message


def test_a_missing_name_fails_a_task_that_started_it_and_waits_for_a_sensor() -> None:
    assert poll_once(ENDPOINT, None, name=NAME).message == "Endpoint digits does not exist"
    assert poll_once(ENDPOINT, None, name=NAME).verdict == FAILURE
    assert poll_once(ENDPOINT, None, name=NAME, absent=WAITING).verdict == WAITING


@pytest.mark.parametrize(
    ("status", "verdict"),
    [(None, SUCCESS), ("Deleting", WAITING), ("Creating", FAILURE), ("InService", FAILURE)],
)
def test_waiting_for_a_delete_succeeds_only_once_the_name_is_free(status: str | None, verdict: str) -> None:
    outcome = poll_once(ENDPOINT, None if status is None else endpoint(status), name=NAME, goal="gone")
    assert outcome.verdict == verdict
    if verdict == FAILURE:
        assert "while being deleted; someone else is using this name" in outcome.message


def test_a_failed_model_package_names_the_step_that_failed() -> None:
    description = {
        "ModelPackageName": "digits-classifier",
        "ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/digits-classifier/2",
        "ModelPackageStatus": "Failed",
        "ModelPackageStatusDetails": {
            "ValidationStatuses": [
                {"Name": "digits-val", "Status": "Failed", "FailureReason": "the transform job failed"}
            ]
        },
    }
    outcome = poll_once(PACKAGE, description, name=description["ModelPackageArn"])
    assert outcome.verdict == FAILURE
    assert outcome.reason == "digits-val: the transform job failed"
    assert poll_once(PACKAGE, {**description, "ModelPackageStatus": "Pending"}).verdict == WAITING


def test_a_job_row_is_classified_by_the_same_function() -> None:
    training = JOB_KINDS["training"]
    assert poll_once(training, {"TrainingJobName": "j", "TrainingJobStatus": "InProgress"}).verdict == WAITING
    stopped = poll_once(training, {"TrainingJobName": "j", "TrainingJobStatus": "Stopped"})
    assert stopped.verdict == FAILURE and stopped.message == "TrainingJob j Stopped"


# -- resources have no Stop; the engine waits on them ------------------------------------------------------


def test_a_resource_is_never_stopped(engine: JobEngine, stub: Stubber) -> None:
    assert engine.stop(NAME) is False  # no call at all: the Stubber would fail on one


def test_wait_past_max_wait_leaves_a_resource_as_it_is(client: Any, stub: Stubber, clock: FakeClock) -> None:
    described(stub, "Creating")  # t=0: not yet past the deadline
    described(stub, "Creating")  # t=100+: past it; no Stop, no Delete follows

    def slow_sleep(seconds: float) -> None:
        clock.sleep(seconds + 100)

    engine = JobEngine(ENDPOINT, client, sleep=slow_sleep, clock=clock)
    with pytest.raises(SageMakerJobError, match=r"still Creating after max_wait=60s$"):
        engine.wait(NAME, poll_interval=30, max_wait=60)


# -- undo: what a killed task takes back ------------------------------------------------------------------


def test_undo_of_nothing_touches_nothing(engine: JobEngine, stub: Stubber) -> None:
    assert engine.undo(NAME, None, budget=10) is False


def test_undo_of_a_creation_waits_until_the_service_takes_a_delete(
    engine: JobEngine, stub: Stubber, clock: FakeClock
) -> None:
    described(stub, "Creating")
    described(stub, "Creating")
    described(stub, "InService")
    stub.add_response("delete_endpoint", {}, {"EndpointName": NAME})

    assert engine.undo(NAME, {"action": "delete"}, budget=10, poll_interval=1.0) is True
    assert clock.sleeps == [1.0, 1.0]


def test_undo_of_a_creation_that_failed_deletes_it(engine: JobEngine, stub: Stubber) -> None:
    described(stub, "Failed", FailureReason="ping health check")
    stub.add_response("delete_endpoint", {}, {"EndpointName": NAME})
    assert engine.undo(NAME, {"action": "delete"}, budget=10) is True


def test_undo_gives_up_at_its_budget_without_a_refused_call(
    engine: JobEngine, stub: Stubber, clock: FakeClock
) -> None:
    for _ in range(4):
        described(stub, "Creating")
    assert engine.undo(NAME, {"action": "delete"}, budget=3, poll_interval=1.0) is False
    assert sum(clock.sleeps) == 3


def test_undo_of_something_already_gone_or_going_sends_nothing(engine: JobEngine, stub: Stubber) -> None:
    described(stub, None)
    assert engine.undo(NAME, {"action": "delete"}, budget=10) is False
    described(stub, "Deleting")
    assert engine.undo(NAME, {"action": "delete"}, budget=10) is False


def test_undo_of_an_update_restores_the_previous_config_once_the_update_ends(
    engine: JobEngine, stub: Stubber
) -> None:
    described(stub, "Updating", "config-a", PendingDeploymentSummary={"EndpointConfigName": "config-b"})
    described(stub, "InService", "config-b")
    stub.add_response(
        "update_endpoint", {"EndpointArn": ARN}, {"EndpointName": NAME, "EndpointConfigName": "config-a"}
    )
    undo = {"action": "restore", "fields": {"EndpointConfigName": "config-a"}}
    assert engine.undo(NAME, undo, budget=10, poll_interval=1.0) is True


def test_undo_of_an_update_that_failed_finds_nothing_to_restore(engine: JobEngine, stub: Stubber) -> None:
    # A failed update leaves the endpoint InService on the config it had.
    described(stub, "InService", "config-a", FailureReason="the new variant did not pass its health check")
    undo = {"action": "restore", "fields": {"EndpointConfigName": "config-a"}}
    assert engine.undo(NAME, undo, budget=10) is False


def test_undo_of_a_job_stops_it(client: Any, stub: Stubber) -> None:
    from tests.unit.jobs.test_engine import description

    training = JobEngine(JOB_KINDS["training"], client)
    stub.add_response("describe_training_job", description("j", "InProgress"), {"TrainingJobName": "j"})
    stub.add_response("stop_training_job", {}, {"TrainingJobName": "j"})
    assert training.undo("j", {"action": "stop"}, budget=10) is True


def test_the_in_progress_rows_name_real_operations_and_cite_aws(model: Any) -> None:
    for row in service_behaviour.IN_PROGRESS.values():
        assert row.source.startswith("https://docs.aws.amazon.com/sagemaker/")
        states = set(
            model.operation_model(f"Describe{row.resource}").output_shape.members[row.status_field].enum
        )
        assert row.statuses <= states
        for operation in row.refused:
            model.operation_model(operation)  # raises for an operation the service does not have
    # What SageMaker answers, written out (not read from the table).
    assert service_behaviour.in_progress_refusal("Endpoint", "DeleteEndpoint", "Creating", NAME, ARN) == {
        "Code": "ValidationException",
        "Message": f'Cannot update in-progress endpoint "{ARN}".',
    }
    assert service_behaviour.in_progress_refusal("Endpoint", "DeleteEndpoint", "InService", NAME, ARN) is None


# -- a Create whose answer was lost ------------------------------------------------------------------------


def _client_error(code: str, message: str) -> Any:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message}}, "Create")


@pytest.mark.parametrize(
    ("operation", "code", "message", "taken"),
    [
        ("CreateEndpoint", "ValidationException", f'Cannot create already existing endpoint "{ARN}".', True),
        (
            "CreateEndpointConfig",
            "ValidationException",
            'Cannot create already existing endpoint configuration "x".',
            True,
        ),
        ("CreateModel", "ValidationException", 'Cannot create already existing model "x".', True),
        (
            "CreateEndpoint",
            "ValidationException",
            "1 validation error detected: Value 'a b' at 'endpointName'",
            False,
        ),
        ("CreateTrainingJob", "ResourceInUse", "Training job names must be unique ...", True),
        ("CreateTransformJob", "ResourceInUse", "Transform job names must be unique ...", True),
        ("CreateTrainingJob", "ValidationException", "Could not find requested image", False),
    ],
)
def test_a_taken_name_is_told_from_a_malformed_request(
    operation: str, code: str, message: str, taken: bool
) -> None:
    assert service_behaviour.is_name_in_use(operation, _client_error(code, message)) is taken


def test_a_create_retried_after_its_answer_was_lost_attaches_to_what_it_made(
    engine: JobEngine, stub: Stubber
) -> None:
    request = {"EndpointConfigName": "config-a"}
    stub.add_client_error(
        "create_endpoint",
        "ValidationException",
        f'Cannot create already existing endpoint "{ARN}".',
        expected_params={"EndpointName": NAME, **request},
    )
    described(stub, "Creating")

    handle = engine._create(NAME, request)

    assert (handle.name, handle.arn, handle.created) == (NAME, ARN, True)
    assert handle.description["EndpointStatus"] == "Creating"


def test_a_create_refused_for_another_reason_is_raised(engine: JobEngine, stub: Stubber) -> None:
    from botocore.exceptions import ClientError

    stub.add_client_error(
        "create_endpoint", "ValidationException", 'Could not find endpoint configuration "x".'
    )
    with pytest.raises(ClientError, match="Could not find endpoint configuration"):
        engine._create(NAME, {"EndpointConfigName": "x"})
