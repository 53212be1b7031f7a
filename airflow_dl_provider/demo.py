"""``airflow-dl demo``: the whole lifecycle on the local backend, as a new user runs it, and its data.

1. the embedded S3 server and a throwaway Airflow home;
2. scikit-learn's bundled 8x8 digits as PNG images (no download), and the hidden truth the declared
   simulated labeling workforce answers from;
3. ``dl_pipeline_digits`` with ``dag.test()``: label -> validate -> prepare -> train -> tune ->
   compile, register, baseline, batch transform -> evaluate -> approve (auto; ``--approval human``
   stops at the human gate) -> deploy to the ``digits`` endpoint, data capture on;
4. a shifted batch arrives (noisier, brighter digits) as requests to the endpoint: ``dl_drift_monitor_digits``
   finds the drift in its capture, and ``dl_retrain_digits`` trains a challenger, scores both models on
   the same holdout, promotes the challenger only if it wins, approves and deploys it (a canary shift);
5. a summary of all of it, read from each task's XCom value.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
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


_UPLOAD_THREADS = 16  # boto3 clients are thread-safe; the embedded server answers requests in parallel


def seed_digits(s3: Any, bucket: str, prefix: str, *, with_images: bool = True) -> dict[str, Any]:
    """Create ``bucket`` if needed and upload the digits; return what was written."""
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)
    data, images = digits_csv()
    csv_key = f"{prefix}/raw/digits.csv"
    s3.put_object(Bucket=bucket, Key=csv_key, Body=data)
    if with_images:
        # Concurrently: one PUT at a time spends its time waiting on the server's round trip.
        def put(item: tuple[int, tuple[int, list[list[int]]]]) -> None:
            i, (_label, pixels) = item
            s3.put_object(Bucket=bucket, Key=f"{prefix}/images/{i:04d}.png", Body=encode_png_gray(pixels))

        with ThreadPoolExecutor(max_workers=_UPLOAD_THREADS) as pool:
            list(pool.map(put, enumerate(images)))
    return {
        "csv": f"s3://{bucket}/{csv_key}",
        "rows": len(images),
        "images": len(images) if with_images else 0,
    }


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


ACCURACY_TARGET = 0.90
LABEL_ACCURACY_TARGET = 0.95
# The shifted batch: Gaussian pixel noise and a brighter background, on the 0..16 pixel scale.
NOISE_SIGMA = 3.0
BRIGHTNESS_SHIFT = 2.0


def say(message: str = "") -> None:
    print(message, flush=True)


def _read(s3: Any, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def watch_jobs(home: Path, done: threading.Event, started: float) -> None:
    """Print each local job's status changes while a DAG runs (reads the job store, as Describe does)."""
    from airflow_dl_provider.backends.local.state import JobStore
    from airflow_dl_provider.backends.local.workers import LOCAL_WORKERS
    from airflow_dl_provider.jobs.kinds import JOB_KINDS

    store = JobStore(home)

    def labels() -> dict[tuple[str, str], str]:
        found = {}
        for key in LOCAL_WORKERS:
            kind = JOB_KINDS[key]
            for job in store.all(key):
                try:
                    state = job.state()
                except (OSError, ValueError):
                    continue
                found[(key, job.name)] = f"{state.get(kind.status_field)}" + (
                    f"/{state['SecondaryStatus']}" if "SecondaryStatus" in state else ""
                )
        return found

    # The jobs of the DAG runs before this one were printed while those ran: each job is printed once.
    seen = labels()
    while not done.wait(1.0):
        for (key, name), label in labels().items():
            if seen.get((key, name)) != label:
                seen[(key, name)] = label
                say(f"      {time.monotonic() - started:6.1f}s  {key} job {name}: {label}")


#: What the run logs once it waits for a person: HITL on 3.1+ (dag.test's line), the registry sensor before.
HUMAN_GATE = ("Waiting for Human-in-the-loop input", "awaits approval in the SageMaker model registry")


def run_dag(
    dag_id: str,
    dags_folder: Path,
    env: dict[str, str],
    home: Path,
    started: float,
    stop_at: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``airflow-dl dag-test`` in a subprocess (its own Airflow process, as a worker would be).

    :param stop_at: log lines that end the run where it stands (``stopped_at`` names the one seen).
    """
    results, log_path = home / f"{dag_id}.json", home / f"{dag_id}.log"
    done = threading.Event()
    watcher = threading.Thread(target=watch_jobs, args=(home / "local", done, started), daemon=True)
    watcher.start()
    stopped = None
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airflow_dl_provider.cli",
                "dag-test",
                dag_id,
                "--dags-folder",
                str(dags_folder),
                "--results",
                str(results),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        while (code := proc.poll()) is None:
            text = log_path.read_text(errors="replace") if stop_at else ""
            stopped = next((line for line in stop_at if line in text), None)
            if stopped:
                # dag.test() waits for the answer through SIGTERM: kill it if it does not end.
                proc.terminate()
                try:
                    code = proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    code = proc.wait()
                break
            time.sleep(1)
    done.set()
    watcher.join()
    outcome = json.loads(results.read_text()) if results.exists() else {"state": "failed", "tasks": {}}
    outcome["returncode"], outcome["log"], outcome["stopped_at"] = code, str(log_path), stopped
    return outcome


def _result(run: dict[str, Any], task_id: str) -> dict[str, Any]:
    return (run["tasks"].get(task_id) or {}).get("result") or {}


def shifted_batch(seed: int = 7) -> tuple[str, str]:
    """The digits with noise and a brighter background: (features CSV with header, labeled CSV)."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    shifted = np.clip(digits.data + BRIGHTNESS_SHIFT + rng.normal(0, NOISE_SIGMA, digits.data.shape), 0, 16)
    header = [f"p{i}" for i in range(64)]
    features, labeled = io.StringIO(), io.StringIO()
    csv.writer(features, lineterminator="\n").writerows(
        [header, *[[f"{v:.2f}" for v in row] for row in shifted]]
    )
    writer = csv.writer(labeled, lineterminator="\n")
    writer.writerow(["label", *header])
    writer.writerows(
        [int(y), *[f"{v:.2f}" for v in row]] for y, row in zip(digits.target, shifted, strict=True)
    )
    return features.getvalue(), labeled.getvalue()


def send_to_endpoint(local_home: Path, endpoint: str, features_csv: str, rows_per_request: int = 100) -> int:
    """The batch as real-time requests (headerless CSV rows, as a client sends them); the endpoint captures
    each in SageMaker's format, where the drift monitor reads it. Returns the number of requests."""
    from airflow_dl_provider.backends.local.endpoint import LocalRuntimeClient

    runtime = LocalRuntimeClient(local_home)
    rows = features_csv.splitlines()[1:]
    chunks = [rows[i : i + rows_per_request] for i in range(0, len(rows), rows_per_request)]
    for chunk in chunks:
        body = "\n".join(chunk) + "\n"
        runtime.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType="text/csv", Accept="text/csv")
    return len(chunks)


def deliver_batch(config: Any, pipeline: dict[str, Any], local_home: Path, s3: Any, features: str) -> None:
    """The shifted batch where the drift monitor watches: the deployed endpoint's requests, else a file."""
    if config.drift and config.drift.data_uri is None and _result(pipeline, "deploy"):
        # The real loop: clients call the endpoint, it captures, the monitor reads the capture.
        sent = send_to_endpoint(local_home, str(config.endpoint_name), features)
        say(f"      {sent} requests of shifted digits to endpoint {config.endpoint_name}, captured to S3")
        return
    drift_uri = config.watched_data_uri if config.drift else config.s3_uri("incoming")
    bucket, _, prefix = drift_uri.removeprefix("s3://").partition("/")
    s3.put_object(Bucket=bucket, Key=f"{prefix.rstrip('/')}/batch-1.csv", Body=features.encode())


def delete_endpoints(local_home: Path, endpoint_url: str, names: list[Any]) -> None:
    """Delete the demo's endpoints: their server processes stop with them."""
    from botocore.exceptions import ClientError

    from airflow_dl_provider.backends.local.client import LocalSageMakerClient

    client = LocalSageMakerClient(
        home=local_home, endpoint_url=endpoint_url, region="us-east-1", runner_env={}
    )
    for name in names:
        with contextlib.suppress(ClientError):  # never deployed: nothing to delete
            client.delete_endpoint(EndpointName=name)


def loop_summary(run: dict[str, Any], suffix: str = "") -> list[str]:
    """The approval and the deploy of one run (``suffix``: the retrain DAG's ``_challenger`` tasks)."""
    lines: list[str] = []
    approval, deploy = _result(run, f"approve{suffix}"), _result(run, f"deploy{suffix}")
    if approval:
        lines.append(f"  approval ({approval['decided_by']}): {approval['decision']}: {approval['reason']}")
    if deploy:
        shift = deploy.get("traffic_shift") or "none (a new endpoint)"
        lines.append(
            f"  endpoint {deploy['endpoint_name']}: {deploy['action']} -> {deploy['status']}; traffic shift {shift}; "
            f"data capture {deploy.get('data_capture_s3_uri')}"
        )
    elif approval:
        lines.append(f"  deploy: {run['tasks'].get(f'deploy{suffix}', {}).get('state')} (nothing deployed)")
    return lines


def label_studio_dags(
    dags_folder: Path, home: Path, *, label_studio: bool = True, approval: str = ""
) -> Path:
    """A copy of the DAG folder whose digits config labels with ``service: label_studio`` and, with
    ``approval``, approves that way (``human``: the demo stops at the gate)."""
    import shutil

    import yaml

    from airflow_dl_provider.pipelines.config import load_config

    target = home / "dags-variant"
    (target / "configs").mkdir(parents=True, exist_ok=True)
    for path in dags_folder.glob("*.py"):
        shutil.copy(path, target / path.name)
    source = dags_folder / "configs" / "digits.yaml"
    raw = yaml.safe_load(source.read_text())
    if label_studio:
        raw["labeling"]["service"] = "label_studio"
    if approval:
        raw["approval"] = approval
    # Relative to the original config's folder: the copy lives elsewhere.
    raw["training"]["source_dir"] = load_config(source).training.source_dir
    (target / "configs" / "digits.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return target


def pipeline_summary(
    run: dict[str, Any], s3: Any, truth_uri: str, *, service: str = "Ground Truth"
) -> list[str]:
    from airflow_dl_provider.manifests.output import label_accuracy, read_output_manifest

    lines: list[str] = []
    label = _result(run, "label")
    if label:
        counters = label.get("label_counters", {})
        accuracy = label_accuracy(
            read_output_manifest(_read(s3, label["output_manifest"])), json.loads(_read(s3, truth_uri))
        )
        lines += [
            f"Labeling ({service}, simulated workforce, auto-labeling on)",
            f"  {counters.get('TotalLabeled', 0)} labeled: HumanLabeled {counters.get('HumanLabeled', 0)}, "
            f"MachineLabeled {counters.get('MachineLabeled', 0)}; label accuracy vs hidden truth {accuracy:.4f}",
        ]
    validation = _result(run, "validate_labels")
    if validation:
        verdict = "passed" if validation.get("success") else "FAILED"
        lines += [
            "Label validation (Great Expectations)",
            f"  {verdict}: {validation.get('successful')}/{validation.get('evaluated')} expectations on "
            f"{validation.get('rows')} rows; result {validation.get('result_json')}",
        ]
    train, tune = _result(run, "train"), _result(run, "tune")
    if train:
        metrics = " ".join(f"{k}={v:.4f}" for k, v in sorted(train.get("metrics", {}).items()))
        lines += ["Training (untuned)", f"  {train['job_name']}: {metrics}"]
    if tune:
        rows = [
            {
                "rank": i + 1,
                "job": t.get("training_job"),
                "objective": t.get("objective_value"),
                "hyperparameters": json.dumps(t.get("hyperparameters"), sort_keys=True),
            }
            for i, t in enumerate(tune.get("leaderboard", []))
        ]
        untuned = train.get("metrics", {}).get(tune.get("objective", ""), float("nan"))
        tuned = float(tune.get("objective_value") or 0.0)
        lines += [f"Tuning leaderboard ({tune.get('objective')}, best first)"]
        lines += [
            "  " + line
            for line in format_table(rows, ["rank", "job", "objective", "hyperparameters"]).splitlines()
        ]
        lines += [
            f"  tuned {tuned:.4f} vs untuned {untuned:.4f}: tuned is {'at least as' if tuned >= untuned else 'LESS'} accurate"
        ]
    compiled = _result(run, "compile")
    if compiled:
        with tarfile.open(fileobj=io.BytesIO(_read(s3, compiled["compiled_artifacts"]))) as tar:
            member = tar.extractfile("compilation-report.json")
            report = json.loads(member.read()) if member else {}
        lines += [
            "Compilation (Neo; TorchScript on the local backend)",
            f"  latency on this CPU: eager {report.get('eager_median_ms')} ms -> compiled {report.get('compiled_median_ms')} ms "
            f"(x{report.get('speedup')}); {compiled['compiled_artifacts']}",
        ]
    registered = _result(run, "register")
    if registered:
        lines += ["Model registry", f"  {registered['model_package_arn']} ({registered['approval_status']})"]
        lines += loop_summary(run)
    transform, evaluation = _result(run, "batch_transform"), _result(run, "evaluate")
    if transform:
        lines += [
            "Batch transform",
            f"  {evaluation.get('records', '?')} records -> {transform['output_path']}; "
            f"test accuracy of the served model {evaluation.get('value', float('nan')):.4f}",
        ]
    return lines


def drift_summary(monitor: dict[str, Any], retrain: dict[str, Any]) -> list[str]:
    check = _result(monitor, "check_drift")
    lines = ["Drift loop"]
    if not check:
        return [
            *lines,
            f"  drift monitor: no drift result ({monitor['tasks'].get('check_drift', {}).get('state')})",
        ]
    drifted = check.get("features_drifted", [])
    lines.append(
        f"  drift monitor: {len(drifted)} of {len(check.get('scores', {}))} features drifted, e.g. {', '.join(drifted[:6])}"
    )
    lines.append(
        f"  drift check read {check.get('files', 0)} files ({check.get('rows')} rows) of {check.get('data_uri')}"
    )
    challenger, champion = _result(retrain, "evaluate_challenger"), _result(retrain, "evaluate_champion")
    decision = _result(retrain, "decide")
    if challenger and champion:
        lines.append(
            f"  holdout accuracy: challenger {challenger['value']:.4f}, champion {champion['value']:.4f} ({challenger['records']} records)"
        )
    if decision:
        lines.append(f"  decision: {decision['decision']}: {decision['reason']}")
    return lines + loop_summary(retrain, "_challenger")


def run_demo(dags_folder: Path, home: Path, *, labeling: str = "ground-truth", approval: str = "auto") -> int:
    """Run the whole demo; 0 when the model meets the accuracy target and the drift loop ran.

    :param labeling: ``ground-truth`` (the local Ground Truth job) or ``label-studio`` (a local Label
        Studio server; then the labels must also be at least 95% right against the hidden truth).
    :param approval: ``auto`` (the config's), or ``human``: the pipeline stops at the human gate.
    """
    from airflow_dl_provider.backends.local import label_studio_server, server
    from airflow_dl_provider.pipelines.config import load_config

    config = load_config(dags_folder / "configs" / "digits.yaml")
    local_home, airflow_home = home / "local", home / "airflow"
    started = time.monotonic()
    say(
        f"airflow-dl demo: the {config.pipeline} lifecycle on the local backend (no AWS account used)\n  home: {home}"
    )
    record = None
    try:
        say("[1/5] starting the embedded S3 server on 127.0.0.1 and a throwaway Airflow home ...")
        record = server.start(local_home)
        endpoint = record["endpoint_url"]
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_AWS_DEFAULT": server.connection_uri_json(endpoint, local_home),
            "PYTHONUNBUFFERED": "1",
        }
        airflow_home.mkdir(parents=True, exist_ok=True)
        migrate = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True
        )
        if migrate.returncode:
            say(migrate.stdout[-3000:] + migrate.stderr[-3000:])
            return 1
        say(f"      {endpoint}; Airflow home {airflow_home}")
        if labeling == "label-studio":
            say(
                "      starting Label Studio on 127.0.0.1 (its own venv) and its declared SIMULATED workforce ..."
            )
            studio = label_studio_server.start(local_home, endpoint)
            dags_folder = label_studio_dags(dags_folder, home, approval=approval)
            env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_folder)
            env["AIRFLOW_CONN_LABEL_STUDIO_DEFAULT"] = label_studio_server.connection_uri_json(studio)
            say(f"      Label Studio {studio['url']}; the pipeline labels with service: label_studio")

        say("[2/5] seeding the digits (scikit-learn's bundled 8x8 images, no download) ...")
        s3 = server.s3_client(endpoint)
        seeded = seed_digits(s3, config.bucket, config.prefix)
        truth_uri = seed_digits_truth(s3, config.bucket, config.prefix)
        say(f"      {seeded['images']} PNG images; hidden truth for the simulated workforce at {truth_uri}")

        say(
            f"[3/5] {config.dag_id}: label -> validate -> prepare -> train (2 x {config.training.instance_type}, "
            "simulated) -> tune -> compile, register, transform ..."
        )
        if approval == "human" and labeling != "label-studio":
            dags_folder = label_studio_dags(dags_folder, home, label_studio=False, approval=approval)
            env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_folder)
        pipeline = run_dag(
            config.dag_id, dags_folder, env, home, started, stop_at=HUMAN_GATE if approval == "human" else ()
        )
        if pipeline["returncode"]:
            return _ended(pipeline, started)

        say("[4/5] a shifted batch arrives (noisier, brighter digits): drift monitor, then retraining ...")
        features, labeled = shifted_batch()
        deliver_batch(config, pipeline, local_home, s3, features)
        if config.retraining:
            bucket, _, prefix = config.retraining.labeled_data_prefix.removeprefix("s3://").partition("/")
            s3.put_object(Bucket=bucket, Key=f"{prefix.rstrip('/')}/batch-1.csv", Body=labeled.encode())
        monitor = run_dag(f"dl_drift_monitor_{config.pipeline}", dags_folder, env, home, started)
        drifted = bool(_result(monitor, "check_drift").get("drifted"))
        retrain: dict[str, Any] = {"tasks": {}, "returncode": 0}
        if drifted:
            say(
                "      drift found: the drift Asset got an event; running the retrain DAG scheduled on it ..."
            )
            retrain = run_dag(f"dl_retrain_{config.pipeline}", dags_folder, env, home, started)
            if retrain["returncode"]:
                return _failed(retrain, started)

        say("[5/5] summary\n")
        service = "Label Studio" if labeling == "label-studio" else "Ground Truth"
        for line in pipeline_summary(pipeline, s3, truth_uri, service=service) + drift_summary(
            monitor, retrain
        ):
            say(line)
        accuracy = _result(pipeline, "train").get("metrics", {}).get("test_accuracy")
        served = _result(pipeline, "evaluate").get("value", accuracy)
        if served is None:
            return _failed(pipeline, started)
        verdict = "meets" if served >= ACCURACY_TARGET else "MISSES"
        say(f"\nTest accuracy on held-out digits: {served:.4f} ({verdict} the {ACCURACY_TARGET:.2f} target)")
        say(f"Demo finished in {time.monotonic() - started:.0f}s. Task logs: {home}/*.log")
        labels_ok = True
        if labeling == "label-studio":
            label = _result(pipeline, "label")
            accuracy = label_accuracy_of(s3, label["output_manifest"], truth_uri)
            labels_ok = accuracy >= LABEL_ACCURACY_TARGET
            verdict = "meets" if labels_ok else "MISSES"
            say(
                f"Label accuracy vs hidden truth: {accuracy:.4f} ({verdict} the {LABEL_ACCURACY_TARGET:.2f} target)"
            )
        return 0 if served >= ACCURACY_TARGET and drifted and labels_ok else 1
    finally:
        label_studio_server.stop(local_home)
        if record:
            delete_endpoints(
                local_home, record["endpoint_url"], [config.endpoint_name] if config.deploy else []
            )
            server.stop(local_home)


def label_accuracy_of(s3: Any, manifest_uri: str, truth_uri: str) -> float:
    from airflow_dl_provider.manifests.output import label_accuracy, read_output_manifest

    return label_accuracy(read_output_manifest(_read(s3, manifest_uri)), json.loads(_read(s3, truth_uri)))


def _ended(run: dict[str, Any], started: float) -> int:
    """The pipeline ended early: stopped at the human gate (0), or failed (1)."""
    if not run.get("stopped_at"):
        return _failed(run, started)
    say(
        "\n".join(
            [
                f"      stopped at the human gate after {time.monotonic() - started:.0f}s: {run['stopped_at']}",
                "      The demo ends here. To answer the gate, run the pipeline in `airflow-dl local airflow`: on",
                "      Airflow 3.1+ approve or reject `approve` in the UI's Required Actions; on 2.11/3.0 in",
                "      SageMaker's model registry (aws sagemaker update-model-package --model-package-arn <arn>",
                "      --model-approval-status Approved). Rejected, nothing is deployed.",
                f"      Task log: {run['log']}",
            ]
        )
    )
    return 0


def _failed(run: dict[str, Any], started: float) -> int:
    tail = Path(run["log"]).read_text().splitlines()[-40:]
    failed = [t for t, v in run["tasks"].items() if v.get("state") not in ("success", "skipped")]
    say(
        "\n".join(
            [
                "",
                f"{run.get('dag_id')} failed after {time.monotonic() - started:.0f}s (tasks: {failed}).",
                f"Last lines of {run['log']}:",
                *tail,
            ]
        )
    )
    return 1
