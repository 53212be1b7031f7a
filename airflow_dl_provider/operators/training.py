"""Distributed training: composed specs -> a plan with one CreateTrainingJob request.

The job is a :class:`~airflow_dl_provider.specs.training.TrainingDefinition` of small specs
(:class:`Cluster`, :class:`ScriptMode`, :class:`Spot`, :class:`Checkpoint`, :class:`Vpc`). The flat
keyword arguments of earlier releases (``instance_type=``, ``entry_point=``, ``use_spot=`` ...) still
work for this release, mapped onto the specs with a ``DeprecationWarning``.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from typing import TYPE_CHECKING, Any

from airflow_dl_provider.jobs.kinds import JOB_KINDS
from airflow_dl_provider.jobs.plan import JobPlan
from airflow_dl_provider.operators.base import SageMakerJobOperator
from airflow_dl_provider.specs.training import (
    CODE_CHANNEL,
    CODE_CHANNEL_SOURCEDIR,
    INPUT_MODES,
    Checkpoint,
    Cluster,
    ScriptMode,
    Spot,
    TrainingDefinition,
    Vpc,
    distribution_hyperparameters,
    encode_hyperparameter,
    source_archive,
)
from airflow_dl_provider.validation.preflight import (
    CostEstimate,
    check_channels,
    check_cost,
    check_distribution,
    check_region,
    check_s3_prefix,
    check_spot,
    check_volume_kms,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "CODE_CHANNEL",
    "CODE_CHANNEL_SOURCEDIR",
    "INPUT_MODES",
    "Checkpoint",
    "Cluster",
    "DistributedTrainingOperator",
    "ScriptMode",
    "Spot",
    "TrainingDefinition",
    "Vpc",
    "check_training",
    "compose_training",
    "distribution_hyperparameters",
    "encode_hyperparameter",
    "source_archive",
]

# The flat arguments of earlier releases: argument -> (the spec it now belongs to, that spec's field).
FLAT_ARGUMENTS: dict[str, tuple[str, str]] = {
    # Same names: every field of ScriptMode and Vpc, and of Cluster but keep_alive_seconds (newer).
    **{f.name: ("script", f.name) for f in dataclasses.fields(ScriptMode)},
    **{f.name: ("cluster", f.name) for f in dataclasses.fields(Cluster) if f.name != "keep_alive_seconds"},
    **{f.name: ("vpc", f.name) for f in dataclasses.fields(Vpc)},
    # Renamed in their spec: ``use_spot`` is the spec itself.
    "use_spot": ("spot", ""),
    "spot_max_wait_seconds": ("spot", "max_wait_seconds"),
    "checkpoint_s3_uri": ("checkpoint", "s3_uri"),
    "checkpoint_local_path": ("checkpoint", "local_path"),
}
SPEC_TYPES: dict[str, type] = {
    "script": ScriptMode,
    "cluster": Cluster,
    "spot": Spot,
    "checkpoint": Checkpoint,
    "vpc": Vpc,
}
DEFINITION_FIELDS = tuple(f.name for f in dataclasses.fields(TrainingDefinition))


def _unset(value: Any) -> bool:
    """A flat value that meant "not set" (the old defaults): no spec is built from it."""
    return value is None or value is False or (isinstance(value, (list, tuple)) and not value)


def pop_training_arguments(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Take a training definition's fields and the flat (deprecated) arguments out of ``kwargs``."""
    fields = {k: kwargs.pop(k) for k in DEFINITION_FIELDS if k in kwargs}
    flat = {k: kwargs.pop(k) for k in FLAT_ARGUMENTS if k in kwargs}
    return fields, flat


def _specs_from_flat(flat: Mapping[str, Any]) -> dict[str, Any]:
    grouped: dict[str, dict[str, Any]] = {}
    for argument, value in flat.items():
        spec, name = FLAT_ARGUMENTS[argument]
        if name and not _unset(value):
            grouped.setdefault(spec, {})[name] = value
    script = grouped.pop("script", {})
    if script and not ({"entry_point", "source_dir"} & set(script)):
        leftover = sorted(set(script) - {"framework_version", "py_version"})
        if leftover:
            raise ValueError(
                f"{', '.join(leftover)}: only apply to script mode; give entry_point and source_dir"
            )
        script = {}
    specs: dict[str, Any] = {}
    if script:
        specs["script"] = ScriptMode(**{"entry_point": None, "source_dir": None, **script})
    if "cluster" in grouped:
        specs["cluster"] = Cluster(**grouped["cluster"])
    if flat.get("use_spot"):
        specs["spot"] = Spot(**grouped.get("spot", {"max_wait_seconds": None}))
    elif "spot" in grouped:
        raise ValueError("spot_max_wait_seconds: is only allowed with use_spot=True")
    if "checkpoint" in grouped and grouped["checkpoint"].get("s3_uri"):
        specs["checkpoint"] = Checkpoint(**grouped["checkpoint"])
    if "vpc" in grouped:
        vpc = grouped["vpc"]
        specs["vpc"] = Vpc(vpc.get("subnets", []), vpc.get("security_group_ids", []))
    return specs


def compose_training(
    task_id: str,
    training: TrainingDefinition | None,
    fields: Mapping[str, Any],
    flat: Mapping[str, Any],
    *,
    warn: bool = True,
) -> TrainingDefinition:
    """The operator's own copy of its training definition: ``training``, or one built from ``fields``.

    Flat arguments of earlier releases are mapped onto the specs, with a ``DeprecationWarning``.

    :raises ValueError: one line, naming the task and the field.
    """
    given = {k: v for k, v in fields.items() if v is not None}
    try:
        if flat and warn:
            warnings.warn(
                f"{task_id}: {', '.join(sorted(flat))}: flat training arguments are deprecated and go in the "
                "next release; pass cluster=Cluster(...), script=ScriptMode(...), spot=Spot(...), "
                "checkpoint=Checkpoint(...), vpc=Vpc(...) (airflow_dl_provider.specs.training)",
                DeprecationWarning,
                stacklevel=3,
            )
        if training is not None:
            if given or flat:
                raise ValueError(
                    f"training: {', '.join(sorted({*given, *flat}))} go inside training=TrainingDefinition(...), "
                    "not beside it"
                )
            if not isinstance(training, TrainingDefinition):
                raise ValueError(f"training: expected a TrainingDefinition, got {type(training).__name__}")
            # Airflow renders nested specs in place: each operator renders its own copy.
            return copy.deepcopy(training)
        specs = _specs_from_flat(flat)
        for name in specs:
            if name in given:
                flat_names = [k for k, (s, _) in FLAT_ARGUMENTS.items() if s == name and k in flat]
                raise ValueError(f"{name}: give {', '.join(flat_names)} inside {name}=, not beside it")
        arguments = {**given, **specs}
        for name, kind in SPEC_TYPES.items():
            value = arguments.get(name)
            if value is not None and not isinstance(value, kind):
                raise ValueError(f"{name}: expected a {kind.__name__}, got {type(value).__name__}")
        missing = [k for k in ("role_arn", "output_path") if not arguments.get(k)]
        if missing:
            raise ValueError(
                f"{' and '.join(missing)}: a training job needs its execution role and an s3:// output path"
            )
        return TrainingDefinition(**copy.deepcopy(arguments))
    except ValueError as err:
        raise ValueError(f"{task_id}: {err}") from None


class DistributedTrainingOperator(SageMakerJobOperator):
    """Train on a SageMaker cluster (default one ``ml.p3dn.24xlarge``), in script mode or with your image.

    Script mode (``script=ScriptMode(entry_point, source_dir)``): the script runs in the AWS PyTorch
    training container; a local ``source_dir`` is uploaded as a content-addressed
    ``sourcedir.tar.gz`` (a retry uploads nothing new). Or ``image_uri`` runs your own image.

    Give the job as ``training=TrainingDefinition(...)`` (one definition shared with a tuning task),
    or its fields directly:

    :param training: the whole job, a :class:`~airflow_dl_provider.specs.training.TrainingDefinition`;
        then none of the fields below. (templated: its fields are)
    :param role_arn: the SageMaker execution role. (templated)
    :param output_path: ``s3://`` prefix; the model lands at ``<output_path>/<job>/output/model.tar.gz``. (templated)
    :param channels: channel name -> ``s3://`` prefix, or a mapping with ``s3_uri`` or ``fsx``
        (``file_system_id``, ``directory_path``), and optional ``distribution``
        (``FullyReplicated``/``ShardedByS3Key``), ``input_mode``, ``content_type``, ``compression``,
        ``record_wrapper``. (templated)
    :param cluster: instance type, count, volume and its KMS key, warm-pool keep-alive, ``allow_no_efa``
        (:class:`~airflow_dl_provider.specs.training.Cluster`). (templated)
    :param script: entry point, source directory, PyTorch and Python versions, distribution
        (:class:`~airflow_dl_provider.specs.training.ScriptMode`). (templated)
    :param image_uri: a training image; defaults to the AWS PyTorch training container for the
        script's ``framework_version`` on the instance's accelerator (CPU, NVIDIA GPU or Neuron) in the
        job's region. Without ``script`` your image runs as it is. (templated)
    :param hyperparameters: passed to the script as ``--key value`` and in ``SM_HPS``; JSON-encoded in
        script mode (the toolkit decodes them), plain ``str()`` for an image without ``script``. (templated)
    :param metric_definitions: metric name -> regex with one group, matched over the job's logs.
    :param max_runtime_seconds: the job's ``MaxRuntimeInSeconds`` (default one day).
    :param input_mode: ``File`` (default), ``FastFile`` or ``Pipe``.
    :param spot: managed spot training (:class:`~airflow_dl_provider.specs.training.Spot`);
        ``max_wait_seconds`` must be >= ``max_runtime_seconds``.
    :param checkpoint: where ``/opt/ml/checkpoints`` is synced; spot jobs resume from it
        (:class:`~airflow_dl_provider.specs.training.Checkpoint`). (templated)
    :param vpc: subnets and security groups (:class:`~airflow_dl_provider.specs.training.Vpc`);
        FSx channels need one. (templated)
    :param environment: environment variables of the training container. (templated)
    :param output_kms_key_id: KMS key of the model artifact. (templated)
    :param encrypt_inter_container_traffic: encrypt traffic between the job's instances.
    :param enable_network_isolation: no network in the container; script-mode code then arrives in a
        ``code`` input channel, as the SageMaker SDK sends it.
    :param tags: the job's tags. (templated)
    :param max_cost_usd: refuse to start when the price x instances x ``max_runtime_seconds`` exceeds
        this.
    :param price_per_hour: the price for the estimate; the built-in list prices are us-east-1's, so
        in any other region ``max_cost_usd`` needs it.

    Deprecated (this release only; each maps onto its spec with a ``DeprecationWarning``):
    ``entry_point``, ``source_dir``, ``framework_version``, ``py_version``, ``distribution``,
    ``processes_per_host`` (``script``); ``instance_type``, ``instance_count``, ``volume_size_gb``,
    ``volume_kms_key_id``, ``allow_no_efa`` (``cluster``); ``use_spot``, ``spot_max_wait_seconds``
    (``spot``); ``checkpoint_s3_uri``, ``checkpoint_local_path`` (``checkpoint``); ``subnets``,
    ``security_group_ids`` (``vpc``).
    """

    job_kind = JOB_KINDS["training"]
    template_fields: Sequence[str] = (*SageMakerJobOperator.template_fields, "training")

    def __init__(
        self,
        *,
        training: TrainingDefinition | None = None,
        role_arn: str | None = None,
        output_path: str | None = None,
        channels: Mapping[str, str | Mapping[str, Any]] | None = None,
        cluster: Cluster | None = None,
        script: ScriptMode | None = None,
        image_uri: str | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        metric_definitions: Mapping[str, str] | None = None,
        max_runtime_seconds: int | None = None,
        input_mode: str | None = None,
        spot: Spot | None = None,
        checkpoint: Checkpoint | None = None,
        vpc: Vpc | None = None,
        environment: Mapping[str, str] | None = None,
        output_kms_key_id: str | None = None,
        encrypt_inter_container_traffic: bool | None = None,
        enable_network_isolation: bool | None = None,
        tags: Mapping[str, str] | None = None,
        max_cost_usd: float | None = None,
        price_per_hour: float | None = None,
        **kwargs: Any,
    ) -> None:
        _, flat = pop_training_arguments(kwargs)
        super().__init__(**kwargs)
        fields = {
            "role_arn": role_arn,
            "output_path": output_path,
            "channels": channels,
            "cluster": cluster,
            "script": script,
            "image_uri": image_uri,
            "hyperparameters": hyperparameters,
            "metric_definitions": metric_definitions,
            "max_runtime_seconds": max_runtime_seconds,
            "input_mode": input_mode,
            "spot": spot,
            "checkpoint": checkpoint,
            "vpc": vpc,
            "environment": environment,
            "output_kms_key_id": output_kms_key_id,
            "encrypt_inter_container_traffic": encrypt_inter_container_traffic,
            "enable_network_isolation": enable_network_isolation,
            "tags": tags,
        }
        self.training = compose_training(self.task_id, training, fields, flat)
        self.max_cost_usd = max_cost_usd
        self.price_per_hour = price_per_hour

    def facts(self) -> dict[str, Any]:
        """What pre-flight reads besides the request: the distribution and the cost inputs."""
        return {
            "distribution": self.training.distribution,
            "allow_no_efa": self.training.cluster.allow_no_efa,
            "max_cost_usd": self.max_cost_usd,
            "price_per_hour": self.price_per_hour,
        }

    def build(self, context: Any) -> JobPlan:
        region = self.hook.region
        check_region(region)
        request, uploads = self.training.parts(region)
        return JobPlan(request, uploads, facts=self.facts())

    def preflight(self, plan: JobPlan, context: Any) -> None:
        region = self.hook.region
        check_training(self.hook.s3, region, plan.request, plan)
        estimate = check_cost(plan.request, plan.facts["max_cost_usd"], plan.facts["price_per_hour"], region)
        log_cost(self.log, "Worst-case cost", estimate, plan.facts["max_cost_usd"])


def check_training(s3: Any, region: str, request: Mapping[str, Any], plan: JobPlan) -> None:
    """What one training job (or each trial of a search) must satisfy before anything is spent.

    :param request: the CreateTrainingJob request, or a tuning job's TrainingJobDefinition.
    :param plan: the job's plan: its facts (distribution, ``allow_no_efa``) and what it uploads.
    """
    check_region(region)
    resources = request["ResourceConfig"]
    check_distribution(
        resources["InstanceType"],
        int(resources["InstanceCount"]),
        plan.facts["distribution"],
        plan.facts["allow_no_efa"],
    )
    check_spot(request)
    check_channels(request)
    check_volume_kms(request)
    staged = {upload.uri for upload in plan.uploads}
    for channel in request.get("InputDataConfig") or []:
        s3_source = channel["DataSource"].get("S3DataSource")
        # What the plan uploads (the code channel's archive) is staged after these checks.
        if s3_source and s3_source["S3Uri"] not in staged:
            check_s3_prefix(s3, s3_source["S3Uri"], f"channels[{channel['ChannelName']!r}]")


def log_cost(log: Any, what: str, estimate: CostEstimate, max_cost_usd: float | None) -> None:
    """Say the worst case and whose prices it uses, or that there is no price to estimate it with."""
    if estimate.usd is None:
        log.info("%s: not estimated: %s", what, estimate.basis)
        return
    ceiling = "" if max_cost_usd is None else f" (within max_cost_usd={max_cost_usd})"
    log.info("%s: up to $%.2f: %s%s", what, estimate.usd, estimate.basis, ceiling)
