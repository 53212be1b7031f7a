"""EndpointDeployOperator on the local backend: a real server on 127.0.0.1, data capture in S3."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider.backends.local.endpoint import process_alive
from airflow_dl_provider.backends.local.resources import ResourceStore
from airflow_dl_provider.operators.endpoints import EndpointDeployOperator
from tests.conftest import ROLE_ARN
from tests.integration.digits_model import digit_rows, model_dir, model_tar

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311-ubuntu22.04-sagemaker"
ENDPOINT = "digits-local"


def _operator(local_backend: Any, **kwargs: Any) -> EndpointDeployOperator:
    args: dict[str, Any] = {
        "task_id": "deploy",
        "endpoint_name": ENDPOINT,
        "model_artifacts": local_backend.uri("models/model.tar.gz"),
        "role_arn": ROLE_ARN,
        "image_uri": IMAGE,
        "data_capture_s3_uri": local_backend.uri("capture"),
        "poll_interval": 0.5,
        "max_wait": 120,
    }
    args.update(kwargs)
    return EndpointDeployOperator(**args)


def _pids(local_backend: Any) -> set[int]:
    record = ResourceStore(local_backend.home).get("endpoint", ENDPOINT) or {}
    return {p for p in (record.get("_pid"), record.get("_pending_pid")) if p}


@pytest.fixture
def deployed(local_backend: Any, tmp_path: Path) -> Iterator[set[int]]:
    """Every server pid the test saw; the endpoint is deleted and each pid checked gone afterwards."""
    local_backend.upload("models/model.tar.gz", model_tar(tmp_path / "build"))
    seen: set[int] = set()
    yield seen
    seen |= _pids(local_backend)
    op = _operator(local_backend)
    record = ResourceStore(local_backend.home).get("endpoint", ENDPOINT)
    if record and record["EndpointStatus"] != "Deleting":  # a second DeleteEndpoint is refused, as on AWS
        op.hook.conn.delete_endpoint(EndpointName=ENDPOINT)
    assert not [pid for pid in seen if process_alive(pid)], "endpoint server process leaked"


def test_deploy_invoke_capture_update_delete(
    local_backend: Any, task_context: Any, deployed: set[int], tmp_path: Path
) -> None:
    from tests.integration.digits_model import inference_module

    context = task_context("manual__deploy", task_id="deploy")
    op = _operator(local_backend)
    result = op.execute(context)
    deployed |= _pids(local_backend)
    assert result["status"] == "InService" and result["action"] == "created"
    json.dumps(result)

    rows = digit_rows(3, seed=5)
    body = "".join(",".join(map(str, r)) + "\n" for r in rows)
    reply = op.hook.runtime.invoke_endpoint(
        EndpointName=ENDPOINT, Body=body, ContentType="text/csv", Accept="text/csv"
    )
    prediction = reply["Body"].read().decode()
    inference = inference_module()
    model = inference.model_fn(str(model_dir(tmp_path / "direct")))
    expected = inference.output_fn(
        inference.predict_fn(inference.input_fn(body, "text/csv"), model), "text/csv"
    )
    assert prediction == expected
    assert reply["InvokedProductionVariant"] == "AllTraffic"

    listed = local_backend.s3.list_objects_v2(Bucket=local_backend.bucket, Prefix="capture/")["Contents"]
    assert len(listed) == 1
    key = listed[0]["Key"]
    assert re.fullmatch(
        rf"capture/{ENDPOINT}/AllTraffic/\d{{4}}/\d{{2}}/\d{{2}}/\d{{2}}/[0-9a-f-]{{36}}\.jsonl", key
    ), key
    lines = (
        local_backend.s3.get_object(Bucket=local_backend.bucket, Key=key)["Body"].read().decode().splitlines()
    )
    record = json.loads(lines[0])
    assert record["eventVersion"] == "0"
    assert set(record["eventMetadata"]) >= {"eventId", "inferenceTime"}
    assert record["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv",
        "mode": "INPUT",
        "data": body,
        "encoding": "CSV",
    }
    assert record["captureData"]["endpointOutput"]["data"] == expected
    assert record["captureData"]["endpointOutput"]["mode"] == "OUTPUT"

    # The same deployment again changes nothing; a different config updates in place.
    assert _operator(local_backend).execute(context)["action"] == "unchanged"
    updated = _operator(local_backend, sampling_percentage=50).execute(context)
    deployed |= _pids(local_backend)
    assert updated["action"] == "updated" and updated["status"] == "InService"
    assert updated["endpoint_config_name"] != result["endpoint_config_name"]
    described = op.hook.conn.describe_endpoint(EndpointName=ENDPOINT)
    assert described["DataCaptureConfig"]["CurrentSamplingPercentage"] == 50
    assert [p for p in deployed if process_alive(p)] == [
        ResourceStore(local_backend.home).get("endpoint", ENDPOINT)["_pid"]
    ]

    op.hook.conn.delete_endpoint(EndpointName=ENDPOINT)
    assert not [p for p in deployed if process_alive(p)]
