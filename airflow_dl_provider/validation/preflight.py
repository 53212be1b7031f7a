"""Checks that run before a job is created, so a request that would fail or overspend costs nothing.

Pure functions over a rendered request (and, for S3, a client passed in). Each failure is one line
that names the field and the fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from airflow_dl_provider.exceptions import PreflightError
from airflow_dl_provider.presets.instances import (
    SMDATAPARALLEL_INSTANCES,
    efa_instances,
    instance_spec,
    is_gpu,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

DISTRIBUTIONS = ("torch_distributed", "pytorch_ddp", "smdataparallel", "mpi")


def check_distribution(
    instance_type: str, instance_count: int, distribution: str | None, allow_no_efa: bool
) -> None:
    """EFA for multi-node NCCL, and each distribution only where SageMaker runs it."""
    if distribution is None:
        return
    if distribution not in DISTRIBUTIONS:
        raise PreflightError(f"distribution: {distribution!r} is not one of {', '.join(DISTRIBUTIONS)}")
    if distribution == "smdataparallel" and instance_type not in SMDATAPARALLEL_INSTANCES:
        raise PreflightError(
            f"distribution: 'smdataparallel' does not run on {instance_type}; use one of "
            f"{', '.join(sorted(SMDATAPARALLEL_INSTANCES))} or distribution='torch_distributed'"
        )
    if distribution == "torch_distributed" and not (
        is_gpu(instance_type) or instance_type.startswith("ml.trn")
    ):
        raise PreflightError(
            f"distribution: 'torch_distributed' needs a GPU or Trainium instance, not {instance_type}; "
            "use distribution='mpi' (or none) for CPU instances"
        )
    spec = instance_spec(instance_type)
    if instance_count > 1 and not (spec and spec.efa) and is_gpu(instance_type) and not allow_no_efa:
        raise PreflightError(
            f"instance_type: {instance_type} has no EFA, so {instance_count}-node NCCL training falls back to "
            f"TCP sockets; use an EFA type ({', '.join(efa_instances())}) or set allow_no_efa=True"
        )


def check_spot(request: Mapping[str, Any]) -> None:
    stopping = request.get("StoppingCondition") or {}
    if not request.get("EnableManagedSpotTraining"):
        if "MaxWaitTimeInSeconds" in stopping:
            raise PreflightError("spot_max_wait_seconds: is only allowed with use_spot=True")
        return
    max_run = stopping.get("MaxRuntimeInSeconds", 86400)
    max_wait = stopping.get("MaxWaitTimeInSeconds")
    if max_wait is None or max_wait < max_run:
        raise PreflightError(
            f"spot_max_wait_seconds: managed spot needs MaxWaitTimeInSeconds ({max_wait}) >= "
            f"MaxRuntimeInSeconds ({max_run}); raise spot_max_wait_seconds or lower max_runtime_seconds"
        )


def check_channels(request: Mapping[str, Any]) -> None:
    for channel in request.get("InputDataConfig") or []:
        if "FileSystemDataSource" in channel.get("DataSource", {}) and not request.get("VpcConfig"):
            raise PreflightError(
                f"channels[{channel['ChannelName']!r}]: an FSx for Lustre channel needs a VpcConfig; "
                "pass subnets and security_group_ids that reach the file system"
            )


def estimate_cost_usd(
    instance_type: str, instance_count: int, max_runtime_seconds: float, price_per_hour: float | None = None
) -> float | None:
    """On-demand price x instances x the job's time limit: the most the job can cost."""
    if price_per_hour is None:
        spec = instance_spec(instance_type)
        if spec is None:
            return None
        price_per_hour = spec.price_per_hour
    return price_per_hour * instance_count * max_runtime_seconds / 3600.0


def check_cost(
    request: Mapping[str, Any], max_cost_usd: float | None, price_per_hour: float | None = None
) -> float | None:
    """Refuse a training request whose worst-case cost exceeds ``max_cost_usd``; return the estimate."""
    resources = request["ResourceConfig"]
    max_run = float((request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", 86400))
    estimate = estimate_cost_usd(
        resources["InstanceType"], int(resources["InstanceCount"]), max_run, price_per_hour
    )
    if max_cost_usd is None:
        return estimate
    if estimate is None:
        raise PreflightError(
            f"max_cost_usd: no list price for {resources['InstanceType']}; pass price_per_hour to estimate the cost"
        )
    if estimate > max_cost_usd:
        raise PreflightError(
            f"max_cost_usd: up to ${estimate:,.2f} ({resources['InstanceCount']} x {resources['InstanceType']} "
            f"for max_runtime_seconds={max_run:.0f}) exceeds ${max_cost_usd:,.2f}; lower instance_count or "
            "max_runtime_seconds, or raise max_cost_usd"
        )
    return estimate


def split_s3_uri(uri: str, field: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise PreflightError(f"{field}: {uri!r} is not an s3://bucket/prefix URI")
    return parsed.netloc, parsed.path.lstrip("/")


def check_s3_prefix(s3: Any, uri: str, field: str) -> None:
    """The prefix holds at least one object; an empty or missing input fails here, not on the cluster."""
    bucket, prefix = split_s3_uri(uri, field)
    try:
        page = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except Exception as err:
        code = getattr(err, "response", {}).get("Error", {}).get("Code", type(err).__name__)
        raise PreflightError(
            f"{field}: cannot list {uri} ({code}); check the bucket name and the role's access"
        ) from err
    if not page.get("KeyCount", len(page.get("Contents", []))):
        raise PreflightError(f"{field}: no objects under {uri}; upload the data there or fix the URI")
