"""Tests of the SageMaker request/response validator against the real botocore service model."""

from __future__ import annotations

import copy
import datetime
import time
from typing import Any

import botocore.session
import pytest

from airflow_dl_provider.exceptions import RequestValidationError
from airflow_dl_provider.validation import requests as validation
from airflow_dl_provider.validation.requests import (
    request_errors,
    response_errors,
    validate_request,
    validate_response,
)

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:latest"


def training_request(**overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TrainingJobName": "bert-finetune-2024-01-01",
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/output"},
        "ResourceConfig": {"InstanceType": "ml.p3dn.24xlarge", "InstanceCount": 2, "VolumeSizeInGB": 100},
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
    }
    request.update(overrides)
    return request


def channel(name: str) -> dict[str, Any]:
    s3 = {"S3DataType": "S3Prefix", "S3Uri": f"s3://bucket/{name}/"}
    return {"ChannelName": name, "DataSource": {"S3DataSource": s3}}


def refused(operation: str, params: dict[str, Any]) -> RequestValidationError:
    with pytest.raises(RequestValidationError) as caught:
        validate_request(operation, params)
    return caught.value


def test_minimal_training_request_passes() -> None:
    assert request_errors("CreateTrainingJob", training_request()) == []
    validate_request("CreateTrainingJob", training_request())


def test_full_training_request_with_channels_maps_and_tags_passes() -> None:
    request = training_request(
        HyperParameters={"epochs": "3", "lr": "2e-5"},
        InputDataConfig=[channel("train"), channel("validation")],
        Environment={"NCCL_DEBUG": "INFO"},
        # \p{L}/\p{Z}/\p{N} in the TagKey pattern must accept non-ASCII letters and spaces.
        Tags=[{"Key": "équipe", "Value": "vision nlp 2"}],
        RetryStrategy={"MaximumRetryAttempts": 3},
    )
    assert request_errors("CreateTrainingJob", request) == []


def test_bogus_instance_type_is_refused_on_one_line_with_suggestions() -> None:
    request = training_request(ResourceConfig={"InstanceType": "ml.bogus.xlarge", "InstanceCount": 1})
    error = refused("CreateTrainingJob", request)
    message = str(error)
    assert message.startswith("CreateTrainingJob.ResourceConfig.InstanceType: 'ml.bogus.xlarge'")
    assert "\n" not in message
    assert "did you mean" in message
    assert "ml.p3dn.24xlarge" not in message.split("allowed:")[0]  # suggestions are close matches only
    assert "values)" in message
    assert error.errors == [message]  # type: ignore[attr-defined]


def test_short_enum_lists_every_allowed_value() -> None:
    request = training_request(AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "Stream"})
    assert request_errors("CreateTrainingJob", request) == [
        "CreateTrainingJob.AlgorithmSpecification.TrainingInputMode: 'Stream' is not a valid value; "
        "allowed: Pipe, File, FastFile"
    ]


def test_long_job_name_names_the_maximum_and_truncates_the_value() -> None:
    message = str(refused("CreateTrainingJob", training_request(TrainingJobName="a" * 70)))
    assert message.startswith("CreateTrainingJob.TrainingJobName: 'aaaa")
    assert message.endswith("is 70 characters; the maximum is 63")
    assert "a" * 70 not in message
    assert "…" in message


def test_job_name_with_underscore_is_refused_by_pattern() -> None:
    message = str(refused("CreateTrainingJob", training_request(TrainingJobName="bad_name")))
    assert message == (
        "CreateTrainingJob.TrainingJobName: 'bad_name' does not fully match the pattern "
        "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    )


def test_numbers_outside_their_range_are_refused() -> None:
    # The model allows InstanceCount 0 (instance groups), so -1 is the first refused count.
    low = training_request(ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": -1})
    assert request_errors("CreateTrainingJob", low) == [
        "CreateTrainingJob.ResourceConfig.InstanceCount: -1 is below the minimum 0"
    ]
    zero_runtime = training_request(StoppingCondition={"MaxRuntimeInSeconds": 0})
    assert request_errors("CreateTrainingJob", zero_runtime) == [
        "CreateTrainingJob.StoppingCondition.MaxRuntimeInSeconds: 0 is below the minimum 1"
    ]
    high = training_request(RetryStrategy={"MaximumRetryAttempts": 31})
    assert request_errors("CreateTrainingJob", high) == [
        "CreateTrainingJob.RetryStrategy.MaximumRetryAttempts: 31 is above the maximum 30"
    ]


def test_missing_role_is_one_line_from_botocore() -> None:
    request = training_request()
    del request["RoleArn"]
    message = str(refused("CreateTrainingJob", request))
    assert message == "CreateTrainingJob.RoleArn: is required but missing"


def test_unknown_key_is_refused_with_a_suggestion() -> None:
    request = training_request(HyperParameter={"epochs": "3"})
    [line] = request_errors("CreateTrainingJob", request)
    assert line.startswith(
        "CreateTrainingJob.HyperParameter: is not a known field; did you mean 'HyperParameters'"
    )
    assert "\n" not in line


def test_wrong_type_in_a_map_value_is_one_line() -> None:
    request = training_request(HyperParameters={"epochs": 3})
    assert request_errors("CreateTrainingJob", request) == [
        "CreateTrainingJob.HyperParameters.epochs: 3 is int; expected str"
    ]


def test_list_member_path_shows_the_index() -> None:
    request = training_request(InputDataConfig=[channel("train"), channel("bad name")])
    [line] = request_errors("CreateTrainingJob", request)
    assert line.startswith(
        "CreateTrainingJob.InputDataConfig[1].ChannelName: 'bad name' does not fully match"
    )


def test_list_item_count_is_checked() -> None:
    request = training_request(InputDataConfig=[channel(f"c{i}") for i in range(21)])
    assert request_errors("CreateTrainingJob", request) == [
        "CreateTrainingJob.InputDataConfig: has 21 items; the maximum is 20"
    ]


def test_translated_unicode_pattern_still_refuses_control_characters() -> None:
    request = training_request(Tags=[{"Key": "team\x01", "Value": "ok"}])
    [line] = request_errors("CreateTrainingJob", request)
    assert line.startswith("CreateTrainingJob.Tags[0].Key: 'team\\x01' does not fully match the pattern")


def test_operation_may_be_the_boto3_method_name() -> None:
    assert request_errors("create_training_job", training_request()) == []
    [line] = request_errors("create_training_job", training_request(TrainingJobName="bad_name"))
    assert line.startswith("CreateTrainingJob.TrainingJobName:")


def test_unknown_operation_and_service_raise_clearly() -> None:
    with pytest.raises(RequestValidationError, match=r"sagemaker has no operation 'CreateTrainingJobs'.*"):
        validate_request("CreateTrainingJobs", {})
    with pytest.raises(RequestValidationError, match="did you mean 'CreateTrainingJob'"):
        request_errors("CreateTrainingJobs", {})
    with pytest.raises(RequestValidationError, match="no service model named 'sagemakr'"):
        validate_request("CreateTrainingJob", {}, service="sagemakr")


def test_several_problems_make_one_line_and_all_are_attached() -> None:
    request = training_request(
        TrainingJobName="bad_name",
        ResourceConfig={"InstanceType": "ml.bogus.xlarge", "InstanceCount": -1},
    )
    del request["RoleArn"]
    error = refused("CreateTrainingJob", request)
    errors = error.errors  # type: ignore[attr-defined]
    assert len(errors) == 4
    assert any(line.startswith("CreateTrainingJob.RoleArn:") for line in errors)
    assert any(line.startswith("CreateTrainingJob.TrainingJobName:") for line in errors)
    assert any(line.startswith("CreateTrainingJob.ResourceConfig.InstanceType:") for line in errors)
    assert any(line.startswith("CreateTrainingJob.ResourceConfig.InstanceCount:") for line in errors)
    message = str(error)
    assert "\n" not in message
    assert message == f"{errors[0]} (and 3 more: {'; '.join(errors[1:])})"


def labeling_request(**overrides: Any) -> dict[str, Any]:
    lambda_arn = "arn:aws:lambda:us-east-1:432418664414:function:PRE-BoundingBox"
    request: dict[str, Any] = {
        "LabelingJobName": "cars-boxes-1",
        "LabelAttributeName": "cars-boxes",
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": "s3://bucket/manifest.json"}}},
        "OutputConfig": {"S3OutputPath": "s3://bucket/labels/"},
        "RoleArn": ROLE,
        "HumanTaskConfig": {
            "WorkteamArn": "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/team",
            "UiConfig": {"UiTemplateS3Uri": "s3://bucket/template.liquid"},
            "PreHumanTaskLambdaArn": lambda_arn,
            "TaskTitle": "Draw boxes around cars",
            "TaskDescription": "One box per car",
            "NumberOfHumanWorkersPerDataObject": 1,
            "TaskTimeLimitInSeconds": 300,
            "AnnotationConsolidationConfig": {"AnnotationConsolidationLambdaArn": lambda_arn},
        },
    }
    request.update(overrides)
    return request


def test_labeling_job_request_passes_and_nested_limits_apply() -> None:
    assert request_errors("CreateLabelingJob", labeling_request()) == []
    bad = labeling_request()
    bad["HumanTaskConfig"]["NumberOfHumanWorkersPerDataObject"] = 0
    [line] = request_errors("create_labeling_job", bad)
    assert line.startswith("CreateLabelingJob.HumanTaskConfig.NumberOfHumanWorkersPerDataObject: 0 is below")


def tuning_request(name: str) -> dict[str, Any]:
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 10, "MaxParallelTrainingJobs": 2},
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:accuracy"},
            "ParameterRanges": {
                "ContinuousParameterRanges": [{"Name": "lr", "MinValue": "1e-5", "MaxValue": "1e-3"}]
            },
        },
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "RoleArn": ROLE,
            "OutputDataConfig": {"S3OutputPath": "s3://bucket/hpo"},
            "ResourceConfig": {"InstanceType": "ml.g5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        },
    }


def test_tuning_job_name_is_limited_to_32_characters() -> None:
    assert request_errors("CreateHyperParameterTuningJob", tuning_request("h" * 32)) == []
    message = str(refused("CreateHyperParameterTuningJob", tuning_request("h" * 33)))
    assert message.startswith("CreateHyperParameterTuningJob.HyperParameterTuningJobName: 'hhh")
    assert message.endswith("is 33 characters; the maximum is 32")


def describe_training_job_response() -> dict[str, Any]:
    start = datetime.datetime(2024, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)
    end = start + datetime.timedelta(hours=2)
    name = "bert-finetune-2024-01-01"
    return {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://bucket/output/{name}/output/model.tar.gz"},
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "HyperParameters": {"epochs": "3"},
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "InputDataConfig": [channel("train")],
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/output"},
        "ResourceConfig": {"InstanceType": "ml.p3dn.24xlarge", "InstanceCount": 2, "VolumeSizeInGB": 100},
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        "CreationTime": start,
        "TrainingStartTime": start,
        "TrainingEndTime": end,
        "LastModifiedTime": end,
        "SecondaryStatusTransitions": [
            {"Status": "Training", "StartTime": start, "EndTime": end, "StatusMessage": "Training"},
            {"Status": "Completed", "StartTime": end, "StatusMessage": "Training job completed"},
        ],
        "FinalMetricDataList": [{"MetricName": "validation:accuracy", "Value": 0.91, "Timestamp": end}],
        "EnableNetworkIsolation": False,
        "TrainingTimeInSeconds": 7200,
        "BillableTimeInSeconds": 7200,
        "ResponseMetadata": {
            "RequestId": "5f3c",
            "HTTPStatusCode": 200,
            "HTTPHeaders": {},
            "RetryAttempts": 0,
        },
    }


def test_realistic_describe_training_job_response_passes() -> None:
    assert response_errors("DescribeTrainingJob", describe_training_job_response()) == []
    validate_response("describe_training_job", describe_training_job_response())


def test_response_with_unknown_status_is_refused() -> None:
    response = describe_training_job_response()
    response["TrainingJobStatus"] = "Done"
    with pytest.raises(RequestValidationError) as caught:
        validate_response("DescribeTrainingJob", response)
    message = str(caught.value)
    assert message.startswith("DescribeTrainingJob.TrainingJobStatus: 'Done' is not a valid value; allowed: ")
    allowed = message.split("allowed: ")[1].split(", ")
    assert {"InProgress", "Completed", "Failed", "Stopping", "Stopped"} <= set(allowed)


def test_response_types_required_and_unknown_members_are_checked() -> None:
    response = describe_training_job_response()
    response["TrainingTimeInSeconds"] = "7200"
    response["EnableNetworkIsolation"] = 0
    response["FinalMetricDataList"][0]["Value"] = True
    response["Extra"] = 1
    response["ModelArtifact"] = response.pop("ModelArtifacts")
    lines = response_errors("DescribeTrainingJob", response)
    misspelt = [line for line in lines if line.startswith("DescribeTrainingJob.ModelArtifact:")]
    assert len(misspelt) == 1
    assert "did you mean 'ModelArtifacts'" in misspelt[0]
    assert len(lines) == 6
    assert set(lines) - set(misspelt) == {
        "DescribeTrainingJob.ModelArtifacts: is required but missing",
        "DescribeTrainingJob.Extra: is not a known field; allowed: AlgorithmSpecification, AutoMLJobArn, "
        "BillableTimeInSeconds, BillableTokenCount, CheckpointConfig, CreationTime, DebugHookConfig, "
        f"DebugRuleConfigurations, DebugRuleEvaluationStatuses, EnableInterContainerTrafficEncryption, ... "
        f"({_output_member_count('DescribeTrainingJob')} fields)",
        "DescribeTrainingJob.TrainingTimeInSeconds: '7200' is str; expected int",
        "DescribeTrainingJob.EnableNetworkIsolation: 0 is int; expected bool",
        "DescribeTrainingJob.FinalMetricDataList[0].Value: True is bool; expected int or float",
    }


def _output_member_count(operation: str) -> int:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return len(model.operation_model(operation).output_shape.members)


def test_input_is_not_mutated() -> None:
    request = training_request(InputDataConfig=[channel("train")], Tags=[{"Key": "a", "Value": "b"}])
    before = copy.deepcopy(request)
    request_errors("CreateTrainingJob", request)
    assert request == before


def test_every_model_pattern_compiles_or_is_translated() -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    patterns = {p for n in model.shape_names if (p := model.shape_for(n).metadata.get("pattern"))}
    skipped = sorted(p for p in patterns if validation._compiled(p) is None)
    assert skipped == []


def test_pattern_translation_of_java_only_syntax() -> None:
    letters = validation._compiled(r"[\p{L}\p{N}]+")
    assert letters is not None
    assert letters.fullmatch("Ünïcode9") and not letters.fullmatch("a b")
    # A Java surrogate pair range is the supplementary planes.
    beyond_bmp = validation._compiled(r"[\u0020-\uD7FF\uD800\uDC00-\uDBFF\uDFFF]*")
    assert beyond_bmp is not None
    assert beyond_bmp.fullmatch("plain 🙂") and not beyond_bmp.fullmatch("tab\there")
    repeated_anchor = validation._compiled(r"([\p{L}]*)${1,128}")
    assert repeated_anchor is not None and repeated_anchor.fullmatch("abc")
    assert validation._compiled(r"[\p{IsLatin}]+") is None  # unsupported: skipped, not a crash


def test_validate_request_is_fast_after_the_first_call() -> None:
    request = training_request(InputDataConfig=[channel("train")], HyperParameters={"epochs": "3"})
    validate_request("CreateTrainingJob", request)
    calls = 50
    started = time.perf_counter()
    for _ in range(calls):
        validate_request("CreateTrainingJob", request)
    assert (time.perf_counter() - started) / calls < 0.010
