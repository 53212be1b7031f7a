"""The job kind table against botocore's real SageMaker service model."""

from __future__ import annotations

import boto3
import botocore.session
import pytest

from airflow_dl_provider.jobs.kinds import JOB_KINDS, JobKind, job_kind

KINDS = sorted(JOB_KINDS)


@pytest.fixture(scope="module")
def model():
    return botocore.session.get_session().get_service_model("sagemaker")


@pytest.fixture(scope="module")
def client():
    return boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def _status_enum(model, kind: JobKind) -> set[str]:
    output = model.operation_model(f"Describe{kind.noun}").output_shape
    assert kind.status_field in output.members, f"Describe{kind.noun} has no {kind.status_field}"
    return set(output.members[kind.status_field].enum)


@pytest.mark.parametrize("key", KINDS)
def test_row_methods_exist_on_a_real_boto3_client(client, key: str) -> None:
    kind = JOB_KINDS[key]
    for method in (kind.create_method, kind.describe_method, kind.stop_method):
        assert callable(getattr(client, method, None)), f"boto3 sagemaker has no {method}"
    mapping = client.meta.method_to_api_mapping
    assert mapping[kind.create_method] == kind.create_operation
    assert mapping[kind.describe_method] == f"Describe{kind.noun}"
    assert mapping[kind.stop_method] == f"Stop{kind.noun}"


@pytest.mark.parametrize("key", KINDS)
def test_name_and_arn_fields_match_the_model(model, key: str) -> None:
    kind = JOB_KINDS[key]
    create = model.operation_model(kind.create_operation)
    describe = model.operation_model(f"Describe{kind.noun}")
    stop = model.operation_model(f"Stop{kind.noun}")
    assert kind.name_field in create.input_shape.required_members
    assert list(describe.input_shape.members) == [kind.name_field]
    assert list(stop.input_shape.members) == [kind.name_field]
    assert kind.arn_field in create.output_shape.members
    assert {kind.name_field, kind.arn_field, kind.status_field} <= set(describe.output_shape.members)
    assert create.input_shape.members[kind.name_field].metadata["max"] == kind.max_name_length


@pytest.mark.parametrize("key", KINDS)
def test_status_sets_are_states_of_the_service(model, key: str) -> None:
    kind = JOB_KINDS[key]
    allowed = _status_enum(model, kind)
    for name, states in (("running", kind.running), ("succeeded", kind.succeeded), ("failed", kind.failed)):
        assert states, f"{key}.{name} is empty"
        assert states <= allowed, f"{key}.{name} has {sorted(states - allowed)}, not in {sorted(allowed)}"


@pytest.mark.parametrize("key", KINDS)
def test_status_sets_are_disjoint_and_cover_every_state(model, key: str) -> None:
    kind = JOB_KINDS[key]
    assert not kind.running & kind.succeeded
    assert not kind.running & kind.failed
    assert not kind.succeeded & kind.failed
    # A state in no set would be reattached to as "finished" and then polled forever.
    unclassified = _status_enum(model, kind) - kind.running - kind.terminal
    assert not unclassified, f"{key}: {sorted(unclassified)} is neither running nor terminal"


def test_job_kind_lookup() -> None:
    assert job_kind("training") is JOB_KINDS["training"]
    with pytest.raises(ValueError, match="training"):
        job_kind("trainig")


def test_training_max_seconds_prefers_the_spot_wait() -> None:
    training = JOB_KINDS["training"]
    assert training.max_seconds({"StoppingCondition": {"MaxRuntimeInSeconds": 600}}) == 600
    spot = {"StoppingCondition": {"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 1800}}
    assert training.max_seconds(spot) == 1800
    assert training.max_seconds({}) is None


def test_tuning_max_seconds_counts_sequential_rounds() -> None:
    tuning = JOB_KINDS["tuning"]
    request = {
        "HyperParameterTuningJobConfig": {
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 5, "MaxParallelTrainingJobs": 2}
        },
        "TrainingJobDefinition": {"StoppingCondition": {"MaxRuntimeInSeconds": 100}},
    }
    assert tuning.max_seconds(request) == 300  # ceil(5 / 2) rounds of 100 s
    request["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxRuntimeInSeconds"] = 250
    assert tuning.max_seconds(request) == 250


def test_training_result_is_json_safe_and_complete() -> None:
    import json

    description = {
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/out/job/output/model.tar.gz"},
        "FinalMetricDataList": [{"MetricName": "test_accuracy", "Value": 0.97}],
        "TrainingTimeInSeconds": 12,
        "BillableTimeInSeconds": 24,
    }
    result = JOB_KINDS["training"].result(description)
    assert result == {
        "model_artifacts": "s3://b/out/job/output/model.tar.gz",
        "metrics": {"test_accuracy": 0.97},
        "training_seconds": 12,
        "billable_seconds": 24,
    }
    json.dumps(result)
