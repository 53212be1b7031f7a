"""NeoCompilationOperator on the local backend: the archive's traced model compiled, timed, written where Neo writes."""

from __future__ import annotations

import io
import json
import tarfile
from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider.exceptions import SageMakerJobError
from airflow_dl_provider.operators.compilation import NeoCompilationOperator
from tests.conftest import ROLE_ARN
from tests.integration.digits_model import inference_module, model_dir, model_tar

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


def _tar(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    return buffer.getvalue()


def _compiled(local_backend: Any, key: str, out: Path) -> dict[str, Any]:
    body = local_backend.s3.get_object(Bucket=local_backend.bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        tar.extractall(out, filter="data")
        names = set(tar.getnames())
    return {"names": names, "report": json.loads((out / "compilation-report.json").read_text())}


def test_compiles_the_traced_model_from_the_archive(
    local_backend: Any, task_context: Any, tmp_path: Path
) -> None:
    import torch

    local_backend.upload("models/model.tar.gz", model_tar(tmp_path / "build"))
    result = _operator(local_backend).execute(task_context("manual__compile", task_id="compile"))

    uri = local_backend.uri("compiled/model-ml_c5.tar.gz")
    assert result["status"] == "COMPLETED"
    assert result["compiled_artifacts"] == uri
    json.dumps(result)

    out = tmp_path / "out"
    compiled = _compiled(local_backend, "compiled/model-ml_c5.tar.gz", out)
    assert {"model.pth", "code/inference.py", "compilation-report.json"} <= compiled["names"]
    report = compiled["report"]
    assert report["model_file"] == "model.pth"
    assert (
        report["eager_median_ms"] > 0 and report["input_median_ms"] > 0 and report["compiled_median_ms"] > 0
    )
    assert report["matches_eager"] is True
    assert report["target"] == "ml_c5" and report["input_shapes"] == {"input0": [1, 64]}

    # The compiled module computes what the traced file and the served model do.
    eager = inference_module().model_fn(str(model_dir(tmp_path / "eager")))
    traced = torch.jit.load(str(tmp_path / "build" / "model.pth"))
    compiled_model = torch.jit.load(str(out / "model.pth"))
    x = torch.rand(4, 64) * 16
    assert torch.allclose(eager(x), compiled_model(x), atol=1e-5)
    assert torch.allclose(traced(x), compiled_model(x), atol=1e-5)

    events = local_backend.logs.get_log_events(
        logGroupName="/aws/sagemaker/CompilationJobs", logStreamName=result["job_name"], startFromHead=True
    )["events"]
    messages = [e["message"] for e in events]
    assert any("compiled model.pth" in m and "latency median" in m for m in messages), messages
    assert any("as PyTorch 2.0" in m and "simulated" in m for m in messages), messages

    # A retry reuses the finished job.
    again = _operator(local_backend).execute(task_context("manual__compile", task_id="compile"))
    assert again["job_name"] == result["job_name"]


def test_compiles_without_running_the_model_code(
    local_backend: Any, task_context: Any, tmp_path: Path
) -> None:
    """Neo compiles the TorchScript file alone: broken serving code changes nothing but the eager timing."""
    root = model_dir(tmp_path / "build")
    (root / "code" / "inference.py").write_text("raise RuntimeError('Neo never imports this')\n")
    local_backend.upload("models/model.tar.gz", _tar(root))
    result = _operator(local_backend).execute(task_context("manual__broken_code", task_id="compile"))
    assert result["status"] == "COMPLETED"
    report = _compiled(local_backend, "compiled/model-ml_c5.tar.gz", tmp_path / "out")["report"]
    assert "eager_median_ms" not in report and report["input_median_ms"] > 0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("no_traced_file", "InputConfiguration: No pth file found for PyTorch model"),
        ("state_dict_as_pth", "InputConfiguration: Framework cannot load PyTorch model"),
        (
            "two_model_files",
            "Exactly one .pt or .pth file is allowed for PyTorch models; found model.pt, model.pth",
        ),
    ],
)
def test_archives_neo_refuses_fail_with_its_reason(
    local_backend: Any, task_context: Any, tmp_path: Path, change: str, reason: str
) -> None:
    import torch

    root = model_dir(tmp_path / "build")
    if change == "no_traced_file":
        (root / "model.pth").unlink()
    elif change == "state_dict_as_pth":
        # What train.py saved before it traced: torch.save of a state dict, which torch.jit.load refuses.
        (root / "model.pth").unlink()
        torch.save(torch.load(root / "model.ckpt", weights_only=True), root / "model.pth")
    else:
        (root / "model.ckpt").rename(root / "model.pt")
    local_backend.upload("models/model.tar.gz", _tar(root))
    with pytest.raises(SageMakerJobError) as caught:
        _operator(local_backend).execute(task_context(f"manual__{change}", task_id="compile"))
    assert caught.value.status == "FAILED"
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


def test_input_shape_that_does_not_fit_fails_with_the_reason(
    local_backend: Any, task_context: Any, tmp_path: Path
) -> None:
    local_backend.upload("models/model.tar.gz", model_tar(tmp_path / "build"))
    op = _operator(local_backend, data_input_config={"input0": [1, 63]})
    with pytest.raises(SageMakerJobError, match="Invalid PyTorch model or input-shape mismatch") as caught:
        op.execute(task_context("manual__bad_shape", task_id="compile"))
    assert caught.value.status == "FAILED"
    assert "\n" not in str(caught.value)


def test_a_framework_version_neo_refuses_fails_the_job_too(
    local_backend: Any, task_context: Any, tmp_path: Path
) -> None:
    """Past the operator's checks, the local backend is no kinder than the table it follows."""
    local_backend.upload("models/model.tar.gz", model_tar(tmp_path / "build"))
    op = _operator(local_backend, overrides={"InputConfig": {"FrameworkVersion": "2.5"}})
    op.preflight = lambda request, context: None  # type: ignore[method-assign]
    with pytest.raises(SageMakerJobError) as caught:
        op.execute(task_context("manual__version", task_id="compile"))
    assert caught.value.status == "FAILED"
    assert "Neo does not compile PyTorch 2.5 for cloud instances" in str(caught.value)
