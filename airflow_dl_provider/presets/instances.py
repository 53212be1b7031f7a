"""What each SageMaker training instance type offers: accelerators, EFA, and an on-demand price.

Sources (read 2025): the SageMaker developer guide, "Run training with EFA" (EFA-capable types),
"Distributed data parallel: supported instance types" (``smdataparallel``), and the SageMaker
pricing page, region us-east-1, on-demand training prices per instance-hour. Prices are list prices
used only for the ``max_cost_usd`` pre-flight estimate; they vary by region and change over time, so
an operator may pass ``price_per_hour`` to override.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InstanceSpec:
    """One training instance type.

    :param gpus: NVIDIA GPUs (or Neuron devices for trn*) per instance.
    :param efa: the instance has an Elastic Fabric Adapter usable by NCCL (aws-ofi-nccl).
    :param price_per_hour: us-east-1 on-demand SageMaker training price, USD.
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


def is_gpu(instance_type: str) -> bool:
    spec = INSTANCES.get(instance_type)
    return bool(spec and spec.gpus and not instance_type.startswith("ml.trn"))


def efa_instances() -> list[str]:
    """The EFA-capable instance types, sorted, for error messages."""
    return sorted(name for name, spec in INSTANCES.items() if spec.efa)
