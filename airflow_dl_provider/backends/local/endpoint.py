"""A local SageMaker endpoint: one detached HTTP server on 127.0.0.1 per endpoint, with data capture.

``python -m airflow_dl_provider.backends.local.endpoint HOME ENDPOINT CONFIG`` loads the first production
variant's model with its own handlers (:mod:`.hosting`), serves ``POST /endpoints/<name>/invocations``
and ``GET /ping``, and records itself ``InService`` in the endpoint's record. An update starts a new
server with the new config; once it serves, it stops the old one (blue/green, as SageMaker does).

Data capture writes each sampled request as one JSON line in SageMaker's format to
``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<uuid>.jsonl``. SageMaker buffers records into
fewer, larger files; the local server writes one file per request so a test sees it at once.
Simulated: the instances, the variant weights (the first variant takes all traffic), and how long an
endpoint stays ``Deleting`` (:data:`DELETING_SECONDS`; on AWS it takes minutes).
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
from airflow_dl_provider.backends.local.processes import process_alive
from airflow_dl_provider.backends.local.resources import ResourceStore
from airflow_dl_provider.validation.requests import validate_request, validate_response

if TYPE_CHECKING:
    from collections.abc import Mapping

log = logging.getLogger("airflow_dl_provider.local.endpoint")
STOP_GRACE_SECONDS = 5.0
# A deleted endpoint shows Deleting this long, then Describe answers not found (ASYNC_DELETE).
DELETING_SECONDS = 1.0
DEFAULT_CSV = ("text/csv",)
DEFAULT_JSON = ("application/json",)


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


def start_server(home: Path, endpoint: str, config: str, env: Mapping[str, str]) -> int:
    """Start the detached server process for ``endpoint`` with ``config``; return its pid."""
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
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
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
            try:
                output = endpoint.handlers.invoke(body, content_type, accept)
            except Exception as err:  # the model's error goes back to the caller, as a ModelError
                self._reply(400, f"{type(err).__name__}: {err}".encode(), "text/plain")
                return
            out_type = accept.split(",", 1)[0].strip()
            self._reply(200, output, out_type)
            endpoint.record((content_type, body), (out_type, output), self.headers.get("X-Amzn-Inference-Id"))

    return Handler


def serve(home: Path, name: str, config_name: str) -> int:
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
        s3 = boto3.client(
            "s3",
            endpoint_url=os.environ["AIRFLOW_DL_ENDPOINT_URL"],
            region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        )
        model_dir = download_model(
            s3, container["ModelDataUrl"], home / "endpoints" / name / f"model-{os.getpid()}"
        )
        handlers = ModelHandlers(model_dir, model_program(container))
        capture = dict(config.get("DataCaptureConfig") or {"EnableCapture": False})
        server = ThreadingHTTPServer(
            ("127.0.0.1", 0), _handler(_Endpoint(name, variant["VariantName"], handlers, capture, s3))
        )
    except Exception as err:
        traceback.print_exc()
        reason = f"{type(err).__name__}: {err}"[:1024]
        # A failed update leaves the old config serving; a failed creation leaves nothing.
        store.update(
            "endpoint", name, EndpointStatus="InService" if updating else "Failed", FailureReason=reason
        )
        return 1
    previous = record.get("_pid")
    # Traffic moves to this server first, then the old one stops, then the endpoint says InService:
    # a caller that sees InService after an update is served by the new config only.
    store.update(
        "endpoint",
        name,
        EndpointConfigName=config_name,
        _pid=os.getpid(),
        _port=server.server_address[1],
        _variant=variant["VariantName"],
    )
    if previous and previous != os.getpid():
        stop_process(previous)
    store.update("endpoint", name, EndpointStatus="InService", FailureReason=None)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    log.info("endpoint %s serving on 127.0.0.1:%d", name, server.server_address[1])
    server.serve_forever()
    server.server_close()
    return 0


# -- sagemaker-runtime --------------------------------------------------------------------------------------


class LocalRuntimeClient:
    """The ``sagemaker-runtime`` client of the local backend: ``invoke_endpoint`` on 127.0.0.1."""

    def __init__(self, home: Path, region: str = "us-east-1", account: str = "123456789012") -> None:
        self.store = ResourceStore(home)
        self.region = region
        self.account = account

    def invoke_endpoint(self, **params: Any) -> dict[str, Any]:
        validate_request("InvokeEndpoint", params, service="sagemaker-runtime")
        name = params["EndpointName"]
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
        body = params["Body"]
        data = (
            body.read() if hasattr(body, "read") else body.encode() if isinstance(body, str) else bytes(body)
        )
        headers = {"Content-Type": params.get("ContentType", "application/octet-stream")}
        if params.get("Accept"):
            headers["Accept"] = params["Accept"]
        if params.get("InferenceId"):
            headers["X-Amzn-Inference-Id"] = params["InferenceId"]
        url = f"http://127.0.0.1:{record['_port']}/endpoints/{name}/invocations"
        try:
            with urllib.request.urlopen(
                urllib.request.Request(url, data=data, headers=headers), timeout=60
            ) as reply:
                payload, content_type = reply.read(), reply.headers.get("Content-Type")
                variant = reply.headers.get("X-Amzn-Invoked-Production-Variant")
        except urllib.error.HTTPError as err:
            message = err.read().decode(errors="replace")
            raise ClientError(
                {
                    "Error": {
                        "Code": "ModelError",
                        "Message": f'Received client error ({err.code}) from primary with message "{message}".',
                    }
                },
                "InvokeEndpoint",
            ) from None
        response = {
            "Body": StreamingBody(io.BytesIO(payload), len(payload)),
            "ContentType": content_type,
            "InvokedProductionVariant": variant,
        }
        validate_response("InvokeEndpoint", response, service="sagemaker-runtime")
        return response


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    sys.exit(serve(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
