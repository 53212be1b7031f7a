"""Batch transform on this machine: the model's own handlers over every record under the input prefix.

Per input object ``<S3Uri>/<rel>``, as the service does: split into records (``SplitType`` ``Line`` or
``None``), apply ``InputFilter``, batch (``SingleRecord``, or ``MultiRecord`` up to ``MaxPayloadInMB``),
call ``input_fn -> predict_fn -> output_fn`` of the model's ``inference.py`` once per batch, split the
response back into one output per record, join with the input (``JoinSource``), apply ``OutputFilter``
and write ``<S3OutputPath>/<rel>.out``. ``AssembleWith`` ``Line`` puts each record's output on its own
line; ``None`` concatenates the responses as they came.

JSONPath is a subset, refused with a clear ``FailureReason`` beyond it: ``$``, ``$[i]``, ``$[i:j]``,
``$[i,j,...]`` (negative indices count from the end) and ``$.key.key``. ``RecordIO``/``TFRecord``
splitting and manifest inputs are refused too. Simulated: the instances (one local process).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import time
from typing import Any

from airflow_dl_provider.backends.local.hosting import (
    ModelHandlers,
    download_model,
    model_program,
    primary_container,
    split_s3_uri,
)
from airflow_dl_provider.backends.local.resources import ResourceStore
from airflow_dl_provider.backends.local.state import LocalJob, now_iso
from airflow_dl_provider.backends.local.work import CloudWatchStream, JobFailure, Services

ARN_NOUN = "transform-job"
LOG_GROUP = "/aws/sagemaker/TransformJobs"
MB = 1024 * 1024
CSV_TYPES = ("text/csv",)
JSON_TYPES = ("application/json", "application/jsonlines", "application/x-jsonlines")
_INDEX = r"-?\d+"
_PATH = re.compile(
    rf"^\$(?:\[(?P<index>{_INDEX})\]|\[(?P<start>{_INDEX})?:(?P<end>{_INDEX})?\]"
    rf"|\[(?P<indices>{_INDEX}(?:\s*,\s*{_INDEX})+)\]|(?P<keys>(?:\.[A-Za-z_][\w-]*)+))?$"
)


def _media(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_path(path: str) -> None:
    if not _PATH.match(path.replace(" ", "")):
        raise JobFailure(
            f"ClientError: JSONPath {path!r} is outside what the local backend implements: $, $[i], "
            "$[i:j], $[i,j,...], $.key"
        )


def select(path: str | None, value: Any) -> Any:
    """Apply the JSONPath subset to a parsed record (a CSV row is a list of its cells)."""
    if not path or path == "$":
        return value
    match = _PATH.match(path.replace(" ", ""))
    if not match:
        check_path(path)
    assert match is not None
    try:
        if match["index"] is not None:
            return value[int(match["index"])]
        if match["indices"] is not None:
            return [value[int(i)] for i in match["indices"].split(",")]
        if match["keys"] is not None:
            for key in match["keys"].lstrip(".").split("."):
                value = value[key]
            return value
        start, end = match["start"], match["end"]
        return value[slice(None if start is None else int(start), None if end is None else int(end))]
    except (KeyError, IndexError, TypeError) as err:
        raise JobFailure(f"ClientError: JSONPath {path!r} does not apply to a record: {err!r}") from err


class RecordFormat:
    """How records of one content type are parsed for filters and joins, and written back."""

    def __init__(self, content_type: str | None) -> None:
        media = _media(content_type)
        self.csv = media in CSV_TYPES
        self.json = media in JSON_TYPES

    def parse(self, record: bytes) -> Any:
        text = record.decode("utf-8")
        if self.csv:
            return next(csv.reader([text]), [])
        if self.json:
            return json.loads(text)
        raise JobFailure("ClientError: InputFilter, OutputFilter and JoinSource need CSV or JSON records")

    def dump(self, value: Any) -> bytes:
        if self.csv:
            cells = value if isinstance(value, list) else [value]
            out = io.StringIO()
            csv.writer(out, lineterminator="").writerow(cells)
            return out.getvalue().encode("utf-8")
        return json.dumps(value).encode("utf-8")


def split_records(body: bytes, split_type: str) -> list[bytes]:
    if split_type == "None":
        return [body]
    if split_type == "Line":
        return [line for line in body.split(b"\n") if line.strip()]
    raise JobFailure(f"ClientError: the local backend splits Line or None, not {split_type}")


def batches(records: list[bytes], strategy: str, max_payload_mb: int) -> list[list[bytes]]:
    if strategy != "MultiRecord":
        return [[r] for r in records]
    limit = max(1, max_payload_mb) * MB
    out: list[list[bytes]] = []
    size = 0
    for record in records:
        if len(record) > limit:
            raise JobFailure(
                f"ClientError: a record of {len(record)} bytes is over MaxPayloadInMB={max_payload_mb}"
            )
        if out and size + len(record) + 1 <= limit:
            out[-1].append(record)
            size += len(record) + 1
        else:
            out.append([record])
            size = len(record)
    return out


def split_response(response: bytes, count: int) -> list[bytes]:
    """One output per record of the batch: a single record's response is whole, else one per line."""
    if count == 1:
        return [response.rstrip(b"\n")]
    lines = [line for line in response.split(b"\n") if line.strip()]
    if len(lines) != count:
        raise JobFailure(
            f"ClientError: the model returned {len(lines)} lines for a batch of {count} records; "
            "per-record joins and filters need one output line per input record"
        )
    return lines


def _join(fmt: RecordFormat, out_fmt: RecordFormat, record: bytes, output: bytes) -> Any:
    source = fmt.parse(record)
    if fmt.csv:
        result = out_fmt.parse(output) if out_fmt.csv else json.loads(output)
        return [*source, *(result if isinstance(result, list) else [result])]
    result = json.loads(output) if out_fmt.json else output.decode("utf-8")
    if isinstance(source, dict):
        return {**source, "SageMakerOutput": result}
    return {"SageMakerInput": source, "SageMakerOutput": result}


def transform_object(body: bytes, request: dict[str, Any], handlers: ModelHandlers) -> bytes:
    """The ``.out`` content for one input object."""
    source = request["TransformInput"]
    output = request.get("TransformOutput") or {}
    processing = request.get("DataProcessing") or {}
    content_type, accept = source.get("ContentType"), output.get("Accept")
    in_fmt, out_fmt = RecordFormat(content_type), RecordFormat(accept)
    input_filter, output_filter = processing.get("InputFilter"), processing.get("OutputFilter")
    joined = processing.get("JoinSource") == "Input"
    per_record = joined or output_filter not in (None, "$")
    records = split_records(body, source.get("SplitType", "None"))
    payloads = [
        r if input_filter in (None, "$") else in_fmt.dump(select(input_filter, in_fmt.parse(r)))
        for r in records
    ]
    strategy = request.get("BatchStrategy", "SingleRecord")
    max_mb = int(request.get("MaxPayloadInMB", 6))
    responses: list[bytes] = []
    index = 0
    for batch in batches(payloads, strategy, max_mb):
        response = handlers.invoke(b"\n".join(batch), content_type, accept)
        originals = records[index : index + len(batch)]
        index += len(batch)
        if not per_record:
            responses.append(response)
            continue
        for original, result in zip(originals, split_response(response, len(batch)), strict=True):
            value = (
                _join(in_fmt, out_fmt, original, result)
                if joined
                else (out_fmt.parse(result) if (out_fmt.csv or out_fmt.json) else result.decode("utf-8"))
            )
            responses.append((in_fmt if joined else out_fmt).dump(select(output_filter, value)))
    if output.get("AssembleWith") == "Line":
        return b"".join(r.rstrip(b"\n") + b"\n" for r in responses)
    return b"".join(responses)


def _objects(s3: Any, uri: str) -> list[tuple[str, str, str]]:
    """``(bucket, key, relative key)`` of every object under an S3 prefix, in key order."""
    bucket, prefix = split_s3_uri(uri)
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith("/"):
                continue
            relative = key[len(prefix) :].lstrip("/") or key.rsplit("/", 1)[-1]
            found.append((bucket, key, relative))
    return found


def run(job: LocalJob, services: Services) -> None:
    request = job.request()
    stream = CloudWatchStream(services.logs, LOG_GROUP, f"{job.name}/local-1")

    def log(message: str) -> None:
        stream.put([(int(time.time() * 1000), message)])

    data_source = request["TransformInput"]["DataSource"]["S3DataSource"]
    if data_source.get("S3DataType", "S3Prefix") != "S3Prefix":
        raise JobFailure("ClientError: the local backend reads S3Prefix inputs only, not manifest files")
    for path in (request.get("DataProcessing") or {}).values():
        if path not in ("None", "Input"):
            check_path(str(path))
    home = job.dir.parent.parent.parent  # <home>/jobs/transform/<name>
    model = ResourceStore(home).get("model", request["ModelName"])
    if model is None:
        raise JobFailure(f"ClientError: Could not find model {request['ModelName']!r}")
    container = primary_container(model)
    job.update(TransformStartTime=now_iso())
    log(
        f"local backend (simulated instances): {request['TransformResources']['InstanceType']} as this process; "
        f"image {container.get('Image', '-')} not pulled, handlers run with this Python"
    )
    model_dir = download_model(services.s3, container["ModelDataUrl"], job.work / "model")
    handlers = ModelHandlers(model_dir, model_program(container))
    objects = _objects(services.s3, data_source["S3Uri"])
    if not objects:
        raise JobFailure(f"ClientError: no objects under {data_source['S3Uri']}")
    output_path = request["TransformOutput"]["S3OutputPath"].rstrip("/")
    compression = request["TransformInput"].get("CompressionType", "None")
    for bucket, key, relative in objects:
        if services.stop.is_set():
            job.update(TransformJobStatus="Stopped", TransformEndTime=now_iso())
            return
        body = services.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        if compression == "Gzip":
            body = gzip.decompress(body)
        try:
            result = transform_object(body, request, handlers)
        except JobFailure:
            raise
        except Exception as err:
            raise JobFailure(f"ClientError: s3://{bucket}/{key}: {type(err).__name__}: {err}") from err
        out_bucket, out_prefix = split_s3_uri(f"{output_path}/{relative}.out")
        services.s3.put_object(Bucket=out_bucket, Key=out_prefix, Body=result)
        log(f"s3://{bucket}/{key} -> {output_path}/{relative}.out ({len(result)} bytes)")
    job.update(TransformJobStatus="Completed", TransformEndTime=now_iso())


def initial_state(request: dict[str, Any], name: str) -> dict[str, Any]:
    return {}
