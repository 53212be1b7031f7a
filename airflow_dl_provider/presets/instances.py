"""What each SageMaker training instance type offers: accelerators, EFA, instance storage and a price.

Sources (read 2025): the SageMaker developer guide, "Run training with EFA" (EFA-capable types),
"Distributed data parallel: supported instance types" (``smdataparallel``), and the SageMaker
pricing page, region us-east-1 (:data:`PRICE_REGION`), on-demand training prices per instance-hour.
Prices are list prices used only for the ``max_cost_usd`` pre-flight estimate; they are us-east-1's,
vary by region and change over time, so in any other region an operator passes ``price_per_hour``
(:func:`list_price` says there is none rather than lending us-east-1's).

What the table does not list is derived from the instance family, as EC2 names it
(https://docs.aws.amazon.com/ec2/latest/instancetypes/instance-type-names.html): ``p*`` and ``g*``
carry NVIDIA GPUs, ``trn*`` and ``inf*`` AWS Neuron devices, anything else is CPU; local NVMe
instance storage comes from :data:`~airflow_dl_provider.service_behaviour.NVME_INSTANCE_FAMILIES`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from airflow_dl_provider.service_behaviour import INSTANCE_STORE_ATTRIBUTE, NVME_INSTANCE_FAMILIES

Accelerator = Literal["cpu", "gpu", "neuron"]
# The region whose on-demand prices the table holds.
PRICE_REGION = "us-east-1"
# ``ml.<family>.<size>``; a family is letters, a generation, attribute letters and an optional suffix
# (``g4dn``, ``p4de``, ``trn1n``, ``p6-b200``).
_INSTANCE_TYPE = re.compile(
    r"^ml\.(?P<family>(?P<series>[a-z]+)\d+(?P<attributes>[a-z]*)(?:-[a-z0-9]+)?)\.[a-z0-9]+$"
)


@dataclass(frozen=True)
class InstanceSpec:
    """One training instance type.

    :param gpus: NVIDIA GPUs (or Neuron devices for trn*) per instance.
    :param efa: the instance has an Elastic Fabric Adapter usable by NCCL (aws-ofi-nccl).
    :param price_per_hour: on-demand SageMaker training price in :data:`PRICE_REGION` (us-east-1), USD.
    """

    gpus: int
    efa: bool
    price_per_hour: float


INSTANCES: dict[str, InstanceSpec] = {
    # CPU
    "ml.m5.large": InstanceSpec(0, False, 0.115),
    "ml.m5.xlarge": InstanceSpec(0, False, 0.23),
    "ml.m5.2xlarge": InstanceSpec(0, False, 0.461),
    "ml.m5.4xlarge": InstanceSpec(0, False, 0.922),
    "ml.c5.xlarge": InstanceSpec(0, False, 0.204),
    "ml.c5.2xlarge": InstanceSpec(0, False, 0.408),
    "ml.c5.4xlarge": InstanceSpec(0, False, 0.816),
    "ml.c5.9xlarge": InstanceSpec(0, False, 1.836),
    "ml.c5n.18xlarge": InstanceSpec(0, True, 4.666),
    # NVIDIA V100
    "ml.p3.2xlarge": InstanceSpec(1, False, 3.825),
    "ml.p3.8xlarge": InstanceSpec(4, False, 14.688),
    "ml.p3.16xlarge": InstanceSpec(8, False, 28.152),
    "ml.p3dn.24xlarge": InstanceSpec(8, True, 35.894),
    # NVIDIA A100 / H100 / H200
    "ml.p4d.24xlarge": InstanceSpec(8, True, 37.688),
    "ml.p4de.24xlarge": InstanceSpec(8, True, 47.11),
    "ml.p5.48xlarge": InstanceSpec(8, True, 113.068),
    "ml.p5e.48xlarge": InstanceSpec(8, True, 124.376),
    "ml.p5en.48xlarge": InstanceSpec(8, True, 130.93),
    # NVIDIA T4 / A10G / L4
    "ml.g4dn.xlarge": InstanceSpec(1, False, 0.736),
    "ml.g4dn.12xlarge": InstanceSpec(4, False, 4.89),
    "ml.g5.xlarge": InstanceSpec(1, False, 1.408),
    "ml.g5.2xlarge": InstanceSpec(1, False, 1.515),
    "ml.g5.12xlarge": InstanceSpec(4, False, 7.09),
    "ml.g5.48xlarge": InstanceSpec(8, True, 20.36),
    "ml.g6.xlarge": InstanceSpec(1, False, 1.006),
    "ml.g6.48xlarge": InstanceSpec(8, True, 16.71),
    # AWS Trainium
    "ml.trn1.2xlarge": InstanceSpec(1, False, 1.544),
    "ml.trn1.32xlarge": InstanceSpec(16, True, 24.725),
    "ml.trn1n.32xlarge": InstanceSpec(16, True, 28.497),
}

# SageMaker's distributed data parallel library (smdistributed.dataparallel) runs only here.
SMDATAPARALLEL_INSTANCES = frozenset(
    {"ml.p3.16xlarge", "ml.p3dn.24xlarge", "ml.p4d.24xlarge", "ml.p4de.24xlarge", "ml.p5.48xlarge"}
)


def instance_spec(instance_type: str) -> InstanceSpec | None:
    """Return the table row for ``instance_type``, or None when the table does not know it."""
    return INSTANCES.get(instance_type)


def instance_family(instance_type: str) -> str:
    """``ml.g5.4xlarge`` -> ``g5``, ``ml.p6-b200.48xlarge`` -> ``p6-b200``; ``""`` when not ``ml.<family>.<size>``."""
    match = _INSTANCE_TYPE.match(instance_type)
    return match["family"] if match else ""


def accelerator(instance_type: str) -> Accelerator:
    """``gpu`` for the NVIDIA families (``p*``, ``g*``), ``neuron`` for ``trn*``/``inf*``, else ``cpu``.

    From the family, not only the table, so a type the table lacks (``ml.g6e.12xlarge``,
    ``ml.p5e.48xlarge``) still gets the GPU container and the GPU checks.
    """
    match = _INSTANCE_TYPE.match(instance_type)
    series = match["series"] if match else ""
    if series in ("trn", "inf"):
        return "neuron"
    if series[:1] in ("p", "g"):
        return "gpu"
    return "cpu"


def is_gpu(instance_type: str) -> bool:
    """The instance carries NVIDIA GPUs (Trainium and Inferentia do not count)."""
    return accelerator(instance_type) == "gpu"


def has_instance_storage(instance_type: str) -> bool:
    """The instance has local NVMe instance storage (so SageMaker refuses a ``VolumeKmsKeyId``)."""
    match = _INSTANCE_TYPE.match(instance_type)
    if not match:
        return False
    return match["family"] in NVME_INSTANCE_FAMILIES or INSTANCE_STORE_ATTRIBUTE in match["attributes"]


def list_price(instance_type: str, region: str) -> float | None:
    """The table's on-demand price per hour, only for :data:`PRICE_REGION`; None elsewhere or when unknown."""
    spec = INSTANCES.get(instance_type)
    if spec is None or region != PRICE_REGION:
        return None
    return spec.price_per_hour


def efa_instances() -> list[str]:
    """The EFA-capable instance types, sorted, for error messages."""
    return sorted(name for name, spec in INSTANCES.items() if spec.efa)
