"""``airflow-dl``: the demo, and the local backend for running these DAGs without AWS.

Commands::

    airflow-dl demo            train the digits pipeline end to end on the local backend
    airflow-dl local up        start the embedded S3 server (and with --label-studio a local Label Studio server
                               with its simulated workforce); print the connections to export
    airflow-dl local down      stop them
    airflow-dl local airflow   the Airflow UI on localhost, DAGs wired to the local backend
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
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


def demo(args: argparse.Namespace) -> int:
    from airflow_dl_provider.demo import run_demo

    dags_folder = _dags_folder(args.dags_folder)
    home = Path(args.home).resolve() if args.home else Path(tempfile.mkdtemp(prefix="airflow-dl-demo-"))
    try:
        return run_demo(dags_folder, home, labeling=args.labeling, approval=args.approval)
    finally:
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
    if args.results:
        _write_results(run, Path(args.results))
    return 0 if state.endswith("success") else 1


def _write_results(run: Any, path: Path) -> None:
    """Each task's state and returned value (XCom), as JSON: what the demo's summary reads."""
    import json

    from airflow_dl_provider.backends.local.state import write_json_atomic

    tasks: dict[str, Any] = {}
    for ti in run.get_task_instances():
        try:
            value = ti.xcom_pull(task_ids=ti.task_id)
        except Exception:  # a task that never ran has nothing to pull on some Airflow versions
            value = None
        tasks[ti.task_id] = {"state": str(ti.state).rsplit(".", 1)[-1], "result": value}
    write_json_atomic(
        path,
        json.loads(json.dumps({"dag_id": run.dag_id, "state": str(run.state), "tasks": tasks}, default=str)),
    )


def local(args: argparse.Namespace) -> int:
    from airflow_dl_provider.backends.local import server

    home = Path(args.home).expanduser().resolve()
    if args.action == "down":
        from airflow_dl_provider.backends.local import label_studio_server

        if label_studio_server.stop(home):
            _say("Label Studio stopped; its projects are gone")
        generation = server.generation(home)
        if server.stop(home):
            _say(f"stopped; its data is gone, and jobs of generation {generation} now report Failed")
        else:
            _say("not running")
        return 0
    if args.action == "airflow":
        return local_airflow(args, home)
    record = server.start(home) if args.action == "up" else server.status(home)
    if record is None:
        _say("not running")
        return 1
    conn = server.connection_uri_json(record["endpoint_url"], home)
    _say(
        f"embedded S3 on {record['endpoint_url']} (pid {record['pid']}, generation "
        f"{record['generation']}); point Airflow at it with:"
    )
    _say(f"export AIRFLOW_CONN_AWS_DEFAULT='{conn}'")
    if args.action == "up" and args.label_studio:
        from airflow_dl_provider.backends.local import label_studio_server

        studio = label_studio_server.start(home, record["endpoint_url"])
        _say(
            f"Label Studio on {studio['url']} (pid {studio['pid']}; log in as {label_studio_server.ADMIN_EMAIL}, "
            f"password {label_studio_server.ADMIN_PASSWORD}), with the declared SIMULATED workforce "
            "answering the projects that declare a hidden truth; point Airflow at it with:"
        )
        _say(f"export AIRFLOW_CONN_LABEL_STUDIO_DEFAULT='{label_studio_server.connection_uri_json(studio)}'")
    return 0


def local_airflow(args: argparse.Namespace, home: Path) -> int:
    """Airflow on localhost, DAGs on the local backend; Ctrl-C stops everything it started."""
    from airflow_dl_provider import local_airflow as stack
    from airflow_dl_provider.backends.local import server

    dags_folder = _dags_folder(args.dags_folder)
    env = _airflow_env(home / "airflow", dags_folder, "")
    return stack.run(home, dags_folder, args.port, lambda url: server.connection_uri_json(url, home), env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="airflow-dl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("demo", help="run the digits pipeline end to end on the local backend")
    p.add_argument("--dags-folder", default=None, help="default: ./dags")
    p.add_argument("--home", default=None, help="keep everything here instead of a throwaway directory")
    p.add_argument("--keep", action="store_true", help="keep the throwaway directory")
    p.add_argument(
        "--labeling",
        choices=["ground-truth", "label-studio"],
        default="ground-truth",
        help="label with the local Ground Truth job (default) or a local Label Studio server",
    )
    p.add_argument(
        "--approval",
        choices=["auto", "human"],
        default="auto",
        help="approve the model automatically (default) or stop at the human gate before deploying",
    )
    p.set_defaults(func=demo)

    p = commands.add_parser("local", help="the embedded S3 server and a local Airflow")
    p.add_argument("action", choices=["up", "down", "status", "airflow"])
    p.add_argument("--home", default=str(Path.home() / ".airflow-dl" / "local"))
    p.add_argument("--dags-folder", default=None)
    p.add_argument("--port", type=int, default=8080, help="local airflow: the Airflow UI's port")
    p.add_argument(
        "--label-studio",
        action="store_true",
        help="up: also start a local Label Studio server (make label-studio)",
    )
    p.set_defaults(func=local)

    p = commands.add_parser("dag-test", help="run one DAG with dag.test() (used by the demo)")
    p.add_argument("dag_id")
    p.add_argument("--dags-folder", default=None)
    p.add_argument("--results", default=None, help="write each task's state and XCom value here as JSON")
    p.set_defaults(func=dag_test)

    from airflow_dl_provider.stacks.cli import register as register_stack_commands

    register_stack_commands(commands)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
