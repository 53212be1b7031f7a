"""Readers yield bounded numpy chunks from CSV, JSON Lines, data capture and Parquet."""

from __future__ import annotations

import base64
import gzip
import io
import json

import numpy as np
import pytest

from airflow_dl_provider.drift import DriftThresholds, build_baseline, check_drift, guess_format, read_chunks
from airflow_dl_provider.drift.readers import read_csv, read_data_capture, read_jsonl, read_parquet
from airflow_dl_provider.exceptions import DriftInputError


def _capture(data: str, encoding: str = "CSV", content_type: str = "text/csv") -> str:
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": content_type,
                    "mode": "INPUT",
                    "data": data,
                    "encoding": encoding,
                },
                "endpointOutput": {
                    "observedContentType": "text/csv",
                    "mode": "OUTPUT",
                    "data": "0.9",
                    "encoding": "CSV",
                },
            },
            "eventMetadata": {"eventId": "e1", "inferenceTime": "2024-01-01T00:00:00Z"},
            "eventVersion": "0",
        }
    )


def test_csv_in_chunks_of_n_rows() -> None:
    body = "a,b,color\n" + "".join(f"{i},{i * 0.5},red\n" for i in range(10))
    chunks = list(read_csv(io.BytesIO(body.encode()), chunk_rows=4))
    assert [len(c["a"]) for c in chunks] == [4, 4, 2]
    assert chunks[0]["color"].to_pylist() == ["red"] * 4


def test_csv_gzip_and_ragged_row() -> None:
    body = gzip.compress(b"a,b\n1,2\n3,4\n")
    assert [c["b"].to_pylist() for c in read_csv(io.BytesIO(body), name="x.csv.gz")] == [["2", "4"]]
    with pytest.raises(DriftInputError, match=r"x.csv line 3 has 1 fields, the header has 2"):
        list(read_csv(io.BytesIO(b"a,b\n1,2\n3\n"), name="x.csv"))


def test_jsonl_missing_keys_are_missing_values() -> None:
    body = b'{"a": 1, "b": "x"}\n{"a": 2.5}\n\n'
    (chunk,) = read_jsonl(io.BytesIO(body))
    assert str(chunk["a"].type) == "double"
    assert chunk["b"].to_pylist() == ["x", None]
    with pytest.raises(DriftInputError, match="line 1 is not JSON"):
        list(read_jsonl(io.BytesIO(b"{oops\n")))


def test_data_capture_csv_json_and_base64() -> None:
    lines = [
        _capture("1,2"),
        _capture("3,4\n5,6"),
        _capture(json.dumps({"instances": [[7, 8], {"a": 9, "b": 10}]}), "JSON", "application/json"),
        _capture(base64.b64encode(b"11,12").decode(), "BASE64", "text/csv"),
    ]
    (chunk,) = read_data_capture(io.BytesIO("\n".join(lines).encode()), columns=["a", "b"])
    assert [float(x) for x in chunk["a"]] == [1, 3, 5, 7, 9, 11]
    (out,) = read_data_capture(io.BytesIO(lines[0].encode()), columns=["score"], capture="output")
    assert out["score"].tolist() == ["0.9"]
    with pytest.raises(DriftInputError, match=r"has 2 fields, the baseline has 3 features"):
        list(read_data_capture(io.BytesIO(lines[0].encode()), columns=["a", "b", "c"]))
    with pytest.raises(DriftInputError, match=r"no captureData\.endpointInput"):
        list(read_data_capture(io.BytesIO(b'{"a": 1}\n'), columns=["a"]))


def test_guess_format() -> None:
    assert guess_format("x/part-0.parquet") == "parquet"
    assert guess_format("x/data.csv.gz") == "csv"
    assert guess_format("x/14-02-00-abc.jsonl", _capture("1").encode()) == "data_capture"
    assert guess_format("x/rows.jsonl", b'{"a": 1}') == "jsonl"
    with pytest.raises(DriftInputError, match=r"cannot tell the format of 'x/data\.bin'"):
        guess_format("x/data.bin")
    with pytest.raises(DriftInputError, match=r"'xml' is not one of"):
        read_chunks(io.BytesIO(b""), "xml", name="x")


def test_csv_end_to_end_with_check() -> None:
    rng = np.random.default_rng(0)
    profile = build_baseline({"a": rng.normal(size=5000), "b": rng.normal(size=5000)})
    rows = "".join(
        f"{x:.6f},{y:.6f}\n" for x, y in zip(rng.normal(2, 1, 3000), rng.normal(size=3000), strict=False)
    )
    result = check_drift(profile, read_csv(io.BytesIO(("a,b\n" + rows).encode()), chunk_rows=500))
    assert result.features_drifted == ["a"]
    assert result.rows == 3000


def test_parquet_round_trip_and_unreadable() -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": np.arange(10.0), "c": ["x"] * 10}), buffer, row_group_size=4)
    buffer.seek(0)
    chunks = list(read_parquet(buffer, chunk_rows=4))
    assert sum(len(c["a"]) for c in chunks) == 10
    with pytest.raises(DriftInputError, match=r"^data: bad.parquet cannot be read as Parquet \("):
        list(read_parquet(io.BytesIO(b"not parquet at all"), name="bad.parquet"))


def test_parquet_without_pyarrow_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(DriftInputError, match="needs pyarrow: pip install pyarrow"):
        list(read_parquet(io.BytesIO(b""), name="d.parquet"))


def _csv_rows(rng: np.random.Generator, n: int) -> bytes:
    lines = ["x,y,c"]
    for i in range(n):
        x = "" if i % 7 == 0 else f"{rng.normal():.6f}"  # empty fields: missing, not bad numbers
        lines.append(f"{x},{rng.normal():.6f},{'ab'[i % 2]}")
    return ("\n".join(lines) + "\n").encode()


def test_csv_is_read_by_pyarrow_with_empty_fields_as_nulls() -> None:
    rng = np.random.default_rng(1)
    body = _csv_rows(rng, 1_000)
    chunks = list(read_csv(io.BytesIO(body), types={"x": "numeric", "y": "numeric", "c": "categorical"}))
    x = chunks[0]["x"]
    assert type(x).__module__.startswith("pyarrow")  # columnar, not a Python list of fields
    assert str(x.type) == "double"
    assert x.null_count == len(range(0, 1_000, 7))
    assert str(chunks[0]["c"].type) == "string"


def test_csv_blocks_read_the_same_as_one_block() -> None:
    rng = np.random.default_rng(2)
    body = _csv_rows(rng, 3_000)
    types = {"x": "numeric", "y": "numeric"}
    whole = list(read_csv(io.BytesIO(body), types=types))
    pieces = list(read_csv(io.BytesIO(body), types=types, block_bytes=4_096, chunk_rows=500))
    assert len(pieces) > 10
    for name in ("x", "y", "c"):
        joined = [v for chunk in pieces for v in chunk[name].to_pylist()]
        assert joined == [v for chunk in whole for v in chunk[name].to_pylist()]


def test_csv_quoted_newlines_across_blocks() -> None:
    rows = "".join(f'{i},"line one\nline ""two"" {i}"\n' for i in range(300))
    chunks = list(read_csv(io.BytesIO(("n,text\n" + rows).encode()), block_bytes=1_000))
    texts = [t for c in chunks for t in c["text"].to_pylist()]
    assert len(texts) == 300
    assert texts[299] == 'line one\nline "two" 299'


def test_csv_bad_numbers_fall_back_and_are_counted() -> None:
    profile = build_baseline({"x": np.arange(1_000.0)})
    body = b"x\n" + b"".join(b"%d\n" % i for i in range(995)) + b"abc\n" * 5
    check = check_drift(
        profile, read_csv(io.BytesIO(body), types={"x": "numeric"}), DriftThresholds(max_invalid_fraction=0.1)
    )
    feature = check.features["x"]
    assert (feature.rows, feature.invalid, feature.missing) == (1_000, 5, 0)


def test_csv_ragged_row_names_its_line_in_a_later_block() -> None:
    body = b"a,b\n" + b"1,2\n" * 2_000 + b"3\n"
    with pytest.raises(DriftInputError, match=r"^data: x.csv line 2002 has 1 fields, the header has 2$"):
        list(read_csv(io.BytesIO(body), name="x.csv", block_bytes=1_000))


def test_csv_bom_and_bad_utf8() -> None:
    (chunk,) = read_csv(io.BytesIO(b"\xef\xbb\xbfa,b\n1,2\n"))
    assert list(chunk) == ["a", "b"]
    with pytest.raises(DriftInputError, match=r"is not UTF-8 text \(invalid start byte on line 3\)"):
        list(read_csv(io.BytesIO(b"a,b\n1,2\n3,\xff\n"), name="x.csv"))


def test_jsonl_blocks_with_a_type_change_fall_back_per_block() -> None:
    lines = [json.dumps({"a": i, "c": "x"}) for i in range(500)] + [json.dumps({"a": "n/a", "c": 1})]
    chunks = list(read_jsonl(io.BytesIO(("\n".join(lines) + "\n").encode()), block_bytes=2_000))
    assert sum(len(c["a"]) for c in chunks) == 501
    assert any(isinstance(c["a"], np.ndarray) for c in chunks)  # the block pyarrow refused
    assert any(type(c["a"]).__module__.startswith("pyarrow") for c in chunks)
    with pytest.raises(DriftInputError, match=r"^data: d.jsonl line 502 is a JSON list, not an object$"):
        list(
            read_jsonl(
                io.BytesIO(("\n".join([*lines, "[1, 2]"]) + "\n").encode()), name="d.jsonl", block_bytes=2_000
            )
        )


class _ReadOnly:
    """A stream with read(n) only, as botocore's StreamingBody is."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._inner.read(size)


def test_csv_from_a_read_only_stream_reads_the_same() -> None:
    body = _csv_rows(np.random.default_rng(5), 2_000)
    ours = list(read_csv(_ReadOnly(body), block_bytes=3_000))  # type: ignore[arg-type]
    whole = list(read_csv(io.BytesIO(body)))
    assert [v for c in ours for v in c["x"].to_pylist()] == [v for c in whole for v in c["x"].to_pylist()]
