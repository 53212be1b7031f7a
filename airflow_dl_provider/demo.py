"""The demo's data and its summary: scikit-learn's bundled 8x8 digits, no download.

Seeds ``<prefix>/raw/digits.csv`` (``label,p0..p63``) and one PNG per image under ``<prefix>/images/``
(for the labeling step), and reads the finished jobs back from the local backend for the summary.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from typing import Any

from airflow_dl_provider.manifests.images import encode_png_gray


def digits_csv() -> tuple[bytes, list[tuple[int, list[list[int]]]]]:
    """The digits as CSV bytes, and as (label, 8x8 image 0..255) pairs for the PNGs."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["label", *[f"p{i}" for i in range(64)]])
    images = []
    for features, label in zip(digits.data, digits.target, strict=True):
        values = [int(v) for v in features]
        writer.writerow([int(label), *values])
        images.append((int(label), [[min(255, v * 16) for v in values[r * 8 : r * 8 + 8]] for r in range(8)]))
    return buffer.getvalue().encode(), images


def seed_digits(s3: Any, bucket: str, prefix: str, *, with_images: bool = True) -> dict[str, Any]:
    """Create ``bucket`` if needed and upload the digits; return what was written."""
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)
    data, images = digits_csv()
    csv_key = f"{prefix}/raw/digits.csv"
    s3.put_object(Bucket=bucket, Key=csv_key, Body=data)
    if with_images:
        for i, (_label, pixels) in enumerate(images):
            s3.put_object(Bucket=bucket, Key=f"{prefix}/images/{i:04d}.png", Body=encode_png_gray(pixels))
    return {
        "csv": f"s3://{bucket}/{csv_key}",
        "rows": len(images),
        "images": len(images) if with_images else 0,
    }


def training_summary(client: Any) -> list[dict[str, Any]]:
    """One row per training job of the local backend: status, size, time, metrics, artifacts."""
    rows = []
    for summary in client.list_training_jobs(SortOrder="Ascending")["TrainingJobSummaries"]:
        job = client.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        metrics = {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}
        rows.append(
            {
                "job": job["TrainingJobName"],
                "status": job["TrainingJobStatus"],
                "instances": f"{job['ResourceConfig']['InstanceCount']} x {job['ResourceConfig']['InstanceType']}",
                "seconds": job.get("TrainingTimeInSeconds", 0),
                "metrics": metrics,
                "artifacts": job["ModelArtifacts"]["S3ModelArtifacts"]
                if job["TrainingJobStatus"] == "Completed"
                else "-",
                "failure": job.get("FailureReason", ""),
            }
        )
    return rows


def format_table(rows: list[dict[str, str]], columns: list[str]) -> str:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns), "  ".join("-" * widths[c] for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def digits_truth(bucket: str, prefix: str, *, count: int | None = None) -> dict[str, str]:
    """The hidden truth of the seeded PNGs: ``s3://<bucket>/<prefix>/images/NNNN.png`` -> digit name.

    This is what the local backend's simulated workforce answers from (never shown to the model).

    :param count: only the first ``count`` images; all of them by default.
    """
    _data, images = digits_csv()
    chosen = images if count is None else images[:count]
    return {
        f"s3://{bucket}/{prefix}/images/{i:04d}.png": str(label) for i, (label, _pixels) in enumerate(chosen)
    }


def seed_digits_truth(s3: Any, bucket: str, prefix: str, *, count: int | None = None) -> str:
    """Upload :func:`digits_truth` as JSON; return its URI, the value of the job's truth tag.

    Tag the labeling task ``{"airflow-dl:simulated-truth": <this URI>}`` to declare the simulated
    workforce on the local backend.
    """
    key = f"{prefix}/truth/digits-truth.json"
    body = json.dumps(digits_truth(bucket, prefix, count=count), sort_keys=True)
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    return f"s3://{bucket}/{key}"
