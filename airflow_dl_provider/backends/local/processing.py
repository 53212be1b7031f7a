"""Processing jobs on this machine: the container's ``/opt/ml`` mapped to directories, one process per host.

As SageMaker Processing runs a job: ``InstanceCount=N`` hosts ``algo-1..algo-N``; each input is
downloaded to its ``LocalPath`` before the job starts (``ShardedByS3Key`` gives each host its share),
``/opt/ml/config/processingjobconfig.json`` and ``resourceconfig.json`` describe the job and the hosts,
``ContainerEntrypoint + ContainerArguments`` run with the job's ``Environment``, each host writes to
its own CloudWatch stream ``<job>/algo-<n>-<epoch>``, and when every host has exited 0 each output's
``LocalPath`` is uploaded under its ``S3Uri`` (``EndOfJob``). A non-zero exit fails the job with an
``AlgorithmError`` FailureReason naming the host's last error line and its exit code.

Simulated, and said so in the job log: the instances (local processes), the image (not pulled:
``python``/``python3`` is this Python and other commands run as this machine has them) and the
container's filesystem: ``/opt/ml/`` in the entrypoint, the arguments and the environment's values is
rewritten to the host's directory, so a script that takes its paths from its command line (as
SageMaker's examples do) reads and writes the right files. Refused, with a one-line reason, before
anything runs: ``Continuous`` uploads, ``Pipe`` inputs, manifest inputs, Athena/Redshift dataset
definitions and an image without ``ContainerEntrypoint`` (its own entrypoint is inside the image).
"""

from __future__ import annotations

import json
import os
import queue
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_dl_provider import service_behaviour

# Processing hosts download, start and are watched as training hosts are.
from airflow_dl_provider.backends.local import training
from airflow_dl_provider.backends.local.state import LocalJob, now_iso
from airflow_dl_provider.backends.local.work import CloudWatchStream, JobFailure, Services
from airflow_dl_provider.validation.preflight import split_s3_uri

if TYPE_CHECKING:
    import subprocess
    import threading

ARN_NOUN = "processing-job"
STATUS_NAMES: dict[str, str] = {}  # Describe spells the statuses as the worker records them
LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
CONTAINER_ROOT = "/opt/ml/"
# A container path as a word of its own or after ``=`` (``--out=/opt/ml/processing/out``).
_CONTAINER_PATH = re.compile(r"(?<![\w./-])/opt/ml/")
_PYTHON = frozenset({"python", "python3"})


def container_path(value: str, host_root: Path) -> str:
    """``value`` with every ``/opt/ml/`` path moved under ``host_root``, as the container would see it."""
    return _CONTAINER_PATH.sub(f"{host_root}/", value)


def _refusal(request: dict[str, Any]) -> str | None:
    """Why the local backend cannot run this job as SageMaker would, or None."""
    for item in request.get("ProcessingInputs") or []:
        name, source = item["InputName"], item.get("S3Input")
        if source is None:
            return f"input {name!r}: the local backend reads S3 inputs, not Athena or Redshift dataset definitions"
        if source.get("S3DataType") != "S3Prefix":
            return f"input {name!r}: the local backend reads S3Prefix inputs, not manifest files"
        if source.get("S3InputMode", "File") != "File":
            return f"input {name!r}: the local backend copies inputs (File mode); Pipe streaming is not simulated"
    for item in (request.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
        output = item.get("S3Output")
        if output is None:
            return f"output {item['OutputName']!r}: the local backend writes S3 outputs, not Feature Store"
        if output["S3UploadMode"] != "EndOfJob":
            return (
                f"output {item['OutputName']!r}: S3UploadMode {output['S3UploadMode']} is not simulated; "
                "the local backend uploads at the end of the job (EndOfJob)"
            )
    if not request["AppSpecification"].get("ContainerEntrypoint"):
        return (
            "AppSpecification.ContainerEntrypoint: the local backend does not pull images, so it cannot run "
            f"{request['AppSpecification']['ImageUri']}'s own entrypoint; give the command to run"
        )
    return None


def _inputs(request: dict[str, Any], s3: Any, hosts: list[str], work: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in request.get("ProcessingInputs") or []:
        source = item["S3Input"]
        sharded = source.get("S3DataDistributionType") == "ShardedByS3Key"
        for index, host in enumerate(hosts):
            target = Path(container_path(source["LocalPath"], work / host))
            target.mkdir(parents=True, exist_ok=True)
            shard = (index, len(hosts)) if sharded else None
            counts[item["InputName"]] = counts.get(item["InputName"], 0) + training._download_prefix(
                s3, source["S3Uri"], target, shard=shard
            )
        if counts[item["InputName"]] == 0:
            raise JobFailure(f"ClientError: input {item['InputName']!r}: no objects under {source['S3Uri']}")
    return counts


def _configure(job: LocalJob, request: dict[str, Any], hosts: list[str], host: str) -> Path:
    """The host's ``/opt/ml``: its config files and every output directory, made before the job starts."""
    root = job.work / host
    config = root / "config"
    config.mkdir(parents=True, exist_ok=True)
    public = {k: v for k, v in request.items() if not k.startswith("_")}
    (config / "processingjobconfig.json").write_text(json.dumps({**public, "ProcessingJobName": job.name}))
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": host, "hosts": hosts}))
    for item in (request.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
        Path(container_path(item["S3Output"]["LocalPath"], root)).mkdir(parents=True, exist_ok=True)
    return root


def _command(request: dict[str, Any], root: Path) -> list[str]:
    app = request["AppSpecification"]
    argv = [
        container_path(str(a), root)
        for a in [*app["ContainerEntrypoint"], *app.get("ContainerArguments", [])]
    ]
    if Path(argv[0]).name in _PYTHON:
        argv[0] = sys.executable
    return argv


def _upload_outputs(request: dict[str, Any], s3: Any, work: Path, hosts: list[str]) -> int:
    """Every file under each output's LocalPath, from every host, to ``<S3Uri>/<path relative to it>``."""
    count = 0
    for item in (request.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
        output = item["S3Output"]
        bucket, prefix = split_s3_uri(output["S3Uri"])
        for host in hosts:
            directory = Path(container_path(output["LocalPath"], work / host))
            for path in sorted(p for p in directory.rglob("*") if p.is_file()):
                key = "/".join(
                    part for part in (prefix.rstrip("/"), str(path.relative_to(directory))) if part
                )
                s3.upload_file(str(path), bucket, key)
                count += 1
    return count


def run(job: LocalJob, services: Services) -> None:
    request = job.request()
    refusal = _refusal(request)
    if refusal:
        raise JobFailure(f"ClientError: {refusal}")
    cluster = request["ProcessingResources"]["ClusterConfig"]
    count = int(cluster.get("InstanceCount", 1))
    hosts = [service_behaviour.PROCESSING.hosts.format(n=i + 1) for i in range(count)]
    epoch = int(time.time())
    streams = {h: CloudWatchStream(services.logs, LOG_GROUP, f"{job.name}/{h}-{epoch}") for h in hosts}
    image = request["AppSpecification"]["ImageUri"]
    streams[hosts[0]].put(
        [
            (
                int(time.time() * 1000),
                f"local backend (simulated instances): {count} x {cluster.get('InstanceType', '-')} as {count} "
                f"local process(es); image {image} not pulled, python runs as {sys.executable}; /opt/ml/ is "
                f"{job.work}/<host>/",
            )
        ]
    )
    counts = _inputs(request, services.s3, hosts, job.work)
    job.update(ProcessingStartTime=now_iso())
    lines: queue.Queue[tuple[str, int, str]] = queue.Queue()
    procs: list[subprocess.Popen[bytes]] = []
    pumps: list[threading.Thread] = []
    for host in hosts:
        root = _configure(job, request, hosts, host)
        env = {k: container_path(str(v), root) for k, v in (request.get("Environment") or {}).items()}
        proc, pump = training.start_host(
            _command(request, root), root, {**os.environ, "PYTHONUNBUFFERED": "1", **env}, host, lines
        )
        procs.append(proc)
        pumps.append(pump)
    streams[hosts[0]].put([(int(time.time() * 1000), f"inputs downloaded: {counts}")])
    max_runtime = float(request["StoppingCondition"]["MaxRuntimeInSeconds"])
    outcome, reason = training._supervise(
        job, procs, hosts, streams, lines, training.MetricMatcher([]), pumps, services, max_runtime
    )
    if outcome == "Failed":
        job.update(ProcessingEndTime=now_iso())
        raise JobFailure(reason)
    if outcome in ("Stopped", "MaxRuntimeExceeded"):
        why = "" if outcome == "Stopped" else "MaxRuntimeExceeded: the job ran past MaxRuntimeInSeconds"
        job.update(ProcessingJobStatus="Stopped", ProcessingEndTime=now_iso(), ExitMessage=why)
        return
    uploaded = _upload_outputs(request, services.s3, job.work, hosts)
    streams[hosts[0]].put([(int(time.time() * 1000), f"outputs uploaded: {uploaded} file(s) (EndOfJob)")])
    job.update(ProcessingJobStatus="Completed", ProcessingEndTime=now_iso())


def initial_state(request: dict[str, Any], name: str) -> dict[str, Any]:
    return {}
