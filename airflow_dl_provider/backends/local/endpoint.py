"""A local SageMaker endpoint: one detached HTTP server on 127.0.0.1 per endpoint, with data capture.

``python -m airflow_dl_provider.backends.local.endpoint HOME ENDPOINT CONFIG S3_URL REGION`` loads the
first production variant's model with its own handlers (:mod:`airflow_dl_provider.backends.local.hosting`), serves
``POST /endpoints/<name>/invocations`` and ``GET /ping``, and records itself ``InService`` in the
endpoint's record. An update starts a new server with the new config beside the old one, which keeps
serving; the new one moves the traffic over as the update's ``DeploymentConfig`` says, watching its
rollback alarms (:mod:`.rollout`), then stops the old one, or, when an alarm trips, hands all traffic
back to it and stops itself (blue/green, as SageMaker does). A model that raises answers 500, as
SageMaker's inference toolkit does, and counts as an ``Invocation5XXErrors``.

Data capture writes each sampled request as one JSON line in SageMaker's format to
``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<uuid>.jsonl``. SageMaker buffers records into
fewer, larger files; the local server writes one file per request so a test sees it at once.
Simulated: the instances, the variant weights (the first variant takes all traffic), a traffic step
as a share of requests, and how long an endpoint stays ``Deleting`` (:data:`DELETING_SECONDS`; on AWS it takes minutes).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import io
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from botocore.response import StreamingBody

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.backends.local.hosting import (
    ModelHandlers,
    download_model,
    model_program,
    primary_container,
    split_s3_uri,
)
from airflow_dl_provider.backends.local.processes import job_environment, process_alive
from airflow_dl_provider.backends.local.resources import ResourceStore
from airflow_dl_provider.backends.local.rollout import AlarmWatch, FleetStats, roll_out
from airflow_dl_provider.backends.local.server import LOCAL_CREDENTIALS
from airflow_dl_provider.validation.requests import validate_request, validate_response

if TYPE_CHECKING:
    from collections.abc import Mapping

log = logging.getLogger("airflow_dl_provider.local.endpoint")
STOP_GRACE_SECONDS = 5.0
# A deleted endpoint shows Deleting this long, then Describe answers not found (ASYNC_DELETE).
DELETING_SECONDS = 1.0
DEFAULT_CSV = ("text/csv",)
DEFAULT_JSON = ("application/json",)
# A request that met a fleet as it stopped goes, re-routed, to the one that serves, this often at most.
ROUTE_ATTEMPTS = 5


def stop_process(pid: int | None) -> None:
    """SIGTERM the server's session, wait, then SIGKILL: a deleted endpoint leaves no process behind."""
    if not pid or not process_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if process_alive(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def start_server(
    home: Path, endpoint: str, config: str, env: Mapping[str, str], *, s3_url: str, region: str
) -> int:
    """Start the detached server process for ``endpoint`` with ``config``; return its pid.

    :param s3_url: the embedded S3 (and CloudWatch) server the model, the capture and the alarms are on.
    """
    log_dir = home / "endpoints" / endpoint
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "server.log", "ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airflow_dl_provider.backends.local.endpoint",
                str(home),
                endpoint,
                config,
                s3_url,
                region,
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Never the caller's connections or keys: the endpoint runs with its role's credentials,
            # here the placeholders the embedded server takes.
            env=job_environment({**os.environ, **env}, LOCAL_CREDENTIALS),
            start_new_session=True,  # outlives the task that deployed it, as an endpoint does
        )
    threading.Thread(target=proc.wait, daemon=True).start()  # reap it when it ends
    return proc.pid


# -- data capture -----------------------------------------------------------------------------------------


def _encoding(content_type: str | None, capture: Mapping[str, Any]) -> str:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    header = capture.get("CaptureContentTypeHeader") or {}
    if media in [t.lower() for t in header.get("CsvContentTypes", DEFAULT_CSV)]:
        return "CSV"
    if media in [t.lower() for t in header.get("JsonContentTypes", DEFAULT_JSON)]:
        return "JSON"
    return "BASE64"


def _captured(mode: str, content_type: str | None, body: bytes, capture: Mapping[str, Any]) -> dict[str, Any]:
    encoding = _encoding(content_type, capture)
    data = base64.b64encode(body).decode() if encoding == "BASE64" else body.decode("utf-8", "replace")
    return {"observedContentType": content_type or "", "mode": mode, "data": data, "encoding": encoding}


def capture_record(
    capture: Mapping[str, Any],
    request: tuple[str | None, bytes],
    response: tuple[str | None, bytes],
    inference_id: str | None = None,
) -> dict[str, Any]:
    """One data-capture line: ``captureData`` (input/output per ``CaptureOptions``) and ``eventMetadata``."""
    modes = {o["CaptureMode"] for o in capture.get("CaptureOptions") or []} or {"Input", "Output"}
    data: dict[str, Any] = {}
    if "Input" in modes:
        data["endpointInput"] = _captured("INPUT", request[0], request[1], capture)
    if "Output" in modes:
        data["endpointOutput"] = _captured("OUTPUT", response[0], response[1], capture)
    metadata = {
        "eventId": str(uuid.uuid4()),
        "inferenceTime": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }
    if inference_id:
        metadata["inferenceId"] = inference_id
    return {"captureData": data, "eventMetadata": metadata, "eventVersion": "0"}


def capture_key(destination: str, endpoint: str, variant: str, when: dt.datetime) -> tuple[str, str]:
    bucket, prefix = split_s3_uri(destination)
    key = f"{prefix.rstrip('/')}/{endpoint}/{variant}/{when:%Y/%m/%d/%H}/{uuid.uuid4()}.jsonl".lstrip("/")
    return bucket, key


# -- the server process -----------------------------------------------------------------------------------


class _Endpoint:
    def __init__(
        self, name: str, variant: str, handlers: ModelHandlers, capture: dict[str, Any], s3: Any
    ) -> None:
        self.name, self.variant, self.handlers, self.capture, self.s3 = name, variant, handlers, capture, s3
        self.stats = FleetStats()

    def record(
        self, request: tuple[str | None, bytes], response: tuple[str | None, bytes], inference_id: str | None
    ) -> None:
        if not self.capture.get("EnableCapture", True):
            return
        if random.uniform(0, 100) >= float(self.capture.get("InitialSamplingPercentage", 100)):
            return
        line = json.dumps(capture_record(self.capture, request, response, inference_id)) + "\n"
        bucket, key = capture_key(
            self.capture["DestinationS3Uri"], self.name, self.variant, dt.datetime.now(dt.timezone.utc)
        )
        self.s3.put_object(Bucket=bucket, Key=key, Body=line.encode())


def _handler(endpoint: _Endpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), format % args)

        def _reply(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Amzn-Invoked-Production-Variant", endpoint.variant)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._reply(200 if self.path == "/ping" else 404, b"", "text/plain")

        def do_POST(self) -> None:
            if self.path != f"/endpoints/{endpoint.name}/invocations":
                self._reply(404, b"unknown path", "text/plain")
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            content_type = self.headers.get("Content-Type")
            accept = self.headers.get("Accept") or "application/json"
            started = time.perf_counter()
            try:
                output = endpoint.handlers.invoke(body, content_type, accept)
            except Exception as err:  # the model's error goes back to the caller, as a ModelError
                endpoint.stats.count(500, None)
                self._reply(500, f"{type(err).__name__}: {err}".encode(), "text/plain")
                return
            endpoint.stats.count(200, (time.perf_counter() - started) * 1e6)
            out_type = accept.split(",", 1)[0].strip()
            self._reply(200, output, out_type)
            endpoint.record((content_type, body), (out_type, output), self.headers.get("X-Amzn-Inference-Id"))

    return Handler


class _Server(ThreadingHTTPServer):
    # Stopping waits for the requests in flight: a fleet that is stopped drops none.
    daemon_threads = False
    block_on_close = True


def serve(home: Path, name: str, config_name: str, s3_url: str, region: str) -> int:
    """Serve ``config_name`` as ``name``: at once for a creation, blue/green beside the old fleet for an update."""
    import boto3

    store = ResourceStore(home)
    record = store.get("endpoint", name) or {}
    updating = record.get("EndpointStatus") == "Updating"
    try:
        config = store.get("endpoint-config", config_name)
        if config is None:
            raise ValueError(f"Could not find endpoint configuration {config_name!r}")
        variant = config["ProductionVariants"][0]
        model = store.get("model", variant["ModelName"])
        if model is None:
            raise ValueError(f"Could not find model {variant['ModelName']!r}")
        container = primary_container(model, store)
        s3 = boto3.client("s3", endpoint_url=s3_url, region_name=region)
        model_dir = download_model(
            s3, container["ModelDataUrl"], home / "endpoints" / name / f"model-{os.getpid()}"
        )
        handlers = ModelHandlers(model_dir, model_program(container))
        capture = dict(config.get("DataCaptureConfig") or {"EnableCapture": False})
        endpoint = _Endpoint(name, variant["VariantName"], handlers, capture, s3)
        server = _Server(("127.0.0.1", 0), _handler(endpoint))
    except Exception as err:
        traceback.print_exc()
        reason = f"{type(err).__name__}: {err}"[:1024]
        # A failed update leaves the old config serving; a failed creation leaves nothing.
        store.update(
            "endpoint",
            name,
            EndpointStatus="InService" if updating else "Failed",
            FailureReason=reason,
            PendingDeploymentSummary=None,
        )
        return 1
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    serving = threading.Thread(target=server.serve_forever, name="serve", daemon=True)
    serving.start()
    port = server.server_address[1]
    log.info("endpoint %s (%s) serving on 127.0.0.1:%d", name, config_name, port)
    previous = record.get("_pid") if updating and process_alive(record.get("_pid")) else None
    fleet = {"EndpointName": name, "VariantName": variant["VariantName"], "EndpointConfigName": config_name}
    deployment = record.get("LastDeploymentConfig") if previous else None
    rollback = None
    if previous:
        cloudwatch = boto3.client("cloudwatch", endpoint_url=s3_url, region_name=region)
        alarms = ((deployment or {}).get("AutoRollbackConfiguration") or {}).get("Alarms") or []
        watch = AlarmWatch(cloudwatch, [a["AlarmName"] for a in alarms], fleet)
        rollback = roll_out(
            deployment,
            lambda percent: store.update("endpoint", name, _green_port=port, _green_weight=percent),
            watch,
            endpoint.stats,
        )
    if rollback:
        # All traffic back on the old fleet, which never stopped; then this one goes.
        log.warning("endpoint %s: %s", name, rollback)
        store.update("endpoint", name, _green_port=None, _green_weight=None)
        server.shutdown()
        server.server_close()  # once the requests it still holds are answered
        store.update(
            "endpoint",
            name,
            EndpointStatus="InService",
            FailureReason=rollback,
            PendingDeploymentSummary=None,
        )
        return 0
    # Traffic moves to this server first, then the old one stops, then the endpoint says InService:
    # a caller that sees InService after an update is served by the new config only.
    store.update(
        "endpoint",
        name,
        EndpointConfigName=config_name,
        _pid=os.getpid(),
        _port=port,
        _variant=variant["VariantName"],
        _green_port=None,
        _green_weight=None,
    )
    if previous and previous != os.getpid():
        policy = (deployment or {}).get("BlueGreenUpdatePolicy") or {}
        time.sleep(float(policy.get("TerminationWaitInSeconds", 0)))
        stop_process(previous)
    store.update(
        "endpoint", name, EndpointStatus="InService", FailureReason=None, PendingDeploymentSummary=None
    )
    serving.join()
    server.server_close()
    return 0


# -- sagemaker-runtime --------------------------------------------------------------------------------------


class LocalRuntimeClient:
    """The ``sagemaker-runtime`` client of the local backend: ``invoke_endpoint`` on 127.0.0.1."""

    def __init__(self, home: Path, region: str = "us-east-1", account: str = "123456789012") -> None:
        self.store = ResourceStore(home)
        self.region = region
        self.account = account

    def _record(self, name: str) -> dict[str, Any]:
        record = self.store.get("endpoint", name)
        if (
            record is None
            or record.get("EndpointStatus") not in ("InService", "Updating")
            or not record.get("_port")
        ):
            # SageMaker answers the same for a missing endpoint and one not yet (or no longer) serving.
            arn = f"arn:aws:sagemaker:{self.region}:{self.account}:endpoint/{name.lower()}"
            error = service_behaviour.not_found_error("InvokeEndpoint", name, arn)
            raise ClientError({"Error": error}, "InvokeEndpoint")
        return record

    @staticmethod
    def _fleet(record: Mapping[str, Any]) -> int:
        """The port of the fleet this request goes to: during a blue/green update, the new one takes its share."""
        green, share = record.get("_green_port"), float(record.get("_green_weight") or 0)
        return int(green) if green and random.uniform(0, 100) < share else int(record["_port"])

    def invoke_endpoint(self, **params: Any) -> dict[str, Any]:
        validate_request("InvokeEndpoint", params, service="sagemaker-runtime")
        name = params["EndpointName"]
        self._record(name)
        body = params["Body"]
        data = (
            body.read() if hasattr(body, "read") else body.encode() if isinstance(body, str) else bytes(body)
        )
        headers = {"Content-Type": params.get("ContentType", "application/octet-stream")}
        if params.get("Accept"):
            headers["Accept"] = params["Accept"]
        if params.get("InferenceId"):
            headers["X-Amzn-Inference-Id"] = params["InferenceId"]
        for attempt in range(ROUTE_ATTEMPTS):
            url = f"http://127.0.0.1:{self._fleet(self._record(name))}/endpoints/{name}/invocations"
            try:
                with urllib.request.urlopen(
                    urllib.request.Request(url, data=data, headers=headers), timeout=60
                ) as reply:
                    payload, content_type = reply.read(), reply.headers.get("Content-Type")
                    variant = reply.headers.get("X-Amzn-Invoked-Production-Variant")
                break
            except urllib.error.HTTPError as err:
                message = err.read().decode(errors="replace")
                side = "server" if err.code >= 500 else "client"
                raise ClientError(
                    {
                        "Error": {
                            "Code": "ModelError",
                            "Message": f'Received {side} error ({err.code}) from primary with message "{message}".',
                        }
                    },
                    "InvokeEndpoint",
                ) from None
            except (urllib.error.URLError, ConnectionError) as err:
                # A fleet that stopped between reading the record and connecting never saw the request:
                # SageMaker's router would have sent it to the fleet that serves, and so does this.
                cause = getattr(err, "reason", err)
                if not isinstance(cause, ConnectionError) or attempt == ROUTE_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        response = {
            "Body": StreamingBody(io.BytesIO(payload), len(payload)),
            "ContentType": content_type,
            "InvokedProductionVariant": variant,
        }
        validate_response("InvokeEndpoint", response, service="sagemaker-runtime")
        return response


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    sys.exit(serve(Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]))
