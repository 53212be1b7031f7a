"""NeoCompilationOperator builds exactly one CreateCompilationJob request; bad targets fail first."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_dl_provider.exceptions import PreflightError
from airflow_dl_provider.jobs.naming import deterministic_job_name
from airflow_dl_provider.operators.compilation import NeoCompilationOperator
from airflow_dl_provider.validation.requests import validate_request
from tests.conftest import ROLE_ARN
from tests.unit.operators.stubs import NOW, not_found, use

NVIDIA = {"Os": "LINUX", "Arch": "ARM64", "Accelerator": "NVIDIA"}
OPTIONS = {"gpu-code": "sm_72", "trt-ver": "8.2.1", "cuda-ver": "10.2"}


@pytest.fixture
def model(local_backend: Any) -> str:
    return local_backend.upload("models/job/output/model.tar.gz", b"not really a model")


def _operator(model: str, local_backend: Any, **kwargs: Any) -> NeoCompilationOperator:
    args: dict[str, Any] = {
        "task_id": "compile",
        "role_arn": ROLE_ARN,
        "model_artifacts": model,
        "output_path": local_backend.uri("compiled"),
        "framework_version": "1.8",
        "data_input_config": {"input0": [1, 64]},
        "target_platform": NVIDIA,
        "compiler_options": OPTIONS,
        "tags": {"team": "vision"},
        "wait_for_completion": False,
    }
    args.update(kwargs)
    return NeoCompilationOperator(**args)


def test_sends_exactly_this_request(
    local_backend: Any, model: str, sagemaker: Any, task_context: Any
) -> None:
    client, stub = sagemaker
    name = deterministic_job_name("dl_test", "compile", "manual__1")
    expected = {
        "CompilationJobName": name,
        "RoleArn": ROLE_ARN,
        "InputConfig": {
            "S3Uri": model,
            "Framework": "PYTORCH",
            "DataInputConfig": '{"input0": [1, 64]}',
            "FrameworkVersion": "1.8",
        },
        "OutputConfig": {
            "S3OutputLocation": local_backend.uri("compiled"),
            "TargetPlatform": NVIDIA,
            "CompilerOptions": '{"gpu-code": "sm_72", "trt-ver": "8.2.1", "cuda-ver": "10.2"}',
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 900},
        "Tags": [{"Key": "team", "Value": "vision"}],
    }
    validate_request("CreateCompilationJob", expected)
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:compilation-job/{name}"
    not_found(stub, "describe_compilation_job", "Requested resource not found.", CompilationJobName=name)
    stub.add_response("create_compilation_job", {"CompilationJobArn": arn}, expected)
    stub.add_response(
        "describe_compilation_job",
        {
            "CompilationJobName": name,
            "CompilationJobArn": arn,
            "CompilationJobStatus": "STARTING",
            "StoppingCondition": expected["StoppingCondition"],
            "CreationTime": NOW,
            "LastModifiedTime": NOW,
            "FailureReason": "",
            "ModelArtifacts": {
                "S3ModelArtifacts": local_backend.uri("compiled/model-LINUX_ARM64_NVIDIA.tar.gz")
            },
            "RoleArn": ROLE_ARN,
            "InputConfig": expected["InputConfig"],
            "OutputConfig": expected["OutputConfig"],
        },
        {"CompilationJobName": name},
    )
    op = _operator(model, local_backend)
    use(op, client)
    result = op.execute(task_context("manual__1", task_id="compile"))
    assert result == {
        "job_name": name,
        "job_arn": arn,
        "status": "STARTING",
        "compiled_artifacts": local_backend.uri("compiled/model-LINUX_ARM64_NVIDIA.tar.gz"),
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_device": "ml_c5"}, "set exactly one"),
        ({"target_platform": None, "target_device": None}, "set exactly one"),
        (
            {"target_platform": None, "target_device": "jetson_xavier", "compiler_options": None},
            "NVIDIA targets need",
        ),
        ({"compiler_options": None}, "NVIDIA targets need"),
        ({"data_input_config": {"input0": [1, -64]}}, "not a PyTorch layout"),
        ({"data_input_config": None}, "PYTORCH needs the input names and shapes"),
        ({"framework_version": None}, "framework_version: Neo needs the PyTorch version"),
        ({"framework_version": "2.0"}, "framework_version: Neo does not compile PyTorch 2.0 for edge"),
        ({"framework_version": "two"}, "framework_version: 'two' is not a version"),
        (
            {
                "target_platform": None,
                "target_device": "ml_c5",
                "compiler_options": None,
                "framework_version": "2.5.1",
            },
            "framework_version: Neo does not compile PyTorch 2.5.1 for cloud instances; use one of 1.4, 1.5",
        ),
        (
            {
                "target_platform": None,
                "target_device": "ml_inf1",
                "compiler_options": None,
                "framework_version": "2.0",
            },
            "framework_version: Neo does not compile PyTorch 2.0 for ml_inf1 .Inferentia.; use one of 1.7, 1.8, 1.9 ",
        ),
        (
            {
                "target_platform": None,
                "target_device": "ml_inf2",
                "compiler_options": None,
                "framework_version": "1.8",
            },
            "for ml_inf2 and ml_trn1",
        ),
        (
            {"framework": "ONNX", "data_input_config": {"data": [1, 3, 224, 224]}},
            "framework_version: Neo takes it for MXNET, PYTORCH, TENSORFLOW, TFLITE only, not ONNX",
        ),
        (
            {
                "framework": "XGBOOST",
                "framework_version": None,
                "data_input_config": None,
                "target_platform": None,
                "target_device": "ml_inf1",
                "compiler_options": None,
            },
            "data_input_config: ml_inf1 targets need the input names and shapes",
        ),
        (
            {"framework": "KERAS", "framework_version": None, "data_input_config": [[1, 64]]},
            "needs a dict of input name to shape",
        ),
        ({"framework": "CAFFE"}, "framework: 'CAFFE' is not one of"),
    ],
)
def test_bad_inputs_fail_at_import_in_one_line(
    local_backend: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        _operator("s3://b/model.tar.gz", local_backend, **kwargs)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("compile: ")


def test_rendered_bad_target_fails_before_any_job(
    local_backend: Any, model: str, sagemaker: Any, task_context: Any
) -> None:
    client, _stub = sagemaker  # no response stubbed: any call to SageMaker would fail the test
    op = _operator(
        model, local_backend, target_platform=None, target_device="{{ params.device }}", compiler_options=None
    )
    op.target_device = "jetson_nano"  # as rendering would set it
    use(op, client)
    with pytest.raises(PreflightError, match="compiler_options: NVIDIA targets need them") as caught:
        op.execute(task_context("manual__1", task_id="compile"))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("device", "version"),
    [("ml_c5", "2.0"), ("ml_p3", "1.13"), ("ml_inf1", "1.9"), ("ml_inf2", "1.13"), ("ml_trn1", "1.13")],
)
def test_pytorch_shapes_are_required_on_every_target(local_backend: Any, device: str, version: str) -> None:
    cloud = {
        "target_platform": None,
        "target_device": device,
        "compiler_options": None,
        "framework_version": version,
    }
    with pytest.raises(ValueError, match=r"^compile: data_input_config: .* need"):
        _operator("s3://b/model.tar.gz", local_backend, data_input_config=None, **cloud)
    op = _operator("s3://b/model.tar.gz", local_backend, **cloud)
    assert op.build({}).request["InputConfig"]["FrameworkVersion"] == version


def test_patch_versions_are_sent_as_neo_spells_them(local_backend: Any) -> None:
    op = _operator(
        "s3://b/model.tar.gz",
        local_backend,
        framework_version="2.0.1",
        target_platform=None,
        target_device="ml_c5",
        compiler_options=None,
    )
    assert op.build({}).request["InputConfig"]["FrameworkVersion"] == "2.0"


def test_overridden_version_is_checked_before_any_job(
    local_backend: Any, model: str, sagemaker: Any, task_context: Any
) -> None:
    client, _stub = sagemaker  # nothing stubbed: any SageMaker call fails the test
    op = _operator(
        model,
        local_backend,
        target_platform=None,
        target_device="ml_c5",
        compiler_options=None,
        framework_version="2.0",
        overrides={"InputConfig": {"FrameworkVersion": "2.4"}},
    )
    use(op, client)
    with pytest.raises(
        PreflightError, match=r"^framework_version: Neo does not compile PyTorch 2\.4 for cloud"
    ):
        op.execute(task_context("manual__1", task_id="compile"))
