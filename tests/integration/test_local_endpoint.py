"""EndpointDeployOperator on the local backend: a real server on 127.0.0.1, data capture in S3; deferred, killed."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider.backends.local.endpoint import process_alive
from airflow_dl_provider.backends.local.resources import ResourceStore
from airflow_dl_provider.backends.local.server import LOCAL_CREDENTIALS
from airflow_dl_provider.operators.endpoints import EndpointDeployOperator
from airflow_dl_provider.triggers.job import SageMakerJobTrigger
from tests.conftest import ROLE_ARN
from tests.contract.deferral import first_event, task_deferred
from tests.integration.digits_model import digit_rows, inference_module, model_dir, model_tar

if TYPE_CHECKING:
    from collections.abc import Iterator

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
    # As on AWS: no DeleteEndpoint while it is in progress, nor a second one while it is Deleting.
    op.engine().undo(ENDPOINT, {"action": "delete"}, budget=120, poll_interval=0.2)
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
    # The server runs with the endpoint's credentials, never the deploying task's connections or keys.
    environ = Path(f"/proc/{_record(local_backend)['_pid']}/environ").read_bytes().split(b"\0")
    assert not [v for v in environ if v.startswith((b"AIRFLOW_CONN_", b"AWS_SESSION_TOKEN="))]
    assert b"AWS_SECRET_ACCESS_KEY=" + LOCAL_CREDENTIALS["password"].encode() in environ

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


def _invoke(op: EndpointDeployOperator) -> str:
    body = "".join(",".join(map(str, r)) + "\n" for r in digit_rows(2, seed=3))
    reply = op.hook.runtime.invoke_endpoint(
        EndpointName=ENDPOINT, Body=body, ContentType="text/csv", Accept="text/csv"
    )
    return reply["Body"].read().decode()


def _record(local_backend: Any) -> dict[str, Any]:
    return ResourceStore(local_backend.home).get("endpoint", ENDPOINT) or {}


def test_deploy_defers_through_the_trigger_and_resumes(
    local_backend: Any, task_context: Any, deployed: set[int]
) -> None:
    context = task_context("manual__deferred", task_id="deploy")
    with pytest.raises(task_deferred()) as caught:
        _operator(local_backend, deferrable=True).execute(context)
    deferred: Any = caught.value
    deployed |= _pids(local_backend)
    path, kwargs = deferred.trigger.serialize()
    assert path == "airflow_dl_provider.triggers.job.SageMakerJobTrigger"
    assert kwargs["job_kind"] == "endpoint" and kwargs["undo"] == {"action": "delete"}

    event = first_event(SageMakerJobTrigger(**kwargs), timeout=120)
    assert event.payload == {
        "status": "success",
        "job_name": ENDPOINT,
        "message": f"Endpoint {ENDPOINT} InService",
    }
    resumed = _operator(local_backend, deferrable=True)
    result = getattr(resumed, deferred.method_name)(context, event=event.payload, **deferred.kwargs)

    assert (result["action"], result["status"]) == ("created", "InService")
    assert context["ti"].pushed["sagemaker_dl_endpoint"]["console_fragment"] == f"endpoints/{ENDPOINT}"
    assert _invoke(resumed)


def test_killed_while_deferred_the_endpoint_it_created_is_deleted(
    local_backend: Any, task_context: Any, deployed: set[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_dl_provider.triggers import job

    # The server here may take longer to start than the triggerer's kill allows on a loaded machine.
    monkeypatch.setattr(job, "KILL_BUDGET_SECONDS", 120.0)
    with pytest.raises(task_deferred()) as caught:
        _operator(local_backend, deferrable=True).execute(task_context("manual__killed", task_id="deploy"))
    deployed |= _pids(local_backend)
    _, kwargs = caught.value.trigger.serialize()

    asyncio.run(SageMakerJobTrigger(**kwargs).on_kill())

    deployed |= _pids(local_backend)
    assert _record(local_backend).get("EndpointStatus") in (None, "Deleting")
    assert not [pid for pid in deployed if process_alive(pid)], "the killed deploy left its server running"


def test_killed_during_an_update_the_endpoint_is_rolled_back_to_its_previous_config(
    local_backend: Any, task_context: Any, deployed: set[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_dl_provider.operators import endpoints

    monkeypatch.setattr(endpoints, "KILL_BUDGET_SECONDS", 120.0)
    first = _operator(local_backend).execute(task_context("manual__v1", task_id="deploy"))
    deployed |= _pids(local_backend)
    update = _operator(local_backend, sampling_percentage=50)
    outcome: dict[str, Any] = {}

    def deploy() -> None:
        try:
            outcome["result"] = update.execute(task_context("manual__v2", task_id="deploy"))
        except Exception as err:  # what the killed task's execute ends with is not under test
            outcome["error"] = err

    worker = threading.Thread(target=deploy)
    worker.start()
    deadline = time.monotonic() + 120
    while update.undo is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert update.undo == {
        "action": "restore",
        "fields": {"EndpointConfigName": first["endpoint_config_name"]},
    }
    deployed |= _pids(local_backend)

    update.on_kill()  # what Airflow's SIGTERM handler calls while execute waits

    worker.join(timeout=120)
    deployed |= _pids(local_backend)
    engine = update.engine()
    described = engine.wait(ENDPOINT, poll_interval=0.2, max_wait=120)
    assert described["EndpointConfigName"] == first["endpoint_config_name"]
    assert described["DataCaptureConfig"]["CurrentSamplingPercentage"] == 100
    deployed |= _pids(local_backend)
    assert [p for p in deployed if process_alive(p)] == [_record(local_backend)["_pid"]]
    assert _invoke(update)


def test_deploys_a_registered_model_package(
    local_backend: Any, task_context: Any, deployed: set[int]
) -> None:
    from airflow_dl_provider.operators.registry import RegisterModelOperator
    from airflow_dl_provider.specs.model import ModelSource

    artifacts = ModelSource(
        model_artifacts=local_backend.uri("models/model.tar.gz"), image_uri=IMAGE, role_arn=ROLE_ARN
    )
    package = RegisterModelOperator(
        task_id="register",
        model_package_group_name="digits",
        model=artifacts,
        metrics={"accuracy": 0.9},
    ).execute(task_context("manual__package", task_id="register"))

    op = _operator(
        local_backend,
        model_artifacts=None,
        role_arn=None,
        image_uri=None,
        model=ModelSource(model_package_arn=package["model_package_arn"], role_arn=ROLE_ARN),
    )
    result = op.execute(task_context("manual__package", task_id="deploy"))
    deployed |= _pids(local_backend)

    assert (result["action"], result["status"]) == ("created", "InService")
    model = op.hook.conn.describe_model(ModelName=result["model_name"])
    assert model["PrimaryContainer"]["ModelPackageName"] == package["model_package_arn"]
    assert _invoke(op)


# -- blue/green updates: traffic shifts while serving, an alarm rolls back -------------------------------


class _Traffic:
    """Requests sent one after another from a thread until stopped; what each met, and the endpoint's state."""

    def __init__(self, op: EndpointDeployOperator) -> None:
        self.op = op
        self.replies: list[tuple[str, str]] = []  # (EndpointStatus when sent, prediction or error code)
        self.failures: list[BaseException] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from botocore.exceptions import ClientError

        while not self.stop.is_set():
            status = self.op.hook.conn.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"]
            try:
                self.replies.append((status, _invoke(self.op)))
            except ClientError as err:
                self.replies.append((status, err.response["Error"]["Code"]))
            except BaseException as err:  # a dropped connection, a refused request: the test fails on it
                self.failures.append(err)

    def __enter__(self) -> _Traffic:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=120)


def _broken_model_tar(root: Path) -> bytes:
    """A model whose predict_fn raises: every request to it is a 500, an Invocation5XXErrors."""
    import io
    import tarfile

    directory = model_dir(root)
    with open(directory / "code" / "inference.py", "a") as handler:
        handler.write(
            "\n\ndef predict_fn(data, model):\n    raise RuntimeError('this model version is broken')\n"
        )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    return buffer.getvalue()


def _deployed_then(
    local_backend: Any, task_context: Any, deployed: set[int], model: bytes, **kwargs: Any
) -> tuple[dict[str, Any], int, EndpointDeployOperator]:
    """The endpoint deployed with the first model; its server's pid; the operator that updates it to ``model``."""
    first = _operator(local_backend).execute(task_context("manual__v1", task_id="deploy"))
    deployed |= _pids(local_backend)
    local_backend.upload("models/next/model.tar.gz", model)
    update = _operator(local_backend, model_artifacts=local_backend.uri("models/next/model.tar.gz"), **kwargs)
    return first, _record(local_backend)["_pid"], update


def test_a_blue_green_update_keeps_serving_while_traffic_shifts(
    local_backend: Any, task_context: Any, deployed: set[int], tmp_path: Path
) -> None:
    from airflow_dl_provider.specs.deployment import Deployment

    first, old_pid, update = _deployed_then(
        local_backend,
        task_context,
        deployed,
        model_tar(tmp_path / "v2", seed=1),
        deployment=Deployment("canary", 50, wait_seconds=3, max_errors=0),
    )

    with _Traffic(update) as traffic:
        result = update.execute(task_context("manual__v2", task_id="deploy"))
        deployed |= _pids(local_backend)
        after = len(traffic.replies)
        deadline = time.monotonic() + 60
        while len(traffic.replies) == after and time.monotonic() < deadline:
            time.sleep(0.05)

    assert traffic.failures == []
    assert [reply for _, reply in traffic.replies if reply == "ModelError"] == []
    assert any(status == "Updating" for status, _ in traffic.replies), "no request was sent during the update"
    assert (result["action"], result["status"], result["traffic_shift"]) == ("updated", "InService", "CANARY")
    described = update.hook.conn.describe_endpoint(EndpointName=ENDPOINT)
    assert described["EndpointConfigName"] == result["endpoint_config_name"] != first["endpoint_config_name"]
    routing = described["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == "CANARY" and "PendingDeploymentSummary" not in described
    assert not process_alive(old_pid), "the old fleet outlived the update"
    # The last request, sent after the update, was served by the new model.
    inference = inference_module()
    body = "".join(",".join(map(str, r)) + "\n" for r in digit_rows(2, seed=3))
    model = inference.model_fn(str(model_dir(tmp_path / "v2-direct", seed=1)))
    assert traffic.replies[-1][1] == inference.output_fn(
        inference.predict_fn(inference.input_fn(body, "text/csv"), model), "text/csv"
    )


def test_an_alarm_on_the_new_fleets_errors_rolls_the_update_back(
    local_backend: Any, task_context: Any, deployed: set[int], tmp_path: Path
) -> None:
    from airflow_dl_provider.exceptions import SageMakerJobError
    from airflow_dl_provider.specs.deployment import Deployment

    # Baked long enough that only the alarm ends the canary early.
    first, old_pid, update = _deployed_then(
        local_backend,
        task_context,
        deployed,
        _broken_model_tar(tmp_path / "broken"),
        deployment=Deployment("canary", 50, wait_seconds=600, max_errors=0),
        max_wait=900,
    )

    with _Traffic(update) as traffic, pytest.raises(SageMakerJobError, match="was rolled back") as caught:
        update.execute(task_context("manual__v2", task_id="deploy"))
    deployed |= _pids(local_backend)

    assert traffic.failures == []
    described = update.hook.conn.describe_endpoint(EndpointName=ENDPOINT)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == (
        "InService",
        first["endpoint_config_name"],
    )
    (alarm,) = [
        a["AlarmName"] for a in described["LastDeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    ]
    assert alarm.endswith("-Invocation5XXErrors") and alarm in described["FailureReason"]
    assert alarm in str(caught.value) and "\n" not in str(caught.value)
    (state,) = update.hook.client_for("cloudwatch").describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
    assert state["StateValue"] == "ALARM"
    assert "ModelError" in {reply for _, reply in traffic.replies}, "the canary took no request"
    # The old fleet never stopped serving and serves again alone; the broken one is gone.
    assert process_alive(old_pid) and _record(local_backend)["_pid"] == old_pid
    deadline = time.monotonic() + 30  # the broken fleet's process exits once it has handed back
    while [p for p in deployed if process_alive(p)] != [old_pid] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in deployed if process_alive(p)] == [old_pid]
    assert _invoke(update)
