"""The pipeline YAML schema. Errors name the file, the field and the fix, on one line.

A config is checked when the DAG file is parsed, so a misspelled key fails the import in the
Airflow UI, long before a cluster starts.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import pendulum
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from airflow_dl_provider.exceptions import PipelineConfigError, PreflightError
from airflow_dl_provider.pipelines.arrival import ArrivalConfig  # noqa: TC001 (pydantic reads it at runtime)
from airflow_dl_provider.pipelines.regions import Regions  # noqa: TC001 (pydantic reads it at runtime)
from airflow_dl_provider.presets.compilation import check_framework_version
from airflow_dl_provider.presets.labeling import PUBLIC_WORKFORCE_CLOSED, is_public_workteam


def _must_be_s3(value: str) -> str:
    if not value.startswith("s3://"):
        raise ValueError("must be an s3:// URI")
    return value


S3Uri = Annotated[str, AfterValidator(_must_be_s3)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """Where the raw data is and how ``prepare_data`` splits it into channels."""

    source: S3Uri | None = Field(
        None, description="s3:// URI of a CSV file with a header row (none when labeling)"
    )
    label_column: str = "label"
    validation_fraction: float = Field(0.15, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.2, ge=0.0, lt=1.0)
    seed: int = 0

    @model_validator(mode="after")
    def _fractions(self) -> DataConfig:
        # Checked here too, so the error names the config file instead of the prepare_data task.
        total = self.validation_fraction + self.test_fraction
        if total >= 1.0:
            raise ValueError(f"validation_fraction + test_fraction must be < 1 (got {total:.2f})")
        return self


class TrainingConfig(_Strict):
    """Arguments of :class:`~airflow_dl_provider.operators.training.DistributedTrainingOperator`."""

    entry_point: str | None = None
    source_dir: str | None = Field(None, description="relative to the config file, or s3://")
    image_uri: str | None = None
    framework_version: str = "2.5.1"
    instance_type: str = "ml.p3dn.24xlarge"
    instance_count: int = Field(1, ge=1)
    distribution: Literal["torch_distributed", "pytorch_ddp", "smdataparallel", "mpi"] | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    metric_definitions: dict[str, str] = Field(default_factory=dict)
    max_runtime_seconds: int = Field(86400, ge=1)
    max_cost_usd: float | None = Field(None, gt=0)
    use_spot: bool = False
    spot_max_wait_seconds: int | None = None
    allow_no_efa: bool = False
    volume_size_gb: int = Field(100, ge=1)
    # A warm pool: the instances wait this long for the next matching job (the retrain's challenger).
    keep_alive_seconds: int | None = Field(None, ge=0, le=3600)
    subnets: list[str] = Field(default_factory=list)
    security_group_ids: list[str] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    overrides: dict[str, Any] = Field(default_factory=dict)

    @field_validator("source_dir")
    @classmethod
    def _relative_to_config(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Against the config file, never the current directory: the DAG processor's cwd is anywhere.
        return resolve_local_path(value, info.context)


class LabelingConfig(_Strict):
    """Arguments of :class:`~airflow_dl_provider.operators.labeling.GroundTruthLabelingOperator`, or with
    ``service: label_studio`` of :class:`~airflow_dl_provider.operators.label_studio.LabelStudioLabelingOperator`.

    With this section the template labels first, and ``prepare_data`` reads the output manifest.
    """

    service: Literal["ground_truth", "label_studio"] = "ground_truth"
    label_studio_conn_id: str = "label_studio_default"
    task_type: str = "image_classification"
    input_prefix: str = Field(description="s3:// prefix of the objects to label")
    labels: list[str] = Field(min_length=2)
    workteam_arn: str | None = Field(
        None, validate_default=True, description="a private or vendor work team (Ground Truth)"
    )
    # The public workforce's price: refused with the reason (Mechanical Turk closed on 2026-09-30).
    task_price_usd: float | None = None
    workers_per_object: int = Field(3, ge=1)
    auto_labeling: bool = False
    max_human_labeled_objects: int | None = Field(None, ge=1)
    task_title: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    overrides: dict[str, Any] = Field(default_factory=dict)

    @field_validator("workteam_arn")
    @classmethod
    def _private_or_vendor(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("service", "ground_truth") == "ground_truth":
            raise ValueError(
                "Ground Truth needs a private or vendor work team; set it, or use service: label_studio"
            )
        if value is not None and is_public_workteam(value):
            raise ValueError(f"is the public workforce; {PUBLIC_WORKFORCE_CLOSED}")
        return value

    @field_validator("task_price_usd")
    @classmethod
    def _no_public_workforce(cls, value: float | None) -> float | None:
        if value is not None:
            raise ValueError(PUBLIC_WORKFORCE_CLOSED)
        return value


class LabelValidationConfig(_Strict):
    """The built-in label-manifest suite of ``validate_labels``; bounds on confidence and class shares."""

    min_confidence: float = Field(0.0, ge=0.0, le=1.0)
    min_class_fraction: float = Field(0.0, ge=0.0, le=1.0)
    max_class_fraction: float = Field(1.0, ge=0.0, le=1.0)
    soft_fail: bool = False


class TuningConfig(_Strict):
    """Arguments of :class:`~airflow_dl_provider.operators.tuning.HyperparameterTuningOperator`."""

    objective_metric: str
    objective_type: Literal["Maximize", "Minimize"] = "Maximize"
    strategy: Literal["Bayesian", "Random", "Grid", "Hyperband"] = "Bayesian"
    parameter_ranges: dict[str, dict[str, Any]] = Field(min_length=1)
    max_jobs: int | None = Field(None, ge=1)
    max_parallel_jobs: int = Field(1, ge=1)
    early_stopping: Literal["Off", "Auto"] = "Off"
    random_seed: int | None = None
    max_cost_usd: float | None = Field(None, gt=0)


class CompilationConfig(_Strict):
    """Arguments of :class:`~airflow_dl_provider.operators.compilation.NeoCompilationOperator`.

    The stage compiles the trained ``model.tar.gz``, whose ``model.pth`` is the traced TorchScript model.
    Without ``framework_version``, a PyTorch model is compiled as the newest PyTorch Neo lists for the
    target that is not newer than ``training.framework_version``.
    """

    framework: str = "PYTORCH"
    target_device: str | None = None
    target_platform: dict[str, str] | None = None
    # After target_device: its check reads the target.
    framework_version: str | None = None
    data_input_config: dict[str, Any] | list[Any] | str
    compiler_options: dict[str, Any] | str | None = None
    max_runtime_seconds: int = Field(900, ge=1)

    @field_validator("framework_version")
    @classmethod
    def _neo_accepts(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            framework = str(info.data.get("framework", "PYTORCH")).upper()
            try:
                check_framework_version(framework, value, info.data.get("target_device"))
            except PreflightError as err:
                raise ValueError(str(err).removeprefix("framework_version: ")) from None
        return value


class RegistryConfig(_Strict):
    """Where :class:`~airflow_dl_provider.operators.registry.RegisterModelOperator` versions the model."""

    model_package_group: str = Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    approval_status: Literal["Approved", "PendingManualApproval", "Rejected"] = "PendingManualApproval"
    description: str | None = None


class TransformConfig(_Strict):
    """Batch transform of the test split with the registered model."""

    instance_type: str = "ml.m5.xlarge"
    instance_count: int = Field(1, ge=1)
    max_payload_mb: int = Field(6, ge=1, le=100)


class DeployConfig(_Strict):
    """The ``deploy`` stage: the approved model on a real-time endpoint, data capture on, shifted blue/green.

    Arguments of :class:`~airflow_dl_provider.operators.endpoints.EndpointDeployOperator`. The
    capture goes to ``capture_s3_uri`` (default ``s3://<bucket>/<prefix>/capture``), where the drift
    monitor reads it.
    """

    endpoint_name: str | None = Field(
        None,
        pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$",
        description="default <pipeline>, with '_' as '-'",
    )
    instance_type: str = "ml.m5.large"
    instance_count: int = Field(1, ge=1)
    traffic_shift: Literal["all_at_once", "canary", "linear"] = "canary"
    # canary: this share of the capacity first (at most 50); linear: this share per step (10-50).
    traffic_percent: int = Field(10, ge=1, le=50)
    wait_seconds: int = Field(300, ge=0, le=3600)
    alarms: list[str] = Field(default_factory=list, max_length=10)
    capture_sampling_percentage: int = Field(100, ge=0, le=100)
    capture_s3_uri: S3Uri | None = None

    @field_validator("traffic_percent")
    @classmethod
    def _linear_step(cls, value: int, info: ValidationInfo) -> int:
        # BlueGreenUpdatePolicy's LinearStepSize is 10-50% of the capacity; a canary 1-50%.
        if info.data.get("traffic_shift") == "linear" and value < 10:
            raise ValueError("a linear step must be 10-50 (percent of the capacity)")
        return value


class DriftConfig(_Strict):
    """The ``drift_monitor`` DAG: compare incoming data with the champion model's baseline."""

    schedule: str | None = "@hourly"
    data_uri: str | None = Field(
        None, description="s3:// object or prefix to watch; default the deploy stage's data capture"
    )
    data_format: Literal["auto", "csv", "parquet", "jsonl", "data_capture"] = "auto"
    thresholds: dict[str, Any] = Field(default_factory=dict)


class RetrainingConfig(_Strict):
    """The ``retrain`` DAG, scheduled on the drift Asset: train a challenger, promote it if it wins."""

    labeled_data_prefix: str = Field(
        description="s3:// prefix of labeled CSVs (header with the label column)"
    )
    min_improvement: float = Field(0.0, ge=0.0)


class PipelineConfig(_Strict):
    """One pipeline: one DAG ``dl_pipeline_<pipeline>``."""

    pipeline: str = Field(pattern=r"^[a-zA-Z0-9_]+$")
    description: str = ""
    schedule: str | None = None
    start_date: str = "2026-01-01"
    tags: list[str] = Field(default_factory=list)
    retries: int = Field(2, ge=0)
    retry_delay_seconds: int = Field(120, ge=0)
    aws_conn_id: str = "aws_default"
    role_arn: str = Field(pattern=r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
    bucket: str
    prefix: str = ""
    deferrable: bool = False
    poll_interval: float = Field(30.0, gt=0)
    data: DataConfig
    labeling: LabelingConfig | None = None
    label_validation: LabelValidationConfig | None = None
    training: TrainingConfig
    tuning: TuningConfig | None = None
    compilation: CompilationConfig | None = None
    registry: RegistryConfig | None = None
    transform: TransformConfig | None = None
    drift: DriftConfig | None = None
    retraining: RetrainingConfig | None = None
    approval: Literal["human", "auto"] | None = None
    # auto: approve when the evaluation's accuracy on the test split reaches this.
    min_accuracy: float = Field(0.0, ge=0.0, le=1.0)
    deploy: DeployConfig | None = None
    arrival: ArrivalConfig | None = None
    # The same stages in each region, on its own bucket, role and connection (pipelines/regions.py).
    regions: Regions = Field(default_factory=list)

    @model_validator(mode="after")
    def _data_source(self) -> PipelineConfig:
        if self.labeling is None and self.data.source is None:
            raise ValueError("data.source: set the CSV to train on, or add a labeling section")
        if self.label_validation is not None and self.labeling is None:
            raise ValueError("label_validation: validates the labeling output; add a labeling section")
        if (self.drift or self.retraining) and not self.registry:
            raise ValueError(
                "registry: drift monitoring and retraining compare with the registered champion; add it"
            )
        if self.retraining and not self.drift:
            raise ValueError("retraining: is triggered by the drift monitor's Asset; add a drift section")
        if self.arrival and self.schedule:
            raise ValueError("schedule: arrival starts the pipeline when data arrives; remove one of them")
        if self.deploy and not (self.registry and self.approval):
            raise ValueError(
                "deploy: serves an approved model package; add a registry section and approval: human | auto"
            )
        if self.approval and self.registry and self.registry.approval_status != "PendingManualApproval":
            raise ValueError(
                f"registry.approval_status: {self.registry.approval_status} skips the approval stage; "
                "leave it PendingManualApproval (the approval stage decides), or remove approval"
            )
        if self.approval and not self.registry:
            raise ValueError("approval: approves a registered model package; add a registry section")
        if self.approval == "auto" and not (self.transform and self.data.test_fraction):
            raise ValueError(
                "approval: auto approves on the test split's evaluation; add a transform section "
                "(and data.test_fraction > 0), or use approval: human"
            )
        if self.drift and self.drift.data_uri is None and not self.deploy:
            raise ValueError(
                "drift.data_uri: set the data to watch, or add a deploy section whose data capture it reads"
            )
        return self

    @property
    def endpoint_name(self) -> str | None:
        """The deploy stage's endpoint: the config's, else the pipeline name as an endpoint name."""
        if self.deploy is None:
            return None
        return self.deploy.endpoint_name or self.pipeline.replace("_", "-")

    @property
    def capture_s3_uri(self) -> str | None:
        """Where the endpoint captures requests: SageMaker adds ``<endpoint>/<variant>/yyyy/mm/dd/hh/``."""
        if self.deploy is None:
            return None
        return self.deploy.capture_s3_uri or self.s3_uri("capture")

    @property
    def watched_data_uri(self) -> str:
        """What the drift monitor reads: ``drift.data_uri``, else the endpoint's own data capture."""
        assert self.drift is not None
        if self.drift.data_uri:
            return self.drift.data_uri
        return f"{str(self.capture_s3_uri).rstrip('/')}/{self.endpoint_name}/"

    @property
    def drift_asset_uri(self) -> str:
        """The Asset the drift monitor updates and the retrain DAG is scheduled on."""
        return self.s3_uri("drift", self.pipeline)

    @field_validator("start_date", mode="before")
    @classmethod
    def _start_date(cls, value: Any) -> Any:
        # YAML reads an unquoted 2026-01-01 as a date; the factory parses the ISO string either way.
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, str):
            try:
                parsed = pendulum.parse(value, tz="UTC")
            except ValueError:
                parsed = None
            if not isinstance(parsed, date):
                raise ValueError("must be a date like 2026-01-01 (ISO 8601)")
        return value

    @property
    def dag_id(self) -> str:
        return f"dl_pipeline_{self.pipeline}"

    def s3_uri(self, *parts: str) -> str:
        path = "/".join(p.strip("/") for p in (self.prefix, *parts) if p)
        return f"s3://{self.bucket}/{path}"


def _model_for(loc: tuple[Any, ...]) -> type[BaseModel]:
    model: type[BaseModel] = PipelineConfig
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        # An optional section is ``Section | None``: look through the union for the model.
        for candidate in (annotation, *get_args(annotation)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                model = candidate
                break
    return model


def _one_line(path: Path, error: Any) -> str:
    loc = tuple(error["loc"])
    field = ".".join(str(p) for p in loc)
    if error["type"] == "extra_forbidden":
        import difflib  # only on the error path: the DAG processor parses valid configs

        known = list(_model_for(loc).model_fields)
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        fix = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(known)}"
        return f"{path}: {field}: unknown key; {fix}"
    if error["type"] == "missing":
        return f"{path}: {field}: required key is missing"
    if not loc:  # a rule across sections: its message names the fields itself
        return f"{path}: {str(error['msg']).removeprefix('Value error, ')}"
    value = error.get("input")
    shown = f" (got {value!r})" if not isinstance(value, dict | list) else ""
    return f"{path}: {field}: {error['msg']}{shown}"


CONFIG_DIR = "config_dir"


def resolve_local_path(value: str | None, context: Any) -> str | None:
    """``value`` made absolute against ``context["config_dir"]``, if it is a relative local path.

    s3:// URIs, Jinja templates and absolute paths are returned as they are, and so is everything
    when the config was not read from a file (no ``config_dir`` in the validation context).
    """
    config_dir = context.get(CONFIG_DIR) if isinstance(context, dict) else None
    if value is None or config_dir is None or "://" in value or "{{" in value:
        return value
    return str((Path(config_dir) / Path(value).expanduser()).resolve())


def load_config(path: str | Path) -> PipelineConfig:
    """Read and check one pipeline YAML file.

    Relative local paths in it (``training.source_dir``) are resolved against the file's folder.

    :raises PipelineConfigError: one line per problem, joined; the first names the file and field.
    """
    path = Path(path)
    try:
        # libyaml's loader where PyYAML has it: same safe schema and errors, a fraction of the parse time.
        raw = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (yaml.YAMLError, ValueError) as err:  # ValueError: an unquoted impossible date (2026-13-01)
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise PipelineConfigError(
            f"{path}:{where} is not valid YAML: {getattr(err, 'problem', err)}"
        ) from None
    if not isinstance(raw, dict):
        raise PipelineConfigError(
            f"{path}: must be a mapping of keys (pipeline, role_arn, bucket, data, training)"
        )
    try:
        return PipelineConfig.model_validate(raw, context={CONFIG_DIR: path.parent.resolve()})
    except ValidationError as err:
        lines = [_one_line(path, e) for e in err.errors()]
        more = f" (and {len(lines) - 1} more: {'; '.join(lines[1:])})" if len(lines) > 1 else ""
        raise PipelineConfigError(lines[0] + more) from None
