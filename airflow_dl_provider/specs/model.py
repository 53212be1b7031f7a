"""Where a SageMaker Model comes from: one spec for batch transform, endpoints, compilation and the registry.

An existing Model by name, model artifacts (a training or compilation output) served by an inference
image, or a versioned model package from the registry. A Model this spec creates is named by what it
holds (image, artifact or package, environment, role), so creating it is idempotent: a retried task
finds the Model its earlier try created, and a new artifact gets a new Model.
"""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_dl_provider.jobs.naming import deterministic_job_name
from airflow_dl_provider.jobs.plan import Prerequisite
from airflow_dl_provider.presets.containers import pytorch_image, version_error
from airflow_dl_provider.specs.fields import fixed, string_map

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_dl_provider.jobs.plan import RequestPath

# Where the SageMaker Python SDK puts the inference code it repacks into model.tar.gz.
SUBMIT_DIRECTORY = "/opt/ml/model/code"
SOURCES = ("model_name", "model_artifacts", "model_package_arn")
# The flat model arguments of earlier releases (transform, endpoints, registry), now ModelSource's fields.
MODEL_ARGUMENTS = (*SOURCES, "role_arn", "image_uri", "framework_version", "py_version", "entry_point")


def inference_environment(
    entry_point: str, region: str, environment: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """The environment the SageMaker SDK sets for script-mode inference, then the caller's own."""
    return {
        "SAGEMAKER_PROGRAM": entry_point,
        "SAGEMAKER_SUBMIT_DIRECTORY": SUBMIT_DIRECTORY,
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_REGION": region,
        **string_map(environment),
    }


def content_addressed_model_name(prefix: str, container: Mapping[str, Any], role_arn: str) -> str:
    """``<prefix>-model-<hash>``: the hash covers everything the Model holds."""
    spec = json.dumps(
        [
            container.get("Image") or container.get("ModelPackageName"),
            container.get("ModelDataUrl"),
            container.get("Environment") or {},
            role_arn,
        ],
        sort_keys=True,
    )
    return deterministic_job_name("model", spec, "", prefix=f"{prefix}-model")


@dataclass
class ModelSource:
    """The Model a task serves or transforms with: exactly one of ``model_name``, ``model_artifacts``
    or ``model_package_arn``.

    :param model_name: an existing SageMaker Model; nothing is created. (templated)
    :param model_artifacts: ``s3://.../model.tar.gz`` (with ``code/<entry_point>``) to create a Model
        from, in ``image_uri`` or the AWS PyTorch inference container. (templated)
    :param model_package_arn: a versioned model package (``.../model-package/<group>/<version>``) to
        create a Model from; its own inference specification names the image. (templated)
    :param role_arn: the Model's execution role; needed to create one (:meth:`require_role`). (templated)
    :param image_uri: the inference image; defaults to the PyTorch inference container for
        ``framework_version`` on the task's instance type, in the task's region. (templated)
    :param framework_version: the PyTorch version of that container, e.g. ``2.5.1``.
    :param py_version: its Python, e.g. ``py311``; None: the one the container is built for.
    :param entry_point: ``SAGEMAKER_PROGRAM``, the handler script in the artifact's ``code/``.
    :param environment: extra environment variables of the Model's container. (templated)
    """

    model_name: str | None = None
    model_artifacts: str | None = None
    model_package_arn: str | None = None
    role_arn: str | None = None
    image_uri: str | None = None
    framework_version: str = "2.5.1"
    py_version: str | None = "py311"
    entry_point: str = "inference.py"
    environment: dict[str, str] = field(default_factory=dict)

    template_fields: ClassVar[tuple[str, ...]] = (
        "model_name",
        "model_artifacts",
        "model_package_arn",
        "role_arn",
        "image_uri",
        "environment",
    )

    def __post_init__(self) -> None:
        self.environment = dict(self.environment or {})
        self.check()

    def check(self, rendered: bool = False) -> None:
        """One-line ``ValueError`` for a source that cannot work; templated values wait until ``rendered``."""
        given = [name for name in SOURCES if getattr(self, name)]
        if len(given) != 1:
            raise ValueError(
                f"model_name / model_artifacts / model_package_arn: set exactly one; got {given or 'none'}"
            )
        artifacts = self.model_artifacts
        if artifacts and fixed(artifacts, rendered) and not str(artifacts).startswith("s3://"):
            raise ValueError(f"model_artifacts: {artifacts!r} is not an s3:// URI of a model.tar.gz")
        if self.model_artifacts and not self.image_uri and fixed(self.framework_version, rendered):
            problem = version_error("inference", self.framework_version, self.py_version)
            if problem:
                raise ValueError(problem)

    def require_role(self) -> None:
        """For a task that creates the Model (transform, endpoints): its execution role must be given.

        Compilation reads the artifacts with its own role and the registry creates no Model, so the
        role is not required at construction.
        """
        if self.creates_model and not self.role_arn:
            source = "model_artifacts" if self.model_artifacts else "model_package_arn"
            raise ValueError(
                f"role_arn: creating a Model from {source} needs its execution role; pass role_arn"
            )

    @property
    def creates_model(self) -> bool:
        """True when the task creates the Model (from artifacts or a package), False for an existing one."""
        return not self.model_name

    def image(self, region: str, instance_type: str) -> str:
        """The inference image: ``image_uri``, else the PyTorch inference container for the instance."""
        if self.image_uri:
            return self.image_uri
        return pytorch_image("inference", region, self.framework_version, self.py_version, instance_type)

    def container(self, region: str, instance_type: str) -> dict[str, Any]:
        """The Model's container definition (``PrimaryContainer``, or one of a package's ``Containers``)."""
        if self.model_package_arn:
            container: dict[str, Any] = {"ModelPackageName": str(self.model_package_arn)}
            if self.environment:
                container["Environment"] = string_map(self.environment)
            return container
        return {
            "Image": self.image(region, instance_type),
            "ModelDataUrl": str(self.model_artifacts),
            "Environment": inference_environment(self.entry_point, region, self.environment),
        }

    def model_request(self, *, prefix: str, region: str, instance_type: str) -> dict[str, Any] | None:
        """The CreateModel request (content-addressed name), or None for an existing ``model_name``.

        :param prefix: the readable start of the Model's name, e.g. ``<dag_id>-<task_id>``.
        """
        if not self.creates_model:
            return None
        container = self.container(region, instance_type)
        role = str(self.role_arn)
        return {
            "ModelName": content_addressed_model_name(prefix, container, role),
            "PrimaryContainer": container,
            "ExecutionRoleArn": role,
        }

    def name(self, *, prefix: str, region: str, instance_type: str) -> str:
        """The Model's name: ``model_name``, or the name of the Model this spec creates."""
        request = self.model_request(prefix=prefix, region=region, instance_type=instance_type)
        return str(self.model_name) if request is None else str(request["ModelName"])

    def prerequisite(
        self, *, prefix: str, region: str, instance_type: str, at: RequestPath | None = ("ModelName",)
    ) -> Prerequisite | None:
        """The Model as a plan's prerequisite (created unless it exists), or None for ``model_name``.

        :param at: the job request's field that names the Model: an override there renames it.
        """
        request = self.model_request(prefix=prefix, region=region, instance_type=instance_type)
        if request is None:
            return None
        return Prerequisite("Model", "CreateModel", "ModelName", request, at=at)


def pop_model_arguments(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Take the flat model arguments of earlier releases out of an operator's ``kwargs``."""
    return {k: kwargs.pop(k) for k in MODEL_ARGUMENTS if k in kwargs}


def compose_model_source(
    task_id: str, model: ModelSource | None, flat: Mapping[str, Any], *, require_role: bool = False
) -> ModelSource:
    """The operator's own copy of ``model``, or one built from flat arguments with a ``DeprecationWarning``.

    :param require_role: the task creates the Model it uses (transform, endpoints): see
        :meth:`ModelSource.require_role`.
    :raises ValueError: one line naming the task and the field.
    """
    given = {k: v for k, v in flat.items() if v is not None}
    try:
        if model is not None:
            if given:
                raise ValueError(
                    f"model: {', '.join(sorted(given))} go inside model=ModelSource(...), not beside it"
                )
            if not isinstance(model, ModelSource):
                raise ValueError(f"model: expected a ModelSource, got {type(model).__name__}")
            # Airflow renders nested specs in place: each operator renders its own copy.
            source = copy.deepcopy(model)
        else:
            if given:
                warnings.warn(
                    f"{task_id}: {', '.join(sorted(given))}: flat model arguments are deprecated and go in "
                    "the next release; pass model=ModelSource(...) (airflow_dl_provider.specs.model)",
                    DeprecationWarning,
                    stacklevel=3,
                )
            source = ModelSource(**given)
        if require_role:
            source.require_role()
        return source
    except ValueError as err:
        raise ValueError(f"{task_id}: {err}") from None
