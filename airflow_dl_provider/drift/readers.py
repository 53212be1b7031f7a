"""Chunked readers: CSV, Parquet, JSON Lines and SageMaker endpoint data capture, as numpy columns.

Each reader takes a binary file object (a local file, or the body of an S3 ``get_object``) and
yields ``{column: numpy array}`` chunks of at most ``chunk_rows`` rows, so a drift check's memory is
one chunk plus its bins, whatever the size of the data. Only the standard library and numpy are
used; Parquet needs pyarrow, imported when a Parquet file is read.
"""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
from typing import IO, TYPE_CHECKING, Any, cast

import numpy as np

from airflow_dl_provider.exceptions import DriftInputError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

DEFAULT_CHUNK_ROWS = 50_000
FORMATS = ("csv", "parquet", "jsonl", "data_capture")

Chunk = dict[str, np.ndarray]


def _text_lines(stream: IO[bytes], name: str) -> Iterator[str]:
    """Decoded lines of a (possibly gzipped) binary stream, read a block at a time."""
    raw = cast("IO[bytes]", gzip.GzipFile(fileobj=stream)) if name.endswith(".gz") else stream
    text = io.TextIOWrapper(cast("Any", _Readable(raw)), encoding="utf-8", newline="")
    try:
        yield from text
    except UnicodeDecodeError as err:
        raise DriftInputError(f"data: {name} is not UTF-8 text ({err.reason} at byte {err.start})") from None


class _Readable(io.RawIOBase):
    """Adapts anything with ``read(n)`` (botocore's StreamingBody included) for TextIOWrapper."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _columns_of(rows: Sequence[Sequence[Any]], names: Sequence[str]) -> Chunk:
    # CSV fields are always text; numeric columns are parsed by the check, which counts bad values.
    columns = list(zip(*rows, strict=False)) if rows else [() for _ in names]
    return {name: np.asarray(values, dtype=str) for name, values in zip(names, columns, strict=False)}


def _array(values: Sequence[Any]) -> np.ndarray:
    """A column as a compact numpy array: floats when every value is a number, else text or objects."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.float64)
    if all(isinstance(v, str) for v in values):
        return np.asarray(values, dtype=str)
    return np.asarray(values, dtype=object)


def read_csv(
    stream: IO[bytes], *, name: str = "data.csv", chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[Chunk]:
    """A CSV with a header row; a row with another number of fields is a one-line error."""
    reader = csv.reader(_text_lines(stream, name))
    header = next(reader, None)
    if header is None:
        return
    header = [h.strip() for h in header]
    width = len(header)
    rows: list[list[str]] = []
    for line_no, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != width:
            raise DriftInputError(
                f"data: {name} line {line_no} has {len(row)} fields, the header has {width}"
            )
        rows.append(row)
        if len(rows) >= chunk_rows:
            yield _columns_of(rows, header)
            rows = []
    if rows:
        yield _columns_of(rows, header)


def _records_to_chunk(records: list[dict[str, Any]], columns: Sequence[str] | None) -> Chunk:
    names = list(columns) if columns is not None else list(dict.fromkeys(k for r in records for k in r))
    return {name: _array([r.get(name) for r in records]) for name in names}


def read_jsonl(
    stream: IO[bytes],
    *,
    name: str = "data.jsonl",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    columns: Sequence[str] | None = None,
) -> Iterator[Chunk]:
    """JSON Lines, one object per line; a key a line lacks is a missing value."""
    records: list[dict[str, Any]] = []
    for line_no, line in enumerate(_text_lines(stream, name), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DriftInputError(f"data: {name} line {line_no} is not JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise DriftInputError(
                f"data: {name} line {line_no} is a JSON {type(record).__name__}, not an object"
            )
        records.append(record)
        if len(records) >= chunk_rows:
            yield _records_to_chunk(records, columns)
            records = []
    if records:
        yield _records_to_chunk(records, columns)


def _decode_capture(payload: dict[str, Any], where: str) -> tuple[str, str, str]:
    """``(data, encoding, content_type)`` with BASE64 decoded into the text it carries."""
    data = payload.get("data", "")
    encoding = str(payload.get("encoding", "CSV")).upper()
    content_type = str(payload.get("observedContentType", "")).lower()
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data).decode("utf-8")
        except ValueError as err:
            raise DriftInputError(f"data: {where} holds BASE64 that does not decode ({err})") from None
        encoding = "JSON" if "json" in content_type else "CSV"
    return str(data), encoding, content_type


def _csv_capture_rows(data: str, columns: Sequence[str] | None, where: str) -> Iterable[dict[str, Any]]:
    for fields in csv.reader(io.StringIO(data)):
        if not fields:
            continue
        if columns is None:
            raise DriftInputError(
                f"data: {where} is CSV without a header; pass columns (the baseline's features, in order)"
            )
        if len(fields) != len(columns):
            raise DriftInputError(
                f"data: {where} has {len(fields)} fields, the baseline has {len(columns)} features"
            )
        yield dict(zip(columns, fields, strict=True))


def _capture_rows(
    payload: dict[str, Any], columns: Sequence[str] | None, where: str
) -> Iterable[dict[str, Any]]:
    """Rows of one captured request or response (``endpointInput`` or ``endpointOutput``)."""
    data, encoding, content_type = _decode_capture(payload, where)
    if encoding == "CSV":
        yield from _csv_capture_rows(data, columns, where)
        return
    if encoding != "JSON":
        raise DriftInputError(
            f"data: {where} has encoding {encoding!r}; data capture encodings are CSV, JSON, BASE64"
        )
    if "jsonlines" in content_type:
        for line in data.splitlines():
            if line.strip():
                yield from _json_rows(json.loads(line), columns, where)
        return
    try:
        decoded = json.loads(data)
    except json.JSONDecodeError as err:
        raise DriftInputError(f"data: {where} holds JSON that does not parse ({err.msg})") from None
    yield from _json_rows(decoded, columns, where)


def _json_rows(value: Any, columns: Sequence[str] | None, where: str) -> Iterable[dict[str, Any]]:
    """A JSON request body as rows: an object, a list of objects or lists, or ``{"instances": [...]}``."""
    if isinstance(value, dict):
        for key in ("instances", "inputs", "predictions", "data"):
            if key in value and isinstance(value[key], list):
                yield from _json_rows(value[key], columns, where)
                return
        if "features" in value and isinstance(value["features"], list):
            yield from _json_rows([value["features"]], columns, where)
            return
        yield value
        return
    if isinstance(value, list):
        if value and not isinstance(value[0], (dict, list)):
            value = [value]  # one instance as a bare list of values
        for item in value:
            if isinstance(item, dict):
                yield item
            elif columns is not None and len(item) == len(columns):
                yield dict(zip(columns, item, strict=False))
            else:
                width = len(columns) if columns is not None else "no"
                raise DriftInputError(
                    f"data: {where} has a row of {len(item)} values, the baseline has {width} features"
                )
        return
    if columns is not None and len(columns) == 1:
        yield {columns[0]: value}
        return
    raise DriftInputError(f"data: {where} holds a JSON {type(value).__name__}, not rows")


def read_data_capture(
    stream: IO[bytes],
    *,
    name: str = "capture.jsonl",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    columns: Sequence[str] | None = None,
    capture: str = "input",
) -> Iterator[Chunk]:
    """SageMaker endpoint data capture (JSON Lines of ``captureData``), the requests or the responses.

    :param columns: feature names in order, for CSV payloads (which carry no header).
    :param capture: ``input`` reads ``endpointInput``, ``output`` reads ``endpointOutput``.
    """
    side = {"input": "endpointInput", "output": "endpointOutput"}.get(capture)
    if side is None:
        raise DriftInputError(f"capture: must be 'input' or 'output', got {capture!r}")
    records: list[dict[str, Any]] = []
    for line_no, line in enumerate(_text_lines(stream, name), start=1):
        if not line.strip():
            continue
        where = f"{name} line {line_no}"
        try:
            event = json.loads(line)
        except json.JSONDecodeError as err:
            raise DriftInputError(f"data: {where} is not JSON ({err.msg})") from None
        payload = event.get("captureData", {}).get(side) if isinstance(event, dict) else None
        if not isinstance(payload, dict):
            raise DriftInputError(f"data: {where} has no captureData.{side}; is this endpoint data capture?")
        records.extend(_capture_rows(payload, columns, where))
        if len(records) >= chunk_rows:
            yield _records_to_chunk(records, columns)
            records = []
    if records:
        yield _records_to_chunk(records, columns)


def read_parquet(
    source: Any,
    *,
    name: str = "data.parquet",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    columns: Sequence[str] | None = None,
) -> Iterator[Chunk]:
    """Parquet, one record batch at a time (pyarrow, imported here: it is optional).

    :param source: a path or a seekable binary file (Parquet's footer is at the end).
    """
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DriftInputError(f"data: {name} is Parquet, which needs pyarrow: pip install pyarrow") from None
    try:
        parquet = pq.ParquetFile(source)
        present = set(parquet.schema_arrow.names)
        wanted = [c for c in columns if c in present] if columns is not None else None
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=wanted):
            yield {
                field: batch.column(i).to_numpy(zero_copy_only=False)
                for i, field in enumerate(batch.schema.names)
            }
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid and ArrowIOError subclass these
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DriftInputError(f"data: {name} cannot be read as Parquet ({first})") from None


def guess_format(key: str, first_line: bytes = b"") -> str:
    """``csv``, ``parquet``, ``jsonl`` or ``data_capture`` from the name (and, for JSON, the first line)."""
    lower = key.lower().removesuffix(".gz")
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith((".jsonl", ".json", ".ndjson")):
        return "data_capture" if b'"captureData"' in first_line else "jsonl"
    raise DriftInputError(
        f"data_format: cannot tell the format of {key!r}; set data_format to one of {', '.join(FORMATS)}"
    )


def read_chunks(
    stream: Any,
    data_format: str,
    *,
    name: str,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    columns: Sequence[str] | None = None,
    capture: str = "input",
) -> Iterator[Chunk]:
    """Dispatch to the reader for ``data_format``."""
    if data_format == "csv":
        return read_csv(stream, name=name, chunk_rows=chunk_rows)
    if data_format == "jsonl":
        return read_jsonl(stream, name=name, chunk_rows=chunk_rows)
    if data_format == "data_capture":
        return read_data_capture(stream, name=name, chunk_rows=chunk_rows, columns=columns, capture=capture)
    if data_format == "parquet":
        return read_parquet(stream, name=name, chunk_rows=chunk_rows, columns=columns)
    raise DriftInputError(f"data_format: {data_format!r} is not one of auto, {', '.join(FORMATS)}")
