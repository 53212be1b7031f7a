"""Every local worker implements the one protocol, and its services come from the job's own record.

The protocol is checked statically too (mypy: ``LOCAL_WORKERS`` is a ``dict[str, LocalWorker]`` of the
worker modules); these tests check what mypy cannot: that the members agree with the service model,
that no worker reaches around its services, and that the runner needs nothing from the environment.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
from pathlib import Path
from typing import Any

import pytest

from airflow_dl_provider.backends.local import runner, server
from airflow_dl_provider.backends.local.state import JobStore, LocalJob
from airflow_dl_provider.backends.local.work import JobFailure, JobOrigin
from airflow_dl_provider.backends.local.workers import LOCAL_WORKERS, LocalWorker, public_status
from airflow_dl_provider.jobs.kinds import JOB_KINDS
from airflow_dl_provider.validation.requests import output_shape

# The statuses a worker records (the common spelling); Describe translates them per API.
RECORDED_STATUSES = ("InProgress", "Completed", "Failed", "Stopping", "Stopped")
ENDPOINT = "http://127.0.0.1:1"  # nothing listens: building the services makes no call


def _module_source(key: str) -> tuple[Path, ast.Module]:
    path = Path(inspect.getfile(LOCAL_WORKERS[key]))  # type: ignore[arg-type]
    return path, ast.parse(path.read_text())


@pytest.mark.parametrize("key", sorted(LOCAL_WORKERS))
def test_every_registered_worker_implements_the_protocol(key: str) -> None:
    worker = LOCAL_WORKERS[key]
    assert isinstance(worker, LocalWorker)
    for method in ("initial_state", "run"):
        wanted = list(inspect.signature(getattr(LocalWorker, method)).parameters)[1:]  # without self
        assert list(inspect.signature(getattr(worker, method)).parameters) == wanted, method


@pytest.mark.parametrize("key", sorted(LOCAL_WORKERS))
def test_a_workers_arn_and_statuses_are_the_service_models(key: str) -> None:
    kind = JOB_KINDS[key]
    shape = output_shape(f"Describe{kind.noun}")
    pattern = shape.members[kind.arn_field].metadata["pattern"]
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:{LOCAL_WORKERS[key].ARN_NOUN}/a-job-1"
    assert re.fullmatch(pattern, arn), f"{arn} does not match {pattern}"
    enum = shape.members[kind.status_field].enum
    assert {public_status(key, status) for status in RECORDED_STATUSES} <= set(enum)


@pytest.mark.parametrize("key", sorted(LOCAL_WORKERS))
def test_a_workers_initial_state_holds_describe_members_only(key: str) -> None:
    kind = JOB_KINDS[key]
    members = output_shape(f"Describe{kind.noun}").members
    request = {  # the members the workers' initial states are computed from
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "InputConfig": {"S3Uri": "s3://bucket/model.tar.gz"},
        "OutputConfig": {"S3OutputLocation": "s3://bucket/compiled", "TargetDevice": "ml_c5"},
    }
    state = LOCAL_WORKERS[key].initial_state(request, "a-job-1")
    assert {k for k in state if not k.startswith("_")} <= set(members)


def _imports(tree: ast.Module) -> set[str]:
    """Every module a source imports, at module level or inside a function, relative ones resolved."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "airflow_dl_provider.backends.local" if node.level else (node.module or "")
            module = f"{base}.{node.module}" if node.level and node.module else base
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("key", sorted(LOCAL_WORKERS))
def test_no_worker_imports_the_client_the_runner_or_the_registry(key: str) -> None:
    """Imports point one way (runner -> registry -> workers -> services types): no cycle to hide."""
    path, tree = _module_source(key)
    upward = {f"airflow_dl_provider.backends.local.{m}" for m in ("client", "runner", "workers")}
    assert not _imports(tree) & upward, f"{path.name} imports {sorted(_imports(tree) & upward)}"


@pytest.mark.parametrize("key", sorted(LOCAL_WORKERS))
def test_no_worker_reads_the_environment_or_climbs_out_of_its_job_directory(key: str) -> None:
    path, tree = _module_source(key)
    for node in ast.walk(tree):
        # os.environ["X"], os.environ.get("X"), os.getenv("X"): a setting the job's record should carry.
        # (``{**os.environ, ...}`` for a host's environment passes it on without reading it.)
        if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            pytest.fail(f"{path.name}:{node.lineno} reads {ast.unparse(node)}")
        if isinstance(node, ast.Call) and ast.unparse(node.func) in ("os.environ.get", "os.getenv"):
            pytest.fail(f"{path.name}:{node.lineno} reads {ast.unparse(node)}")
        # job.dir.parents[2], job.dir.parent.parent: the home, found by counting directories.
        if isinstance(node, ast.Attribute) and node.attr in ("parent", "parents"):
            assert "job.dir" not in ast.unparse(node), f"{path.name}:{node.lineno}: {ast.unparse(node)}"


def _job(home: Path, origin: dict[str, Any]) -> LocalJob:
    state = {
        "TrainingJobName": "a-job-1",
        "TrainingJobArn": "arn:aws:sagemaker:eu-west-1:123456789012:training-job/a-job-1",
        "TrainingJobStatus": "InProgress",
        **origin,
    }
    with JobStore(home).creating("training", "a-job-1", {}, state) as created:
        assert created is not None
        return created.job


def test_the_origin_round_trips_through_a_jobs_state(tmp_path: Path) -> None:
    origin = JobOrigin(tmp_path / "home", ENDPOINT, "eu-west-1", "abc123")
    assert JobOrigin.of(origin.state()) == origin
    assert JobOrigin.of({**origin.state(), "_s3_generation": None}).generation is None


@pytest.mark.parametrize("missing", ["_home", "_endpoint_url", "_region", "_s3_generation"])
def test_a_state_without_its_origin_is_a_clear_job_failure(tmp_path: Path, missing: str) -> None:
    state = JobOrigin(tmp_path, ENDPOINT, "eu-west-1", None).state()
    del state[missing]
    with pytest.raises(JobFailure, match=f"^InternalServerError: the local job's state lacks {missing};"):
        JobOrigin.of(state)


def test_the_runner_builds_services_from_the_jobs_record_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith(("AWS_", "AIRFLOW_DL_", "AIRFLOW_CONN_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")  # a stray setting must not win over the record
    home = tmp_path / "home"
    job = _job(home, JobOrigin(home, ENDPOINT, "eu-west-1", None).state())

    services = runner.services_for(job)

    assert services.origin == JobOrigin(home, ENDPOINT, "eu-west-1", None)
    assert services.store.home == home
    assert services.resources.root == home / "resources"
    client: Any = services.client
    assert (client.store.home, client.endpoint_url, client.region) == (home, ENDPOINT, "eu-west-1")
    for boto_client in (services.s3, services.logs):
        assert boto_client.meta.endpoint_url == ENDPOINT
        assert boto_client.meta.region_name == "eu-west-1"
        assert boto_client._request_signer._credentials.access_key == server.LOCAL_CREDENTIALS["login"]


def test_a_runner_refuses_a_job_whose_s3_server_is_gone(tmp_path: Path) -> None:
    home = tmp_path / "home"
    job = _job(home, JobOrigin(home, ENDPOINT, "eu-west-1", "gone0000").state())
    with pytest.raises(JobFailure, match=r"generation gone0000\) is not the one running now \(none\)"):
        runner.services_for(job)


def test_a_runner_that_cannot_build_its_services_fails_the_job_with_the_reason(tmp_path: Path) -> None:
    home = tmp_path / "home"
    job = _job(home, {})  # created by a client that recorded no origin
    assert runner.main(["runner", str(job.dir)]) == 0
    state = job.state()
    assert state["TrainingJobStatus"] == "Failed"
    assert state["FailureReason"].startswith("InternalServerError: the local job's state lacks _home")
