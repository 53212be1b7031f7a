"""The service behaviour table against the real services' recorded answers and botocore's models.

The literal messages below are what SageMaker, CloudWatch Logs and S3 answer (as the ACK SageMaker
controller, AWS's SageMaker operator for Kubernetes and public tracebacks record them); they are
written out here, not read from the table, so a wrong row fails.
"""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.retries.standard import ThrottledRetryableChecker

from airflow_dl_provider import service_behaviour as sb
from airflow_dl_provider.jobs.kinds import JOB_KINDS

ACCOUNT = "123456789012"
ENDPOINT_ARN = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/digits"


def error(code: str, message: str, operation: str = "Op") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@pytest.fixture(scope="module")
def session() -> Any:
    return botocore.session.get_session()


REAL_NOT_FOUND = [
    ("DescribeTrainingJob", "job-1", "", "ValidationException", "Requested resource not found."),
    (
        "DescribeTransformJob",
        "job-1",
        "",
        "ValidationException",
        "Could not find requested job with name job-1",
    ),
    (
        "DescribeProcessingJob",
        "job-1",
        "",
        "ValidationException",
        "Could not find requested job with name job-1",
    ),
    (
        "DescribeHyperParameterTuningJob",
        "tune-1",
        "",
        "ResourceNotFound",
        "Amazon SageMaker can't find a tuning job with name tune-1",
    ),
    (
        "DescribeEndpoint",
        "digits",
        ENDPOINT_ARN,
        "ValidationException",
        f'Could not find endpoint "{ENDPOINT_ARN}".',
    ),
    (
        "DescribeEndpointConfig",
        "digits-c",
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint-config/digits-c",
        "ValidationException",
        f'Could not find endpoint configuration "arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint-config/digits-c".',
    ),
    (
        "DescribeModel",
        "m",
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/m",
        "ValidationException",
        f'Could not find model "arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/m".',
    ),
    (
        "DescribeModelPackage",
        "g/1",
        f"arn:aws:sagemaker:us-west-2:{ACCOUNT}:model-package/g/1",
        "ValidationException",
        f"ModelPackage arn:aws:sagemaker:us-west-2:{ACCOUNT}:model-package/g/1 does not exist.",
    ),
    (
        "DescribeModelPackageGroup",
        "g",
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package-group/g",
        "ValidationException",
        f"ModelPackageGroup arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package-group/g does not exist.",
    ),
    ("GetLogEvents", "s", "", "ResourceNotFoundException", "The specified log stream does not exist."),
    ("DescribeLogStreams", "g", "", "ResourceNotFoundException", "The specified log group does not exist."),
    ("HeadObject", "k", "", "404", "Not Found"),
    (
        "InvokeEndpoint",
        "digits",
        ENDPOINT_ARN,
        "ValidationError",
        f"Endpoint digits of account {ACCOUNT} not found.",
    ),
]


@pytest.mark.parametrize(("operation", "name", "arn", "code", "message"), REAL_NOT_FOUND)
def test_rows_answer_what_the_service_answers(
    operation: str, name: str, arn: str, code: str, message: str
) -> None:
    assert sb.not_found_error(operation, name, arn) == {"Code": code, "Message": message}
    assert sb.NOT_FOUND[operation].error(name, arn) == {"Code": code, "Message": message}


@pytest.mark.parametrize(("operation", "name", "arn", "code", "message"), REAL_NOT_FOUND)
def test_the_detector_knows_each_real_answer(
    operation: str, name: str, arn: str, code: str, message: str
) -> None:
    assert sb.is_not_found(operation, error(code, message, operation))


def test_the_old_shared_detector_missed_the_transform_and_processing_messages() -> None:
    # The engine's former rule ("not found" or "does not exist" in a ValidationException) said no here.
    message = "Could not find requested job with name job-1"
    assert "not found" not in message.lower() and "does not exist" not in message.lower()
    assert sb.is_not_found("DescribeTransformJob", error("ValidationException", message))
    assert sb.is_not_found("DescribeProcessingJob", error("ValidationException", message))


@pytest.mark.parametrize(
    "operation",
    [
        "DescribeTrainingJob",
        "DescribeTransformJob",
        "DescribeProcessingJob",
        "DescribeEndpoint",
        "DescribeEndpointConfig",
        "DescribeModel",
        "DescribeModelPackage",
        "DescribeModelPackageGroup",
    ],
)
def test_a_malformed_request_is_not_a_missing_resource(operation: str) -> None:
    malformed = (
        "1 validation error detected: Value 'bad_name' at 'name' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    )
    assert not sb.is_not_found(operation, error("ValidationException", malformed))


@pytest.mark.parametrize("operation", ["DescribeLabelingJob", "DescribeCompilationJob"])
def test_labeling_and_compilation_take_any_validation_or_resource_not_found(operation: str) -> None:
    assert sb.is_not_found(operation, error("ValidationException", "anything at all"))
    assert sb.is_not_found(operation, error("ResourceNotFound", "anything at all"))
    assert not sb.is_not_found(operation, error("ThrottlingException", "Rate exceeded"))


def test_throttling_and_access_denied_are_never_not_found() -> None:
    for operation in sb.NOT_FOUND:
        assert not sb.is_not_found(operation, error("ThrottlingException", "Rate exceeded"))
        assert not sb.is_not_found(operation, error("AccessDeniedException", "not authorized"))


def test_an_operation_without_a_row_is_a_bug_said_at_once() -> None:
    with pytest.raises(KeyError, match="no not-found row for DescribeWorkteam"):
        sb.is_not_found("DescribeWorkteam", error("ValidationException", "x"))


def test_stop_update_and_delete_answer_as_their_describe() -> None:
    assert sb.not_found_error("StopTrainingJob", "j") == sb.not_found_error("DescribeTrainingJob", "j")
    assert sb.not_found_error("DeleteEndpoint", "e", ENDPOINT_ARN)["Message"] == (
        f'Could not find endpoint "{ENDPOINT_ARN}".'
    )
    # CreateEndpoint finds its config missing, and says so.
    assert (
        sb.not_found_error("CreateEndpoint", "c", "arn-c")["Message"]
        == 'Could not find endpoint configuration "arn-c".'
    )


def test_every_job_kind_has_rows_for_its_describe_and_stop() -> None:
    for kind in JOB_KINDS.values():
        assert kind.describe_operation in sb.NOT_FOUND
        assert kind.stop_operation in sb.NOT_FOUND


SERVICE_OF = {
    "GetLogEvents": "logs",
    "DescribeLogStreams": "logs",
    "HeadObject": "s3",
    "InvokeEndpoint": "sagemaker-runtime",
}


@pytest.mark.parametrize("operation", sorted(sb.NOT_FOUND))
def test_every_row_is_a_real_operation_with_a_source(session: Any, operation: str) -> None:
    model = session.get_service_model(SERVICE_OF.get(operation, "sagemaker"))
    assert operation in model.operation_names
    row = sb.NOT_FOUND[operation]
    assert row.operation == operation
    assert row.source.startswith("https://docs.aws.amazon.com/")


# -- asynchronous deletes -----------------------------------------------------------------------------


@pytest.mark.parametrize("resource", sorted(sb.ASYNC_DELETE))
def test_deleting_statuses_are_states_of_the_service(session: Any, resource: str) -> None:
    row = sb.ASYNC_DELETE[resource]
    model = session.get_service_model("sagemaker")
    assert row.delete_operation in model.operation_names
    enum = model.operation_model(row.describe_operation).output_shape.members[row.status_field].enum
    assert row.deleting in enum
    assert row.delete_failed is None or row.delete_failed in enum
    assert row.source.startswith("https://docs.aws.amazon.com/")


def test_calls_on_a_deleting_endpoint_are_refused_as_sagemaker_refuses_them() -> None:
    endpoint = sb.ASYNC_DELETE["Endpoint"]
    assert endpoint.deleting == "Deleting"
    assert endpoint.is_deleting({"EndpointStatus": "Deleting"})
    assert not endpoint.is_deleting({"EndpointStatus": "InService"})
    assert sb.deleting_refusal("Endpoint", "CreateEndpoint", "digits", ENDPOINT_ARN) == {
        "Code": "ValidationException",
        "Message": f'Cannot create already existing endpoint "{ENDPOINT_ARN}".',
    }
    for operation in ("UpdateEndpoint", "DeleteEndpoint"):
        assert sb.deleting_refusal("Endpoint", operation, "digits", ENDPOINT_ARN) == {
            "Code": "ValidationException",
            "Message": f'Cannot update in-progress endpoint "{ENDPOINT_ARN}".',
        }
    assert sb.deleting_refusal("Endpoint", "DescribeEndpoint", "digits", ENDPOINT_ARN) is None


# -- log streams ------------------------------------------------------------------------------------------


def test_log_streams_per_kind() -> None:
    assert sb.log_stream_prefix("training", "job-1") == ("job-1/", False)
    assert sb.log_stream_prefix("transform", "job-1") == ("job-1/", False)
    assert sb.log_stream_prefix("processing", "job-1") == ("job-1/", False)
    # Labeling and compilation write one stream named exactly after the job.
    assert sb.log_stream_prefix("labeling", "job-1") == ("job-1", True)
    assert sb.log_stream_prefix("compilation", "job-1") == ("job-1", True)
    assert sb.log_group("training") == "/aws/sagemaker/TrainingJobs"
    assert sb.log_group("labeling") == "/aws/sagemaker/LabelingJobs"
    assert sb.log_group("compilation") == "/aws/sagemaker/CompilationJobs"
    assert sb.log_group("tuning") is None


def test_job_kinds_read_their_log_group_from_the_table() -> None:
    for key, kind in JOB_KINDS.items():
        assert kind.log_group == sb.log_group(key)


# -- throttling and service stops -------------------------------------------------------------------------


def test_throttling_codes_are_botocores() -> None:
    assert frozenset(ThrottledRetryableChecker._THROTTLED_ERROR_CODES) == sb.THROTTLING_CODES
    for answer in sb.THROTTLING.values():
        assert answer["Code"] in sb.THROTTLING_CODES
        assert sb.is_throttling(error(answer["Code"], answer["Message"]))
    assert not sb.is_throttling(error("ValidationException", "Requested resource not found."))
    assert not sb.is_throttling(ValueError("not a ClientError"))


def test_stop_reason_names_the_limit_the_service_stopped_at() -> None:
    assert sb.stop_reason({"SecondaryStatus": "MaxRuntimeExceeded"}).startswith("MaxRuntimeExceeded: ")
    assert "MaxRuntimeInSeconds" in sb.stop_reason({"SecondaryStatus": "MaxRuntimeExceeded"})
    moved_on = {
        "SecondaryStatus": "Stopped",
        "SecondaryStatusTransitions": [{"Status": "Training"}, {"Status": "MaxWaitTimeExceeded"}],
    }
    assert sb.stop_reason(moved_on).startswith("MaxWaitTimeExceeded: ")
    assert sb.stop_reason({"SecondaryStatus": "Stopped"}) == ""
    assert sb.stop_reason({}) == ""


def test_secondary_statuses_are_the_services(session: Any) -> None:
    output = session.get_service_model("sagemaker").operation_model("DescribeTrainingJob").output_shape
    assert set(sb.STOP_REASONS) <= set(output.members["SecondaryStatus"].enum)
