"""A training job as composed specs: where it runs (:class:`Cluster`), what runs (:class:`ScriptMode` or
an image), on spot capacity (:class:`Spot`), checkpointed (:class:`Checkpoint`), in a VPC (:class:`Vpc`).

:class:`TrainingDefinition` composes them and turns into a CreateTrainingJob request (a tuning job's
``TrainingJobDefinition`` is the same, with static hyperparameters). Pure: nothing here reads S3 or the
disk when building; the script-mode source archive is a derived upload, made at pre-flight.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_dl_provider.exceptions import PreflightError
from airflow_dl_provider.jobs.plan import DIGEST, Derived, Upload
from airflow_dl_provider.presets.containers import pytorch_image, version_error
from airflow_dl_provider.presets.instances import has_instance_storage
from airflow_dl_provider.specs.fields import as_int, check_choice, fixed, is_templated, string_map, tag_list

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_dl_provider.jobs.plan import RequestPath

DISTRIBUTIONS = ("torch_distributed", "pytorch_ddp", "smdataparallel", "mpi")
INPUT_MODES = ("File", "FastFile", "Pipe")
CHANNEL_KEYS = frozenset(
    {"s3_uri", "fsx", "distribution", "input_mode", "content_type", "compression", "record_wrapper"}
)
FSX_KEYS = frozenset({"file_system_id", "directory_path", "file_system_type", "access_mode"})
# With network isolation the container cannot reach S3, so the SageMaker SDK ships the source archive
# in an input channel and points the toolkit at its path inside the container.
CODE_CHANNEL = "code"
CODE_CHANNEL_SOURCEDIR = f"/opt/ml/input/data/{CODE_CHANNEL}/sourcedir.tar.gz"
SUBMIT_DIRECTORY_AT: RequestPath = ("HyperParameters", "sagemaker_submit_directory")
CODE_CHANNEL_AT: RequestPath = (
    "InputDataConfig",
    ("ChannelName", CODE_CHANNEL),
    "DataSource",
    "S3DataSource",
    "S3Uri",
)
# SageMaker's limits: ResourceConfig.KeepAlivePeriodInSeconds (warm pools).
MAX_KEEP_ALIVE_SECONDS = 3600


def encode_hyperparameter(value: Any, script_mode: bool) -> str:
    """One HyperParameters value as the SageMaker SDK sends it.

    Script mode (a framework estimator): ``json.dumps``, which the training toolkit ``json.loads``
    back. A bring-your-own image gets ``str(value)``, as the SDK's plain ``Estimator`` sends it.
    """
    return json.dumps(value) if script_mode else str(value)


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


def channel_request(name: str, spec: str | Mapping[str, Any], default_mode: str) -> dict[str, Any]:
    """One ``channels`` entry -> one InputDataConfig channel."""
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
    for key, api_field in (
        ("content_type", "ContentType"),
        ("compression", "CompressionType"),
        ("record_wrapper", "RecordWrapperType"),
    ):
        if spec.get(key):
            channel[api_field] = spec[key]
    return channel


def check_channel_specs(channels: Mapping[str, Any]) -> None:
    for name, spec in channels.items():
        if isinstance(spec, str):
            continue
        if not isinstance(spec, dict):
            raise ValueError(
                f"channels[{name!r}] must be an s3:// URI or a mapping, got {type(spec).__name__}"
            )
        unknown = set(spec) - CHANNEL_KEYS
        if unknown:
            raise ValueError(
                f"channels[{name!r}] has unknown key(s) {sorted(unknown)}; allowed: {sorted(CHANNEL_KEYS)}"
            )
        if ("s3_uri" in spec) == ("fsx" in spec):
            raise ValueError(f"channels[{name!r}] needs exactly one of 's3_uri' or 'fsx'")
        if "fsx" in spec and not {"file_system_id", "directory_path"} <= set(spec["fsx"]) <= FSX_KEYS:
            raise ValueError(
                f"channels[{name!r}].fsx needs file_system_id and directory_path (allowed: {sorted(FSX_KEYS)})"
            )


def volume_kms_error(instance_type: str) -> str:
    from airflow_dl_provider.service_behaviour import VOLUME_KMS_SOURCE

    return (
        f"volume_kms_key_id: {instance_type} has local NVMe instance storage, which its hardware encrypts, and "
        f"SageMaker refuses a VolumeKmsKeyId for it ({VOLUME_KMS_SOURCE}); drop volume_kms_key_id or use a "
        "type without instance storage"
    )


@dataclass
class Cluster:
    """Where a training job runs: ``ResourceConfig``.

    :param instance_type: e.g. ``ml.p3dn.24xlarge`` (default). (templated)
    :param instance_count: instances; > 1 with a GPU type needs EFA unless ``allow_no_efa``. (templated)
    :param volume_size_gb: the EBS volume per instance, in GB.
    :param volume_kms_key_id: KMS key of that volume; refused for types with local NVMe storage
        (p3dn, p4d, p5, g4dn, g5, g6, trn1, ``*d`` ...), which SageMaker encrypts itself. (templated)
    :param keep_alive_seconds: keep the instances warm this long after the job (a warm pool, 0-3600)
        for the next job of the same shape.
    :param allow_no_efa: run multi-node NCCL on a GPU type without EFA (slow TCP sockets) anyway.
    """

    instance_type: str = "ml.p3dn.24xlarge"
    instance_count: int | str = 1
    volume_size_gb: int = 100
    volume_kms_key_id: str | None = None
    keep_alive_seconds: int | None = None
    allow_no_efa: bool = False

    template_fields: ClassVar[tuple[str, ...]] = ("instance_type", "instance_count", "volume_kms_key_id")

    def __post_init__(self) -> None:
        self.check()

    def check(self, rendered: bool = False) -> None:
        if fixed(self.instance_count, rendered):
            as_int("cluster.instance_count", self.instance_count, minimum=1)
        as_int("cluster.volume_size_gb", self.volume_size_gb, minimum=1)
        if self.keep_alive_seconds is not None:
            seconds = as_int("cluster.keep_alive_seconds", self.keep_alive_seconds, minimum=0)
            if seconds > MAX_KEEP_ALIVE_SECONDS:
                raise ValueError(
                    f"cluster.keep_alive_seconds: SageMaker keeps a warm pool at most {MAX_KEEP_ALIVE_SECONDS} s, "
                    f"got {seconds}"
                )
        instance_type = self.fixed_type(rendered)
        if self.volume_kms_key_id and instance_type and has_instance_storage(instance_type):
            raise ValueError(volume_kms_error(instance_type))

    def fixed_type(self, rendered: bool = True) -> str | None:
        """The instance type, or None while it is still a template."""
        return self.instance_type if fixed(self.instance_type, rendered) else None

    def to_request(self) -> dict[str, Any]:
        resources: dict[str, Any] = {
            "InstanceType": self.instance_type,
            "InstanceCount": as_int("cluster.instance_count", self.instance_count, minimum=1),
            "VolumeSizeInGB": int(self.volume_size_gb),
        }
        if self.volume_kms_key_id:
            resources["VolumeKmsKeyId"] = self.volume_kms_key_id
        if self.keep_alive_seconds is not None:
            resources["KeepAlivePeriodInSeconds"] = int(self.keep_alive_seconds)
        return resources


@dataclass
class ScriptMode:
    """A training script run by the AWS PyTorch training toolkit, as the SageMaker SDK's framework
    estimators run it.

    :param entry_point: the script, relative to ``source_dir``. (templated)
    :param source_dir: a local directory (uploaded as a content-addressed ``sourcedir.tar.gz``) or the
        ``s3://`` URI of a ``sourcedir.tar.gz``. (templated)
    :param framework_version: the PyTorch version of the training container, e.g. ``2.5.1``.
    :param py_version: its Python, e.g. ``py311``; None (default): the one the container is built for.
    :param distribution: ``torch_distributed``, ``pytorch_ddp``, ``smdataparallel``, ``mpi`` or None.
    :param processes_per_host: processes per instance with ``mpi``.

    Hyperparameters are JSON-encoded (the toolkit decodes them); the SDK's own ``sagemaker_*`` ones
    name the script, where its archive is and the distribution.
    """

    entry_point: str
    source_dir: str
    framework_version: str = "2.5.1"
    py_version: str | None = None
    distribution: str | None = None
    processes_per_host: int | None = None

    template_fields: ClassVar[tuple[str, ...]] = ("entry_point", "source_dir")

    def __post_init__(self) -> None:
        self.check()

    def check(self, rendered: bool = False) -> None:
        if not self.entry_point:
            raise ValueError(
                "script.entry_point: set the training script (inside source_dir), or pass image_uri"
            )
        if not self.source_dir:
            raise ValueError(
                f"script.source_dir: entry_point {self.entry_point!r} needs the directory that holds it"
            )
        if self.distribution is not None:
            check_choice("script.distribution", self.distribution, DISTRIBUTIONS)
        if self.processes_per_host is not None:
            as_int("script.processes_per_host", self.processes_per_host, minimum=1)
        checkable = fixed(self.source_dir, rendered) and fixed(self.entry_point, rendered) and self.local
        if checkable and not (Path(self.source_dir) / self.entry_point).is_file():
            raise ValueError(
                f"script.entry_point: {self.entry_point!r} is not a file in source_dir {self.source_dir!r}"
            )

    @property
    def local(self) -> bool:
        return not str(self.source_dir).startswith("s3://")

    def image(self, region: str, instance_type: str) -> str:
        return pytorch_image("training", region, self.framework_version, self.py_version, instance_type)

    def source_upload(self, output_path: str, isolated: bool) -> Upload | None:
        """The content-addressed ``sourcedir.tar.gz`` of a local ``source_dir``; None for an S3 one."""
        if not self.local:
            return None
        source = Path(self.source_dir)
        return Upload(
            uri=f"{output_path.rstrip('/')}/source/{DIGEST}/sourcedir.tar.gz",
            body=Derived(f"sourcedir.tar.gz of {source}", lambda _reader: _archive(source)),
            at=CODE_CHANNEL_AT if isolated else SUBMIT_DIRECTORY_AT,
            json_encoded=not isolated,
            argument="source_dir",
        )

    def hyperparameters(self, region: str, submit_directory: str, instance_type: str) -> dict[str, Any]:
        return {
            "sagemaker_program": self.entry_point,
            "sagemaker_submit_directory": submit_directory,
            "sagemaker_region": region,
            "sagemaker_container_log_level": 20,
            **distribution_hyperparameters(self.distribution, instance_type, self.processes_per_host),
        }


def _archive(source: Path) -> bytes:
    if not source.is_dir():
        raise ValueError(f"{source} is not a directory")
    return source_archive(source)[0]


@dataclass
class Spot:
    """Managed spot training: ``EnableManagedSpotTraining`` and how long to wait for capacity.

    :param max_wait_seconds: ``MaxWaitTimeInSeconds``, waiting plus running; at least the job's
        ``max_runtime_seconds``.
    """

    max_wait_seconds: int

    template_fields: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        if self.max_wait_seconds is None:
            raise ValueError(
                "spot.max_wait_seconds: managed spot needs MaxWaitTimeInSeconds (waiting plus running), at "
                "least max_runtime_seconds; set it"
            )
        as_int("spot.max_wait_seconds", self.max_wait_seconds, minimum=1)


@dataclass
class Checkpoint:
    """Where ``local_path`` is synced in S3: a spot job (or a retried one) resumes from it.

    :param s3_uri: ``s3://`` prefix. (templated)
    :param local_path: the directory in the container (default ``/opt/ml/checkpoints``).
    """

    s3_uri: str
    local_path: str = "/opt/ml/checkpoints"

    template_fields: ClassVar[tuple[str, ...]] = ("s3_uri",)

    def __post_init__(self) -> None:
        if fixed(self.s3_uri, False) and not str(self.s3_uri).startswith("s3://"):
            raise ValueError(f"checkpoint.s3_uri: {self.s3_uri!r} is not an s3:// prefix")

    def to_request(self) -> dict[str, Any]:
        return {"S3Uri": self.s3_uri, "LocalPath": self.local_path}


@dataclass
class Vpc:
    """The job's network: ``VpcConfig``; FSx for Lustre channels need one.

    :param subnets: subnet ids. (templated)
    :param security_group_ids: security group ids. (templated)
    """

    subnets: list[str]
    security_group_ids: list[str]

    template_fields: ClassVar[tuple[str, ...]] = ("subnets", "security_group_ids")

    def __post_init__(self) -> None:
        self.subnets, self.security_group_ids = list(self.subnets or []), list(self.security_group_ids or [])
        if not self.subnets or not self.security_group_ids:
            raise ValueError("vpc: subnets and security_group_ids go together (a VpcConfig needs both)")

    def to_request(self) -> dict[str, Any]:
        return {"Subnets": list(self.subnets), "SecurityGroupIds": list(self.security_group_ids)}


@dataclass
class TrainingDefinition:
    """One training job (or each trial of a tuning job), composed of specs.

    :param role_arn: the SageMaker execution role. (templated)
    :param output_path: ``s3://`` prefix; the model lands at ``<output_path>/<job>/output/model.tar.gz``,
        a local ``source_dir`` under ``<output_path>/source/<sha256>/``. (templated)
    :param channels: channel name -> ``s3://`` prefix, or a mapping with ``s3_uri`` or ``fsx``
        (``file_system_id``, ``directory_path``), and optional ``distribution``
        (``FullyReplicated``/``ShardedByS3Key``), ``input_mode``, ``content_type``, ``compression``.
        (templated)
    :param cluster: where it runs (:class:`Cluster`; default one ``ml.p3dn.24xlarge``).
    :param script: the training script (:class:`ScriptMode`); or None with ``image_uri``.
    :param image_uri: a training image; with ``script``, replaces the AWS PyTorch container; without,
        your own image runs as it is. (templated)
    :param hyperparameters: passed to the script as ``--key value`` and in ``SM_HPS``; JSON-encoded in
        script mode, plain ``str()`` for an image without ``script``. (templated)
    :param metric_definitions: metric name -> regex with one group, matched over the job's logs.
    :param max_runtime_seconds: the job's ``MaxRuntimeInSeconds``.
    :param input_mode: ``File`` (default), ``FastFile`` or ``Pipe``, for every channel not saying its own.
    :param spot: managed spot training (:class:`Spot`), or None.
    :param checkpoint: checkpoint sync to S3 (:class:`Checkpoint`), or None.
    :param vpc: the job's VPC (:class:`Vpc`), or None.
    :param environment: environment variables of the training container. (templated)
    :param output_kms_key_id: KMS key of the model artifact. (templated)
    :param encrypt_inter_container_traffic: encrypt traffic between the job's instances.
    :param enable_network_isolation: no network in the container; script-mode code then arrives in a
        ``code`` input channel, as the SageMaker SDK sends it.
    :param tags: the job's tags (a tuning job's, in a search). (templated)
    """

    role_arn: str
    output_path: str
    channels: dict[str, Any] = field(default_factory=dict)
    cluster: Cluster = field(default_factory=Cluster)
    script: ScriptMode | None = None
    image_uri: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metric_definitions: dict[str, str] = field(default_factory=dict)
    max_runtime_seconds: int = 86400
    input_mode: str = "File"
    spot: Spot | None = None
    checkpoint: Checkpoint | None = None
    vpc: Vpc | None = None
    environment: dict[str, str] = field(default_factory=dict)
    output_kms_key_id: str | None = None
    encrypt_inter_container_traffic: bool = False
    enable_network_isolation: bool = False
    tags: dict[str, str] = field(default_factory=dict)

    template_fields: ClassVar[tuple[str, ...]] = (
        "role_arn",
        "output_path",
        "channels",
        "image_uri",
        "hyperparameters",
        "environment",
        "output_kms_key_id",
        "tags",
        "cluster",
        "script",
        "checkpoint",
        "vpc",
    )

    def __post_init__(self) -> None:
        for name in ("channels", "hyperparameters", "metric_definitions", "environment", "tags"):
            setattr(self, name, dict(getattr(self, name) or {}))
        self.check()

    @property
    def script_mode(self) -> bool:
        return self.script is not None

    def check(self, rendered: bool = False) -> None:
        """One-line ``ValueError`` naming the field; templated values are checked once ``rendered``."""
        for spec in (self.cluster, self.script):
            if spec is not None and rendered:
                spec.check(rendered=True)
        if self.script is None and not self.image_uri:
            raise ValueError("script: give a ScriptMode (entry_point and source_dir), or pass image_uri")
        check_choice("input_mode", self.input_mode, INPUT_MODES)
        as_int("max_runtime_seconds", self.max_runtime_seconds, minimum=1)
        if fixed(self.channels, rendered):
            check_channel_specs(self.channels)
        if self.enable_network_isolation and self.script and CODE_CHANNEL in self.channels:
            raise ValueError(
                f"channels: {CODE_CHANNEL!r} is the channel that carries the code under network isolation; "
                "rename your channel"
            )
        # Spot's wait against the runtime is pre-flight's: overrides may change either.
        if self.script and not self.image_uri and not is_templated(self.script.framework_version):
            problem = version_error(
                "training",
                self.script.framework_version,
                self.script.py_version,
                self.cluster.fixed_type(rendered),
            )
            if problem:
                raise ValueError(problem)

    def parts(self, region: str) -> tuple[dict[str, Any], tuple[Upload, ...]]:
        """The CreateTrainingJob request (without the name) and the source archive it names, if any."""
        try:
            self.check(rendered=True)
        except ValueError as err:
            raise PreflightError(str(err)) from None
        instance_type = self.cluster.instance_type
        hyperparameters, code_channel, upload = self._script_parts(region)
        image = self.image_uri or (self.script.image(region, instance_type) if self.script else "")
        algorithm: dict[str, Any] = {"TrainingImage": image, "TrainingInputMode": self.input_mode}
        if self.metric_definitions:
            algorithm["MetricDefinitions"] = [
                {"Name": k, "Regex": v} for k, v in self.metric_definitions.items()
            ]
        output: dict[str, Any] = {"S3OutputPath": self.output_path}
        if self.output_kms_key_id:
            output["KmsKeyId"] = self.output_kms_key_id
        request: dict[str, Any] = {
            "AlgorithmSpecification": algorithm,
            "RoleArn": self.role_arn,
            "OutputDataConfig": output,
            "ResourceConfig": self.cluster.to_request(),
            "StoppingCondition": {"MaxRuntimeInSeconds": int(self.max_runtime_seconds)},
            "HyperParameters": {
                str(k): encode_hyperparameter(v, self.script_mode) for k, v in hyperparameters.items()
            },
            "EnableNetworkIsolation": bool(self.enable_network_isolation),
            "EnableInterContainerTrafficEncryption": bool(self.encrypt_inter_container_traffic),
        }
        channels = [channel_request(n, s, self.input_mode) for n, s in self.channels.items()]
        if code_channel:
            channels.append(code_channel)
        if channels:
            request["InputDataConfig"] = channels
        self._add_options(request)
        return request, (upload,) if upload else ()

    def _script_parts(self, region: str) -> tuple[dict[str, Any], dict[str, Any] | None, Upload | None]:
        """The hyperparameters with script mode's own, the code channel under network isolation, the archive."""
        hyperparameters: dict[str, Any] = dict(self.hyperparameters)
        if self.script is None:
            return hyperparameters, None, None
        isolated = self.enable_network_isolation
        upload = self.script.source_upload(self.output_path, isolated)
        submit = upload.uri if upload else self.script.source_dir
        code_channel: dict[str, Any] | None = None
        if isolated:
            code_channel = channel_request(CODE_CHANNEL, {"s3_uri": submit}, self.input_mode)
            if self.input_mode != "File":
                code_channel["InputMode"] = "File"  # the toolkit opens the archive as a file
            submit = CODE_CHANNEL_SOURCEDIR
        hyperparameters.update(self.script.hyperparameters(region, submit, self.cluster.instance_type))
        return hyperparameters, code_channel, upload

    def _add_options(self, request: dict[str, Any]) -> None:
        if self.spot is not None:
            request["EnableManagedSpotTraining"] = True
            request["StoppingCondition"]["MaxWaitTimeInSeconds"] = int(self.spot.max_wait_seconds)
        if self.checkpoint is not None:
            request["CheckpointConfig"] = self.checkpoint.to_request()
        if self.vpc is not None:
            request["VpcConfig"] = self.vpc.to_request()
        if self.environment:
            request["Environment"] = string_map(self.environment)
        if self.tags:
            request["Tags"] = tag_list(self.tags)

    @property
    def distribution(self) -> str | None:
        return self.script.distribution if self.script else None


__all__ = [
    "CODE_CHANNEL",
    "CODE_CHANNEL_SOURCEDIR",
    "DISTRIBUTIONS",
    "INPUT_MODES",
    "Checkpoint",
    "Cluster",
    "ScriptMode",
    "Spot",
    "TrainingDefinition",
    "Vpc",
    "distribution_hyperparameters",
    "encode_hyperparameter",
    "source_archive",
]
