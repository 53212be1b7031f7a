"""Batch transform on this machine: the model's own handlers over every record under the input prefix.

Per input object ``<S3Uri>/<rel>``, as the service does: split into records (``SplitType`` ``Line`` or
``None``), apply ``InputFilter``, batch (``SingleRecord``, or ``MultiRecord`` up to ``MaxPayloadInMB``),
call ``input_fn -> predict_fn -> output_fn`` of the model's ``inference.py`` once per batch, split the
response back into one output per record, join with the input (``JoinSource``), apply ``OutputFilter``
and write ``<S3OutputPath>/<rel>.out``. ``AssembleWith`` ``Line`` puts each record's output on its own
line; ``None`` concatenates the responses as they came.

Filters are JSONPath evaluated by jsonpath-ng, held to the subset SageMaker supports (developer guide,
"Supported JSONPath Operators"): ``$``, ``.name``, ``*``, ``['name','name']``, ``[i,j]`` (negative
from the end) and one ``[start:end]`` range (``$[0,5:]`` mixes indices and a range). Anything else
(``..``, filter expressions, steps, two ranges) fails the job with ``Invalid JsonPath``, as the
service does. ``RecordIO``/``TFRecord`` splitting and manifest inputs are refused too. Simulated: the
instances (one local process).
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from airflow_dl_provider.backends.local.hosting import (
    ModelHandlers,
    download_model,
    model_program,
    primary_container,
    split_s3_uri,
)
from airflow_dl_provider.backends.local.state import LocalJob, now_iso
from airflow_dl_provider.backends.local.work import CloudWatchStream, JobFailure, Services

ARN_NOUN = "transform-job"
STATUS_NAMES: dict[str, str] = {}  # Describe spells the statuses as the worker records them
LOG_GROUP = "/aws/sagemaker/TransformJobs"
MB = 1024 * 1024
CSV_TYPES = ("text/csv",)
JSON_TYPES = ("application/json", "application/jsonlines", "application/x-jsonlines")
# https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform-data-processing.html#data-processing-operators
SUPPORTED_JSONPATH = "$, .name, *, ['name','name'], [i,j] and one [start:end] range"
# The service's FailureReason for two ranges in one bracket, quoted in
# https://github.com/aws/sagemaker-python-sdk/issues/1112 ("Invalid JsonPath: $[0:2,246:]: only ...").
TWO_RANGES = (
    "only single range filters of format (eg: [1:5]) are supported. Format {bracket} is not supported"
)
# A bracket of numbers, indices and ranges, after whatever path leads to it: ``$.a[0,5:]``.
_NUMBER_TERMS = re.compile(r"^(?P<head>.*)\[(?P<terms>[-\d\s:]*(?:,[-\d\s:]*)+)\]$", re.DOTALL)


def _media(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _invalid(path: str, why: str) -> JobFailure:
    return JobFailure(f"ClientError: Invalid JsonPath: {path}: {why}")


def _is_wildcard(node: Any) -> bool:
    """``*``: its own node in jsonpath-ng 1.8+, ``Fields('*')`` / an open ``Slice`` before that."""
    kind = type(node).__name__
    if kind == "Wildcard":
        return True
    if kind == "Fields":
        return "*" in node.fields
    return kind == "Slice" and node.start is None and node.end is None and node.step is None


def _steps(path: str, node: Any) -> list[Any]:
    """The child steps after ``$``, in order; any other construct is outside SageMaker's subset."""
    kind = type(node).__name__
    if kind == "Root":
        return []
    if kind == "Child":
        return _steps(path, node.left) + _steps(path, node.right)
    if kind in ("Fields", "Index", "Wildcard") or (kind == "Slice" and node.step is None):
        return [node]
    raise _invalid(path, f"{node} is not supported; SageMaker supports {SUPPORTED_JSONPATH}")


@dataclass(frozen=True)
class _Part:
    expression: Any
    # How many matches the part must have in every record (None: a range or wildcard, any number).
    matches: int | None


@dataclass(frozen=True)
class RecordFilter:
    """A compiled ``InputFilter``/``OutputFilter``: jsonpath-ng expressions and the shape they build.

    ``shape``: ``whole`` (``$``), ``one`` (a single name or index: the value itself), ``object``
    (``['a','b']``: those keys and values) or ``list`` (indices, a range, a wildcard: the values).
    """

    path: str
    parts: tuple[_Part, ...] = ()
    shape: str = "whole"
    names: tuple[str, ...] = ()

    def apply(self, value: Any) -> Any:
        """The selected portion of a parsed record (a CSV row is a list of its cells)."""
        if self.shape == "whole":
            return value
        found: list[Any] = []
        for part in self.parts:
            try:
                matches = [m.value for m in part.expression.find(value)]
            except (KeyError, IndexError, TypeError, AttributeError) as err:  # jsonpath-ng < 1.8
                raise self._misfit(f"{type(err).__name__}: {err}") from err
            if part.matches is not None and len(matches) != part.matches:
                raise self._misfit(f"{part.expression} selects {len(matches)} of {part.matches} element(s)")
            found.extend(matches)
        if self.shape == "one":
            return found[0]
        if self.shape == "object":
            return dict(zip(self.names, found, strict=True))
        return found

    def _misfit(self, why: str) -> JobFailure:
        # The service: "If you specify indexes that aren't within the dimension size ... you get an error."
        return JobFailure(f"ClientError: JSONPath {self.path!r} does not apply to a record: {why}")


@functools.lru_cache(maxsize=64)
def record_filter(path: str | None) -> RecordFilter:
    """Compile a filter once per job; raises :class:`JobFailure` (``Invalid JsonPath``) outside the subset."""
    from jsonpath_ng import parse
    from jsonpath_ng.exceptions import JSONPathError

    text = (path or "").strip()
    if text in ("", "$"):
        return RecordFilter(text)
    if not text.startswith("$"):
        raise _invalid(text, "a path starts at the root, $")
    # jsonpath-ng reads no bracket that mixes indices and a range, so each number term is parsed alone.
    union = _NUMBER_TERMS.match(text)
    head, terms = (union["head"], [t.strip() for t in union["terms"].split(",")]) if union else (text, [])
    if sum(":" in term for term in terms) > 1:
        raise _invalid(text, TWO_RANGES.format(bracket=text[len(head) :]))
    parts: list[_Part] = []
    last: Any = None
    for source in [f"{head}[{term}]" for term in terms] or [text]:
        try:
            expression = parse(source)
        except JSONPathError as err:
            raise _invalid(text, str(err).splitlines()[0]) from err
        steps = _steps(text, expression)
        if not steps:
            raise _invalid(text, "nothing after $")
        for step in steps[:-1]:
            if type(step).__name__ == "Fields" and len(step.fields) > 1:
                raise _invalid(text, "a bracket of several names must be the last step")
        open_ended = any(_is_wildcard(s) or type(s).__name__ == "Slice" for s in steps)
        last = steps[-1]
        width = len(last.fields) if type(last).__name__ == "Fields" and not _is_wildcard(last) else 1
        parts.append(_Part(expression, None if open_ended else width))
    if len(parts) > 1 or parts[0].matches is None:
        return RecordFilter(text, tuple(parts), "list")
    if type(last).__name__ == "Fields" and len(last.fields) > 1:
        return RecordFilter(text, tuple(parts), "object", tuple(last.fields))
    return RecordFilter(text, tuple(parts), "one")


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
    input_filter = record_filter(processing.get("InputFilter"))
    output_filter = record_filter(processing.get("OutputFilter"))
    joined = processing.get("JoinSource") == "Input"
    per_record = joined or output_filter.shape != "whole"
    records = split_records(body, source.get("SplitType", "None"))
    payloads = [
        r if input_filter.shape == "whole" else in_fmt.dump(input_filter.apply(in_fmt.parse(r)))
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
            responses.append((in_fmt if joined else out_fmt).dump(output_filter.apply(value)))
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
    processing = request.get("DataProcessing") or {}
    for key in ("InputFilter", "OutputFilter"):
        record_filter(processing.get(key))  # an invalid path fails before the model is fetched
    model = services.resources.get("model", request["ModelName"])
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
