"""Batch transform's InputFilter/OutputFilter on the local backend: jsonpath-ng, held to SageMaker's subset.

The cases are the developer guide's ("Associate Prediction Results with Input Records", "Supported
JSONPath Operators") and the DataProcessing API reference's examples; one refusal is the service's
own message for two ranges in one bracket.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_dl_provider.backends.local.transform import record_filter, transform_object
from airflow_dl_provider.backends.local.work import JobFailure

ROW = ["id-7", "1", "2", "3", "4", "5", "6"]  # a CSV record: a JSON array of its cells
RECORD = {"id": 7, "features": [1, 2, 3], "SageMakerOutput": {"label": 1}, "meta": {"a": 1, "b": 2}}


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("$", ROW, ROW),
        ("", ROW, ROW),
        ("$[1:]", ROW, ROW[1:]),
        ("$[:5]", ROW, ROW[:5]),
        ("$[2:5]", ROW, ROW[2:5]),
        ("$[1]", ROW, "1"),
        ("$[-1]", ROW, "6"),
        ("$[1,3,5]", ROW, ["1", "3", "5"]),
        ("$[0,-1]", ROW, ["id-7", "6"]),
        ("$[0, 5:]", ROW, ["id-7", "5", "6"]),
        ("$[*]", ROW, ROW),
        ("$.features", RECORD, [1, 2, 3]),
        ("$.SageMakerOutput.label", RECORD, 1),
        ("$['id','SageMakerOutput']", RECORD, {"id": 7, "SageMakerOutput": {"label": 1}}),
        ("$.meta.*", RECORD, [1, 2]),
        ("$.features[1:]", RECORD, [2, 3]),
    ],
)
def test_supported_paths_select_what_sagemaker_documents(path: str, value: Any, expected: Any) -> None:
    assert record_filter(path).apply(value) == expected


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("$[0:2,246:]", "only single range filters of format (eg: [1:5]) are supported. Format [0:2,246:]"),
        ("$..id", "is not supported; SageMaker supports $, .name"),
        ("$[?(@.id)]", "Unexpected character"),
        ("$[1:5:2]", "is not supported; SageMaker supports"),
        ("features", "a path starts at the root, $"),
        ("$['a','b'].c", "a bracket of several names must be the last step"),
        ("$.", "Parse error"),
    ],
)
def test_paths_outside_the_subset_fail_the_job_with_invalid_jsonpath(path: str, reason: str) -> None:
    with pytest.raises(JobFailure, match=r"^ClientError: Invalid JsonPath: ") as err:
        record_filter(path)
    assert reason in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("$[9]", ROW),  # "indexes that aren't within the dimension size ... you get an error"
        ("$[0,9]", ROW),
        ("$.id", ROW),  # CSV rows take index paths only
        ("$.missing", RECORD),
        ("$['id','missing']", RECORD),
        ("$[0]", RECORD),
    ],
)
def test_a_path_that_misses_the_record_fails_it(path: str, value: Any) -> None:
    with pytest.raises(JobFailure, match=r"^ClientError: JSONPath .* does not apply to a record"):
        record_filter(path).apply(value)


class _EchoLabel:
    """Stands in for the model's handlers: one label per input line, the count of its cells."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> bytes:
        self.payloads.append(body)
        return b"".join(f"{len(line.split(b','))}\n".encode() for line in body.split(b"\n"))


def test_csv_join_keeps_the_id_and_the_label_as_the_guide_describes() -> None:
    request = {
        "TransformInput": {"ContentType": "text/csv", "SplitType": "Line"},
        "TransformOutput": {"Accept": "text/csv", "AssembleWith": "Line"},
        "DataProcessing": {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"},
        "BatchStrategy": "MultiRecord",
    }
    handlers = _EchoLabel()
    out = transform_object(b"a,1,2,3\nb,4,5\n", request, handlers)  # type: ignore[arg-type]
    assert handlers.payloads == [b"1,2,3\n4,5"]  # the id column never reaches the model
    assert out == b"a,3\nb,2\n"


def test_json_join_with_a_bracket_of_names() -> None:
    request = {
        "TransformInput": {"ContentType": "application/jsonlines", "SplitType": "Line"},
        "TransformOutput": {"Accept": "application/jsonlines", "AssembleWith": "Line"},
        "DataProcessing": {
            "InputFilter": "$.features",
            "JoinSource": "Input",
            "OutputFilter": "$['id','SageMakerOutput']",
        },
    }
    handlers = _EchoLabel()
    body = b'{"id": 1, "features": [5, 6]}\n{"id": 2, "features": [7]}\n'
    out = transform_object(body, request, handlers)  # type: ignore[arg-type]
    assert handlers.payloads == [b"[5, 6]", b"[7]"]
    assert out == b'{"id": 1, "SageMakerOutput": 2}\n{"id": 2, "SageMakerOutput": 1}\n'
