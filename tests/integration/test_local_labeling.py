"""GroundTruthLabelingOperator end to end on the local backend, with the declared simulated workforce.

The digits are the demo's: scikit-learn's 8x8 images as PNGs under ``<prefix>/images/``, their true
digits uploaded as the hidden truth the simulated workers answer from.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from airflow_dl_provider.demo import digits_csv, seed_digits_truth
from airflow_dl_provider.manifests import ClassificationLabel, label_accuracy, read_output_manifest
from airflow_dl_provider.manifests.images import encode_png_gray
from airflow_dl_provider.operators.labeling import GroundTruthLabelingOperator
from tests.conftest import ROLE_ARN

WORKTEAM = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/digits"
METADATA_KEYS = {"class-name", "confidence", "type", "job-name", "human-annotated", "creation-date"}


def _seed(local_backend: Any, count: int) -> dict[str, str]:
    _data, images = digits_csv()
    s3, bucket = local_backend.s3, local_backend.bucket

    def put(item: tuple[int, tuple[int, list[list[int]]]]) -> None:
        i, (_label, pixels) = item
        s3.put_object(Bucket=bucket, Key=f"digits/images/{i:04d}.png", Body=encode_png_gray(pixels))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, enumerate(images[:count])))
    truth_uri = seed_digits_truth(s3, bucket, "digits", count=count)
    truth = json.loads(s3.get_object(Bucket=bucket, Key="digits/truth/digits-truth.json")["Body"].read())
    return {"uri": truth_uri, "truth": truth}


def _operator(local_backend: Any, truth_uri: str, **kwargs: Any) -> GroundTruthLabelingOperator:
    args: dict[str, Any] = {
        "task_id": "label",
        "task_type": "image_classification",
        "labels": [str(d) for d in range(10)],
        "input_prefix": local_backend.uri("digits/images/"),
        "output_path": local_backend.uri("labels"),
        "role_arn": ROLE_ARN,
        "workteam_arn": WORKTEAM,
        "tags": {"airflow-dl:simulated-truth": truth_uri},
        "poll_interval": 1,
    }
    args.update(kwargs)
    return GroundTruthLabelingOperator(**args)


def _manifest(local_backend: Any, uri: str) -> str:
    key = uri.split(f"s3://{local_backend.bucket}/", 1)[1]
    return local_backend.s3.get_object(Bucket=local_backend.bucket, Key=key)["Body"].read().decode()


@pytest.mark.slow
def test_auto_labeling_labels_every_digit(local_backend: Any, task_context: Any, task_log: Any) -> None:
    seeded = _seed(local_backend, 1300)
    started = time.monotonic()
    result = _operator(local_backend, seeded["uri"], auto_labeling=True).execute(task_context("manual__auto"))
    elapsed = time.monotonic() - started

    counters = result["label_counters"]
    assert result["status"] == "Completed"
    assert counters["HumanLabeled"] + counters["MachineLabeled"] == counters["TotalLabeled"] == 1300
    assert counters["MachineLabeled"] > 0
    assert counters["Unlabeled"] == counters["FailedNonRetryableError"] == 0
    name = result["job_name"]
    assert result["output_manifest"] == local_backend.uri(f"labels/{name}/manifests/output/output.manifest")

    text = _manifest(local_backend, result["output_manifest"])
    records = list(read_output_manifest(text))
    assert len(records) == 1300 and all(isinstance(r, ClassificationLabel) for r in records)
    assert label_accuracy(records, seeded["truth"]) >= 0.9
    machine = [r for r in records if not r.human_annotated]
    assert len(machine) == counters["MachineLabeled"]
    for line in map(json.loads, text.splitlines()):
        assert set(line) == {"source-ref", "label", "label-metadata"}
        assert set(line["label-metadata"]) == METADATA_KEYS
        assert line["label-metadata"]["job-name"] == f"labeling-job/{name}"
        assert line["label-metadata"]["type"] == "groundtruth/image-classification"
    listed = local_backend.s3.list_objects_v2(
        Bucket=local_backend.bucket, Prefix=f"labels/{name}/activelearning/"
    )
    assert listed.get("KeyCount", 0) > 0
    assert any("simulated workforce: answers from hidden truth" in m for m in task_log.messages)
    assert elapsed < 60, elapsed


@pytest.mark.slow
def test_without_auto_labeling_every_object_goes_to_the_workforce(
    local_backend: Any, task_context: Any
) -> None:
    seeded = _seed(local_backend, 50)
    result = _operator(local_backend, seeded["uri"], workers_per_object=1).execute(
        task_context("manual__human")
    )
    counters = result["label_counters"]
    assert counters == {
        "TotalLabeled": 50,
        "HumanLabeled": 50,
        "MachineLabeled": 0,
        "FailedNonRetryableError": 0,
        "Unlabeled": 0,
    }
    records = list(read_output_manifest(_manifest(local_backend, result["output_manifest"])))
    assert all(
        r.human_annotated and r.confidence == 0.0 for r in records
    )  # one worker: 0.00, as Ground Truth
    responses = local_backend.s3.list_objects_v2(
        Bucket=local_backend.bucket, Prefix=f"labels/{result['job_name']}/annotations/worker-response/"
    )
    assert responses["KeyCount"] == 50


def test_without_a_declared_workforce_the_job_fails_plainly(local_backend: Any, task_context: Any) -> None:
    from airflow_dl_provider.exceptions import SageMakerJobError

    seeded = _seed(local_backend, 3)
    op = _operator(local_backend, seeded["uri"], tags={})
    with pytest.raises(SageMakerJobError) as caught:
        op.execute(task_context("manual__undeclared"))
    assert caught.value.status == "Failed"
    assert caught.value.failure_reason.startswith(
        "ClientError: the local backend labels with a declared simulated workforce; tag the job "
        "airflow-dl:simulated-truth="
    )
