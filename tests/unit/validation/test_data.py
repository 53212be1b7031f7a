"""The validation core: suites load or fail in one line, each format reads, summaries count exactly."""

from __future__ import annotations

import gzip
import io
import json

import pytest

from airflow_dl_provider.exceptions import DataValidationError
from airflow_dl_provider.validation.data import (
    flatten_manifest_record,
    guess_format,
    label_manifest_suite,
    load_expectations,
    parse_expectations,
    read_frame,
    validate,
)

# --- expectations -----------------------------------------------------------------------------


def test_suite_json_in_gx_1_and_0_spellings_and_inline_shorthand() -> None:
    suite = {
        "name": "orders",
        "expectations": [
            {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": "a"},
                "meta": {"why": "key"},
            },
            {
                "expectation_type": "expect_column_values_to_be_between",
                "kwargs": {"column": "b", "min_value": 0},
            },
        ],
    }
    loaded = load_expectations(json.dumps(suite).encode())
    assert loaded == [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}, "meta": {"why": "key"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "b", "min_value": 0}, "meta": {}},
    ]
    inline = load_expectations([{"type": "ExpectColumnValuesToBeInSet", "column": "c", "value_set": [1, 2]}])
    assert inline == [
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "c", "value_set": [1, 2]},
            "meta": {},
        }
    ]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            [
                {"type": "expect_column_values_to_not_be_null", "column": "a"},
                {"type": "expect_column_to_be_bogus"},
            ],
            r"^expectations\[1\]\.type: unknown expectation 'expect_column_to_be_bogus'; did you mean",
        ),
        (
            [{"type": "expect_column_values_to_not_be_null", "kwargs": {}}],
            r"^expectations\[0\] \(expect_column_values_to_not_be_null\): column: field required$",
        ),
        (
            [{"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "min_value": "low"}}],
            r"^expectations\[0\] \(expect_column_values_to_be_between\): min_value: value is not a valid float$",
        ),
        (
            [
                {
                    "type": "expect_column_values_to_be_in_set",
                    "kwargs": {"column": "a", "value_set": [1], "bogus": 1},
                }
            ],
            r"^expectations\[0\] \(expect_column_values_to_be_in_set\): bogus: extra fields not permitted$",
        ),
        ([{"kwargs": {"column": "a"}}], r"^expectations\[0\]: needs 'type'"),
        ('{"name": "s"}', r"^expectations: a suite needs an 'expectations' list \(keys here: name\)$"),
        ("{not json", r"^expectations: is not JSON \(JSONDecodeError: "),
        ({"expectations": []}, r"^expectations: holds no expectations$"),
        (
            [["expect_column_values_to_not_be_null"]],
            r"^expectations\[0\]: must be a mapping with a 'type', not a list$",
        ),
    ],
)
def test_malformed_suite_is_one_line_naming_index_and_key(source: object, message: str) -> None:
    with pytest.raises(DataValidationError, match=message) as caught:
        load_expectations(source)
    assert "\n" not in str(caught.value)
    assert caught.value.summary is None


def test_parse_expectations_checks_shape_without_great_expectations() -> None:
    # The type is not looked up: that needs GX, which the operator's constructor must not import.
    assert parse_expectations([{"type": "expect_made_up", "column": "a"}])[0]["type"] == "expect_made_up"
    with pytest.raises(DataValidationError, match=r"^expectations\[0\]\.kwargs: must be a mapping"):
        parse_expectations([{"type": "expect_column_values_to_not_be_null", "kwargs": ["a"]}])


# --- data -------------------------------------------------------------------------------------


def test_read_csv_tsv_and_gzip() -> None:
    frame = read_frame(b"a,b\n1,x\n2,y\n", "csv", name="d.csv")
    assert list(frame.columns) == ["a", "b"]
    assert frame["a"].tolist() == [1, 2]
    assert read_frame(gzip.compress(b"a\tb\n1\t2\n"), "csv", name="d.tsv.gz")["b"].tolist() == [2]
    with pytest.raises(DataValidationError, match=r"^data: e.csv is empty; is the upstream task done\?$"):
        read_frame(b"", "csv", name="e.csv")


def test_read_jsonl_missing_keys_and_bad_line() -> None:
    frame = read_frame(b'{"a": 1, "b": "x"}\n\n{"a": 2}\n', "jsonl", name="d.jsonl")
    assert frame["a"].tolist() == [1, 2]
    assert frame["b"].isna().tolist() == [False, True]
    with pytest.raises(DataValidationError, match=r"^data: d.jsonl line 2 is not JSON \("):
        read_frame(b'{"a": 1}\n{oops\n', "jsonl", name="d.jsonl")
    with pytest.raises(DataValidationError, match=r"line 1 is a JSON list, not an object$"):
        read_frame(b"[1, 2]\n", "jsonl", name="d.jsonl")


def test_parquet_round_trip() -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": [1, 2, 3], "b": ["x", "y", None]}), buffer)
    frame = read_frame(buffer.getvalue(), "parquet", name="d.parquet")
    assert frame["a"].tolist() == [1, 2, 3]
    assert frame["b"].isna().sum() == 1


def test_unreadable_parquet_is_one_line_naming_object_and_fix() -> None:
    pytest.importorskip("pyarrow")
    with pytest.raises(DataValidationError) as caught:
        read_frame(b"a,b\n1,2\n", "parquet", name="s3://b/data/part-0.parquet")
    message = str(caught.value)
    assert message.startswith("data: s3://b/data/part-0.parquet cannot be read as Parquet (")
    assert message.endswith("check that it is a complete Parquet file, or set data_format to what it is")
    assert "\n" not in message


def test_parquet_without_pyarrow_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(
        DataValidationError, match=r"^data: d.parquet is Parquet, which needs pyarrow: pip install pyarrow$"
    ):
        read_frame(b"PAR1", "parquet", name="d.parquet")


def _manifest_line(
    ref: str, label: int | None, name: str | None, confidence: float, human: str = "no"
) -> str:
    record: dict[str, object] = {"source-ref": ref}
    if label is not None:
        record["animal"] = label
        record["animal-metadata"] = {
            "confidence": confidence,
            "job-name": "labeling-job/animals",
            "class-name": name,
            "human-annotated": human,
            "creation-date": "2024-01-01T00:00:00",
            "type": "groundtruth/image-classification",
        }
    else:
        record["animal-metadata"] = {
            "failure-reason": "ClientError: worker timed out",
            "job-name": "labeling-job/animals",
        }
    return json.dumps(record)


def test_manifest_is_flattened_into_columns() -> None:
    lines = [
        _manifest_line("s3://b/1.jpg", 0, "cat", 0.95, "yes"),
        _manifest_line("s3://b/2.jpg", None, None, 0.0),
        json.dumps(
            {
                "source-ref": "s3://b/3.jpg",
                "boxes": {"annotations": [{"class_id": 0}], "image_size": [{"width": 4, "height": 3}]},
                "boxes-metadata": {
                    "objects": [{"confidence": 0.9}, {"confidence": 0.4}],
                    "human-annotated": "no",
                },
            }
        ),
    ]
    frame = read_frame("\n".join(lines).encode(), "manifest", name="output.manifest")
    assert frame["source-ref"].tolist() == ["s3://b/1.jpg", "s3://b/2.jpg", "s3://b/3.jpg"]
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    assert rows[0]["animal"] == 0
    assert rows[0]["animal-class-name"] == "cat"
    assert rows[0]["animal-confidence"] == 0.95
    assert rows[0]["animal-human-annotated"] is True
    assert rows[1]["animal"] is None
    assert rows[1]["animal-failure-reason"] == "ClientError: worker timed out"
    # Bounding boxes: the label as JSON text, the confidence of the least confident object.
    assert json.loads(rows[2]["boxes"])["annotations"] == [{"class_id": 0}]
    assert rows[2]["boxes-confidence"] == 0.4
    assert rows[2]["boxes-human-annotated"] is False


def test_manifest_named_attribute_becomes_columns_even_when_absent() -> None:
    row = flatten_manifest_record({"source-ref": "s3://b/1.jpg"}, ["animal"])
    assert row == {
        "source-ref": "s3://b/1.jpg",
        "animal": None,
        "animal-class-name": None,
        "animal-confidence": None,
        "animal-human-annotated": None,
        "animal-job-name": None,
        "animal-failure-reason": None,
    }


def test_guess_format() -> None:
    assert [
        guess_format(n) for n in ("a.csv", "a.csv.gz", "p/part.parquet", "x.jsonl", "output.manifest")
    ] == [
        "csv",
        "csv",
        "parquet",
        "jsonl",
        "manifest",
    ]
    with pytest.raises(
        DataValidationError, match=r"^data_format: cannot tell the format of data.bin by its name"
    ):
        guess_format("data.bin")


# --- validation -------------------------------------------------------------------------------


def test_validate_summary_counts_exactly() -> None:
    frame = read_frame(b"id,age,color\n1,20,red\n2,,blue\n3,150,green\n4,40,red\n", "csv")
    expectations = load_expectations(
        [
            {"type": "expect_column_values_to_not_be_null", "column": "id"},  # passes
            {"type": "expect_column_values_to_not_be_null", "column": "age"},  # 1 null
            {
                "type": "expect_column_values_to_be_between",
                "column": "age",
                "min_value": 0,
                "max_value": 120,
            },  # 150
            {
                "type": "expect_column_values_to_be_in_set",
                "column": "color",
                "value_set": ["red", "blue"],
            },  # green
            {"type": "expect_table_row_count_to_equal", "value": 4},  # passes
            {"type": "expect_column_values_to_be_unique", "column": "missing"},  # no such column
        ]
    )
    outcome = validate(frame, expectations, max_failing=3)
    summary = outcome.summary
    assert (summary["success"], summary["evaluated"], summary["successful"], summary["failed"]) == (
        False,
        6,
        2,
        4,
    )
    assert summary["success_percent"] == pytest.approx(100 * 2 / 6)
    assert summary["rows"] == 4
    # The first three failing, in suite order, each with what was observed.
    assert [(f["index"], f["expectation_type"], f["column"]) for f in summary["failing"]] == [
        (1, "expect_column_values_to_not_be_null", "age"),
        (2, "expect_column_values_to_be_between", "age"),
        (3, "expect_column_values_to_be_in_set", "color"),
    ]
    assert summary["failing"][0]["observed"]["unexpected_count"] == 1
    assert summary["failing"][1]["observed"]["unexpected_examples"] == [150.0]
    assert summary["failing"][2]["observed"]["unexpected_examples"] == ["green"]
    json.dumps(summary, allow_nan=False)  # strict JSON: XCom-safe
    line = outcome.describe()
    assert line.startswith(
        "2 of 6 expectations passed (33.3%) on 4 rows; failing: #1 expect_column_values_to_not_be_null(age)"
    )
    assert line.endswith("; and 1 more")
    assert "\n" not in line


def test_validate_missing_column_is_reported_not_raised() -> None:
    frame = read_frame(b"a\n1\n", "csv")
    outcome = validate(
        frame, load_expectations([{"type": "expect_column_values_to_not_be_null", "column": "b"}])
    )
    (failing,) = outcome.summary["failing"]
    assert failing["observed"] == {"error": 'The column "b" in BatchData does not exist.'}


def test_validate_passing_result_json_and_data_docs() -> None:
    frame = read_frame(b"a\n1\n2\n", "csv")
    outcome = validate(
        frame, load_expectations([{"type": "expect_column_values_to_not_be_null", "column": "a"}])
    )
    assert outcome.success
    assert outcome.summary["failing"] == []
    result = json.loads(outcome.result_json())
    assert result["success"] is True
    assert result["statistics"]["evaluated_expectations"] == 1
    html = outcome.data_docs_html()
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "expect_column_values_to_not_be_null" in html or "values must never be null" in html


# --- built-in label manifest suite ------------------------------------------------------------


def test_label_manifest_suite_uses_stock_expectations() -> None:
    suite = label_manifest_suite(
        "animal", classes=["cat", "dog"], min_confidence=0.7, min_class_fraction=0.2, max_class_fraction=0.8
    )
    assert [(e["type"], e["meta"]["check"]) for e in suite] == [
        ("expect_column_values_to_not_be_null", "missing_labels"),
        ("expect_column_values_to_be_in_set", "label_set"),
        ("expect_column_values_to_be_between", "min_confidence"),
        ("expect_column_values_to_be_in_set", "class_balance"),
        ("expect_column_values_to_not_be_in_set", "class_balance"),
        ("expect_column_values_to_be_in_set", "class_balance"),
        ("expect_column_values_to_not_be_in_set", "class_balance"),
    ]
    assert suite[1]["kwargs"]["column"] == "animal-class-name"
    assert suite[4]["kwargs"] == {"column": "animal-class-name", "value_set": ["cat"], "mostly": 0.2}
    # Integer class ids check the label column itself.
    assert label_manifest_suite("animal", classes=[0, 1])[1]["kwargs"]["column"] == "animal"
    assert len(load_expectations(suite)) == 7
    # A pipeline config's defaults (no confidence floor, bounds 0 and 1) add no balance checks.
    defaults = label_manifest_suite("animal", classes=None, min_class_fraction=0.0, max_class_fraction=1.0)
    assert [e["meta"]["check"] for e in defaults] == ["missing_labels"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"label_attribute": ""}, r"label_attribute: required"),
        (
            {"label_attribute": "a", "min_confidence": 1.5},
            r"min_confidence: must be between 0 and 1, got 1.5",
        ),
        ({"label_attribute": "a", "max_class_fraction": 0.5}, r"classes: required for class balance bounds"),
        (
            {"label_attribute": "a", "classes": ["x"], "min_class_fraction": 0.6, "max_class_fraction": 0.5},
            r"min_class_fraction 0.6 > max_class_fraction 0.5",
        ),
    ],
)
def test_label_manifest_suite_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DataValidationError, match=message):
        label_manifest_suite(**kwargs)  # type: ignore[arg-type]


def test_label_manifest_suite_finds_missing_low_confidence_and_imbalance() -> None:
    lines = [_manifest_line(f"s3://b/{i}.jpg", 0, "cat", 0.9) for i in range(8)]
    lines += [_manifest_line("s3://b/8.jpg", 1, "dog", 0.3)]  # low confidence
    lines += [_manifest_line("s3://b/9.jpg", None, None, 0.0)]  # missing label
    frame = read_frame("\n".join(lines).encode(), "manifest", label_attributes=["animal"])
    suite = label_manifest_suite(
        "animal", classes=["cat", "dog"], min_confidence=0.5, min_class_fraction=0.2, max_class_fraction=0.8
    )
    summary = validate(frame, load_expectations(suite), max_failing=10).summary
    failing = [
        (f["expectation_type"], f["meta"]["check"], f["meta"].get("class")) for f in summary["failing"]
    ]
    # 8 cats of 9 labelled (0.89 > 0.8), 1 dog (0.11 < 0.2), one missing label, one at 0.3 confidence.
    assert failing == [
        ("expect_column_values_to_not_be_null", "missing_labels", None),
        ("expect_column_values_to_be_between", "min_confidence", None),
        ("expect_column_values_to_not_be_in_set", "class_balance", "cat"),
        ("expect_column_values_to_be_in_set", "class_balance", "dog"),
    ]
    assert (summary["evaluated"], summary["failed"]) == (7, 4)
