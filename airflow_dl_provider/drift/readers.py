"""Chunked readers: CSV, Parquet, JSON Lines and SageMaker endpoint data capture, as columns.

Each reader takes a binary file object (a local file, or the body of an S3 ``get_object``) and
yields ``{column: array}`` chunks of at most ``chunk_rows`` rows. CSV, JSON Lines and Parquet are
parsed by pyarrow's columnar readers into pyarrow arrays: CSV and JSON Lines a block of
``block_bytes`` of text at a time, cut at a record boundary, parsed on a reader thread while the
check counts the block before (that overlap is what keeps the real path near the in-memory speed).
A block pyarrow refuses (a ragged row, a JSON value whose type changes within the block, bad
UTF-8) is parsed again by the standard library, which either reads it or names the exact line.
Memory is about three blocks plus the check's bins, whatever the size of the data. Data capture
payloads are decoded event by event into numpy arrays.
"""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
from concurrent.futures import ThreadPoolExecutor
from typing import IO, TYPE_CHECKING, Any, cast

import numpy as np

from airflow_dl_provider.drift.columns import NULL_VALUES
from airflow_dl_provider.exceptions import DriftInputError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

DEFAULT_CHUNK_ROWS = 50_000
#: Text parsed at once: each pyarrow call costs a few milliseconds of setup, so blocks are large,
#: but small enough that the blocks in flight and their columns stay near 100 MiB.
DEFAULT_BLOCK_BYTES = 8 * 2**20
FORMATS = ("csv", "parquet", "jsonl", "data_capture")
_BOM = b"\xef\xbb\xbf"

Chunk = dict[str, Any]


def _pyarrow(name: str, what: str) -> Any:
    try:
        import pyarrow
    except ImportError:
        raise DriftInputError(f"data: {name} is {what}, which needs pyarrow: pip install pyarrow") from None
    return pyarrow


def _binary(stream: IO[bytes], name: str) -> IO[bytes]:
    return cast("IO[bytes]", gzip.GzipFile(fileobj=stream)) if name.endswith(".gz") else stream


def _text_lines(stream: IO[bytes], name: str) -> Iterator[str]:
    """Decoded lines of a (possibly gzipped) binary stream, read a block at a time."""
    text = io.TextIOWrapper(cast("Any", _Readable(_binary(stream, name))), encoding="utf-8", newline="")
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


def _count(buffer: Any, byte: bytes, end: int | None = None) -> int:
    """Occurrences of one byte: numpy's compare is a few times faster than ``bytes.count``."""
    view = np.frombuffer(buffer, dtype=np.uint8, count=len(buffer) if end is None else end)
    return int(np.count_nonzero(view == ord(byte)))


def _record_end(buffer: bytearray, quoted: bool) -> int:
    """The end of the last whole record in ``buffer`` (0 if none): after a newline outside quotes.

    CSV doubles a quote inside a quoted field, so a newline is outside quotes exactly when the
    quotes before it, from a record boundary, are even in number.
    """
    end = buffer.rfind(b"\n") + 1
    if quoted and b'"' in buffer:
        quotes = _count(buffer, b'"', end)
        while end and quotes % 2:
            previous = buffer.rfind(b"\n", 0, end - 1) + 1
            quotes -= buffer.count(b'"', previous, end)
            end = previous
    return end


#: A block of whole records, whether it holds a quote (so a value may hold a newline), and the
#: number of its first line (for the error messages of a block pyarrow refuses).
Block = tuple[memoryview, bool, int]


def _fill(raw: IO[bytes], rest: bytes, size: int) -> bytearray:
    """``rest`` then up to ``size`` bytes of ``raw``, read in place where the stream allows it."""
    buffer = bytearray(len(rest) + size)
    buffer[: len(rest)] = rest
    readinto = getattr(raw, "readinto", None)
    if readinto is not None:
        got = readinto(memoryview(buffer)[len(rest) :])
    else:  # botocore's StreamingBody has read() only
        data = raw.read(size)
        got = len(data)
        buffer[len(rest) : len(rest) + got] = data
    del buffer[len(rest) + (got or 0) :]
    return buffer


def _blocks(raw: IO[bytes], block_bytes: int, quoted: bool) -> Iterator[Block]:
    """Whole records, about ``block_bytes`` at a time, each in its own buffer (no copies).

    Lines are counted here, on the caller's thread, while the worker parses the block before.
    """
    rest, first, line = b"", True, 1
    while True:
        buffer = _fill(raw, rest, block_bytes)
        if first and buffer.startswith(_BOM):
            del buffer[: len(_BOM)]
        grew, first = len(buffer) > len(rest), False
        if not grew:
            if buffer.strip():
                yield memoryview(buffer), b'"' in buffer, line
            return
        cut = _record_end(buffer, quoted)
        if not cut:  # one record longer than a block: read on
            rest = bytes(buffer)
            continue
        rest = bytes(buffer[cut:])
        view = memoryview(buffer)[:cut]
        yield view, buffer.find(b'"', 0, cut) >= 0, line
        line += _count(view, b"\n")


def _prefetched(blocks: Iterable[Any], parse: Callable[[Any], Any]) -> Iterator[Any]:
    """``parse`` of each block, the next one parsing on a thread while the caller uses this one.

    pyarrow's parser and numpy's sort both release the GIL, so reading and checking overlap.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="drift-reader") as pool:
        pending = None
        for block in blocks:
            future = pool.submit(parse, block)
            if pending is not None:
                yield pending.result()
            pending = future
        if pending is not None:
            yield pending.result()


def _table_chunks(table: Any, chunk_rows: int) -> Iterator[Chunk]:
    # pyarrow parses a block in ~1 MiB pieces; one chunk per piece would make the check pay its
    # per-chunk cost (a search per bin edge) every few thousand rows, so join them first.
    for batch in table.combine_chunks().to_batches(max_chunksize=chunk_rows):
        if batch.num_rows:
            yield {name: batch.column(i) for i, name in enumerate(batch.schema.names)}


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


def _decode(block: Any, name: str, first_line: int) -> str:
    block = bytes(block)
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError as err:
        line = first_line + block.count(b"\n", 0, err.start)
        raise DriftInputError(f"data: {name} is not UTF-8 text ({err.reason} on line {line})") from None


class _CsvBlocks:
    """Parses a CSV block with pyarrow, or, when pyarrow refuses it, with the ``csv`` module."""

    def __init__(self, header: list[str], name: str, types: Mapping[str, str] | None) -> None:
        self.pa = _pyarrow(name, "CSV")
        import pyarrow.csv as pcsv

        self.pcsv = pcsv
        self.header = header
        self.name = name
        # Known numeric features parse straight to float64; everything else stays text, so that a
        # category reads the same from every block (no per-block type guess turning "007" into 7).
        numeric = {n for n, kind in (types or {}).items() if kind == "numeric"}
        self.typed = {n: self.pa.float64() if n in numeric else self.pa.string() for n in header}
        self.text = dict.fromkeys(header, self.pa.string())

    def _pyarrow_table(self, block: Block, column_types: Mapping[str, Any]) -> Any:
        pcsv = self.pcsv
        view, has_quote, _ = block
        # One thread per block: the reader thread already overlaps parsing with the check, and on
        # a busy or 2-core machine pyarrow's own threads cost more CPU than they save.
        return pcsv.read_csv(
            self.pa.BufferReader(self.pa.py_buffer(view)),
            read_options=pcsv.ReadOptions(column_names=self.header, use_threads=False),
            parse_options=pcsv.ParseOptions(newlines_in_values=has_quote),
            convert_options=pcsv.ConvertOptions(
                column_types=column_types, null_values=NULL_VALUES, strings_can_be_null=True
            ),
        )

    def __call__(self, block: Block) -> Any:
        for column_types in (self.typed, self.text):
            try:
                return self._pyarrow_table(block, column_types)
            except self.pa.ArrowInvalid:
                continue  # a number that is not one: try again as text, then with the csv module
        return self._python(block[0], block[2])

    def _python(self, block: memoryview, first_line: int) -> Chunk:
        reader = csv.reader(io.StringIO(_decode(block, self.name, first_line), newline=""))
        width = len(self.header)
        rows = []
        for row in reader:
            if not row:
                continue
            if len(row) != width:
                line = first_line + reader.line_num - 1
                raise DriftInputError(
                    f"data: {self.name} line {line} has {len(row)} fields, the header has {width}"
                )
            rows.append(row)
        return _columns_of(rows, self.header)


def _split_header(block: bytes, name: str) -> tuple[list[str], int]:
    """The header's names and where the data starts in the first block."""
    end = 0
    while True:
        end = block.find(b"\n", end) + 1
        if not end:
            end = len(block)
            break
        if block.count(b'"', 0, end) % 2 == 0:
            break
    header = next(csv.reader(io.StringIO(_decode(block[:end], name, 1), newline="")), [])
    return [h.strip() for h in header], end


def read_csv(
    stream: IO[bytes],
    *,
    name: str = "data.csv",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    types: Mapping[str, str] | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> Iterator[Chunk]:
    """A CSV with a header row; a row with another number of fields is a one-line error.

    :param types: ``{column: "numeric" | "categorical"}`` (a baseline's kinds): numeric columns
        are parsed as floats by pyarrow; all others are read as text.
    """
    blocks = _blocks(_binary(stream, name), block_bytes, quoted=True)
    first = next(blocks, None)
    if first is None:
        return
    header, end = _split_header(bytes(first[0]), name)
    if not header:
        return
    parse = _CsvBlocks(header, name, types)

    def data_blocks() -> Iterator[Block]:
        if bytes(first[0][end:]).strip():
            yield first[0][end:], first[1], first[2] + bytes(first[0][:end]).count(b"\n")
        yield from blocks

    for parsed in _prefetched(data_blocks(), parse):
        yield from _chunks_of(parsed, chunk_rows)


def _records_to_chunk(records: list[dict[str, Any]], columns: Sequence[str] | None) -> Chunk:
    names = list(columns) if columns is not None else list(dict.fromkeys(k for r in records for k in r))
    return {name: _array([r.get(name) for r in records]) for name in names}


class _JsonBlocks:
    """Parses a JSON Lines block with pyarrow, or, when pyarrow refuses it, line by line."""

    def __init__(self, name: str, columns: Sequence[str] | None) -> None:
        self.pa = _pyarrow(name, "JSON Lines")
        import pyarrow.json as pjson

        self.pjson = pjson
        self.name = name
        self.columns = columns

    def __call__(self, item: Block) -> Any:
        block, _, first_line = item
        try:
            table = self.pjson.read_json(
                self.pa.BufferReader(self.pa.py_buffer(block)),
                read_options=self.pjson.ReadOptions(use_threads=True),
            )
        except self.pa.ArrowInvalid:  # a type that changes within the block, a line that is not an object
            return self._python(block, first_line)
        if self.columns is None:
            return table
        present = set(table.column_names)
        return self.pa.table(
            {c: table[c] if c in present else self.pa.nulls(table.num_rows) for c in self.columns}
        )

    def _python(self, block: memoryview, first_line: int) -> Chunk:
        records: list[dict[str, Any]] = []
        # split("\n"), not splitlines(): JSON strings may hold U+2028 and other line separators.
        for offset, line in enumerate(_decode(block, self.name, first_line).split("\n")):
            if not line.strip():
                continue
            line_no = first_line + offset
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DriftInputError(f"data: {self.name} line {line_no} is not JSON ({err.msg})") from None
            if not isinstance(record, dict):
                raise DriftInputError(
                    f"data: {self.name} line {line_no} is a JSON {type(record).__name__}, not an object"
                )
            records.append(record)
        return _records_to_chunk(records, self.columns)


def _chunks_of(parsed: Any, chunk_rows: int) -> Iterator[Chunk]:
    if isinstance(parsed, dict):
        size = max((len(v) for v in parsed.values()), default=0)
        for start in range(0, size, chunk_rows):
            yield {k: v[start : start + chunk_rows] for k, v in parsed.items()}
    else:
        yield from _table_chunks(parsed, chunk_rows)


def read_jsonl(
    stream: IO[bytes],
    *,
    name: str = "data.jsonl",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    columns: Sequence[str] | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> Iterator[Chunk]:
    """JSON Lines, one object per line; a key a line lacks is a missing value."""
    parse = _JsonBlocks(name, columns)
    for parsed in _prefetched(_blocks(_binary(stream, name), block_bytes, quoted=False), parse):
        yield from _chunks_of(parsed, chunk_rows)


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
    """Parquet, one record batch at a time, as pyarrow arrays.

    :param source: a path or a seekable binary file (Parquet's footer is at the end).
    """
    pa = _pyarrow(name, "Parquet")
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(source)
        present = set(parquet.schema_arrow.names)
        wanted = [c for c in columns if c in present] if columns is not None else None
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=wanted):
            yield {field: batch.column(i) for i, field in enumerate(batch.schema.names)}
    except (OSError, ValueError, pa.ArrowException) as err:
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
    types: Mapping[str, str] | None = None,
) -> Iterator[Chunk]:
    """Dispatch to the reader for ``data_format``.

    :param types: ``{column: "numeric" | "categorical"}`` for CSV (a baseline's feature kinds).
    """
    if data_format == "csv":
        return read_csv(stream, name=name, chunk_rows=chunk_rows, types=types)
    if data_format == "jsonl":
        return read_jsonl(stream, name=name, chunk_rows=chunk_rows)
    if data_format == "data_capture":
        return read_data_capture(stream, name=name, chunk_rows=chunk_rows, columns=columns, capture=capture)
    if data_format == "parquet":
        return read_parquet(stream, name=name, chunk_rows=chunk_rows, columns=columns)
    raise DriftInputError(f"data_format: {data_format!r} is not one of auto, {', '.join(FORMATS)}")
