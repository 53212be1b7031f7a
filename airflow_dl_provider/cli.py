"""``airflow-dl``: the demo, and the local backend for running these DAGs without AWS.

airflow-dl demo            train the digits pipeline end to end on the local backend
airflow-dl local up        start the embedded S3 server; print the connection to export
airflow-dl local down      stop it
airflow-dl local airflow   the Airflow UI on localhost, DAGs wired to the local backend
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

DEFAULT_DAG = "dl_pipeline_digits"
ACCURACY_TARGET = 0.90


def _say(message: str) -> None:
    print(message, flush=True)


def _dags_folder(value: str | None) -> Path:
    folder = Path(value or "dags").resolve()
    if not (folder / "configs").is_dir():
        raise SystemExit(f"--dags-folder: {folder} has no configs/ directory; run from the repository root")
    return folder


def _airflow_env(airflow_home: Path, dags_folder: Path, conn_json: str) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_AWS_DEFAULT": conn_json,
        "PYTHONUNBUFFERED": "1",
    }


def _local_client(home: Path, endpoint: str) -> Any:
    from airflow_dl_provider.backends.local.client import LocalSageMakerClient

    return LocalSageMakerClient(home=home, endpoint_url=endpoint, region="us-east-1", runner_env={})


def _s3(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def _watch(client: Any, done: threading.Event, started: float) -> None:
    """Print each job's status changes while the DAG runs."""
    seen: dict[str, str] = {}
    while not done.wait(1.0):
        try:
            summaries = client.list_training_jobs()["TrainingJobSummaries"]
        except Exception:
            continue
        for summary in summaries:
            job = client.describe_training_job(TrainingJobName=summary["TrainingJobName"])
            state = f"{job['TrainingJobStatus']}/{job['SecondaryStatus']}"
            if seen.get(job["TrainingJobName"]) != state:
                seen[job["TrainingJobName"]] = state
                _say(
                    f"      {time.monotonic() - started:6.1f}s  training job {job['TrainingJobName']}: {state}"
                )


def demo(args: argparse.Namespace) -> int:
    from airflow_dl_provider.backends.local import server
    from airflow_dl_provider.demo import format_table, seed_digits, training_summary
    from airflow_dl_provider.pipelines.config import load_config

    dags_folder = _dags_folder(args.dags_folder)
    config = load_config(dags_folder / "configs" / "digits.yaml")
    home = Path(args.home).resolve() if args.home else Path(tempfile.mkdtemp(prefix="airflow-dl-demo-"))
    local_home, airflow_home = home / "local", home / "airflow"
    started = time.monotonic()
    _say(
        f"airflow-dl demo: pipeline {config.dag_id} on the local backend (no AWS account used)\n  home: {home}"
    )
    record = None
    try:
        _say("[1/5] starting the embedded S3 server on 127.0.0.1 ...")
        record = server.start(local_home)
        endpoint = record["endpoint_url"]
        conn = server.connection_uri_json(endpoint, local_home)
        env = _airflow_env(airflow_home, dags_folder, conn)
        _say(f"      {endpoint}")

        _say("[2/5] preparing a throwaway Airflow home (airflow db migrate) ...")
        airflow_home.mkdir(parents=True, exist_ok=True)
        migrate = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True
        )
        if migrate.returncode:
            _say(migrate.stdout[-3000:] + migrate.stderr[-3000:])
            return 1

        _say("[3/5] seeding the demo data (scikit-learn's bundled 8x8 digits) ...")
        bucket = config.bucket
        source_key = config.data.source.split(f"s3://{bucket}/", 1)[1]
        seeded = seed_digits(_s3(endpoint), bucket, source_key.rsplit("/raw/", 1)[0])
        _say(f"      {seeded['rows']} labelled images -> {seeded['csv']} (+ {seeded['images']} PNGs)")

        _say(
            f"[4/5] running {config.dag_id} with dag.test(): prepare_data -> train "
            f"({config.training.instance_count} x {config.training.instance_type}, simulated locally) ..."
        )
        client = _local_client(local_home, endpoint)
        done = threading.Event()
        watcher = threading.Thread(target=_watch, args=(client, done, started), daemon=True)
        watcher.start()
        log_path = home / "dag_test.log"
        with open(log_path, "w") as log:
            run = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "airflow_dl_provider.cli",
                    "dag-test",
                    config.dag_id,
                    "--dags-folder",
                    str(dags_folder),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        done.set()
        watcher.join()

        _say("[5/5] summary")
        rows = training_summary(client)
        table = [
            {
                "job": r["job"],
                "status": r["status"],
                "instances": r["instances"],
                "seconds": r["seconds"],
                "metrics": " ".join(f"{k}={v:.4f}" for k, v in sorted(r["metrics"].items())),
                "artifacts": r["artifacts"],
            }
            for r in rows
        ]
        _say(
            format_table(table, ["job", "status", "instances", "seconds", "metrics", "artifacts"])
            if table
            else "(no jobs)"
        )
        for r in rows:
            if r["failure"]:
                _say(f"  {r['job']} failed: {r['failure']}")
        accuracy = next(
            (r["metrics"].get("test_accuracy") for r in reversed(rows) if r["status"] == "Completed"), None
        )
        elapsed = time.monotonic() - started
        if run.returncode != 0 or accuracy is None:
            tail = log_path.read_text().splitlines()[-40:]
            _say("\n".join(["", f"The DAG run failed ({elapsed:.0f}s). Last lines of {log_path}:", *tail]))
            return 1
        verdict = "meets" if accuracy >= ACCURACY_TARGET else "MISSES"
        _say(
            f"\nTest accuracy on held-out digits: {accuracy:.4f} ({verdict} the {ACCURACY_TARGET:.2f} target)"
        )
        _say(f"DAG run succeeded in {elapsed:.0f}s. Task log: {log_path}")
        return 0 if accuracy >= ACCURACY_TARGET else 1
    finally:
        if record:
            server.stop(local_home)
        if not args.home and not args.keep:
            shutil.rmtree(home, ignore_errors=True)


def dag_test(args: argparse.Namespace) -> int:
    """Run one DAG from the DAG folder with ``dag.test()``; exit 1 unless the run succeeded."""
    import runpy

    dags_folder = _dags_folder(args.dags_folder)
    found: dict[str, Any] = {}
    for path in sorted(dags_folder.glob("*.py")):
        found.update({k: v for k, v in runpy.run_path(str(path)).items() if getattr(v, "dag_id", None) == k})
    if args.dag_id not in found:
        print(f"dag_id: {args.dag_id!r} is not in {dags_folder}; found {sorted(found)}", file=sys.stderr)
        return 1
    run = found[args.dag_id].test()
    state = str(getattr(run, "state", ""))
    print(f"dag run {args.dag_id}: {state}")
    return 0 if state.endswith("success") else 1


def local(args: argparse.Namespace) -> int:
    from airflow_dl_provider.backends.local import server

    home = Path(args.home).expanduser().resolve()
    if args.action == "down":
        _say("stopped" if server.stop(home) else "not running")
        return 0
    record = server.start(home) if args.action in ("up", "airflow") else server.status(home)
    if record is None:
        _say("not running")
        return 1
    conn = server.connection_uri_json(record["endpoint_url"], home)
    if args.action in ("up", "status"):
        _say(f"embedded S3 on {record['endpoint_url']} (pid {record['pid']}); point Airflow at it with:")
        _say(f"export AIRFLOW_CONN_AWS_DEFAULT='{conn}'")
        return 0
    from airflow_dl_provider.demo import seed_digits
    from airflow_dl_provider.pipelines.config import load_config

    dags_folder = _dags_folder(args.dags_folder)
    config = load_config(dags_folder / "configs" / "digits.yaml")
    seed_digits(_s3(record["endpoint_url"]), config.bucket, config.prefix)
    env = _airflow_env(home / "airflow", dags_folder, conn)
    _say(
        "Airflow UI on http://localhost:8080 (user and password printed by 'airflow standalone'); Ctrl-C stops it"
    )
    return subprocess.call([sys.executable, "-m", "airflow", "standalone"], env=env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="airflow-dl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("demo", help="run the digits pipeline end to end on the local backend")
    p.add_argument("--dags-folder", default=None, help="default: ./dags")
    p.add_argument("--home", default=None, help="keep everything here instead of a throwaway directory")
    p.add_argument("--keep", action="store_true", help="keep the throwaway directory")
    p.set_defaults(func=demo)

    p = commands.add_parser("local", help="the embedded S3 server and a local Airflow")
    p.add_argument("action", choices=["up", "down", "status", "airflow"])
    p.add_argument("--home", default=str(Path.home() / ".airflow-dl" / "local"))
    p.add_argument("--dags-folder", default=None)
    p.set_defaults(func=local)

    p = commands.add_parser("dag-test", help="run one DAG with dag.test() (used by the demo)")
    p.add_argument("dag_id")
    p.add_argument("--dags-folder", default=None)
    p.set_defaults(func=dag_test)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
