"""LabelStudioLabelingOperator against a real Label Studio server on 127.0.0.1 (its own venv).

One server for the whole module (a start copies the migrated template data, ~10 s); the declared
simulated workforce answers through its REST API. Skipped, with the reason, only when the Label
Studio venv is absent: ``make test`` builds it (``make label-studio``), so CI never skips.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider.backends.local import label_studio_server
from airflow_dl_provider.demo import digits_csv, seed_digits_truth
from airflow_dl_provider.manifests import ClassificationLabel, label_accuracy, read_output_manifest
from airflow_dl_provider.manifests.images import encode_png_gray

# At module level: importing the operators configures Airflow's logging, which must happen before the
# task_log fixture starts capturing.
from airflow_dl_provider.operators.label_studio import LabelStudioLabelingOperator
from airflow_dl_provider.operators.validation import DataValidationOperator

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    label_studio_server.executable() is None, reason=label_studio_server.missing_reason()
)
LABELS = [str(d) for d in range(10)]
METADATA_KEYS = {"class-name", "confidence", "type", "job-name", "human-annotated", "creation-date"}


@pytest.fixture(scope="module")
def label_studio(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home: Path = tmp_path_factory.mktemp("label-studio-home")
    record = label_studio_server.start(home, s3_endpoint)
    yield record
    label_studio_server.stop(home)


@pytest.fixture
def connection(label_studio: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv(
        "AIRFLOW_CONN_LABEL_STUDIO_DEFAULT", label_studio_server.connection_uri_json(label_studio)
    )
    return label_studio


def _client(record: dict[str, Any]) -> Any:
    from airflow_dl_provider.label_studio.api import LabelStudioClient

    return LabelStudioClient(record["url"], record["token"])


def _seed(local_backend: Any, count: int) -> dict[str, Any]:
    _data, images = digits_csv()
    s3, bucket = local_backend.s3, local_backend.bucket

    def put(item: tuple[int, tuple[int, list[list[int]]]]) -> None:
        i, (_label, pixels) = item
        s3.put_object(Bucket=bucket, Key=f"digits/images/{i:04d}.png", Body=encode_png_gray(pixels))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, enumerate(images[:count])))
    uri = seed_digits_truth(s3, bucket, "digits", count=count)
    truth = json.loads(s3.get_object(Bucket=bucket, Key="digits/truth/digits-truth.json")["Body"].read())
    return {"uri": uri, "truth": truth}


def _operator(local_backend: Any, **kwargs: Any) -> LabelStudioLabelingOperator:
    args: dict[str, Any] = {
        "task_id": "label",
        "task_type": "image_classification",
        "labels": LABELS,
        "input_prefix": local_backend.uri("digits/images/"),
        "output_path": local_backend.uri("labels"),
        "poll_interval": 0.5,
    }
    return LabelStudioLabelingOperator(**{**args, **kwargs})


def _get(local_backend: Any, uri: str) -> bytes:
    key = uri.split(f"s3://{local_backend.bucket}/", 1)[1]
    body: bytes = local_backend.s3.get_object(Bucket=local_backend.bucket, Key=key)["Body"].read()
    return body


@pytest.mark.slow
def test_active_learning_labels_the_digits_and_validation_accepts_the_manifest(
    local_backend: Any, connection: dict[str, Any], task_context: Any, task_log: Any
) -> None:
    seeded = _seed(local_backend, 400)
    op = _operator(
        local_backend,
        auto_labeling=True,
        workers_per_object=1,
        tags={"airflow-dl:simulated-truth": seeded["uri"], "airflow-dl:simulated-error-rate": "0.02"},
    )
    result = op.execute(task_context("manual__auto", task_id="label"))

    counters = result["label_counters"]
    assert counters["TotalLabeled"] == counters["HumanLabeled"] + counters["MachineLabeled"] == 400
    assert counters["HumanLabeled"] >= 80 and counters["MachineLabeled"] > 0
    assert counters["Unlabeled"] == 0
    text = _get(local_backend, result["output_manifest"]).decode()
    records = list(read_output_manifest(text))
    assert len(records) == 400 and all(isinstance(r, ClassificationLabel) for r in records)
    assert label_accuracy(records, seeded["truth"]) >= 0.9
    assert sum(not r.human_annotated for r in records) == counters["MachineLabeled"]
    for line in map(json.loads, text.splitlines()):
        assert set(line) == {"source-ref", "label", "label-metadata"}
        assert set(line["label-metadata"]) == METADATA_KEYS
        assert line["label-metadata"]["type"] == "groundtruth/image-classification"
    # Only the objects sent to people are tasks in Label Studio, and people labeled every one of them.
    assert _client(connection).labeled(result["project_id"]) == (counters["HumanLabeled"],) * 2
    decisions = local_backend.s3.list_objects_v2(
        Bucket=local_backend.bucket, Prefix=f"labels/{result['job_name']}/activelearning/"
    )
    assert decisions.get("KeyCount", 0) >= 1
    assert any("SIMULATED workforce" in m for m in task_log.messages)

    validation = DataValidationOperator(
        task_id="validate_labels",
        data_uri=result["output_manifest"],
        data_format="manifest",
        label_manifest_checks={"label_attribute": "label", "classes": LABELS, "min_class_fraction": 0.02},
    ).execute(task_context("manual__auto", task_id="validate_labels"))
    assert validation["success"] is True


def test_a_retried_task_reuses_its_project(
    local_backend: Any, connection: dict[str, Any], task_context: Any
) -> None:
    seeded = _seed(local_backend, 12)
    # Error rate 0: two annotators always agree, so every label and confidence is known exactly.
    tags = {"airflow-dl:simulated-truth": seeded["uri"], "airflow-dl:simulated-error-rate": "0"}
    first = _operator(local_backend, workers_per_object=2, tags=tags).execute(task_context("manual__retry"))
    again = _operator(local_backend, workers_per_object=2, tags=tags).execute(task_context("manual__retry"))
    other = _operator(local_backend, workers_per_object=2, tags=tags).execute(task_context("manual__other"))

    client = _client(connection)
    assert again["project_id"] == first["project_id"] != other["project_id"]
    assert [p["id"] for p in client.projects(title=first["job_name"])] == [first["project_id"]]
    project = client.project(first["project_id"])
    # Nothing imported twice; two simulated annotators per task.
    assert project["task_number"] == 12 and project["total_annotations_number"] == 24
    assert first["label_counters"] == again["label_counters"]
    records = list(read_output_manifest(_get(local_backend, again["output_manifest"])))
    assert {r.confidence for r in records} == {1.0}
    assert label_accuracy(records, seeded["truth"]) == 1.0


def test_a_killed_task_resumes_waiting_on_the_same_project(
    local_backend: Any, connection: dict[str, Any], task_context: Any
) -> None:
    from airflow.exceptions import TaskDeferred

    from airflow_dl_provider.label_studio.configs import choices_result

    seeded = _seed(local_backend, 6)
    context = task_context("manual__killed")
    # No simulated truth declared: nobody answers until this test labels the tasks itself, as a person.
    with pytest.raises(TaskDeferred) as deferred:
        _operator(local_backend, deferrable=True).execute(context)
    trigger = deferred.value.trigger
    # The worker was killed while the trigger waited; the retry is a fresh operator in a fresh process.
    with pytest.raises(TaskDeferred) as resumed:
        _operator(local_backend, deferrable=True).execute(context)
    again = resumed.value.trigger
    assert (again.project_id, again.target, again.job_name) == (trigger.project_id, 6, trigger.job_name)

    client = _client(connection)
    assert client.project(trigger.project_id)["task_number"] == 6
    for task in client.tasks(trigger.project_id):
        name = seeded["truth"][task["data"]["image"]]
        client.create_annotation(task["id"], choices_result("image_classification", [name]))

    async def first_event() -> Any:
        async for event in again.run():
            return event.payload

    event = asyncio.run(first_event())
    assert event["status"] == "success"
    result = _operator(local_backend, deferrable=True).execute_complete(
        context, event, **resumed.value.kwargs
    )
    assert result["project_id"] == trigger.project_id
    assert result["label_counters"]["HumanLabeled"] == 6
    records = list(read_output_manifest(_get(local_backend, result["output_manifest"])))
    assert label_accuracy(records, seeded["truth"]) == 1.0
