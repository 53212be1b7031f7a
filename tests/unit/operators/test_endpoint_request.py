"""EndpointDeployOperator: CreateModel, CreateEndpointConfig with data capture, CreateEndpoint; exactly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider.operators.endpoints import EndpointDeployOperator
from airflow_dl_provider.specs.model import content_addressed_model_name, inference_environment
from airflow_dl_provider.validation.requests import validate_request
from tests.conftest import ROLE_ARN
from tests.unit.operators.stubs import IMAGE, NOW, not_found, use

if TYPE_CHECKING:
    from botocore.stub import Stubber

MODEL = "s3://bucket/models/job/output/model.tar.gz"
ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/digits"


def _operator(**kwargs: Any) -> EndpointDeployOperator:
    args: dict[str, Any] = {
        "task_id": "deploy",
        "endpoint_name": "digits",
        "model_artifacts": MODEL,
        "role_arn": ROLE_ARN,
        "image_uri": IMAGE,
        "instance_type": "ml.c5.large",
        "data_capture_s3_uri": "s3://bucket/capture",
        "sampling_percentage": 20,
        "region_name": "us-east-1",
        "poll_interval": 0.01,
    }
    args.update(kwargs)
    return EndpointDeployOperator(**args)


def test_sends_exactly_these_requests(sagemaker: Any, task_context: Any) -> None:
    client, stub = sagemaker
    container = {
        "Image": IMAGE,
        "ModelDataUrl": MODEL,
        "Environment": inference_environment("inference.py", "us-east-1"),
    }
    model = {
        "ModelName": content_addressed_model_name("dl_test-deploy", container, ROLE_ARN),
        "PrimaryContainer": container,
        "ExecutionRoleArn": ROLE_ARN,
    }
    op = _operator()
    config = op.config_request(model["ModelName"])
    assert config == {
        "EndpointConfigName": config["EndpointConfigName"],
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": model["ModelName"],
                "InitialInstanceCount": 1,
                "InstanceType": "ml.c5.large",
                "InitialVariantWeight": 1.0,
            }
        ],
        "DataCaptureConfig": {
            "EnableCapture": True,
            "InitialSamplingPercentage": 20,
            "DestinationS3Uri": "s3://bucket/capture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {
                "CsvContentTypes": ["text/csv"],
                "JsonContentTypes": ["application/json"],
            },
        },
    }
    assert config["EndpointConfigName"].startswith("digits-")
    validate_request("CreateModel", model)
    validate_request("CreateEndpointConfig", config)
    not_found(stub, "describe_model", 'Could not find model "x".', ModelName=model["ModelName"])
    stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/m"}, model)
    name = config["EndpointConfigName"]
    not_found(
        stub,
        "describe_endpoint_config",
        'Could not find endpoint configuration "x".',
        EndpointConfigName=name,
    )
    stub.add_response("create_endpoint_config", {"EndpointConfigArn": f"{ARN}-config"}, config)
    not_found(stub, "describe_endpoint", 'Could not find endpoint "digits".', EndpointName="digits")
    stub.add_response(
        "create_endpoint", {"EndpointArn": ARN}, {"EndpointName": "digits", "EndpointConfigName": name}
    )
    described = {
        "EndpointName": "digits",
        "EndpointArn": ARN,
        "EndpointConfigName": name,
        "EndpointStatus": "InService",
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
    }
    stub.add_response("describe_endpoint", described, {"EndpointName": "digits"})
    use(op, client)
    result = op.execute(task_context("manual__1", task_id="deploy"))
    assert result == {
        "endpoint_name": "digits",
        "endpoint_arn": ARN,
        "endpoint_config_name": name,
        "model_name": model["ModelName"],
        "status": "InService",
        "action": "created",
        "data_capture_s3_uri": "s3://bucket/capture",
        "traffic_shift": None,
    }


def test_same_config_is_not_updated(sagemaker: Any, task_context: Any) -> None:
    client, stub = sagemaker
    op = _operator(model_artifacts=None, role_arn=None, model_name="digits-v3")
    name = op.config_request("digits-v3")["EndpointConfigName"]
    described = {
        "EndpointName": "digits",
        "EndpointArn": ARN,
        "EndpointConfigName": name,
        "EndpointStatus": "InService",
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
    }
    stub.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": name,
            "EndpointConfigArn": f"{ARN}-c",
            "ProductionVariants": [{"VariantName": "AllTraffic"}],
            "CreationTime": NOW,
        },
        {"EndpointConfigName": name},
    )
    stub.add_response("describe_endpoint", described, {"EndpointName": "digits"})
    stub.add_response("describe_endpoint", described, {"EndpointName": "digits"})
    use(op, client)
    assert op.execute(task_context("manual__1", task_id="deploy"))["action"] == "unchanged"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model_name": "m"}, "set exactly one"),
        ({"role_arn": None}, "needs its execution role"),
        ({"sampling_percentage": 120}, "sampling_percentage must be 0-100"),
        ({"capture_modes": ["Input", "Both"]}, "capture_modes must be"),
        ({"deployment": {"traffic_shift": "CANARY"}}, "deploy: deployment: expected a Deployment, got dict"),
    ],
)
def test_bad_inputs_fail_at_import_in_one_line(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        _operator(**kwargs)
    assert "\n" not in str(caught.value)


# -- recovering a Failed endpoint: DeleteEndpoint is asynchronous ----------------------------------------


def _endpoint(status: str, config: str, **extra: Any) -> dict[str, Any]:
    return {
        "EndpointName": "digits",
        "EndpointArn": ARN,
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
        **extra,
    }


def _existing_config(stub: Stubber, name: str) -> None:
    stub.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": name,
            "EndpointConfigArn": f"{ARN}-c",
            "ProductionVariants": [{"VariantName": "AllTraffic"}],
            "CreationTime": NOW,
        },
        {"EndpointConfigName": name},
    )


# DescribeEndpoint's own answer once an endpoint is gone.
GONE = f'Could not find endpoint "{ARN}".'


def test_a_failed_endpoint_is_recreated_only_after_its_delete_finishes(
    sagemaker: Any, task_context: Any
) -> None:
    client, stub = sagemaker
    op = _operator(model_artifacts=None, role_arn=None, model_name="digits-v3")
    name = op.config_request("digits-v3")["EndpointConfigName"]
    _existing_config(stub, name)
    stub.add_response(
        "describe_endpoint",
        _endpoint("Failed", "digits-old", FailureReason="CapacityError: no ml.c5.large"),
        {"EndpointName": "digits"},
    )
    stub.add_response("delete_endpoint", {}, {"EndpointName": "digits"})
    # DeleteEndpoint has returned, but the endpoint is still there, Deleting, its name taken.
    for _ in range(3):
        stub.add_response(
            "describe_endpoint", _endpoint("Deleting", "digits-old"), {"EndpointName": "digits"}
        )
    not_found(stub, "describe_endpoint", GONE, EndpointName="digits")
    stub.add_response(
        "create_endpoint", {"EndpointArn": ARN}, {"EndpointName": "digits", "EndpointConfigName": name}
    )
    stub.add_response("describe_endpoint", _endpoint("InService", name), {"EndpointName": "digits"})
    use(op, client)
    result = op.execute(task_context("manual__1", task_id="deploy"))
    assert (result["action"], result["status"]) == ("created", "InService")


def test_an_endpoint_already_deleting_is_waited_out_never_updated(sagemaker: Any, task_context: Any) -> None:
    client, stub = sagemaker
    op = _operator(model_artifacts=None, role_arn=None, model_name="digits-v3")
    name = op.config_request("digits-v3")["EndpointConfigName"]
    _existing_config(stub, name)
    # Its config differs: on an InService endpoint this would be an UpdateEndpoint.
    stub.add_response("describe_endpoint", _endpoint("Deleting", "digits-old"), {"EndpointName": "digits"})
    stub.add_response("describe_endpoint", _endpoint("Deleting", "digits-old"), {"EndpointName": "digits"})
    not_found(stub, "describe_endpoint", GONE, EndpointName="digits")
    stub.add_response(
        "create_endpoint", {"EndpointArn": ARN}, {"EndpointName": "digits", "EndpointConfigName": name}
    )
    stub.add_response("describe_endpoint", _endpoint("Creating", name), {"EndpointName": "digits"})
    stub.add_response("describe_endpoint", _endpoint("InService", name), {"EndpointName": "digits"})
    use(op, client)
    result = op.execute(task_context("manual__1", task_id="deploy"))
    assert (result["action"], result["status"]) == ("created", "InService")


def test_an_endpoint_taken_over_while_deleting_is_an_error(sagemaker: Any, task_context: Any) -> None:
    from airflow_dl_provider.exceptions import SageMakerJobError

    client, stub = sagemaker
    op = _operator(model_artifacts=None, role_arn=None, model_name="digits-v3")
    name = op.config_request("digits-v3")["EndpointConfigName"]
    _existing_config(stub, name)
    stub.add_response("describe_endpoint", _endpoint("Deleting", "digits-old"), {"EndpointName": "digits"})
    stub.add_response("describe_endpoint", _endpoint("Creating", "someone-else"), {"EndpointName": "digits"})
    use(op, client)
    with pytest.raises(SageMakerJobError, match="is Creating while being deleted") as caught:
        op.execute(task_context("manual__1", task_id="deploy"))
    assert "\n" not in str(caught.value)


def test_a_real_endpoint_config_not_found_creates_it(sagemaker: Any, task_context: Any) -> None:
    client, stub = sagemaker
    op = _operator(model_artifacts=None, role_arn=None, model_name="digits-v3")
    config = op.config_request("digits-v3")
    config_arn = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{config['EndpointConfigName']}"
    not_found(
        stub,
        "describe_endpoint_config",
        f'Could not find endpoint configuration "{config_arn}".',
        EndpointConfigName=config["EndpointConfigName"],
    )
    stub.add_response("create_endpoint_config", {"EndpointConfigArn": config_arn}, config)
    stub.add_response(
        "describe_endpoint", _endpoint("InService", config["EndpointConfigName"]), {"EndpointName": "digits"}
    )
    stub.add_response(
        "describe_endpoint", _endpoint("InService", config["EndpointConfigName"]), {"EndpointName": "digits"}
    )
    use(op, client)
    assert op.execute(task_context("manual__1", task_id="deploy"))["action"] == "unchanged"


# -- the model source: one typed spec, the flat arguments kept for a release --------------------------


def test_the_flat_model_arguments_warn_and_build_the_same_model_source() -> None:
    from airflow_dl_provider.specs.model import ModelSource

    with pytest.warns(
        DeprecationWarning, match="deploy: image_uri, model_artifacts, role_arn: flat model arguments"
    ):
        flat = _operator()
    typed = _operator(
        model_artifacts=None,
        role_arn=None,
        image_uri=None,
        model=ModelSource(model_artifacts=MODEL, role_arn=ROLE_ARN, image_uri=IMAGE),
    )
    assert flat.model == typed.model
    assert "model" in EndpointDeployOperator.template_fields


def test_a_model_source_and_flat_arguments_together_are_refused_in_one_line() -> None:
    from airflow_dl_provider.specs.model import ModelSource

    with pytest.raises(
        ValueError, match=r"deploy: model: model_artifacts go inside model=ModelSource"
    ) as caught:
        _operator(role_arn=None, image_uri=None, model=ModelSource(model_name="digits-v3"))
    assert "\n" not in str(caught.value)


def test_the_endpoint_task_links_to_its_console_page(sagemaker: Any, task_context: Any) -> None:
    client, stub = sagemaker
    op = _operator(model_artifacts=None, role_arn=None, model_name="digits-v3")
    name = op.config_request("digits-v3")["EndpointConfigName"]
    _existing_config(stub, name)
    stub.add_response("describe_endpoint", _endpoint("InService", name), {"EndpointName": "digits"})
    stub.add_response("describe_endpoint", _endpoint("InService", name), {"EndpointName": "digits"})
    use(op, client)
    context = task_context("manual__1", task_id="deploy")
    op.execute(context)
    assert context["ti"].pushed["sagemaker_dl_endpoint"] == {
        "region_name": "us-east-1",
        "aws_domain": "aws.amazon.com",
        "console_fragment": "endpoints/digits",
    }
    link = op.operator_extra_links[0]
    url = link.format_link(**context["ti"].pushed["sagemaker_dl_endpoint"])
    assert url == "https://console.aws.amazon.com/sagemaker/home?region=us-east-1#/endpoints/digits"
