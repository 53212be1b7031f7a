"""DataValidationOperator against the embedded S3 server.

A passing suite returns the summary; a failing one pushes the summary to XCom, writes GX's result
and its Data Docs page to S3, then fails with one line (or, with ``soft_fail``, is skipped); bad
inputs fail in one line before anything is written.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_dl_provider.exceptions import DataValidationError

# At module level: importing the operator configures Airflow's logging, which must happen before
# the task_log fixture starts capturing.
from airflow_dl_provider.operators.validation import AirflowSkipException, DataValidationOperator

CSV = "id,age,color\n1,20,red\n2,35,blue\n3,150,green\n4,40,red\n"
PASSING = [
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}},
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
]
FAILING = [
    *PASSING,
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "age", "min_value": 0, "max_value": 120},
    },
    {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "color", "value_set": ["red", "blue"]},
    },
]


def _get(backend: Any, uri: str) -> bytes:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    body: bytes = backend.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def _keys(backend: Any, prefix: str) -> list[str]:
    page = backend.s3.list_objects_v2(Bucket=backend.bucket, Prefix=prefix)
    return sorted(item["Key"] for item in page.get("Contents", []))


def test_passing_suite_returns_summary_from_a_prefix(
    local_backend: Any, task_context: Any, task_log: Any
) -> None:
    local_backend.upload("data/part-0.csv", "id,age,color\n1,20,red\n2,35,blue\n")
    local_backend.upload("data/part-1.csv", "id,age,color\n3,50,red\n")
    local_backend.upload("data/_SUCCESS", "")
    suite = {"name": "ids", "expectations": PASSING}
    suite_uri = local_backend.upload("suites/ids.json", json.dumps(suite))
    op = DataValidationOperator(task_id="validate", data_uri=local_backend.uri("data/"), suite_uri=suite_uri)
    context = task_context(run_id="manual__2024-01-01T00:00:00+00:00")

    summary = op.execute(context)

    assert summary["success"] is True
    assert (summary["evaluated"], summary["successful"], summary["failed"], summary["rows"]) == (2, 2, 0, 3)
    assert summary["files"] == 2
    # A passing run's summary is the return value, pushed by Airflow; the task pushes only its Data Docs link.
    assert set(context["ti"].pushed) == {"dl_data_docs"}
    run = "manual__2024-01-01T00-00-00-00-00"
    assert summary["result_json"] == local_backend.uri(f"validation/validate/{run}/validation_result.json")
    assert summary["data_docs"] == local_backend.uri(f"validation/validate/{run}/data_docs/index.html")
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary
    assert "2 of 2 expectations passed (100.0%) on 3 rows" in task_log.text


def test_failing_suite_pushes_then_raises_one_line(
    local_backend: Any, task_context: Any, task_log: Any
) -> None:
    data_uri = local_backend.upload("in/orders.csv", CSV)
    result_prefix = local_backend.uri("results/orders")
    op = DataValidationOperator(
        task_id="validate", data_uri=data_uri, expectations=FAILING, result_prefix=result_prefix
    )
    context = task_context()

    with pytest.raises(DataValidationError) as caught:
        op.execute(context)

    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        f"validate: {data_uri} failed validation: 2 of 4 expectations passed (50.0%) on 4 rows"
    )
    assert "#2 expect_column_values_to_be_between(age): 1 unexpected (25.00%)" in message
    assert "#3 expect_column_values_to_be_in_set(color): 1 unexpected (25.00%)" in message
    assert message.endswith(f"result: {result_prefix}/manual__1/validation_result.json")
    pushed = context["ti"].pushed["return_value"]
    assert pushed == caught.value.summary
    assert (pushed["success"], pushed["failed"]) == (False, 2)
    assert [f["index"] for f in pushed["failing"]] == [2, 3]
    assert pushed["failing"][0]["observed"]["unexpected_examples"] == [150]

    assert _keys(local_backend, "results/orders/") == [
        "results/orders/manual__1/data_docs/index.html",
        "results/orders/manual__1/validation_result.json",
    ]
    result = json.loads(_get(local_backend, pushed["result_json"]))
    assert result["success"] is False
    assert result["statistics"]["unsuccessful_expectations"] == 2
    html = _get(local_backend, pushed["data_docs"]).decode()
    assert html.lstrip().lower().startswith("<!doctype html")
    assert f"Validation of {data_uri} failed: 2 of 4 expectations passed" in task_log.text


def test_soft_fail_skips_after_pushing(local_backend: Any, task_context: Any) -> None:
    data_uri = local_backend.upload("in/orders.csv", CSV)
    op = DataValidationOperator(task_id="validate", data_uri=data_uri, expectations=FAILING, soft_fail=True)
    context = task_context()

    with pytest.raises(AirflowSkipException, match=r"^soft_fail: validate: .* failed validation: 2 of 4"):
        op.execute(context)
    assert context["ti"].pushed["return_value"]["failed"] == 2


def test_malformed_suite_fails_before_reading_or_writing(local_backend: Any, task_context: Any) -> None:
    data_uri = local_backend.upload("in/orders.csv", CSV)
    suite = {
        "name": "s",
        "expectations": [*PASSING, {"type": "expect_column_values_to_be_between", "kwargs": {}}],
    }
    suite_uri = local_backend.upload("suites/bad.json", json.dumps(suite))
    # soft_fail is about failed data, not about a broken suite: this still fails.
    op = DataValidationOperator(task_id="validate", data_uri=data_uri, suite_uri=suite_uri, soft_fail=True)

    with pytest.raises(DataValidationError) as caught:
        op.execute(task_context())

    assert str(caught.value) == (
        f"suite_uri {suite_uri}[2] (expect_column_values_to_be_between): column: field required"
    )
    assert _keys(local_backend, "in/validation/") == []


def test_unreadable_parquet_fails_in_one_line(local_backend: Any, task_context: Any) -> None:
    data_uri = local_backend.upload("in/part-0.parquet", CSV)  # CSV under a Parquet name
    op = DataValidationOperator(task_id="validate", data_uri=data_uri, expectations=PASSING)

    with pytest.raises(DataValidationError) as caught:
        op.execute(task_context())

    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"data: {data_uri} ")
    assert ("cannot be read as Parquet" in message) or ("needs pyarrow: pip install pyarrow" in message)
    assert _keys(local_backend, "in/validation/") == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, r"^validate: expectations: none given; pass expectations, suite_uri"),
        ({"expectations": [{"column": "a"}]}, r"^validate: expectations\[0\]: needs 'type'"),
        ({"expectations": PASSING, "data_format": "xlsx"}, r"^validate: data_format: 'xlsx' is not one of"),
        (
            {"label_manifest_checks": {"classes": ["a"]}},
            r"^validate: label_manifest_checks.label_attribute: required",
        ),
        (
            {"label_manifest_checks": {"label_attribute": "a", "min_conf": 0.5}},
            r"unknown key\(s\) \['min_conf'\]",
        ),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DataValidationError, match=message):
        DataValidationOperator(task_id="validate", data_uri="s3://b/data.csv", **kwargs)


def _manifest(rows: list[tuple[int | None, str | None, float]]) -> str:
    lines = []
    for i, (label, name, confidence) in enumerate(rows):
        record: dict[str, Any] = {"source-ref": f"s3://images/{i}.jpg"}
        if label is not None:
            record["animal"] = label
            record["animal-metadata"] = {
                "confidence": confidence,
                "class-name": name,
                "human-annotated": "yes",
                "job-name": "labeling-job/animals",
                "type": "groundtruth/image-classification",
            }
        lines.append(json.dumps(record))
    return "\n".join(lines) + "\n"


CHECKS = {
    "label_attribute": "animal",
    "classes": ["cat", "dog"],
    "min_confidence": 0.5,
    "min_class_fraction": 0.2,
    "max_class_fraction": 0.8,
}


def test_label_manifest_suite_passes_balanced_manifest(local_backend: Any, task_context: Any) -> None:
    rows = [(0, "cat", 0.9)] * 5 + [(1, "dog", 0.8)] * 5
    data_uri = local_backend.upload("labels/output/output.manifest", _manifest(rows))
    op = DataValidationOperator(task_id="labels", data_uri=data_uri, label_manifest_checks=CHECKS)

    summary = op.execute(task_context())

    assert (summary["success"], summary["evaluated"], summary["rows"]) == (True, 7, 10)


def test_label_manifest_suite_finds_missing_low_confidence_and_imbalance(
    local_backend: Any, task_context: Any
) -> None:
    rows = [(0, "cat", 0.9)] * 8 + [(1, "dog", 0.3), (None, None, 0.0)]
    data_uri = local_backend.upload("labels/output/output.manifest", _manifest(rows))
    op = DataValidationOperator(
        task_id="labels", data_uri=data_uri, label_manifest_checks=CHECKS, max_failures_logged=10
    )
    context = task_context()

    with pytest.raises(DataValidationError) as caught:
        op.execute(context)

    summary = context["ti"].pushed["return_value"]
    checks = [(f["meta"]["check"], f["meta"].get("class")) for f in summary["failing"]]
    assert checks == [
        ("missing_labels", None),
        ("min_confidence", None),
        ("class_balance", "cat"),
        ("class_balance", "dog"),
    ]
    assert "3 of 7 expectations passed" in str(caught.value)
    assert "#0 expect_column_values_to_not_be_null(animal): 1 unexpected (10.00%)" in str(caught.value)


DAG_FILE = """
from __future__ import annotations

import datetime
import json

try:
    from airflow.sdk import DAG
except ImportError:
    from airflow.models.dag import DAG
try:
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:
    from airflow.operators.empty import EmptyOperator
    from airflow.operators.python import PythonOperator

from airflow_dl_provider.operators.validation import DataValidationOperator


def record(ti, **_):
    with open({out!r}, "w") as f:
        json.dump(ti.xcom_pull(task_ids="validate"), f)


with DAG("{dag_id}", schedule=None, start_date=datetime.datetime(2024, 1, 1), catchup=False) as dag:
    validate = DataValidationOperator(
        task_id="validate", data_uri="{data_uri}", expectations={expectations!r}, soft_fail={soft_fail}
    )
    validate >> EmptyOperator(task_id="train")
    validate >> PythonOperator(task_id="record", python_callable=record, trigger_rule="all_done")
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("soft_fail", [False, True], ids=["fail", "soft-fail"])
def test_dag_run_pushes_summary_then_fails_or_skips(
    soft_fail: bool, local_backend: Any, airflow_db: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import textwrap
    import uuid

    import airflow.settings

    from tests.integration.test_dags import _dagbag

    data_uri = local_backend.upload("in/orders.csv", CSV)
    dag_id = f"validation_{'soft' if soft_fail else 'fail'}_{uuid.uuid4().hex[:8]}"
    out = tmp_path / "pulled.json"
    # On 3.3, dag.test() only runs DAGs inside [core] dags_folder, read into settings at import.
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(tmp_path))
    monkeypatch.setattr(airflow.settings, "DAGS_FOLDER", str(tmp_path))
    (tmp_path / "validation_dag.py").write_text(
        textwrap.dedent(DAG_FILE).format(
            dag_id=dag_id, data_uri=data_uri, expectations=FAILING, soft_fail=soft_fail, out=str(out)
        )
    )
    dagbag = _dagbag(tmp_path)
    assert dagbag.import_errors == {}

    dag_run = dagbag.dags[dag_id].test()

    states = {ti.task_id: str(ti.state).rsplit(".", 1)[-1].lower() for ti in dag_run.get_task_instances()}
    expected = "skipped" if soft_fail else "failed"
    assert states["validate"] == expected
    assert states["train"] == ("skipped" if soft_fail else "upstream_failed")
    assert states["record"] == "success"
    pulled = json.loads(out.read_text())
    assert (pulled["success"], pulled["failed"], pulled["rows"]) == (False, 2, 4)
