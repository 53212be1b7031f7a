"""What SageMaker Neo accepts for a PyTorch model, per target: framework versions and the model file.

Sources (each row names its page):

* Cloud instances (``ml_c4``, ``ml_c5``, ``ml_m4``, ``ml_m5``, ``ml_p2``, ``ml_p3``, ``ml_g4dn`` ...):
  "Supported Instance Types and Frameworks",
  https://docs.aws.amazon.com/sagemaker/latest/dg/neo-supported-cloud.html: PyTorch 1.4, 1.5, 1.6, 1.7,
  1.8, 1.12, 1.13 or 2.0; "one model definition file (.pt or .pth) with input dtype of float32".
* Inferentia (``ml_inf1``): the same page's Inferentia table; the SageMaker Python SDK's Inferentia
  PyTorch images (``image_uri_config/inferentia-pytorch.json``) are 1.7, 1.8 and 1.9.
* Inferentia2 and Trainium (``ml_inf2``, ``ml_trn1``): the same page, PyTorch 1.13.
* Edge devices and ``TargetPlatform``: "Supported Frameworks",
  https://docs.aws.amazon.com/sagemaker/latest/dg/neo-supported-devices-edge-frameworks.html:
  PyTorch 1.7 or 1.8, one model definition file (.pth).
* ``FrameworkVersion`` "is only supported for the MXNet, PyTorch, TensorFlow and TensorFlow Lite
  frameworks" (API_InputConfig), and the SageMaker Python SDK sends it as ``major.minor``
  (``utils.get_short_version``), as Neo's tables list it.
* The archive: the SDK refuses a PyTorch ``model.tar.gz`` with more than one ``.pt``/``.pth`` file
  ("Exactly one .pt or .pth file is allowed for PyTorch models."), and Neo answers an archive with none
  "ClientError: InputConfiguration: No pth file found for PyTorch model." The file is TorchScript:
  ``torch.jit.trace`` then ``torch.jit.save`` (Neo: "use torch.jit.trace() and torch.jit.save() to
  export your model").

Pure module: no Airflow, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow_dl_provider.exceptions import PreflightError

_CLOUD = "https://docs.aws.amazon.com/sagemaker/latest/dg/neo-supported-cloud.html"
_EDGE = "https://docs.aws.amazon.com/sagemaker/latest/dg/neo-supported-devices-edge-frameworks.html"
FRAMEWORK_VERSION_FRAMEWORKS = ("MXNET", "PYTORCH", "TENSORFLOW", "TFLITE")
PYTORCH_MODEL_SUFFIXES = (".pt", ".pth")
# What train.py saves and the local backend compiles: the traced TorchScript module.
TRACED_MODEL_FILENAME = "model.pth"


@dataclass(frozen=True)
class NeoPyTorchTarget:
    """The PyTorch versions Neo compiles for one family of targets.

    :param family: a readable name for messages.
    :param versions: ``major.minor`` versions, oldest first.
    :param needs_shapes: ``DataInputConfig`` is required whatever the framework.
    :param source: the AWS page.
    """

    family: str
    versions: tuple[str, ...]
    needs_shapes: bool
    source: str


CLOUD = NeoPyTorchTarget(
    "cloud instances", ("1.4", "1.5", "1.6", "1.7", "1.8", "1.12", "1.13", "2.0"), False, _CLOUD
)
INFERENTIA = NeoPyTorchTarget("ml_inf1 (Inferentia)", ("1.7", "1.8", "1.9"), True, _CLOUD)
NEURON_V2 = NeoPyTorchTarget("ml_inf2 and ml_trn1 (Inferentia2, Trainium)", ("1.13",), True, _CLOUD)
EDGE = NeoPyTorchTarget("edge devices and target platforms", ("1.7", "1.8"), False, _EDGE)
NEO_PYTORCH_TARGETS: dict[str, NeoPyTorchTarget] = {
    "ml_inf1": INFERENTIA,
    "ml_inf2": NEURON_V2,
    "ml_trn1": NEURON_V2,
}


def pytorch_target(target_device: str | None) -> NeoPyTorchTarget:
    """The row for a ``TargetDevice`` (None: a ``TargetPlatform``, which Neo treats as an edge target)."""
    device = str(target_device or "")
    if device in NEO_PYTORCH_TARGETS:
        return NEO_PYTORCH_TARGETS[device]
    return CLOUD if device.startswith("ml_") else EDGE


def short_version(version: str) -> str:
    """``2.0.1`` -> ``2.0``: the spelling Neo's tables and the SageMaker SDK use."""
    parts = str(version).strip().split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        raise PreflightError(f"framework_version: {version!r} is not a version like '2.0'")
    return ".".join(parts[:2])


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def check_framework_version(framework: str, version: str | None, target_device: str | None) -> str | None:
    """The ``FrameworkVersion`` to send (``major.minor``), or a one-line error naming what Neo accepts.

    :raises PreflightError: a version for a framework without the field, no version for PyTorch, or a
        PyTorch version Neo does not compile for the target.
    """
    if version in (None, ""):
        if framework == "PYTORCH":
            target = pytorch_target(target_device)
            raise PreflightError(
                f"framework_version: Neo needs the PyTorch version of the model for {target.family}; use one "
                f"of {', '.join(target.versions)}"
            )
        return None
    if framework not in FRAMEWORK_VERSION_FRAMEWORKS:
        raise PreflightError(
            f"framework_version: Neo takes it for {', '.join(FRAMEWORK_VERSION_FRAMEWORKS)} only, not {framework}; "
            "leave it out"
        )
    short = short_version(str(version))
    if framework == "PYTORCH":
        target = pytorch_target(target_device)
        if short not in target.versions:
            raise PreflightError(
                f"framework_version: Neo does not compile PyTorch {version} for {target.family}; use one of "
                f"{', '.join(target.versions)} ({target.source})"
            )
    return short


def newest_pytorch_version(target_device: str | None, trained_with: str) -> str:
    """The newest version Neo compiles for the target that is not newer than the training framework.

    A model trained on a PyTorch newer than Neo's newest is compiled as Neo's newest; one older than
    Neo's oldest, as the oldest (a newer PyTorch loads an older TorchScript file).
    """
    target = pytorch_target(target_device)
    trained = _key(short_version(trained_with))
    older = [v for v in target.versions if _key(v) <= trained]
    return older[-1] if older else target.versions[0]
