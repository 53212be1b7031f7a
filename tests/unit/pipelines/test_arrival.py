"""Data arrival: the config section, the S3 notification reader, the watcher's trigger and the 2.x sensor."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from airflow_dl_provider.exceptions import PipelineConfigError
from airflow_dl_provider.pipelines.config import load_config
from airflow_dl_provider.service_behaviour import S3_TEST_EVENT
from airflow_dl_provider.triggers.arrival import DataArrivalTrigger, Watch, read_notification

DIGITS_YAML = Path(__file__).resolve().parents[3] / "dags" / "configs" / "digits.yaml"
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/airflow-dl-data-arrival"
PREFIX = "incoming/digits/"


def _record(key: str, bucket: str = "airflow-dl-demo", event: str = "ObjectCreated:Put") -> dict[str, Any]:
    return {
        "eventSource": "aws:s3",
        "eventName": event,
        "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
    }


def _body(*records: dict[str, Any]) -> str:
    return json.dumps({"Records": list(records)})


def _config(tmp_path: Path, **arrival: Any) -> Path:
    raw = yaml.safe_load(DIGITS_YAML.read_text())
    raw["arrival"] = {"prefix": PREFIX, "queue_url": QUEUE, **arrival}
    # Written elsewhere: the training code stays where the shipped config points.
    raw["training"]["source_dir"] = str((DIGITS_YAML.parent / raw["training"]["source_dir"]).resolve())
    path = tmp_path / "digits.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_s3s_test_message_is_recognised_and_reports_no_keys() -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": S3_TEST_EVENT, "Bucket": "airflow-dl-demo"})

    assert read_notification(body, "airflow-dl-demo", PREFIX) == (True, [], 0)


@pytest.mark.parametrize(
    "encoded",
    ["incoming/digits/red+flower.png", "incoming%2Fdigits%2Fred+flower.png"],  # S3's form; moto's
)
def test_keys_are_url_decoded_before_the_prefix_is_compared(encoded: str) -> None:
    arrival = read_notification(_body(_record(encoded)), "airflow-dl-demo", PREFIX)

    assert arrival.keys == ["incoming/digits/red flower.png"]


def test_only_created_objects_of_this_bucket_under_the_prefix_are_ours() -> None:
    body = _body(
        _record("incoming/digits/a.png"),
        _record("incoming/other/b.png"),
        _record("incoming/digits/c.png", bucket="someone-elses"),
        _record("incoming/digits/d.png", event="ObjectRemoved:Delete"),
        "not a record",  # type: ignore[arg-type]
    )

    arrival = read_notification(body, "airflow-dl-demo", PREFIX)

    assert arrival == (False, ["incoming/digits/a.png"], 4)


@pytest.mark.parametrize("body", ["not json", "[1, 2]", "{}"])
def test_a_body_that_is_no_s3_notification_is_neither_ours_nor_a_test(body: str) -> None:
    assert read_notification(body, "airflow-dl-demo", PREFIX) == (False, [], 0)


class _Queue:
    """An SQS client holding messages; records what was deleted."""

    def __init__(self, *bodies: str) -> None:
        self.messages = [
            {"MessageId": str(i), "ReceiptHandle": f"r{i}", "Body": b} for i, b in enumerate(bodies)
        ]
        self.received: list[dict[str, Any]] = []
        self.deleted: list[str] = []

    def receive_message(self, **request: Any) -> dict[str, Any]:
        self.received.append(request)
        return {"Messages": self.messages[: request["MaxNumberOfMessages"]]}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.deleted += [e["ReceiptHandle"] for e in Entries]
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def _trigger() -> DataArrivalTrigger:
    watch = Watch(queue_url=QUEUE, bucket="airflow-dl-demo", prefix=PREFIX, visibility_timeout_seconds=120)
    return DataArrivalTrigger(watch=watch._asdict())


def test_a_receive_deletes_ours_and_the_test_message_and_leaves_other_prefixes_queued() -> None:
    queue = _Queue(
        json.dumps({"Service": "Amazon S3", "Event": S3_TEST_EVENT}),
        _body(_record("incoming/digits/a.png")),
        _body(_record("incoming/other/b.png")),
    )

    keys = _trigger().receive_once(queue)

    assert keys == ["incoming/digits/a.png"]
    assert queue.deleted == ["r0", "r1"]
    assert queue.received == [
        {"QueueUrl": QUEUE, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 20, "VisibilityTimeout": 120}
    ]


def test_the_trigger_serializes_everything_it_needs_to_run_in_the_triggerer() -> None:
    path, kwargs = _trigger().serialize()

    assert path == "airflow_dl_provider.triggers.arrival.DataArrivalTrigger"
    assert DataArrivalTrigger(**kwargs).serialize() == (path, kwargs)


def test_the_pipeline_dag_is_scheduled_on_the_watched_arrival_asset(tmp_path: Path) -> None:
    pytest.importorskip("airflow.sdk", reason="Airflow 3: Asset watchers")
    from airflow.sdk import Asset

    from airflow_dl_provider.pipelines.loader import dags_from_files

    dags = dags_from_files([_config(tmp_path)])

    assert "dl_arrival_digits" not in dags  # Airflow 3 needs no sensor DAG
    schedule = dags["dl_pipeline_digits"].timetable.asset_condition
    assert isinstance(schedule, Asset)
    assert schedule.uri == "s3://airflow-dl-demo/incoming/digits"
    (watcher,) = schedule.watchers
    _, kwargs = watcher.trigger.serialize()
    watched = kwargs["watch"]
    assert (watched["queue_url"], watched["bucket"], watched["prefix"]) == (QUEUE, "airflow-dl-demo", PREFIX)
    assert kwargs["aws_conn_id"] == "aws_default"


def test_the_watched_dag_survives_serialization(tmp_path: Path) -> None:
    pytest.importorskip("airflow.sdk", reason="Airflow 3: Asset watchers")
    from airflow.serialization import serialized_objects

    from airflow_dl_provider.pipelines.loader import dags_from_files

    dag = dags_from_files([_config(tmp_path)])["dl_pipeline_digits"]

    # DagSerialization since 3.1; SerializedDAG on 3.0
    serializer = getattr(serialized_objects, "DagSerialization", None) or serialized_objects.SerializedDAG
    serialized = json.dumps(serializer.to_dict(dag))
    assert "airflow_dl_provider.triggers.arrival.DataArrivalTrigger" in serialized
    assert QUEUE in serialized


def test_arrival_and_a_schedule_together_fail_on_one_line(tmp_path: Path) -> None:
    path = _config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["schedule"] = "@daily"
    path.write_text(yaml.safe_dump(raw))

    with pytest.raises(PipelineConfigError, match=r"digits.yaml: schedule: arrival starts the pipeline"):
        load_config(path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("prefix", "s3://airflow-dl-demo/incoming/", "arrival.prefix: .*ending in /"),
        ("prefix", "incoming", "arrival.prefix: .*ending in /"),
        (
            "queue_url",
            "arn:aws:sqs:us-east-1:123456789012:q",
            "arrival.queue_url: .*must be an SQS queue URL",
        ),
        ("wait_seconds", 21, "arrival.wait_seconds: "),
    ],
)
def test_a_bad_arrival_field_is_named(tmp_path: Path, field: str, value: Any, message: str) -> None:
    with pytest.raises(PipelineConfigError, match=message) as info:
        load_config(_config(tmp_path, **{field: value}))
    assert "\n" not in str(info.value)


def test_the_2x_sensor_waits_for_keys_newer_than_the_last_ones_seen() -> None:
    from airflow_dl_provider.sensors.arrival import KEYS, NEWEST, NewDataSensor

    start = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    seen: dict[str, Any] = {}
    prior: dict[str, Any] = {}
    ti = SimpleNamespace(
        xcom_pull=lambda task_ids, key, include_prior_dates: prior.get(key) if include_prior_dates else None,
        xcom_push=lambda key, value: seen.__setitem__(key, value),
    )
    context = {"ti": ti, "dag_run": SimpleNamespace(start_date=start)}
    sensor = NewDataSensor(task_id="wait_for_data", bucket_name="airflow-dl-demo", prefix=PREFIX)
    old = {"Key": "incoming/digits/old.png", "LastModified": start - timedelta(hours=1)}
    new = {"Key": "incoming/digits/new.png", "LastModified": (start + timedelta(minutes=5)).isoformat()}

    assert sensor.bucket_key == "incoming/digits/*"
    assert not sensor.has_new_files([old], **context)  # older than the first run
    assert sensor.has_new_files([old, new], **context)
    assert seen == {KEYS: ["incoming/digits/new.png"], NEWEST: "2026-12-01T12:05:00+00:00"}

    prior.update(seen)  # the next run starts from the newest key the last one saw
    seen.clear()
    assert not sensor.has_new_files([old, new], **context)
    assert seen == {}


def test_on_airflow_2_a_sensor_dag_triggers_the_pipeline_with_the_new_keys(tmp_path: Path) -> None:
    try:
        from airflow.sdk import AssetWatcher  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("Airflow 3 watches the queue instead")
    from airflow_dl_provider.pipelines.loader import dags_from_files

    dags = dags_from_files([_config(tmp_path)])

    sensor_dag = dags["dl_arrival_digits"]
    wait, start = sensor_dag.get_task("wait_for_data"), sensor_dag.get_task("start_pipeline")
    assert (wait.deferrable, wait.bucket_key, wait.bucket_name) == (
        True,
        "incoming/digits/*",
        "airflow-dl-demo",
    )
    assert start.trigger_dag_id == "dl_pipeline_digits"
    assert start.conf == {"arrived": "{{ ti.xcom_pull(task_ids='wait_for_data', key='keys') }}"}
    assert start.upstream_task_ids == {"wait_for_data"}
    assert dags["dl_pipeline_digits"].schedule_interval is None
