"""Hosting resources (endpoints, endpoint configs): asynchronous deletes, calls refused while one
changes, and blue/green deployment with auto-rollback."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_dl_provider.behaviour.sources import API_PAGE as _API
from airflow_dl_provider.behaviour.sources import K8S_OPERATOR, VALIDATION
from airflow_dl_provider.specs.fields import keyed

# -- asynchronous deletes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AsyncDelete:
    """A resource that its Delete call only starts deleting.

    :param resource: the API noun, e.g. ``Endpoint``.
    :param status_field: where Describe shows the status.
    :param deleting: the status shown until it is gone (then Describe answers not found).
    :param delete_failed: the status it ends in when the delete fails, if the API has one.
    :param refused: what the service answers to calls on a deleting one, ``{operation: (code, message)}``;
        the message formats ``{name}`` and ``{arn}``.
    :param source: the AWS documentation page.
    """

    resource: str
    status_field: str
    deleting: str = "Deleting"
    delete_failed: str | None = None
    refused: dict[str, tuple[str, str]] = field(default_factory=dict)
    source: str = ""

    @property
    def delete_operation(self) -> str:
        return f"Delete{self.resource}"

    @property
    def describe_operation(self) -> str:
        return f"Describe{self.resource}"

    def is_deleting(self, description: dict[str, Any] | None) -> bool:
        return bool(description) and (description or {}).get(self.status_field) == self.deleting


ASYNC_DELETE: dict[str, AsyncDelete] = keyed(
    (
        # DeleteEndpoint returns at once; Describe shows Deleting until the instances are released
        # (the CLI's `wait endpoint-deleted` polls for the not-found). Meanwhile the name is taken,
        # and the endpoint is "in progress": no update, no second delete.
        AsyncDelete(
            "Endpoint",
            "EndpointStatus",
            refused={
                "CreateEndpoint": (VALIDATION, 'Cannot create already existing endpoint "{arn}".'),
                "UpdateEndpoint": (VALIDATION, 'Cannot update in-progress endpoint "{arn}".'),
                "DeleteEndpoint": (VALIDATION, 'Cannot update in-progress endpoint "{arn}".'),
            },
            source=f"{_API.format('DeleteEndpoint')} ; {_API.format('DescribeEndpoint')} ; {K8S_OPERATOR}",
        ),
        # A training job being deleted cannot be used: the engine moves on to the next attempt name.
        AsyncDelete("TrainingJob", "TrainingJobStatus", source=_API.format("DeleteTrainingJob")),
        AsyncDelete(
            "HyperParameterTuningJob",
            "HyperParameterTuningJobStatus",
            delete_failed="DeleteFailed",
            source=_API.format("DeleteHyperParameterTuningJob"),
        ),
        AsyncDelete(
            "ModelPackageGroup",
            "ModelPackageGroupStatus",
            delete_failed="DeleteFailed",
            source=_API.format("DescribeModelPackageGroup"),
        ),
        AsyncDelete("ModelPackage", "ModelPackageStatus", source=_API.format("DescribeModelPackage")),
    ),
    key="resource",
)


def deleting_refusal(resource: str, operation: str, name: str, arn: str = "") -> dict[str, str] | None:
    """The ``Error`` dict the service answers to ``operation`` on a deleting ``resource``; None: allowed."""
    refused = ASYNC_DELETE[resource].refused.get(operation)
    if refused is None:
        return None
    code, message = refused
    return {"Code": code, "Message": message.format(name=name, arn=arn or name)}


# -- calls refused while a resource changes -------------------------------------------------------------

_ACK_ENDPOINT_TESTS = (
    "https://github.com/aws-controllers-k8s/sagemaker-controller/blob/main/"
    "pkg/resource/endpoint/testdata/test_suite.yaml"
)


@dataclass(frozen=True)
class InProgress:
    """A resource that refuses some calls while the service is changing it.

    :param resource: the API noun, e.g. ``Endpoint``.
    :param status_field: where Describe shows the status.
    :param statuses: the statuses in which the service is changing it.
    :param refused: ``{operation: (code, message)}`` answered meanwhile; the message formats ``{name}``
        and ``{arn}``.
    :param source: the AWS documentation page, and where the refusal is recorded.
    """

    resource: str
    status_field: str
    statuses: frozenset[str]
    refused: dict[str, tuple[str, str]] = field(default_factory=dict)
    source: str = ""


IN_PROGRESS: dict[str, InProgress] = keyed(
    (
        # An endpoint being created or updated takes neither an update nor a delete: the caller waits
        # until it is InService or Failed (a creation that cannot pass its health check stays Creating
        # for up to an hour). No call cancels a creation or an update in flight. The ACK controller
        # requeues instead of calling ("Endpoint in Creating state cannot be modified or deleted"), and
        # AWS's example notebooks wait for InService before deleting (amazon-sagemaker-examples#3188).
        InProgress(
            "Endpoint",
            "EndpointStatus",
            frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"}),
            refused={
                "UpdateEndpoint": (VALIDATION, 'Cannot update in-progress endpoint "{arn}".'),
                "DeleteEndpoint": (VALIDATION, 'Cannot update in-progress endpoint "{arn}".'),
            },
            source=f"{_API.format('UpdateEndpoint')} ; {_API.format('DeleteEndpoint')} ; {_ACK_ENDPOINT_TESTS} ; "
            "https://github.com/aws/amazon-sagemaker-examples/pull/3188",
        ),
    ),
    key="resource",
)


def in_progress_refusal(
    resource: str, operation: str, status: str, name: str, arn: str = ""
) -> dict[str, str] | None:
    """The ``Error`` dict the service answers to ``operation`` on a ``resource`` in ``status``; None: allowed."""
    row = IN_PROGRESS.get(resource)
    if row is None or status not in row.statuses or operation not in row.refused:
        return None
    code, message = row.refused[operation]
    return {"Code": code, "Message": message.format(name=name, arn=arn or name)}


# -- UpdateEndpoint: blue/green deployment with auto-rollback --------------------------------------------


@dataclass(frozen=True)
class BlueGreen:
    """How UpdateEndpoint rolls a new config out (``DeploymentConfig.BlueGreenUpdatePolicy``).

    The endpoint shows ``Updating`` (and Describe a ``PendingDeploymentSummary`` naming the new config)
    while SageMaker starts a new fleet beside the old one, which keeps serving; traffic moves in the
    policy's steps, each followed by a baking period of ``WaitIntervalInSeconds`` during which any alarm
    of ``AutoRollbackConfiguration`` in ALARM rolls the update back: all traffic returns to the old
    fleet, the new one is terminated and the endpoint is ``InService`` again on its *old*
    ``EndpointConfigName`` (a caller must compare it with the config it asked for).
    ``UpdateRollbackFailed`` when the rollback itself fails: it serves, a mix of both configs.
    Without ``DeploymentConfig`` the update is blue/green all at once; ``RetainDeploymentConfig``
    (default false) reuses the endpoint's ``LastDeploymentConfig`` instead. The execution role
    needs ``cloudwatch:DescribeAlarms`` on the alarms.

    :param step_percent: ``CAPACITY_PERCENT`` bounds of a traffic step, per routing type.
    :param wait_seconds: bounds of ``WaitIntervalInSeconds`` and ``TerminationWaitInSeconds``.
    :param execution_seconds: bounds of ``MaximumExecutionTimeoutInSeconds``, which must exceed the
        baking periods and the termination wait together.
    :param max_alarms: the most alarms ``AutoRollbackConfiguration`` takes.
    :param rolled_back: the status after a rollback; ``rollback_failed`` the one when it fails.
    """

    step_percent: dict[str, tuple[int, int]] = field(
        default_factory=lambda: {"CANARY": (1, 50), "LINEAR": (10, 50)}
    )
    wait_seconds: tuple[int, int] = (0, 3600)
    execution_seconds: tuple[int, int] = (600, 28800)
    max_alarms: int = 10
    rolled_back: str = "InService"
    rollback_failed: str = "UpdateRollbackFailed"
    source: str = (
        f"{_API.format('UpdateEndpoint')} ; {_API.format('DescribeEndpoint')} ; "
        f"{_API.format('TrafficRoutingConfig')} ; {_API.format('BlueGreenUpdatePolicy')} ; "
        f"{_API.format('AutoRollbackConfig')} ; {_API.format('PendingDeploymentSummary')} ; "
        "https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-canary.html ; "
        "https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html"
    )


BLUE_GREEN = BlueGreen()
# A model whose handler raises answers InvokeEndpoint with ModelError "Received server error (500) from
# primary with message ..." (the inference toolkit turns any exception into a 500): Invocation5XXErrors.
MODEL_ERROR_SOURCE = (
    "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html"
)
