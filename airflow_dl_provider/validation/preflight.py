"""Checks that run before a job is created, so a request that would fail or overspend costs nothing.

Pure functions over a rendered request (and, for S3, a client passed in). Each failure is one line
that names the field and the fix.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from airflow_dl_provider.exceptions import PreflightError
from airflow_dl_provider.presets.instances import (
    PRICE_REGION,
    SMDATAPARALLEL_INSTANCES,
    accelerator,
    efa_instances,
    has_instance_storage,
    instance_spec,
    list_price,
)
from airflow_dl_provider.service_behaviour import VOLUME_KMS_SOURCE

if TYPE_CHECKING:
    from collections.abc import Mapping

DISTRIBUTIONS = ("torch_distributed", "pytorch_ddp", "smdataparallel", "mpi")
# Where SageMaker runs, region by region, per partition.
SAGEMAKER_ENDPOINTS_PAGE = "https://docs.aws.amazon.com/general/latest/gr/sagemaker.html"


@functools.cache
def sagemaker_regions() -> frozenset[str]:
    """Every region with a SageMaker endpoint, in every partition, from botocore's endpoint data."""
    import botocore.session

    session = botocore.session.get_session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("sagemaker", partition)
    )


def check_region(region: str | None) -> None:
    """Refuse a region SageMaker does not run in (a typo would otherwise surface only at the API call)."""
    if not region:
        raise PreflightError(
            "region: no AWS region is set; set region_name on the operator or in the connection's extra "
            "(e.g. us-east-1), or AWS_DEFAULT_REGION"
        )
    known = sagemaker_regions()
    if region in known:
        return
    near = difflib.get_close_matches(region, sorted(known), n=3)
    hint = f" (did you mean {' or '.join(near)}?)" if near else ""
    raise PreflightError(
        f"region: {region!r} is not a region SageMaker runs in{hint}; set region_name on the operator or in "
        f"the connection's extra to one listed at {SAGEMAKER_ENDPOINTS_PAGE}"
    )


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
    kind = accelerator(instance_type)
    if distribution == "torch_distributed" and kind == "cpu":
        raise PreflightError(
            f"distribution: 'torch_distributed' needs a GPU or Trainium instance, not {instance_type}; "
            "use distribution='mpi' (or none) for CPU instances"
        )
    spec = instance_spec(instance_type)
    # A type the table lacks may well have EFA: only a known EFA-less GPU type is refused.
    if instance_count > 1 and spec is not None and not spec.efa and kind == "gpu" and not allow_no_efa:
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


def check_volume_kms(request: Mapping[str, Any]) -> None:
    """SageMaker refuses ``VolumeKmsKeyId`` on types with local NVMe storage (encrypted by the instance)."""
    resources = request.get("ResourceConfig") or {}
    instance_type = str(resources.get("InstanceType", ""))
    if resources.get("VolumeKmsKeyId") and has_instance_storage(instance_type):
        raise PreflightError(volume_kms_error(instance_type))


def volume_kms_error(instance_type: str) -> str:
    return (
        f"volume_kms_key_id: {instance_type} has local NVMe instance storage, which its hardware encrypts, and "
        f"SageMaker refuses a VolumeKmsKeyId for it ({VOLUME_KMS_SOURCE}); drop volume_kms_key_id or use a "
        "type without instance storage"
    )


def estimate_cost_usd(
    instance_type: str,
    instance_count: int,
    max_runtime_seconds: float,
    price_per_hour: float | None = None,
    region: str = PRICE_REGION,
) -> float | None:
    """On-demand price x instances x the job's time limit: the most the job can cost.

    None when there is no price: the type is not in the table, or ``region`` is not the one whose
    prices the table holds (:data:`~airflow_dl_provider.presets.instances.PRICE_REGION`).
    """
    if price_per_hour is None:
        price_per_hour = list_price(instance_type, region)
        if price_per_hour is None:
            return None
    return price_per_hour * instance_count * max_runtime_seconds / 3600.0


@dataclass(frozen=True)
class CostEstimate:
    """The worst case of one training job.

    :param usd: the most it can cost, or None without a price.
    :param basis: what it multiplies (instances, type, time, whose price), or why there is no price.
    """

    usd: float | None
    basis: str


def training_cost(
    request: Mapping[str, Any], price_per_hour: float | None = None, region: str = PRICE_REGION
) -> CostEstimate:
    """The worst case of a CreateTrainingJob request (or a tuning job's TrainingJobDefinition)."""
    resources = request["ResourceConfig"]
    instance_type, count = resources["InstanceType"], int(resources["InstanceCount"])
    max_run = float((request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", 86400))
    usd = estimate_cost_usd(instance_type, count, max_run, price_per_hour, region)
    if usd is None:
        where = "" if region == PRICE_REGION else f" in {region} (the built-in prices are {PRICE_REGION}'s)"
        return CostEstimate(None, f"no list price for {instance_type}{where}; pass price_per_hour")
    price = (
        f"${price_per_hour:,.2f}/h" if price_per_hour is not None else f"the {PRICE_REGION} on-demand price"
    )
    return CostEstimate(usd, f"{count} x {instance_type} for max_runtime_seconds={max_run:.0f} at {price}")


def check_cost(
    request: Mapping[str, Any],
    max_cost_usd: float | None,
    price_per_hour: float | None = None,
    region: str = PRICE_REGION,
) -> CostEstimate:
    """Refuse a training request whose worst-case cost exceeds ``max_cost_usd``; return the estimate."""
    estimate = training_cost(request, price_per_hour, region)
    if max_cost_usd is None:
        return estimate
    if estimate.usd is None:
        raise PreflightError(f"max_cost_usd: {estimate.basis} to estimate the cost")
    if estimate.usd > max_cost_usd:
        raise PreflightError(
            f"max_cost_usd: up to ${estimate.usd:,.2f} ({estimate.basis}) exceeds ${max_cost_usd:,.2f}; "
            "lower instance_count or max_runtime_seconds, or raise max_cost_usd"
        )
    return estimate


def check_search_cost(
    definition: Mapping[str, Any],
    trials: int,
    max_cost_usd: float | None,
    price_per_hour: float | None = None,
    region: str = PRICE_REGION,
) -> CostEstimate:
    """The whole tuning search: ``trials`` (MaxNumberOfTrainingJobs) x one trial's worst case."""
    trial = training_cost(definition, price_per_hour, region)
    if trial.usd is None:
        if max_cost_usd is not None:
            raise PreflightError(f"max_cost_usd: {trial.basis} to estimate the search's cost")
        return trial
    total = trial.usd * trials
    basis = f"worst case for {trials} trials x ${trial.usd:,.2f} ({trial.basis}) = ${total:,.2f}"
    if max_cost_usd is not None and total > max_cost_usd:
        raise PreflightError(
            f"max_cost_usd: {basis} exceeds ${max_cost_usd:,.2f}; lower max_jobs or max_runtime_seconds, "
            "or raise max_cost_usd"
        )
    return CostEstimate(total, basis)


def split_s3_uri(uri: str, field: str = "S3Uri") -> tuple[str, str]:
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
