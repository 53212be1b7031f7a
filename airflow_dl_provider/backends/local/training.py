"""Script-mode training on this machine, as SageMaker's framework containers run it.

``InstanceCount=N`` becomes N processes ("hosts" ``algo-1..algo-N``) wired with torch.distributed's
environment as torchrun sets it, so a DDP script forms one process group over gloo. Channels are
downloaded from S3, the ``SM_*`` environment and the script's command line are what SageMaker's
training toolkit builds from the hyperparameters, each host's output goes to its own CloudWatch
stream, ``MetricDefinitions`` are matched over the log lines, and the model directory of ``algo-1``
is uploaded as ``<S3OutputPath>/<job>/output/model.tar.gz``. With ``EnableNetworkIsolation`` the code
must come from a channel (``/opt/ml/input/data/code/sourcedir.tar.gz``), as on SageMaker.

Simulated, and said so in the job log: the instances (they are local processes, with no GPU unless
this machine has one), EFA/NCCL (gloo over loopback instead), the container image (the script runs
with this Python) and network isolation (refused S3 code is all it enforces: the processes keep this
machine's network).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.backends.local import warm_pool
from airflow_dl_provider.backends.local.processes import die_with_this_thread, free_port, job_environment
from airflow_dl_provider.backends.local.server import LOCAL_CREDENTIALS
from airflow_dl_provider.backends.local.state import LocalJob, now_iso
from airflow_dl_provider.backends.local.work import CloudWatchStream, JobFailure, Services
from airflow_dl_provider.hyperparameters import decode_hyperparameters
from airflow_dl_provider.validation.preflight import split_s3_uri

if TYPE_CHECKING:
    from collections.abc import Sequence

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
ARN_NOUN = "training-job"
STATUS_NAMES: dict[str, str] = {}  # Describe spells the statuses as the worker records them
_FLUSH_SECONDS = 0.5
_KILL_GRACE_SECONDS = 10
# A host as the supervisor drives it: a fresh process, or one forked off a warm pool (:mod:`.warm_pool`).
Host = subprocess.Popen[bytes] | warm_pool.PooledHost


# Where SageMaker mounts the job's files in the container; locally each host's own directory.
CONTAINER_ROOT = "/opt/ml/"
# The hyperparameters the training toolkit keeps for itself (sagemaker_training.params:
# SAGEMAKER_HYPERPARAMETERS, and every name with the "sagemaker_" prefix); the rest are the script's.
_TOOLKIT_HYPERPARAMETERS = frozenset(
    {"sagemaker_program", "sagemaker_submit_directory", "sagemaker_region", "sagemaker_job_name",
     "sagemaker_container_log_level", "sagemaker_enable_cloudwatch_metrics", "sagemaker_s3_output",
     "default_user_module_name", "_tuning_objective_metric"}
)  # fmt: skip


def user_hyperparameters(hps: dict[str, Any]) -> dict[str, Any]:
    """The script's hyperparameters: what the toolkit leaves after taking its own."""
    return {
        k: v for k, v in hps.items() if k not in _TOOLKIT_HYPERPARAMETERS and not k.startswith("sagemaker_")
    }


def env_value(value: Any) -> str:
    """A value as the toolkit writes it into an ``SM_*`` variable (``mapping.to_env_vars``).

    Strings as they are; everything else (numbers, booleans, lists, dicts) as compact, sorted JSON.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def cmd_args(hps: dict[str, Any]) -> list[str]:
    """The script's command line, as the toolkit builds it (``mapping.to_cmd_args``).

    Sorted by name; ``--name`` (``-n`` for one letter); a dict becomes ``k=v,k2=v2``, anything else
    ``str(value)`` (so ``True``, ``[64, 32]``), exactly what a script on SageMaker receives.
    """
    args: list[str] = []
    for key in sorted(hps):
        name = str(key)
        value = hps[key]
        args.append(f"--{name}" if len(name) > 1 else f"-{name}")
        if isinstance(value, dict):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append("" if value is None else str(value))
    return args


def _download_prefix(s3: Any, uri: str, target: Path, *, shard: tuple[int, int] | None = None) -> int:
    bucket, prefix = split_s3_uri(uri)
    count = 0
    index = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith("/"):
                continue
            index += 1
            if shard and (index - 1) % shard[1] != shard[0]:
                continue
            relative = key[len(prefix) :].lstrip("/") or Path(key).name
            dest = target / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(dest))
            count += 1
    return count


def _download_channels(job: LocalJob, request: dict[str, Any], s3: Any, hosts: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for channel in request.get("InputDataConfig", []):
        name = channel["ChannelName"]
        source = channel["DataSource"]
        if "FileSystemDataSource" in source:
            raise JobFailure(
                f"ClientError: channel {name!r}: FSx for Lustre / EFS channels cannot be mounted by the local "
                "backend; stage the data in S3 for local runs"
            )
        s3_source = source["S3DataSource"]
        sharded = s3_source.get("S3DataDistributionType") == "ShardedByS3Key"
        for i, host in enumerate(hosts):
            target = job.work / host / "input" / "data" / name
            target.mkdir(parents=True, exist_ok=True)
            shard = (i, len(hosts)) if sharded else None
            counts[name] = counts.get(name, 0) + _download_prefix(s3, s3_source["S3Uri"], target, shard=shard)
        if counts[name] == 0:
            raise JobFailure(f"ClientError: channel {name!r}: no objects under {s3_source['S3Uri']}")
    return counts


def _fetch_source(s3: Any, submit_dir: str, code_dir: Path, host_root: Path, isolated: bool) -> None:
    """Unpack the code as the toolkit does: from S3, or from a path in the container (the code channel)."""
    code_dir.mkdir(parents=True, exist_ok=True)
    if submit_dir.startswith("s3://"):
        if isolated:
            # The toolkit would try S3 and fail: the container has no network to reach it.
            raise JobFailure(
                f"AlgorithmError: sagemaker_submit_directory {submit_dir} is in S3, which a network-isolated "
                f"container cannot reach; ship the code in the 'code' channel "
                f"({CONTAINER_ROOT}input/data/code/sourcedir.tar.gz) as the SageMaker SDK does"
            )
        bucket, key = split_s3_uri(submit_dir)
        archive = code_dir.parent / "sourcedir.tar.gz"
        s3.download_file(bucket, key, str(archive))
    elif submit_dir.startswith(CONTAINER_ROOT):
        archive = host_root / submit_dir[len(CONTAINER_ROOT) :]
        if not archive.is_file():
            raise JobFailure(
                f"AlgorithmError: sagemaker_submit_directory {submit_dir} is not in the container; "
                "is the channel that carries it in InputDataConfig?"
            )
    else:
        raise JobFailure(
            f"ClientError: sagemaker_submit_directory must be an s3:// URI or a path under {CONTAINER_ROOT}, "
            f"got {submit_dir!r}"
        )
    with tarfile.open(archive) as tar:
        tar.extractall(code_dir, filter="data")


def host_environment(
    request: dict[str, Any], hps: dict[str, Any], hosts: list[str], rank: int, host_root: Path, port: int
) -> dict[str, str]:
    """The ``SM_*`` variables SageMaker's training toolkit sets, plus torchrun's for N > 1 hosts.

    Values are written as the toolkit writes them (:func:`env_value`): a dict or list hyperparameter
    arrives in ``SM_HP_<NAME>`` as JSON, never as a Python repr.
    """
    user_hps = user_hyperparameters(hps)
    channels = sorted(c["ChannelName"] for c in request.get("InputDataConfig", []))
    host = hosts[rank]
    env = {
        "SM_HOSTS": env_value(hosts),
        "SM_CURRENT_HOST": host,
        "SM_CURRENT_INSTANCE_TYPE": request["ResourceConfig"]["InstanceType"],
        "SM_NUM_GPUS": "0",
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_HPS": env_value(user_hps),
        "SM_CHANNELS": env_value(channels),
        "SM_USER_ENTRY_POINT": str(hps.get("sagemaker_program", "")),
        "SM_MODULE_DIR": str(hps.get("sagemaker_submit_directory", "")),
        "SM_MODEL_DIR": str(host_root / "model"),
        "SM_INPUT_DIR": str(host_root / "input"),
        "SM_INPUT_CONFIG_DIR": str(host_root / "input" / "config"),
        "SM_OUTPUT_DIR": str(host_root / "output"),
        "SM_OUTPUT_DATA_DIR": str(host_root / "output" / "data"),
        "SM_OUTPUT_INTERMEDIATE_DIR": str(host_root / "output" / "intermediate"),
        "SM_CHECKPOINT_DIR": str(host_root / "checkpoints"),
        "SM_LOG_LEVEL": str(hps.get("sagemaker_container_log_level", 20)),
        "SM_NETWORK_INTERFACE_NAME": "lo",
        "SM_USER_ARGS": env_value(cmd_args(user_hps)),
        "PYTHONUNBUFFERED": "1",
        **{f"SM_CHANNEL_{c.upper()}": str(host_root / "input" / "data" / c) for c in channels},
        **{f"SM_HP_{k.upper()}": env_value(v) for k, v in user_hps.items()},
        **{str(k): str(v) for k, v in (request.get("Environment") or {}).items()},
    }
    if len(hosts) > 1:
        env.update(
            RANK=str(rank),
            WORLD_SIZE=str(len(hosts)),
            LOCAL_RANK="0",
            LOCAL_WORLD_SIZE="1",
            GROUP_RANK=str(rank),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
        )
    for sub in ("model", "output/data", "output/intermediate", "input/config", "checkpoints"):
        (host_root / sub).mkdir(parents=True, exist_ok=True)
    return env


def _pump(stream: IO[bytes], host: str, lines: queue.Queue[tuple[str, int, str]]) -> None:
    for raw in iter(stream.readline, b""):
        lines.put((host, int(time.time() * 1000), raw.decode(errors="replace").rstrip("\n")))
    stream.close()


def start_host(
    argv: list[str], cwd: Path, env: dict[str, str], host: str, lines: queue.Queue[tuple[str, int, str]]
) -> tuple[subprocess.Popen[bytes], threading.Thread]:
    """Start one host's process and the thread that copies its output, line by line, into ``lines``.

    Processing hosts start the same way (:mod:`airflow_dl_provider.backends.local.processing`).
    """
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_this_thread(),  # a killed runner leaves no host running
    )
    assert proc.stdout is not None
    return proc, pumping(proc.stdout, host, lines)


def pumping(stdout: IO[bytes], host: str, lines: queue.Queue[tuple[str, int, str]]) -> threading.Thread:
    """The started thread that copies a host's output, line by line, into ``lines``."""
    pump = threading.Thread(target=_pump, args=(stdout, host, lines), daemon=True)
    pump.start()
    return pump


class MetricMatcher:
    """``MetricDefinitions`` regexes over log lines; the last match of each metric is its final value."""

    def __init__(self, definitions: list[dict[str, str]]) -> None:
        self.patterns = [(d["Name"], re.compile(d["Regex"])) for d in definitions]
        self.final: dict[str, tuple[float, str]] = {}

    def feed(self, line: str) -> None:
        for name, pattern in self.patterns:
            match = pattern.search(line)
            if match:
                with contextlib.suppress(ValueError):
                    self.final[name] = (
                        float(match.group(1) if match.groups() else match.group(0)),
                        now_iso(),
                    )

    def data_list(self) -> list[dict[str, Any]]:
        return [{"MetricName": n, "Value": v, "Timestamp": t} for n, (v, t) in self.final.items()]


def _failure_reason(host_root: Path, tail: list[str], code: int) -> str:
    failure_file = host_root / "output" / "failure"
    if failure_file.exists() and failure_file.read_text().strip():
        message = failure_file.read_text().strip().splitlines()[0]
    else:
        errors = [line for line in tail if re.match(r"^\w+(\.\w+)*(Error|Exception)\b", line)]
        message = errors[-1] if errors else (tail[-1] if tail else "no output")
    return f"AlgorithmError: {message}, exit code: {code}"


def _terminate(procs: Sequence[Host]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + _KILL_GRACE_SECONDS
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()


def _outcome(procs: Sequence[Host], services: Services, elapsed: float, max_runtime: float) -> str | None:
    """How the hosts ended, or None while they run: a stop or the time limit wins over exit codes."""
    codes = [p.poll() for p in procs]
    if services.stop.is_set():
        return "Stopped"
    if elapsed > max_runtime:
        return "MaxRuntimeExceeded"
    if any(c not in (None, 0) for c in codes):
        return "Failed"
    if all(c == 0 for c in codes):
        return "Completed"
    return None


def _supervise(
    job: LocalJob,
    procs: Sequence[Host],
    hosts: list[str],
    streams: dict[str, CloudWatchStream],
    lines: queue.Queue[tuple[str, int, str]],
    metrics: MetricMatcher,
    pumps: list[threading.Thread],
    services: Services,
    max_runtime: float,
) -> tuple[str, str]:
    """Copy output to CloudWatch and watch the hosts; return ``(outcome, failure reason)``."""
    started = time.monotonic()
    pending: dict[str, list[tuple[int, str]]] = {h: [] for h in hosts}
    tails: dict[str, list[str]] = {h: [] for h in hosts}
    outcome: str | None = None
    culprit: tuple[str, int] = (hosts[0], 0)
    last_flush = time.monotonic()
    while True:
        try:
            host, stamp, line = lines.get(timeout=0.2)
            pending[host].append((stamp, line))
            tails[host] = [*tails[host][-40:], line]
            metrics.feed(line)
        except queue.Empty:
            pass
        if outcome is None:
            outcome = _outcome(procs, services, time.monotonic() - started, max_runtime)
            if outcome == "Failed":
                # Name the host that failed first, before the peers we terminate exit non-zero too.
                culprit = next(
                    (h, p.returncode)
                    for h, p in zip(hosts, procs, strict=True)
                    if p.returncode not in (None, 0)
                )
            if outcome and outcome != "Completed":
                _terminate(procs)
        # Done once every pipe is drained, so the last lines (the error) reach the log and the tails.
        done = outcome is not None and not any(t.is_alive() for t in pumps) and lines.empty()
        if done or time.monotonic() - last_flush > _FLUSH_SECONDS:
            for host, batch in pending.items():
                streams[host].put(batch)
                batch.clear()
            last_flush = time.monotonic()
            job.update(FinalMetricDataList=metrics.data_list())
        if done:
            assert outcome is not None
            if outcome == "Failed":
                host, code = culprit
                return "Failed", _failure_reason(job.work / host, tails[host], code)
            return outcome, ""


def _upload_dir(s3: Any, directory: Path, uri: str) -> None:
    bucket, key = split_s3_uri(uri)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "archive.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for path in sorted(directory.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(directory)), recursive=False)
        s3.upload_file(str(archive), bucket, key)


def run(job: LocalJob, services: Services) -> None:
    request = job.request()
    name = job.name
    hps = decode_hyperparameters(request.get("HyperParameters") or {})
    program, submit_dir = hps.get("sagemaker_program"), hps.get("sagemaker_submit_directory")
    image = request["AlgorithmSpecification"].get("TrainingImage", "")
    if not program or not submit_dir:
        raise JobFailure(
            "ClientError: the local backend runs script mode only (hyperparameters sagemaker_program and "
            f"sagemaker_submit_directory); it cannot run the container image {image!r}"
        )
    count = int(request["ResourceConfig"]["InstanceCount"])
    hosts = [f"algo-{i + 1}" for i in range(count)]
    epoch = int(time.time())
    streams = {h: CloudWatchStream(services.logs, LOG_GROUP, f"{name}/{h}-{epoch}") for h in hosts}
    streams[hosts[0]].put(
        [
            (
                int(time.time() * 1000),
                f"local backend (simulated instances): {count} x {request['ResourceConfig']['InstanceType']} as "
                f"{count} local process(es); image {image or '-'} not pulled, script runs with {sys.executable}; "
                "EFA/NCCL replaced by gloo on loopback",
            )
        ]
    )

    pooled = warm_pool.acquire(services.origin.home, job, request)
    if pooled is None:
        _train(job, services, request, hps, streams, None)
        return
    pool, previous = pooled
    job.update(_warm_pool=str(pool.dir))
    how = f"reused from training job {previous}" if previous else "started cold"
    keep = service_behaviour.warm_pool_keep_alive(request)
    streams[hosts[0]].put(
        [
            (
                int(time.time() * 1000),
                f"warm pool (simulated: one local process with torch imported, forking the hosts): {how}; "
                f"kept {keep} s after this job",
            )
        ]
    )
    try:
        _train(job, services, request, hps, streams, pool)
    except JobFailure:
        pool.release(job)  # an algorithm or client error leaves the cluster healthy: the pool is kept
        raise
    except BaseException:
        pool.terminate()
        raise
    pool.release(job)


def _train(
    job: LocalJob,
    services: Services,
    request: dict[str, Any],
    hps: dict[str, Any],
    streams: dict[str, CloudWatchStream],
    pool: warm_pool.WarmPool | None,
) -> None:
    """The job from Downloading on; its hosts are forked off ``pool``, or started cold without one."""
    name, hosts = job.name, list(streams)
    count = len(hosts)
    program, submit_dir = hps["sagemaker_program"], hps["sagemaker_submit_directory"]
    job.transition("Downloading", "Downloading input data (local)")
    counts = _download_channels(job, request, services.s3, hosts)
    code_dir = job.work / "code"
    isolated = bool(request.get("EnableNetworkIsolation"))
    _fetch_source(services.s3, str(submit_dir), code_dir, job.work / hosts[0], isolated)
    if not (code_dir / str(program)).is_file():
        raise JobFailure(f"ClientError: entry point {program!r} is not in {submit_dir}")

    job.transition("Training", f"Training on {count} host(s); channels {counts}")
    training_start = time.time()
    job.update(TrainingStartTime=now_iso())
    port = free_port()
    lines: queue.Queue[tuple[str, int, str]] = queue.Queue()
    procs: list[Host] = []
    pumps: list[threading.Thread] = []
    argv = [str(program), *cmd_args(user_hyperparameters(hps))]
    for rank, host in enumerate(hosts):
        # The runner's environment is the job's already (no caller secrets: client.py); again here, as a
        # host on a SageMaker instance sees its job's variables and its role's credentials, nothing else.
        env = {
            **job_environment(os.environ, LOCAL_CREDENTIALS),
            **host_environment(request, hps, hosts, rank, job.work / host, port),
        }
        if pool is None:
            proc, pump = start_host([sys.executable, *argv], code_dir, env, host, lines)
            procs.append(proc)
        else:
            pooled = pool.spawn(argv, env, code_dir)
            pump = pumping(pooled.stdout, host, lines)
            procs.append(pooled)
        pumps.append(pump)

    metrics = MetricMatcher(request["AlgorithmSpecification"].get("MetricDefinitions") or [])
    max_runtime = float((request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", 86400))
    outcome, reason = _supervise(job, procs, hosts, streams, lines, metrics, pumps, services, max_runtime)
    if pool is not None:
        pool.release(job)  # the hosts are done: Available before the job reports its end, as on SageMaker
    seconds = max(1, round(time.time() - training_start))
    timing = {
        "TrainingEndTime": now_iso(),
        "TrainingTimeInSeconds": seconds,
        "BillableTimeInSeconds": seconds * count,
        "FinalMetricDataList": metrics.data_list(),
    }
    if outcome == "Failed":
        job.update(**timing)
        raise JobFailure(reason)
    if outcome in ("Stopped", "MaxRuntimeExceeded"):
        message = "Training job stopped" if outcome == "Stopped" else "MaxRuntimeInSeconds reached"
        job.transition(outcome, message, TrainingJobStatus="Stopped", **timing)
        return

    job.transition("Uploading", "Uploading generated training model (local S3)")
    output = request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
    model_uri = f"{output}/{name}/output/model.tar.gz"
    _upload_dir(services.s3, job.work / hosts[0] / "model", model_uri)
    _upload_dir(services.s3, job.work / hosts[0] / "output" / "data", f"{output}/{name}/output/output.tar.gz")
    job.transition("Completed", "Training job completed", TrainingJobStatus="Completed", **timing)


def initial_state(request: dict[str, Any], name: str) -> dict[str, Any]:
    # Describe always carries these (the service model marks them required), from the first call on.
    output = request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
    stamp = now_iso()
    return {
        "SecondaryStatus": "Starting",
        "SecondaryStatusTransitions": [
            {
                "Status": "Starting",
                "StartTime": stamp,
                "StatusMessage": "Launching local processes (simulated instances)",
            }
        ],
        "ModelArtifacts": {"S3ModelArtifacts": f"{output}/{name}/output/model.tar.gz"},
    }
