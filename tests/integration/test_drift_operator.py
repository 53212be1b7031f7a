"""DriftDetectionOperator against the embedded S3 server, and in a real DAG run with ``dag.test()``.

On drift the task succeeds, returns the summary and emits one Asset event carrying the evidence;
without drift it is skipped, its downstream task is skipped too, and no Asset event is emitted.
"""

from __future__ import annotations

import io
import json
import textwrap
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

if TYPE_CHECKING:
    from pathlib import Path

from airflow_dl_provider.drift import build_baseline, load_baseline, save_baseline
from airflow_dl_provider.exceptions import DriftInputError

FEATURES = ("a", "b", "c")


def _csv(columns: dict[str, np.ndarray]) -> str:
    buffer = io.StringIO()
    names = list(columns)
    buffer.write(",".join(names) + "\n")
    for row in zip(*(columns[n] for n in names), strict=False):
        buffer.write(",".join(f"{v:.6f}" for v in row) + "\n")
    return buffer.getvalue()


def _seed(backend: Any, *, drift: bool, prefix: str = "demo") -> dict[str, str]:
    rng = np.random.default_rng(0)
    train = {name: rng.normal(size=5_000) for name in FEATURES}
    baseline_uri = backend.uri(f"{prefix}/models/v1/drift-baseline.json")
    save_baseline(build_baseline(train, model_version="v1"), backend.s3, baseline_uri)
    current = {name: rng.normal(size=1_500) for name in FEATURES}
    if drift:
        current["b"] = rng.normal(1.0, 1.0, size=1_500)
    # Two files under one prefix, plus a marker object that is not data.
    half = {k: v[:700] for k, v in current.items()}
    rest = {k: v[700:] for k, v in current.items()}
    backend.upload(f"{prefix}/transform-input/part-0.csv", _csv(half))
    backend.upload(f"{prefix}/transform-input/part-1.csv", _csv(rest))
    backend.upload(f"{prefix}/transform-input/_SUCCESS", "")
    return {"baseline_uri": baseline_uri, "data_uri": backend.uri(f"{prefix}/transform-input/")}


class _Events(dict):
    """``context["outlet_events"]``: keyed by the Asset's URI (an Asset is unhashable on 3.0)."""

    def __getitem__(self, asset: Any) -> Any:
        return self.setdefault(asset.uri, type("Event", (), {"extra": {}})())


def test_drift_returns_summary_writes_reports_and_sets_event_extra(
    local_backend: Any, task_context: Any
) -> None:
    from airflow_dl_provider.operators.drift import DriftDetectionOperator

    uris = _seed(local_backend, drift=True)
    op = DriftDetectionOperator(task_id="drift", model_name="demo", **uris)
    context = {**task_context(), "outlet_events": _Events()}

    summary = op.execute(context)

    assert summary["drifted"] is True
    assert summary["features_drifted"] == ["b"]
    assert summary["rows"] == 1_500
    assert summary["files"] == 2
    assert summary["model_version"] == "v1"
    assert json.loads(json.dumps(summary)) == summary
    assert op.asset_uri == f"s3://{local_backend.bucket}/drift/demo"
    extra = context["outlet_events"][op.asset].extra
    assert extra["features_drifted"] == ["b"] and set(extra["scores"]) == {"b"}
    assert extra["report_html"] == summary["report_html"]
    bucket, key = summary["report_html"].removeprefix("s3://").split("/", 1)
    page = local_backend.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert "DRIFT" in page and "<svg" in page
    bucket, key = summary["report_json"].removeprefix("s3://").split("/", 1)
    report = json.loads(local_backend.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert report["features"]["b"]["drifted"] is True
    assert context["ti"].pushed["drift_summary"] == summary


def test_no_drift_skips_without_event(local_backend: Any, task_context: Any) -> None:
    from airflow_dl_provider.operators.drift import AirflowSkipException, DriftDetectionOperator

    uris = _seed(local_backend, drift=False)
    op = DriftDetectionOperator(task_id="drift", **uris)
    context = {**task_context(), "outlet_events": _Events()}

    with pytest.raises(AirflowSkipException, match="no drift in 1500 rows"):
        op.execute(context)

    assert dict(context["outlet_events"]) == {}  # no event was touched
    assert context["ti"].pushed["drift_summary"]["drifted"] is False


def test_bad_inputs_fail_or_soft_fail(local_backend: Any, task_context: Any) -> None:
    from airflow_dl_provider.operators.drift import AirflowSkipException, DriftDetectionOperator

    uris = _seed(local_backend, drift=False)
    baseline = load_baseline(local_backend.s3, uris["baseline_uri"])
    assert list(baseline.features) == list(FEATURES)
    empty = {**uris, "data_uri": local_backend.uri("nothing-here/")}
    with pytest.raises(DriftInputError, match="holds no data objects"):
        DriftDetectionOperator(task_id="drift", **empty).execute(task_context())
    with pytest.raises(AirflowSkipException, match="soft_fail: data_uri"):
        DriftDetectionOperator(task_id="drift", soft_fail=True, **empty).execute(task_context())
    with pytest.raises(DriftInputError, match=r"^drift: thresholds.psi: must be in \(0, inf\), got 0$"):
        DriftDetectionOperator(task_id="drift", thresholds={"psi": 0}, **uris)
    with pytest.raises(DriftInputError, match="asset_uri: required when baseline_uri is templated"):
        DriftDetectionOperator(task_id="drift", baseline_uri="{{ params.b }}", data_uri="s3://b/k")


def test_baseline_from_csv_then_checks_of_json_lines_read_categories_alike(
    local_backend: Any, task_context: Any
) -> None:
    from airflow_dl_provider.operators.drift import (
        AirflowSkipException,
        DriftBaselineOperator,
        DriftDetectionOperator,
    )

    rng = np.random.default_rng(3)
    codes = rng.choice([1, 2, 3], size=3_000, p=[0.6, 0.3, 0.1])
    rows = "".join(
        f"{c},{x:.5f},{int(y)}\n" for c, x, y in zip(codes, rng.normal(size=3_000), codes, strict=True)
    )
    local_backend.upload("cat/train/part-0.csv", "region,x,label\n" + rows)
    baseline = DriftBaselineOperator(
        task_id="baseline",
        data_uri=local_backend.uri("cat/train/"),
        model_artifacts=local_backend.uri("cat/models/v1/model.tar.gz"),
        categorical=["region"],
    ).execute(task_context())
    assert baseline["features"] == ["region", "x"]

    # The same population as JSON Lines, where a JSON writer turned the codes into 1.0, 2.0, 3.0.
    current = rng.choice([1, 2, 3], size=1_000, p=[0.6, 0.3, 0.1])
    lines = "".join(
        json.dumps({"region": float(c), "x": float(v)}) + "\n"
        for c, v in zip(current, rng.normal(size=1_000), strict=True)
    )
    local_backend.upload("cat/incoming/batch.jsonl", lines)
    op = DriftDetectionOperator(
        task_id="drift",
        baseline_uri=baseline["baseline_uri"],
        data_uri=local_backend.uri("cat/incoming/"),
        model_name="cat",
    )
    context = {**task_context(), "outlet_events": _Events()}
    with pytest.raises(AirflowSkipException, match="no drift in 1000 rows"):
        op.execute(context)
    assert context["ti"].pushed["drift_summary"]["scores"]["region"]["new_values"] == 0.0

    # An upstream change empties a column: that is drift, not "stable".
    empty = "".join(json.dumps({"region": float(c), "x": None}) + "\n" for c in current)
    local_backend.upload("cat/incoming/batch.jsonl", empty)
    summary = op.execute({**task_context(), "outlet_events": _Events()})
    assert summary["features_drifted"] == ["x"]
    assert summary["scores"]["x"]["missing_rate"] == 1.0


def test_a_small_batch_is_skipped_as_too_few_rows(local_backend: Any, task_context: Any) -> None:
    from airflow_dl_provider.operators.drift import AirflowSkipException, DriftDetectionOperator

    uris = _seed(local_backend, drift=False, prefix="small")
    rng = np.random.default_rng(4)
    local_backend.upload("small/tiny/batch.csv", _csv({name: rng.normal(size=10) for name in FEATURES}))
    op = DriftDetectionOperator(
        task_id="drift", baseline_uri=uris["baseline_uri"], data_uri=local_backend.uri("small/tiny/")
    )
    context = {**task_context(), "outlet_events": _Events()}
    with pytest.raises(
        AirflowSkipException, match=r"^too few rows to judge drift: 10 rows of .* \(min_rows 100\)$"
    ):
        op.execute(context)
    assert context["ti"].pushed["drift_summary"]["features_too_few_rows"] == list(FEATURES)
    assert dict(context["outlet_events"]) == {}


DAG_FILE = """
from __future__ import annotations

import datetime

try:
    from airflow.sdk import DAG
except ImportError:
    from airflow.models.dag import DAG
try:
    from airflow.providers.standard.operators.empty import EmptyOperator
except ImportError:
    from airflow.operators.empty import EmptyOperator

from airflow_dl_provider.operators.drift import DriftDetectionOperator

with DAG("{dag_id}", schedule=None, start_date=datetime.datetime(2024, 1, 1), catchup=False) as dag:
    drift = DriftDetectionOperator(
        task_id="drift", baseline_uri="{baseline_uri}", data_uri="{data_uri}", asset_uri="{asset_uri}"
    )
    drift >> EmptyOperator(task_id="retrain")
"""


def _register_assets(dag: Any) -> None:
    """Write the DAG's outlets to the metadata DB, as the DAG processor does before any run.

    ``dag.test()`` does it itself on 3.3; on 2.11 and 3.0 an outlet the DB does not know is
    dropped (2.11) or fails the task as inactive (3.0).
    """
    import airflow

    if airflow.__version__.startswith("2."):
        dag.sync_to_db()
    elif airflow.__version__.startswith("3.0."):
        from airflow.dag_processing.bundles.manager import DagBundlesManager
        from airflow.models.dag import DAG as SchedulerDAG
        from airflow.serialization.serialized_objects import SerializedDAG

        DagBundlesManager().sync_bundles_to_db()
        scheduler_dag = SerializedDAG.deserialize_dag(SerializedDAG.serialize_dag(dag))
        SchedulerDAG.bulk_write_to_db("dags-folder", None, [scheduler_dag])


def _asset_events(uri: str) -> list[dict[str, Any]]:
    from airflow.utils.session import create_session

    try:
        from airflow.models.asset import AssetEvent, AssetModel
    except ImportError:  # Airflow 2.x
        from airflow.models.dataset import DatasetEvent as AssetEvent
        from airflow.models.dataset import DatasetModel as AssetModel
    with create_session() as session:
        models = session.query(AssetModel).filter(AssetModel.uri == uri).all()
        if not models:
            return []
        column = getattr(AssetEvent, "asset_id", None) or AssetEvent.dataset_id
        return [dict(e.extra or {}) for e in session.query(AssetEvent).filter(column == models[0].id).all()]


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("drift", [True, False], ids=["drift", "no-drift"])
def test_dag_run_emits_asset_event_only_on_drift(
    drift: bool, local_backend: Any, airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration.test_dags import _dagbag

    uris = _seed(local_backend, drift=drift)
    dag_id = f"drift_{'yes' if drift else 'no'}_{uuid.uuid4().hex[:8]}"
    asset_uri = f"s3://{local_backend.bucket}/drift/{dag_id}"
    # On 3.3, dag.test() only runs DAGs inside [core] dags_folder, read into settings at import.
    import airflow.settings

    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(tmp_path))
    monkeypatch.setattr(airflow.settings, "DAGS_FOLDER", str(tmp_path))
    (tmp_path / "drift_dag.py").write_text(
        textwrap.dedent(DAG_FILE).format(dag_id=dag_id, asset_uri=asset_uri, **uris)
    )
    dagbag = _dagbag(tmp_path)
    assert dagbag.import_errors == {}
    dag = dagbag.dags[dag_id]
    _register_assets(dag)

    dag_run = dag.test()

    states = {ti.task_id: str(ti.state).rsplit(".", 1)[-1].lower() for ti in dag_run.get_task_instances()}
    events = _asset_events(asset_uri)
    if drift:
        assert states == {"drift": "success", "retrain": "success"}
        assert len(events) == 1
        assert events[0]["features_drifted"] == ["b"]
        assert events[0]["model_version"] == "v1"
    else:
        assert states == {"drift": "skipped", "retrain": "skipped"}
        assert events == []
