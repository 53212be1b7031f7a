"""NeoCompilationOperator on the local backend: a real TorchScript trace, timed, written where Neo writes."""

from __future__ import annotations

import io
import json
import tarfile
from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider.exceptions import SageMakerJobError
from airflow_dl_provider.operators.compilation import NeoCompilationOperator
from tests.conftest import ROLE_ARN
from tests.integration.digits_model import model_dir, model_tar

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow


def _operator(local_backend: Any, **kwargs: Any) -> NeoCompilationOperator:
    args: dict[str, Any] = {
        "task_id": "compile",
        "role_arn": ROLE_ARN,
        "model_artifacts": local_backend.uri("models/model.tar.gz"),
        "output_path": local_backend.uri("compiled"),
        "framework": "PYTORCH",
        "framework_version": "2.0",
        "data_input_config": {"input0": [1, 64]},
        "target_device": "ml_c5",
        "poll_interval": 1,
    }
    args.update(kwargs)
    return NeoCompilationOperator(**args)


def test_compiles_to_torchscript_and_reports_latency(
    local_backend: Any, task_context: Any, tmp_path: Path
) -> None:
    import torch

    local_backend.upload("models/model.tar.gz", model_tar(tmp_path / "build"))
    op = _operator(local_backend)
    result = op.execute(task_context("manual__compile", task_id="compile"))

    uri = local_backend.uri("compiled/model-ml_c5.tar.gz")
    assert result["status"] == "COMPLETED"
    assert result["compiled_artifacts"] == uri
    json.dumps(result)

    body = local_backend.s3.get_object(Bucket=local_backend.bucket, Key="compiled/model-ml_c5.tar.gz")[
        "Body"
    ].read()
    out = tmp_path / "out"
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert {"compiled.pt", "code/inference.py", "compilation-report.json"} <= set(tar.getnames())
        tar.extractall(out, filter="data")
    report = json.loads((out / "compilation-report.json").read_text())
    assert report["eager_median_ms"] > 0 and report["compiled_median_ms"] > 0
    assert report["target"] == "ml_c5" and report["input_shapes"] == {"input0": [1, 64]}

    # The compiled model computes what the eager one does.
    from tests.integration.digits_model import inference_module

    eager = inference_module().model_fn(str(model_dir(tmp_path / "eager")))
    compiled = torch.jit.load(str(out / "compiled.pt"))
    x = torch.rand(4, 64) * 16
    assert torch.allclose(eager(x), compiled(x), atol=1e-5)

    events = local_backend.logs.get_log_events(
        logGroupName="/aws/sagemaker/CompilationJobs", logStreamName=result["job_name"], startFromHead=True
    )["events"]
    assert any("latency median" in e["message"] and "eager" in e["message"] for e in events)

    # A retry reuses the finished job.
    again = _operator(local_backend).execute(task_context("manual__compile", task_id="compile"))
    assert again["job_name"] == result["job_name"]


def test_untraceable_shape_fails_with_the_reason(
    local_backend: Any, task_context: Any, tmp_path: Path
) -> None:
    local_backend.upload("models/model.tar.gz", model_tar(tmp_path / "build"))
    op = _operator(local_backend, data_input_config={"input0": [1, 63]})
    with pytest.raises(SageMakerJobError, match="cannot be traced") as caught:
        op.execute(task_context("manual__bad_shape", task_id="compile"))
    assert caught.value.status == "FAILED"
    assert "\n" not in str(caught.value)
