"""Neo compilation: typed arguments -> one CreateCompilationJob request.

What Neo accepts (PyTorch versions per target, the model file) is data in
:mod:`airflow_dl_provider.presets.compilation`, checked at DAG import and again before the job.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_dl_provider.exceptions import PreflightError
from airflow_dl_provider.jobs.kinds import JOB_KINDS
from airflow_dl_provider.jobs.plan import JobPlan
from airflow_dl_provider.operators.base import SageMakerJobOperator
from airflow_dl_provider.presets.compilation import check_framework_version, pytorch_target
from airflow_dl_provider.specs.model import ModelSource, compose_model_source
from airflow_dl_provider.validation.preflight import check_s3_prefix

FRAMEWORKS = ("TENSORFLOW", "KERAS", "MXNET", "ONNX", "PYTORCH", "XGBOOST", "TFLITE", "DARKNET", "SKLEARN")
# Frameworks whose models carry no input shapes Neo could read; PyTorch may list shapes instead of naming them.
NAMED_SHAPES = ("TENSORFLOW", "KERAS", "MXNET", "ONNX", "TFLITE", "DARKNET")
NO_SHAPES = ("XGBOOST", "SKLEARN")
PLATFORM_KEYS = frozenset({"Os", "Arch", "Accelerator"})


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def _parse_config(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        try:
            return ast.literal_eval(text)  # Neo's own docs spell it {'input0': [1, 3, 224, 224]}
        except (ValueError, SyntaxError):
            raise PreflightError(f"data_input_config: {text!r} is not JSON") from None


def _is_shape(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(d, int) and d > 0 for d in value)


def check_data_input_config(framework: str, config: Any, target_device: str | None) -> None:
    """The layout Neo expects for ``framework``: a dict of input name to shape (PyTorch: or a list of shapes).

    Required for every framework but XGBoost and scikit-learn, and for every framework on Inferentia and
    Trainium targets, which compile for fixed input shapes.
    """
    if config in (None, "", {}, []):
        target = pytorch_target(target_device)
        if framework in NO_SHAPES and not target.needs_shapes:
            return
        needs = f"{target_device} targets need" if target.needs_shapes else f"{framework} needs"
        raise PreflightError(
            f"data_input_config: {needs} the input names and shapes, e.g. {{'input0': [1, 3, 224, 224]}}"
        )
    value = _parse_config(config) if isinstance(config, str) else config
    named = isinstance(value, Mapping) and all(_is_shape(s) for s in value.values())
    listed = isinstance(value, list) and all(_is_shape(s) for s in value)
    if framework == "PYTORCH" and not (named or listed):
        raise PreflightError(
            f"data_input_config: {value!r} is not a PyTorch layout; use {{'input0': [1, 3, 224, 224]}} "
            "or [[1, 3, 224, 224]] (shapes of positive ints)"
        )
    if framework in NAMED_SHAPES and not named:
        raise PreflightError(
            f"data_input_config: {framework} needs a dict of input name to shape (positive ints), got {value!r}"
        )


def is_nvidia_target(output_config: Mapping[str, Any]) -> bool:
    """Jetson devices and NVIDIA-accelerated platforms: Neo needs CompilerOptions (gpu-code, trt-ver, cuda-ver)."""
    device = str(output_config.get("TargetDevice") or "")
    platform = output_config.get("TargetPlatform") or {}
    return device.startswith("jetson_") or platform.get("Accelerator") == "NVIDIA"


def check_target(output_config: Mapping[str, Any]) -> None:
    if bool(output_config.get("TargetDevice")) == bool(output_config.get("TargetPlatform")):
        raise PreflightError(
            "target_device / target_platform: set exactly one (a device such as 'ml_c5', or a platform "
            "{'Os': 'LINUX', 'Arch': 'X86_64'})"
        )
    if is_nvidia_target(output_config) and not output_config.get("CompilerOptions"):
        raise PreflightError(
            "compiler_options: NVIDIA targets need them, e.g. {'gpu-code': 'sm_72', 'trt-ver': '8.2.1', "
            "'cuda-ver': '10.2'}"
        )


class NeoCompilationOperator(SageMakerJobOperator):
    """Compile a trained model with SageMaker Neo for a target device or platform.

    :param role_arn: the role Neo uses to read the model and write the artifact. (templated)
    :param model: what to compile: ``ModelSource(model_artifacts="s3://.../model.tar.gz")``
        (:class:`~airflow_dl_provider.specs.model.ModelSource`), e.g. a training task's
        ``model_artifacts``. For PyTorch the archive holds exactly one ``.pt``/``.pth`` file, the model
        traced with ``torch.jit.trace`` and saved with ``torch.jit.save`` (``docker/training/train.py``
        saves ``model.pth``). An existing Model or a model package is refused: Neo compiles artifacts.
        (templated)
    :param output_path: ``s3://`` prefix; the artifact lands at ``<output_path>/<model basename>-<target>.tar.gz``. (templated)
    :param framework: ``PYTORCH`` (default), ``TENSORFLOW``, ``KERAS``, ``MXNET``, ``ONNX``, ``XGBOOST``, ...
    :param framework_version: the framework version Neo compiles with, ``major.minor`` (``2.0.1`` is
        sent as ``2.0``); required for PyTorch and one Neo accepts for the target (cloud instances 1.4
        to 2.0, ``ml_inf1`` 1.7-1.9, ``ml_inf2``/``ml_trn1`` 1.13, edge 1.7-1.8). (templated)
    :param data_input_config: input name -> shape (``{"input0": [1, 64]}``), or for PyTorch a list of
        shapes; a dict, list or JSON string. Required, except for XGBoost and scikit-learn models on
        targets other than Inferentia and Trainium. (templated)
    :param target_device: e.g. ``ml_c5``, ``jetson_xavier``; exactly one of this and ``target_platform``. (templated)
    :param target_platform: ``{"Os": "LINUX", "Arch": "X86_64", "Accelerator": "NVIDIA"}``. (templated)
    :param compiler_options: a dict or JSON string; required for NVIDIA targets. (templated)
    :param max_runtime_seconds: the job's ``MaxRuntimeInSeconds``.
    :param output_kms_key_id: KMS key for the compiled artifact.
    :param tags: tags for the compilation job. (templated)

    Deprecated (this release only): ``model_artifacts`` builds ``model`` with a ``DeprecationWarning``.
    """

    job_kind = JOB_KINDS["compilation"]
    template_fields: Sequence[str] = (
        *SageMakerJobOperator.template_fields,
        "role_arn",
        "model",
        "output_path",
        "framework_version",
        "data_input_config",
        "target_device",
        "target_platform",
        "compiler_options",
        "tags",
    )

    def __init__(
        self,
        *,
        role_arn: str,
        output_path: str,
        model: ModelSource | None = None,
        framework: str = "PYTORCH",
        framework_version: str | None = None,
        data_input_config: Mapping[str, Any] | Sequence[Any] | str | None = None,
        target_device: str | None = None,
        target_platform: Mapping[str, str] | None = None,
        compiler_options: Mapping[str, Any] | str | None = None,
        max_runtime_seconds: int = 900,
        output_kms_key_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        flat = {k: kwargs.pop(k) for k in ("model_artifacts",) if k in kwargs}
        super().__init__(**kwargs)
        task = self.task_id
        self.model = compose_model_source(task, model, flat)
        if not self.model.model_artifacts:
            raise ValueError(
                f"{task}: model: Neo compiles model artifacts; give ModelSource(model_artifacts='s3://.../model.tar.gz')"
            )
        framework = framework.upper()
        if framework not in FRAMEWORKS:
            raise ValueError(f"{task}: framework: {framework!r} is not one of {', '.join(FRAMEWORKS)}")
        if target_platform and not _templated(target_platform):
            unknown = set(target_platform) - PLATFORM_KEYS
            if unknown or not {"Os", "Arch"} <= set(target_platform):
                raise ValueError(
                    f"{task}: target_platform needs Os and Arch (and optionally Accelerator), got {dict(target_platform)}"
                )
        if max_runtime_seconds < 1:
            raise ValueError(f"{task}: max_runtime_seconds must be >= 1, got {max_runtime_seconds}")
        self.role_arn = role_arn
        self.output_path = output_path
        self.framework = framework
        self.framework_version = framework_version
        self.data_input_config = data_input_config
        self.target_device = target_device
        self.target_platform = (
            dict(target_platform) if isinstance(target_platform, Mapping) else target_platform
        )
        self.compiler_options = compiler_options
        self.max_runtime_seconds = max_runtime_seconds
        self.output_kms_key_id = output_kms_key_id
        self.tags = dict(tags or {})
        # The same checks as pre-flight, at DAG import, for whatever is not templated.
        output = self._output_config()
        if not any(_templated(v) for v in (target_device, compiler_options)) and not _templated(
            target_platform
        ):
            try:
                check_target(output)
                if not _templated(framework_version):
                    check_framework_version(framework, framework_version, target_device)
                if not _templated(data_input_config):
                    check_data_input_config(framework, data_input_config, target_device)
            except PreflightError as err:
                raise ValueError(f"{task}: {err}") from None

    def _output_config(self) -> dict[str, Any]:
        output: dict[str, Any] = {"S3OutputLocation": self.output_path}
        if self.target_device:
            output["TargetDevice"] = self.target_device
        if self.target_platform:
            output["TargetPlatform"] = dict(self.target_platform)  # type: ignore[arg-type]
        if self.compiler_options:
            options = self.compiler_options
            output["CompilerOptions"] = options if isinstance(options, str) else json.dumps(dict(options))
        if self.output_kms_key_id:
            output["KmsKeyId"] = self.output_kms_key_id
        return output

    def build(self, context: Any) -> JobPlan:
        try:
            self.model.check(rendered=True)
        except ValueError as err:
            raise PreflightError(str(err)) from None
        input_config: dict[str, Any] = {"S3Uri": str(self.model.model_artifacts), "Framework": self.framework}
        config = self.data_input_config
        if config not in (None, "", {}, []):
            input_config["DataInputConfig"] = config if isinstance(config, str) else json.dumps(config)
        version = check_framework_version(self.framework, self.framework_version, self.target_device)
        if version:
            input_config["FrameworkVersion"] = version
        request: dict[str, Any] = {
            "RoleArn": self.role_arn,
            "InputConfig": input_config,
            "OutputConfig": self._output_config(),
            "StoppingCondition": {"MaxRuntimeInSeconds": int(self.max_runtime_seconds)},
        }
        if self.tags:
            request["Tags"] = [{"Key": str(k), "Value": str(v)} for k, v in self.tags.items()]
        return JobPlan(request)

    def preflight(self, plan: JobPlan, context: Any) -> None:
        request = plan.request
        output, source = request["OutputConfig"], request["InputConfig"]
        check_target(output)
        # Again on the merged request: overrides may have changed the version, the target or the shapes.
        check_framework_version(
            source["Framework"], source.get("FrameworkVersion"), output.get("TargetDevice")
        )
        check_data_input_config(
            source["Framework"], source.get("DataInputConfig"), output.get("TargetDevice")
        )
        check_s3_prefix(self.hook.s3, source["S3Uri"], "model.model_artifacts")

    def execute(self, context: Any) -> dict[str, Any]:
        """Compile the model.

        :return: ``job_name``, ``job_arn``, ``status`` and ``compiled_artifacts`` (the compiled
            ``.tar.gz`` URI, ``ModelArtifacts.S3ModelArtifacts``), JSON-safe.
        """
        return super().execute(context)
