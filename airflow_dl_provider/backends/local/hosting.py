"""A ``model.tar.gz`` served as SageMaker's PyTorch inference container serves it.

The archive holds the model files and ``code/<SAGEMAKER_PROGRAM>`` (``inference.py``) with the four
handlers ``model_fn``, ``input_fn``, ``predict_fn`` and ``output_fn``. Batch transform, endpoints and
compilation all load a model through here, so every local path calls the same handlers the same way.

A Model made from a registered model package runs the package's container, with the Model's own
environment over it. Simulated: the container image (handlers run with this Python and its torch).
Not imitated: the container's default handlers; an ``inference.py`` must define all four.
"""

from __future__ import annotations

import importlib.util
import sys
import tarfile
import threading
import uuid
from typing import TYPE_CHECKING, Any

from airflow_dl_provider.backends.local.work import JobFailure
from airflow_dl_provider.validation.preflight import split_s3_uri

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from types import ModuleType

    from airflow_dl_provider.backends.local.resources import ResourceStore

HANDLERS = ("model_fn", "input_fn", "predict_fn", "output_fn")
DEFAULT_PROGRAM = "inference.py"


def download_model(s3: Any, model_data_url: str, target: Path) -> Path:
    """Download and unpack ``model.tar.gz`` into ``target`` (as the container's ``/opt/ml/model``)."""
    bucket, key = split_s3_uri(model_data_url)
    target.mkdir(parents=True, exist_ok=True)
    archive = target.parent / f"{target.name}.tar.gz"
    try:
        s3.download_file(bucket, key, str(archive))
    except Exception as err:
        raise JobFailure(f"ClientError: cannot download the model {model_data_url}: {err}") from err
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    archive.unlink()
    return target


def load_program(model_dir: Path, program: str = DEFAULT_PROGRAM) -> ModuleType:
    """Import ``code/<program>`` from an unpacked model, under a name of its own (models never mix)."""
    path = model_dir / "code" / program
    if not path.is_file():
        raise JobFailure(
            f"ClientError: the model has no code/{program}; package the inference script with it"
        )
    code_dir = str(path.parent)
    if code_dir not in sys.path:
        # The script may import its neighbours, as it can in the container.
        sys.path.insert(0, code_dir)
    name = f"_sagemaker_program_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    spec.loader.exec_module(module)
    missing = [h for h in HANDLERS if not callable(getattr(module, h, None))]
    if missing:
        raise JobFailure(
            f"ClientError: code/{program} defines no {', '.join(missing)}; the local backend does not "
            "imitate the container's default handlers"
        )
    return module


class ModelHandlers:
    """One loaded model and its handlers: ``invoke(body, content_type, accept) -> bytes``.

    :param model_dir: the unpacked ``model.tar.gz``.
    :param program: ``SAGEMAKER_PROGRAM`` from the model's environment.
    """

    def __init__(self, model_dir: Path, program: str = DEFAULT_PROGRAM) -> None:
        self.module = load_program(model_dir, program)
        self.model = self.module.model_fn(str(model_dir))
        # The endpoint server is threaded; one model call at a time, as one worker would make them.
        self._lock = threading.Lock()

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> bytes:
        with self._lock:
            data = self.module.input_fn(body, content_type)
            prediction = self.module.predict_fn(data, self.model)
            output = self.module.output_fn(prediction, accept)
        return output.encode("utf-8") if isinstance(output, str) else bytes(output)


def model_program(container: dict[str, Any]) -> str:
    """The entry point a model's container runs: ``SAGEMAKER_PROGRAM``, else ``inference.py``."""
    return str((container.get("Environment") or {}).get("SAGEMAKER_PROGRAM") or DEFAULT_PROGRAM)


def package_container(packages: ResourceStore, container: Mapping[str, Any]) -> dict[str, Any]:
    """The container of a Model made from a model package: the package's first inference container,
    with the Model's own environment over the package's (as SageMaker merges them)."""
    name = str(container["ModelPackageName"])
    for package in packages.all("model-package"):
        if name in (
            package["ModelPackageArn"],
            f"{package['ModelPackageName']}/{package['ModelPackageVersion']}",
        ):
            chosen = dict(((package.get("InferenceSpecification") or {}).get("Containers") or [{}])[0])
            chosen["Environment"] = {
                **(chosen.get("Environment") or {}),
                **(container.get("Environment") or {}),
            }
            return chosen
    raise JobFailure(f"ClientError: the model package {name} does not exist")


def primary_container(model: dict[str, Any], packages: ResourceStore | None = None) -> dict[str, Any]:
    """The Model's container; one made from a model package is resolved through ``packages``."""
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    if container.get("ModelPackageName") and packages is not None:
        container = package_container(packages, container)
    if not container.get("ModelDataUrl"):
        raise JobFailure(
            f"ClientError: model {model.get('ModelName')!r} has no ModelDataUrl; the local backend serves "
            "model.tar.gz artifacts only"
        )
    return dict(container)
