"""SageMaker hosting and the model registry as the service keeps them.

Models and endpoint configs are created at once and refuse a second create of the same name.
Endpoints are asynchronous: Creating and Updating for several Describes, then InService (or Failed
with a FailureReason), refusing UpdateEndpoint and DeleteEndpoint meanwhile
(``service_behaviour.IN_PROGRESS``); DeleteEndpoint only starts a delete: the endpoint shows
Deleting, keeps its name and refuses other calls (``service_behaviour.ASYNC_DELETE``) until it is gone.
An update is blue/green (``service_behaviour.BLUE_GREEN``): it keeps its ``DeploymentConfig`` as
``LastDeploymentConfig`` (``RetainDeploymentConfig`` reuses it), refuses alarms CloudWatch does not
have, and a planned rollback ends ``InService`` on the old config with a ``FailureReason``.
Model packages are versions in a group; ``ClientToken`` makes a create idempotent, as on AWS.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.validation.requests import output_shape
from tests.contract.fake_service import REGION, ServiceError, arn, not_found, now

if TYPE_CHECKING:
    import datetime as dt

    from tests.contract.fake_service import SageMakerService


def _echo(operation: str, request: dict[str, Any]) -> dict[str, Any]:
    members = output_shape(operation).members
    return {k: v for k, v in request.items() if k in members}


def _refuse(refusal: dict[str, str] | None) -> None:
    if refusal is not None:
        raise ServiceError(refusal["Code"], refusal["Message"])


@dataclass
class EndpointPlan:
    """How the next endpoint operations go.

    :param polls: Describes an endpoint shows Creating or Updating for.
    :param failure_reason: creating ends Failed with this FailureReason.
    :param delete_polls: Describes an endpoint shows Deleting for before it is gone.
    :param rollback_reason: an update's alarms trip: it ends InService on the old config, with this.
    """

    polls: int = 2
    failure_reason: str | None = None
    delete_polls: int = 2
    rollback_reason: str | None = None


@dataclass
class Endpoint:
    name: str
    config: str
    status: str = "Creating"
    plan: EndpointPlan = field(default_factory=EndpointPlan)
    pending: str | None = None
    failure_reason: str | None = None
    steps: int = 0
    deployment: dict[str, Any] | None = None
    created: dt.datetime = field(default_factory=now)
    modified: dt.datetime = field(default_factory=now)

    @property
    def arn(self) -> str:
        return arn("endpoint", self.name)


class Hosting:
    """Models, endpoint configs and endpoints."""

    def __init__(self, service: SageMakerService) -> None:
        self.service = service
        self.models: dict[str, dict[str, Any]] = {}
        self.configs: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self._plan = EndpointPlan()

    def plan(self, **kwargs: Any) -> EndpointPlan:
        """Run the next endpoint creates, updates and deletes as ``kwargs`` say (see :class:`EndpointPlan`)."""
        self._plan = EndpointPlan(**kwargs)
        return self._plan

    def add_endpoint(
        self, name: str, config: str, status: str, failure_reason: str | None = None
    ) -> Endpoint:
        """An endpoint that exists before the test, in ``status``."""
        endpoint = Endpoint(name, config, status, plan=self._plan, failure_reason=failure_reason)
        self.endpoints[name] = endpoint
        return endpoint

    # -- models and endpoint configs -----------------------------------------------------------------

    def create_model(self, **request: Any) -> dict[str, Any]:
        name = request["ModelName"]
        if name in self.models:
            _refuse(service_behaviour.HOSTING_NAME_IN_USE["CreateModel"].error("", arn=arn("model", name)))
        self.models[name] = {**request, "ModelArn": arn("model", name), "CreationTime": now()}
        return {"ModelArn": arn("model", name)}

    def describe_model(self, ModelName: str) -> dict[str, Any]:
        if ModelName not in self.models:
            raise not_found("DescribeModel", ModelName, arn("model", ModelName))
        return _echo("DescribeModel", self.models[ModelName])

    def create_endpoint_config(self, **request: Any) -> dict[str, Any]:
        name = request["EndpointConfigName"]
        config_arn = arn("endpoint-config", name)
        if name in self.configs:
            _refuse(service_behaviour.HOSTING_NAME_IN_USE["CreateEndpointConfig"].error("", arn=config_arn))
        for variant in request["ProductionVariants"]:
            model = variant.get("ModelName")
            if model and model not in self.models:
                raise not_found("DescribeModel", model, arn("model", model))
        self.configs[name] = {**request, "EndpointConfigArn": config_arn, "CreationTime": now()}
        return {"EndpointConfigArn": config_arn}

    def describe_endpoint_config(self, EndpointConfigName: str) -> dict[str, Any]:
        if EndpointConfigName not in self.configs:
            raise not_found(
                "DescribeEndpointConfig", EndpointConfigName, arn("endpoint-config", EndpointConfigName)
            )
        return _echo("DescribeEndpointConfig", self.configs[EndpointConfigName])

    # -- endpoints -----------------------------------------------------------------------------------

    def _config(self, operation: str, name: str) -> None:
        if name not in self.configs:
            raise not_found(operation, name, arn("endpoint-config", name))

    def create_endpoint(self, EndpointName: str, EndpointConfigName: str, **_rest: Any) -> dict[str, Any]:
        existing = self.endpoints.get(EndpointName)
        if existing is not None:
            # The name stays taken while the endpoint is Deleting, and of course while it lives.
            _refuse(
                service_behaviour.deleting_refusal("Endpoint", "CreateEndpoint", EndpointName, existing.arn)
            )
        self._config("CreateEndpoint", EndpointConfigName)
        endpoint = Endpoint(EndpointName, EndpointConfigName, plan=self._plan)
        self.endpoints[EndpointName] = endpoint
        return {"EndpointArn": endpoint.arn}

    def _endpoint(self, operation: str, name: str) -> Endpoint:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise not_found(operation, name, arn("endpoint", name))
        return endpoint

    def update_endpoint(
        self,
        EndpointName: str,
        EndpointConfigName: str,
        DeploymentConfig: dict[str, Any] | None = None,
        RetainDeploymentConfig: bool = False,
        **_rest: Any,
    ) -> dict[str, Any]:
        endpoint = self._endpoint("UpdateEndpoint", EndpointName)
        if endpoint.status == "Deleting":
            _refuse(
                service_behaviour.deleting_refusal("Endpoint", "UpdateEndpoint", EndpointName, endpoint.arn)
            )
        _refuse(
            service_behaviour.in_progress_refusal(
                "Endpoint", "UpdateEndpoint", endpoint.status, EndpointName, endpoint.arn
            )
        )
        if endpoint.status != "InService":
            # TODO(service_behaviour): UpdateEndpoint's answer for a Failed endpoint.
            raise ServiceError("ValidationException", f'Cannot update failed endpoint "{endpoint.arn}".')
        self._config("UpdateEndpoint", EndpointConfigName)
        deployment = DeploymentConfig or (endpoint.deployment if RetainDeploymentConfig else None)
        self._check_alarms(deployment)
        endpoint.status, endpoint.pending, endpoint.steps = "Updating", EndpointConfigName, 0
        endpoint.deployment, endpoint.failure_reason = deployment, None
        endpoint.plan = self._plan
        return {"EndpointArn": endpoint.arn}

    def _check_alarms(self, deployment: dict[str, Any] | None) -> None:
        # The service reads the alarms with cloudwatch:DescribeAlarms; one it cannot find guards nothing.
        # TODO(service_behaviour): the service's own answer for an alarm that does not exist.
        names = [
            a["AlarmName"]
            for a in ((deployment or {}).get("AutoRollbackConfiguration") or {}).get("Alarms", [])
        ]
        if not names:
            return
        import boto3

        found = boto3.client("cloudwatch", region_name=REGION).describe_alarms(AlarmNames=names)[
            "MetricAlarms"
        ]
        missing = sorted(set(names) - {a["AlarmName"] for a in found})
        if missing:
            raise ServiceError("ValidationException", f"Alarm(s) {', '.join(missing)} not found.")

    def delete_endpoint(self, EndpointName: str) -> dict[str, Any]:
        endpoint = self._endpoint("DeleteEndpoint", EndpointName)
        if endpoint.status == "Deleting":
            _refuse(
                service_behaviour.deleting_refusal("Endpoint", "DeleteEndpoint", EndpointName, endpoint.arn)
            )
        # Nothing cancels a creation or an update: the delete waits until it has ended.
        _refuse(
            service_behaviour.in_progress_refusal(
                "Endpoint", "DeleteEndpoint", endpoint.status, EndpointName, endpoint.arn
            )
        )
        endpoint.status = service_behaviour.ASYNC_DELETE["Endpoint"].deleting
        endpoint.steps = 0
        endpoint.plan = self._plan
        return {}

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        endpoint = self._endpoint("DescribeEndpoint", EndpointName)
        endpoint.steps += 1
        if endpoint.status == "Deleting" and endpoint.steps > endpoint.plan.delete_polls:
            del self.endpoints[EndpointName]
            raise not_found("DescribeEndpoint", EndpointName, endpoint.arn)
        if endpoint.status in ("Creating", "Updating") and endpoint.steps > endpoint.plan.polls:
            endpoint.modified = now()
            if endpoint.status == "Creating" and endpoint.plan.failure_reason:
                endpoint.status, endpoint.failure_reason = "Failed", endpoint.plan.failure_reason
            elif endpoint.status == "Updating" and endpoint.plan.rollback_reason:
                # All traffic back on the old fleet: serving, on the config it had.
                endpoint.status, endpoint.pending = service_behaviour.BLUE_GREEN.rolled_back, None
                endpoint.failure_reason = endpoint.plan.rollback_reason
            else:
                endpoint.status = "InService"
                endpoint.config, endpoint.pending = endpoint.pending or endpoint.config, None
        described: dict[str, Any] = {
            "EndpointName": endpoint.name,
            "EndpointArn": endpoint.arn,
            "EndpointConfigName": endpoint.config,
            "EndpointStatus": endpoint.status,
            "CreationTime": endpoint.created,
            "LastModifiedTime": endpoint.modified,
        }
        if endpoint.failure_reason:
            described["FailureReason"] = endpoint.failure_reason
        if endpoint.deployment:
            described["LastDeploymentConfig"] = endpoint.deployment
        if endpoint.pending:
            described["PendingDeploymentSummary"] = {
                "EndpointConfigName": endpoint.pending,
                "StartTime": endpoint.modified,
            }
        return described


@dataclass
class Package:
    group: str
    version: int
    request: dict[str, Any]
    order: int
    created: dt.datetime = field(default_factory=now)
    describes: int = 0
    approval_description: str | None = None

    @property
    def arn(self) -> str:
        return arn("model-package", f"{self.group}/{self.version}")


class Registry:
    """Model package groups and their versioned packages."""

    def __init__(self, service: SageMakerService) -> None:
        self.service = service
        self.groups: dict[str, dict[str, Any]] = {}
        self.packages: dict[str, Package] = {}
        self._tokens: dict[tuple[str, str], str] = {}
        self._order = itertools.count()

    def create_model_package_group(self, **request: Any) -> dict[str, Any]:
        name = request["ModelPackageGroupName"]
        group_arn = arn("model-package-group", name)
        if name in self.groups:
            # TODO(service_behaviour): CreateModelPackageGroup's answer for a name that is taken.
            raise ServiceError("ValidationException", f"Model Package Group already exists: {group_arn}")
        self.groups[name] = {
            **request,
            "ModelPackageGroupArn": group_arn,
            "CreationTime": now(),
            "CreatedBy": {},
            "ModelPackageGroupStatus": "Completed",
        }
        return {"ModelPackageGroupArn": group_arn}

    def describe_model_package_group(self, ModelPackageGroupName: str) -> dict[str, Any]:
        group = self.groups.get(ModelPackageGroupName)
        if group is None:
            group_arn = arn("model-package-group", ModelPackageGroupName)
            raise not_found("DescribeModelPackageGroup", ModelPackageGroupName, group_arn)
        return _echo("DescribeModelPackageGroup", group)

    def create_model_package(self, **request: Any) -> dict[str, Any]:
        group = request.get("ModelPackageGroupName")
        if group not in self.groups:
            raise not_found("CreateModelPackage", str(group), arn("model-package-group", str(group)))
        token = request.get("ClientToken")
        if token and (group, token) in self._tokens:
            return {"ModelPackageArn": self._tokens[(group, token)]}
        version = 1 + sum(1 for p in self.packages.values() if p.group == group)
        package = Package(str(group), version, request, next(self._order))
        self.packages[package.arn] = package
        if token:
            self._tokens[(str(group), token)] = package.arn
        return {"ModelPackageArn": package.arn}

    def _package(self, operation: str, name: str) -> Package:
        package = self.packages.get(name)
        if package is None:
            raise not_found(operation, name, name)
        return package

    def describe_model_package(self, ModelPackageName: str) -> dict[str, Any]:
        package = self._package("DescribeModelPackage", ModelPackageName)
        package.describes += 1
        described = {
            **_echo("DescribeModelPackage", package.request),
            "ModelPackageName": package.group,
            "ModelPackageGroupName": package.group,
            "ModelPackageVersion": package.version,
            "ModelPackageArn": package.arn,
            "CreationTime": package.created,
            # Registered asynchronously: Pending, then InProgress, then Completed.
            "ModelPackageStatus": ("Pending", "InProgress", "Completed")[min(package.describes - 1, 2)],
            "ModelPackageStatusDetails": {"ValidationStatuses": []},
            "ModelApprovalStatus": package.request.get("ModelApprovalStatus", "PendingManualApproval"),
            "LastModifiedTime": now(),
        }
        described.pop("ClientToken", None)
        if package.approval_description is not None:
            described["ApprovalDescription"] = package.approval_description
        return described

    def list_model_packages(
        self,
        ModelPackageGroupName: str | None = None,
        ModelApprovalStatus: str | None = None,
        SortBy: str = "CreationTime",
        SortOrder: str = "Ascending",
        MaxResults: int = 100,
        **_filters: Any,
    ) -> dict[str, Any]:
        if ModelPackageGroupName is not None and ModelPackageGroupName not in self.groups:
            group_arn = arn("model-package-group", ModelPackageGroupName)
            raise not_found("ListModelPackages", ModelPackageGroupName, group_arn)
        chosen = [
            p
            for p in self.packages.values()
            if (ModelPackageGroupName is None or p.group == ModelPackageGroupName)
            and (ModelApprovalStatus is None or p.request.get("ModelApprovalStatus") == ModelApprovalStatus)
        ]
        chosen.sort(key=lambda p: p.order if SortBy == "CreationTime" else (p.group, p.version))
        if SortOrder == "Descending":
            chosen.reverse()
        return {
            "ModelPackageSummaryList": [
                {
                    "ModelPackageName": p.group,
                    "ModelPackageGroupName": p.group,
                    "ModelPackageVersion": p.version,
                    "ModelPackageArn": p.arn,
                    "CreationTime": p.created,
                    "ModelPackageStatus": "Completed",
                    "ModelApprovalStatus": p.request.get("ModelApprovalStatus", "PendingManualApproval"),
                }
                for p in chosen[:MaxResults]
            ]
        }

    def update_model_package(self, ModelPackageArn: str, **changes: Any) -> dict[str, Any]:
        package = self._package("UpdateModelPackage", ModelPackageArn)
        if "ModelApprovalStatus" in changes:
            package.request["ModelApprovalStatus"] = changes["ModelApprovalStatus"]
        if "ApprovalDescription" in changes:
            package.approval_description = changes["ApprovalDescription"]
        if "CustomerMetadataProperties" in changes:
            package.request["CustomerMetadataProperties"] = {
                **(package.request.get("CustomerMetadataProperties") or {}),
                **changes["CustomerMetadataProperties"],
            }
        return {"ModelPackageArn": package.arn}
