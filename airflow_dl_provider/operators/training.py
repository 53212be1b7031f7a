"""Distributed training: typed arguments -> one CreateTrainingJob request."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow_dl_provider.exceptions import PreflightError
from airflow_dl_provider.jobs.kinds import JOB_KINDS
from airflow_dl_provider.operators.base import SageMakerJobOperator
from airflow_dl_provider.presets.containers import pytorch_image, version_error
from airflow_dl_provider.presets.instances import has_instance_storage
from airflow_dl_provider.validation.preflight import (
    DISTRIBUTIONS,
    CostEstimate,
    check_channels,
    check_cost,
    check_distribution,
    check_region,
    check_s3_prefix,
    check_spot,
    check_volume_kms,
    split_s3_uri,
    volume_kms_error,
)

INPUT_MODES = ("File", "FastFile", "Pipe")
CHANNEL_KEYS = frozenset(
    {"s3_uri", "fsx", "distribution", "input_mode", "content_type", "compression", "record_wrapper"}
)
FSX_KEYS = frozenset({"file_system_id", "directory_path", "file_system_type", "access_mode"})
# With network isolation the container cannot reach S3, so the SageMaker SDK ships the source archive
# in an input channel and points the toolkit at its path inside the container.
CODE_CHANNEL = "code"
CODE_CHANNEL_SOURCEDIR = f"/opt/ml/input/data/{CODE_CHANNEL}/sourcedir.tar.gz"


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def encode_hyperparameter(value: Any, script_mode: bool) -> str:
    """One HyperParameters value as the SageMaker SDK sends it.

    Script mode (a framework estimator): ``json.dumps``, which the training toolkit ``json.loads``
    back. A bring-your-own image gets ``str(value)``, as the SDK's plain ``Estimator`` sends it.
    """
    return json.dumps(value) if script_mode else str(value)


def source_upload_uri(request: Mapping[str, Any]) -> str | None:
    """Where the request expects ``sourcedir.tar.gz`` in S3: the submit directory or the code channel."""
    raw = (request.get("HyperParameters") or {}).get("sagemaker_submit_directory")
    if raw is None:
        return None
    submit = json.loads(raw)
    if submit != CODE_CHANNEL_SOURCEDIR:
        return str(submit)
    for channel in request.get("InputDataConfig") or []:
        if channel["ChannelName"] == CODE_CHANNEL:
            return str(channel["DataSource"]["S3DataSource"]["S3Uri"])
    raise PreflightError(
        f"channels: sagemaker_submit_directory is {CODE_CHANNEL_SOURCEDIR} but the request has no "
        f"{CODE_CHANNEL!r} channel; leave that channel and hyperparameter to the operator"
    )


def distribution_hyperparameters(
    distribution: str | None, instance_type: str, processes_per_host: int | None
) -> dict[str, Any]:
    """The hyperparameters the SageMaker Python SDK sets for each ``distribution``."""
    if distribution == "torch_distributed":
        return {"sagemaker_torch_distributed_enabled": True}
    if distribution == "pytorch_ddp":
        return {"sagemaker_pytorch_ddp_enabled": True}
    if distribution == "smdataparallel":
        return {
            "sagemaker_distributed_dataparallel_enabled": True,
            "sagemaker_distributed_dataparallel_custom_mpi_options": "",
            "sagemaker_instance_type": instance_type,
        }
    if distribution == "mpi":
        return {
            "sagemaker_mpi_enabled": True,
            "sagemaker_mpi_num_of_processes_per_host": processes_per_host or 1,
            "sagemaker_mpi_custom_mpi_options": "",
        }
    return {}


def source_archive(source_dir: str | Path) -> tuple[bytes, str]:
    """``sourcedir.tar.gz`` of a local directory, byte-identical for identical files, and its digest.

    Fixed order, times and owners make the archive reproducible, so its content address is stable and
    a retried task uploads nothing new.
    """
    root = Path(source_dir)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(root)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            with open(path, "rb") as handle:
                tar.addfile(info, handle)
    data = gzip.compress(raw.getvalue(), mtime=0)
    return data, hashlib.sha256(data).hexdigest()[:16]


def _channel(name: str, spec: str | Mapping[str, Any], default_mode: str) -> dict[str, Any]:
    if isinstance(spec, str):
        spec = {"s3_uri": spec}
    if "fsx" in spec:
        fsx = spec["fsx"]
        source: dict[str, Any] = {
            "FileSystemDataSource": {
                "FileSystemId": fsx["file_system_id"],
                "FileSystemType": fsx.get("file_system_type", "FSxLustre"),
                "FileSystemAccessMode": fsx.get("access_mode", "ro"),
                "DirectoryPath": fsx["directory_path"],
            }
        }
    else:
        source = {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": spec["s3_uri"],
                "S3DataDistributionType": spec.get("distribution", "FullyReplicated"),
            }
        }
    channel: dict[str, Any] = {"ChannelName": name, "DataSource": source}
    if spec.get("input_mode", default_mode) != default_mode:
        channel["InputMode"] = spec["input_mode"]
    for key, field in (
        ("content_type", "ContentType"),
        ("compression", "CompressionType"),
        ("record_wrapper", "RecordWrapperType"),
    ):
        if spec.get(key):
            channel[field] = spec[key]
    return channel


def _check_channel_specs(task_id: str, channels: Mapping[str, Any]) -> None:
    for name, spec in channels.items():
        if isinstance(spec, str):
            continue
        if not isinstance(spec, Mapping):
            raise ValueError(
                f"{task_id}: channels[{name!r}] must be an s3:// URI or a mapping, got {type(spec).__name__}"
            )
        unknown = set(spec) - CHANNEL_KEYS
        if unknown:
            raise ValueError(
                f"{task_id}: channels[{name!r}] has unknown key(s) {sorted(unknown)}; allowed: {sorted(CHANNEL_KEYS)}"
            )
        if ("s3_uri" in spec) == ("fsx" in spec):
            raise ValueError(f"{task_id}: channels[{name!r}] needs exactly one of 's3_uri' or 'fsx'")
        if "fsx" in spec and not {"file_system_id", "directory_path"} <= set(spec["fsx"]) <= FSX_KEYS:
            raise ValueError(
                f"{task_id}: channels[{name!r}].fsx needs file_system_id and directory_path (allowed: {sorted(FSX_KEYS)})"
            )


class DistributedTrainingOperator(SageMakerJobOperator):
    """Train on a SageMaker cluster (default ``ml.p3dn.24xlarge``), in script mode or with your image.

    Script mode: ``entry_point`` inside ``source_dir`` (a local directory, uploaded as a
    content-addressed ``sourcedir.tar.gz``, or an ``s3://.../sourcedir.tar.gz``) runs in the AWS
    PyTorch training container. Or ``image_uri`` runs your own training image.

    :param role_arn: the SageMaker execution role. (templated)
    :param output_path: ``s3://`` prefix; the model lands at ``<output_path>/<job>/output/model.tar.gz``. (templated)
    :param channels: channel name -> ``s3://`` prefix, or a mapping with ``s3_uri`` or ``fsx``
        (``file_system_id``, ``directory_path``), and optional ``distribution``
        (``FullyReplicated``/``ShardedByS3Key``), ``input_mode``, ``content_type``, ``compression``. (templated)
    :param entry_point: the training script, relative to ``source_dir``. (templated)
    :param source_dir: local directory or ``s3://`` URI of a ``sourcedir.tar.gz``. (templated)
    :param image_uri: a training image; defaults to the AWS PyTorch training container for
        ``framework_version`` on the instance's accelerator (CPU, NVIDIA GPU or Neuron) in the
        job's region. (templated)
    :param framework_version: the PyTorch version of that container, e.g. ``2.5.1``.
    :param py_version: its Python, e.g. ``py311``; None (default): the one the container is built for.
    :param instance_type: e.g. ``ml.p3dn.24xlarge``. (templated)
    :param instance_count: number of instances; > 1 with a GPU type needs EFA unless ``allow_no_efa``.
    :param distribution: ``torch_distributed``, ``pytorch_ddp``, ``smdataparallel``, ``mpi`` or None.
    :param hyperparameters: passed to the script as ``--key value`` and in ``SM_HPS``; JSON-encoded in
        script mode (the toolkit decodes them), plain ``str()`` for an ``image_uri`` without
        ``entry_point``. (templated)
    :param metric_definitions: metric name -> regex with one group, matched over the job's logs.
    :param max_runtime_seconds: the job's ``MaxRuntimeInSeconds``.
    :param use_spot: managed spot training; needs ``spot_max_wait_seconds`` >= ``max_runtime_seconds``.
    :param checkpoint_s3_uri: where ``/opt/ml/checkpoints`` is synced (spot jobs resume from it). (templated)
    :param volume_kms_key_id: KMS key of the EBS volume; refused for types with local NVMe storage
        (p3dn, p4d, p5, g4dn, g5, g6, trn1, ``*d`` ...), which SageMaker encrypts itself.
    :param enable_network_isolation: no network in the container; script-mode code then arrives in a
        ``code`` input channel, as the SageMaker SDK sends it.
    :param max_cost_usd: refuse to start when on-demand price x instances x ``max_runtime_seconds``
        exceeds this.
    :param price_per_hour: the price for the estimate; the built-in list prices are us-east-1's, so
        in any other region ``max_cost_usd`` needs it.
    """

    job_kind = JOB_KINDS["training"]
    template_fields: Sequence[str] = (
        *SageMakerJobOperator.template_fields,
        "role_arn",
        "output_path",
        "channels",
        "entry_point",
        "source_dir",
        "image_uri",
        "instance_type",
        "hyperparameters",
        "checkpoint_s3_uri",
        "environment",
        "tags",
    )
    template_fields_renderers = {
        **SageMakerJobOperator.template_fields_renderers,
        "hyperparameters": "json",
        "channels": "json",
    }

    def __init__(
        self,
        *,
        role_arn: str,
        output_path: str,
        channels: Mapping[str, str | Mapping[str, Any]] | None = None,
        entry_point: str | None = None,
        source_dir: str | None = None,
        image_uri: str | None = None,
        framework_version: str = "2.5.1",
        py_version: str | None = None,
        instance_type: str = "ml.p3dn.24xlarge",
        instance_count: int = 1,
        volume_size_gb: int = 100,
        distribution: str | None = None,
        processes_per_host: int | None = None,
        input_mode: str = "File",
        hyperparameters: Mapping[str, Any] | None = None,
        metric_definitions: Mapping[str, str] | None = None,
        max_runtime_seconds: int = 86400,
        use_spot: bool = False,
        spot_max_wait_seconds: int | None = None,
        checkpoint_s3_uri: str | None = None,
        checkpoint_local_path: str = "/opt/ml/checkpoints",
        volume_kms_key_id: str | None = None,
        output_kms_key_id: str | None = None,
        encrypt_inter_container_traffic: bool = False,
        enable_network_isolation: bool = False,
        subnets: Sequence[str] | None = None,
        security_group_ids: Sequence[str] | None = None,
        environment: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        max_cost_usd: float | None = None,
        price_per_hour: float | None = None,
        allow_no_efa: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        task = self.task_id
        if not entry_point and not image_uri:
            raise ValueError(
                f"{task}: entry_point: set the training script (with source_dir), or pass image_uri"
            )
        if entry_point and not source_dir:
            raise ValueError(
                f"{task}: source_dir: entry_point {entry_point!r} needs the directory that holds it"
            )
        if distribution is not None and distribution not in DISTRIBUTIONS:
            raise ValueError(
                f"{task}: distribution: {distribution!r} is not one of {', '.join(DISTRIBUTIONS)} (or None)"
            )
        if input_mode not in INPUT_MODES:
            raise ValueError(f"{task}: input_mode: {input_mode!r} is not one of {', '.join(INPUT_MODES)}")
        if instance_count < 1:
            raise ValueError(f"{task}: instance_count must be >= 1, got {instance_count}")
        if bool(subnets) != bool(security_group_ids):
            raise ValueError(f"{task}: subnets and security_group_ids go together (a VpcConfig needs both)")
        _check_channel_specs(task, channels or {})
        if enable_network_isolation and entry_point and CODE_CHANNEL in (channels or {}):
            raise ValueError(
                f"{task}: channels: {CODE_CHANNEL!r} is the channel that carries the code under network "
                "isolation; rename your channel"
            )
        fixed_type = None if _templated(instance_type) else instance_type
        if not image_uri:
            problem = version_error("training", framework_version, py_version, fixed_type)
            if problem:
                raise ValueError(f"{task}: {problem}")
        if volume_kms_key_id and fixed_type and has_instance_storage(fixed_type):
            raise ValueError(f"{task}: {volume_kms_error(fixed_type)}")
        local_source = source_dir and not _templated(source_dir) and not source_dir.startswith("s3://")
        if (
            local_source
            and entry_point
            and not _templated(entry_point)
            and not (Path(str(source_dir)) / entry_point).is_file()
        ):
            raise ValueError(
                f"{task}: entry_point: {entry_point!r} is not a file in source_dir {source_dir!r}"
            )
        self.role_arn = role_arn
        self.output_path = output_path
        self.channels = dict(channels or {})
        self.entry_point = entry_point
        self.source_dir = source_dir
        self.image_uri = image_uri
        self.framework_version = framework_version
        self.py_version = py_version
        self.instance_type = instance_type
        self.instance_count = instance_count
        self.volume_size_gb = volume_size_gb
        self.distribution = distribution
        self.processes_per_host = processes_per_host
        self.input_mode = input_mode
        self.hyperparameters = dict(hyperparameters or {})
        self.metric_definitions = dict(metric_definitions or {})
        self.max_runtime_seconds = max_runtime_seconds
        self.use_spot = use_spot
        self.spot_max_wait_seconds = spot_max_wait_seconds
        self.checkpoint_s3_uri = checkpoint_s3_uri
        self.checkpoint_local_path = checkpoint_local_path
        self.volume_kms_key_id = volume_kms_key_id
        self.output_kms_key_id = output_kms_key_id
        self.encrypt_inter_container_traffic = encrypt_inter_container_traffic
        self.enable_network_isolation = enable_network_isolation
        self.subnets = list(subnets or [])
        self.security_group_ids = list(security_group_ids or [])
        self.environment = dict(environment or {})
        self.tags = dict(tags or {})
        self.max_cost_usd = max_cost_usd
        self.price_per_hour = price_per_hour
        self.allow_no_efa = allow_no_efa
        self._source: tuple[bytes, str] | None = None

    def _submit_directory(self) -> str | None:
        if not self.entry_point or not self.source_dir:
            return None
        if self.source_dir.startswith("s3://"):
            return self.source_dir
        if not (Path(self.source_dir) / self.entry_point).is_file():
            raise PreflightError(
                f"entry_point: {self.entry_point!r} is not a file in source_dir {self.source_dir!r}"
            )
        self._source = source_archive(self.source_dir)
        return f"{self.output_path.rstrip('/')}/source/{self._source[1]}/sourcedir.tar.gz"

    def _script_mode(self, region: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The SDK's script-mode hyperparameters, and the code channel when network isolation needs one."""
        submit = self._submit_directory()
        if not submit:
            return {}, None
        code_channel: dict[str, Any] | None = None
        if self.enable_network_isolation:
            code_channel = _channel(CODE_CHANNEL, {"s3_uri": submit}, self.input_mode)
            if self.input_mode != "File":
                code_channel["InputMode"] = "File"  # the toolkit opens the archive as a file
        hyperparameters = {
            "sagemaker_program": self.entry_point,
            "sagemaker_submit_directory": CODE_CHANNEL_SOURCEDIR if code_channel else submit,
            "sagemaker_region": region,
            "sagemaker_container_log_level": 20,
        }
        return hyperparameters, code_channel

    def build_request(self, context: Any) -> dict[str, Any]:
        region = self.hook.region
        check_region(region)
        script_mode, code_channel = self._script_mode(region)
        hyperparameters: dict[str, Any] = {**self.hyperparameters, **script_mode}
        hyperparameters.update(
            distribution_hyperparameters(self.distribution, self.instance_type, self.processes_per_host)
        )
        image = self.image_uri or pytorch_image(
            "training", region, self.framework_version, self.py_version, self.instance_type
        )
        algorithm: dict[str, Any] = {"TrainingImage": image, "TrainingInputMode": self.input_mode}
        if self.metric_definitions:
            algorithm["MetricDefinitions"] = [
                {"Name": k, "Regex": v} for k, v in self.metric_definitions.items()
            ]
        request: dict[str, Any] = {
            "AlgorithmSpecification": algorithm,
            "RoleArn": self.role_arn,
            "OutputDataConfig": {"S3OutputPath": self.output_path},
            "ResourceConfig": {
                "InstanceType": self.instance_type,
                "InstanceCount": int(self.instance_count),
                "VolumeSizeInGB": int(self.volume_size_gb),
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": int(self.max_runtime_seconds)},
            "HyperParameters": {
                str(k): encode_hyperparameter(v, bool(self.entry_point)) for k, v in hyperparameters.items()
            },
            "EnableNetworkIsolation": self.enable_network_isolation,
            "EnableInterContainerTrafficEncryption": self.encrypt_inter_container_traffic,
        }
        channels = [_channel(n, s, self.input_mode) for n, s in self.channels.items()]
        if code_channel:
            channels.append(code_channel)
        if channels:
            request["InputDataConfig"] = channels
        if self.volume_kms_key_id:
            request["ResourceConfig"]["VolumeKmsKeyId"] = self.volume_kms_key_id
        if self.output_kms_key_id:
            request["OutputDataConfig"]["KmsKeyId"] = self.output_kms_key_id
        if self.use_spot:
            request["EnableManagedSpotTraining"] = True
            if self.spot_max_wait_seconds is not None:
                request["StoppingCondition"]["MaxWaitTimeInSeconds"] = int(self.spot_max_wait_seconds)
        if self.checkpoint_s3_uri:
            request["CheckpointConfig"] = {
                "S3Uri": self.checkpoint_s3_uri,
                "LocalPath": self.checkpoint_local_path,
            }
        if self.subnets:
            request["VpcConfig"] = {"Subnets": self.subnets, "SecurityGroupIds": self.security_group_ids}
        if self.environment:
            request["Environment"] = {str(k): str(v) for k, v in self.environment.items()}
        if self.tags:
            request["Tags"] = [{"Key": str(k), "Value": str(v)} for k, v in self.tags.items()]
        return request

    def preflight(self, request: Mapping[str, Any], context: Any) -> None:
        self.check_training(request)
        region = self.hook.region
        self.log_cost("Worst-case cost", check_cost(request, self.max_cost_usd, self.price_per_hour, region))

    def check_training(self, request: Mapping[str, Any]) -> None:
        """What one training job (or each trial of a search) must satisfy before anything is spent."""
        check_region(self.hook.region)
        resources = request["ResourceConfig"]
        check_distribution(
            resources["InstanceType"], int(resources["InstanceCount"]), self.distribution, self.allow_no_efa
        )
        check_spot(request)
        check_channels(request)
        check_volume_kms(request)
        for channel in request.get("InputDataConfig") or []:
            s3_source = channel["DataSource"].get("S3DataSource")
            # The code channel's archive is uploaded by stage(), after these checks.
            if s3_source and not (self._source is not None and channel["ChannelName"] == CODE_CHANNEL):
                check_s3_prefix(self.hook.s3, s3_source["S3Uri"], f"channels[{channel['ChannelName']!r}]")

    def log_cost(self, what: str, estimate: CostEstimate) -> None:
        """Say the worst case and whose prices it uses, or that there is no price to estimate it with."""
        if estimate.usd is None:
            self.log.info("%s: not estimated: %s", what, estimate.basis)
            return
        ceiling = "" if self.max_cost_usd is None else f" (within max_cost_usd={self.max_cost_usd})"
        self.log.info("%s: up to $%.2f: %s%s", what, estimate.usd, estimate.basis, ceiling)

    def stage(self, request: Mapping[str, Any], context: Any) -> None:
        if self._source is None:
            return
        data, _digest = self._source
        uri = source_upload_uri(request)
        if uri is None:
            return
        bucket, key = split_s3_uri(uri, "source_dir")
        try:
            self.hook.s3.head_object(Bucket=bucket, Key=key)
            self.log.info("Source %s already uploaded", uri)
        except Exception:
            self.hook.s3.put_object(Bucket=bucket, Key=key, Body=data)
            self.log.info("Uploaded source_dir %s to %s (%d bytes)", self.source_dir, uri, len(data))
