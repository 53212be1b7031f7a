"""BatchTransformOperator on the local backend: the model's handlers over every record, ``.out`` files
written as the service writes them, checked record for record against the handlers called directly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider.backends.local.hosting import ModelHandlers
from airflow_dl_provider.exceptions import SageMakerJobError
from airflow_dl_provider.operators.transform import BatchTransformOperator
from tests.conftest import ROLE_ARN
from tests.integration.digits_model import digit_rows, model_dir, model_tar

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311-ubuntu22.04-sagemaker"


def _csv(rows: list[list[int]]) -> str:
    return "".join(",".join(map(str, row)) + "\n" for row in rows)


def _operator(local_backend: Any, **kwargs: Any) -> BatchTransformOperator:
    args: dict[str, Any] = {
        "task_id": "transform",
        "input_s3_uri": local_backend.uri("batch/in"),
        "output_path": local_backend.uri("batch/out"),
        "model_artifacts": local_backend.uri("models/model.tar.gz"),
        "role_arn": ROLE_ARN,
        "image_uri": IMAGE,
        "max_payload_mb": 1,
        "instance_type": "ml.m5.large",
        "poll_interval": 1,
    }
    args.update(kwargs)
    return BatchTransformOperator(**args)


def _out(local_backend: Any, key: str) -> str:
    return local_backend.s3.get_object(Bucket=local_backend.bucket, Key=key)["Body"].read().decode()


@pytest.fixture
def handlers(local_backend: Any, tmp_path: Path) -> ModelHandlers:
    local_backend.upload("models/model.tar.gz", model_tar(tmp_path / "build"))
    return ModelHandlers(model_dir(tmp_path / "direct"))


def test_out_files_match_the_handlers_record_for_record(
    local_backend: Any, task_context: Any, handlers: ModelHandlers, task_log: Any
) -> None:
    files = {
        "batch/in/part-0.csv": digit_rows(40, seed=1),
        "batch/in/day=2/part-1.csv": digit_rows(7, seed=2),
    }
    for key, rows in files.items():
        local_backend.upload(key, _csv(rows))
    context = task_context("manual__transform", task_id="transform")
    result = _operator(local_backend).execute(context)

    assert result["status"] == "Completed"
    assert result["output_path"] == local_backend.uri("batch/out")
    for key, rows in files.items():
        out_key = key.replace("batch/in/", "batch/out/") + ".out"
        lines = _out(local_backend, out_key).splitlines()
        direct = [
            handlers.invoke(_csv([row]).encode(), "text/csv", "text/csv").decode().strip() for row in rows
        ]
        assert lines == direct, out_key

    # A retry reuses the finished job and the Model it created.
    again = _operator(local_backend).execute(context)
    assert again["job_name"] == result["job_name"] and again["model_name"] == result["model_name"]
    assert sum(m.startswith("Created Model") for m in task_log.messages) == 1
    model = again and _operator(local_backend).hook.conn.describe_model(ModelName=result["model_name"])
    env = model["PrimaryContainer"]["Environment"]
    assert env["SAGEMAKER_PROGRAM"] == "inference.py"
    assert env["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"


def test_join_source_input_with_filters(
    local_backend: Any, task_context: Any, handlers: ModelHandlers
) -> None:
    rows = digit_rows(12, seed=3)
    local_backend.upload("batch/in/ids.csv", "".join(f"id-{i}," + _csv([row]) for i, row in enumerate(rows)))
    op = _operator(
        local_backend,
        input_filter="$[1:]",
        join_source="Input",
        output_filter="$[0,-1]",
        batch_strategy="MultiRecord",
    )
    op.execute(task_context("manual__join", task_id="transform"))
    lines = _out(local_backend, "batch/out/ids.csv.out").splitlines()
    labels = [handlers.invoke(_csv([row]).encode(), "text/csv", "text/csv").decode().strip() for row in rows]
    assert lines == [f"id-{i},{label}" for i, label in enumerate(labels)]


def test_single_record_without_split_sends_each_object_whole(
    local_backend: Any, task_context: Any, handlers: ModelHandlers
) -> None:
    rows = digit_rows(5, seed=4)
    local_backend.upload("batch/in/whole.csv", _csv(rows))
    op = _operator(local_backend, split_type="None", batch_strategy=None, assemble_with="None")
    op.execute(task_context("manual__whole", task_id="transform"))
    assert (
        _out(local_backend, "batch/out/whole.csv.out")
        == handlers.invoke(_csv(rows).encode(), "text/csv", "text/csv").decode()
    )


def test_two_ranges_in_one_filter_fail_the_job_as_the_service_does(
    local_backend: Any, task_context: Any, handlers: ModelHandlers
) -> None:
    local_backend.upload("batch/in/ids.csv", "id-0," + _csv(digit_rows(1, seed=5)))
    op = _operator(local_backend, join_source="Input", output_filter="$[0:2,5:]")
    with pytest.raises(SageMakerJobError) as caught:
        op.execute(task_context("manual__ranges", task_id="transform"))
    assert caught.value.status == "Failed"
    assert caught.value.failure_reason == (
        "ClientError: Invalid JsonPath: $[0:2,5:]: only single range filters of format (eg: [1:5]) are "
        "supported. Format [0:2,5:] is not supported"
    )
