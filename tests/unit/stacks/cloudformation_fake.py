"""A CloudFormation that runs airflow-dl's root stack the way the service does, for deploy tests.

moto's CloudFormation creates nested stacks without their outputs and answers every UPDATE change set
"CREATE_COMPLETE" with no changes, and moto has no MWAA: it cannot show whether a deploy restarts
the environment. This fake is the service's behaviour where deploy depends on it (stack
states, change-set answers, nested change sets, nested stacks' own events, what an update touches),
and nothing kinder:

- requests are validated against botocore's CloudFormation model before they are answered;
- a missing stack answers ``ValidationError: Stack with id <name> does not exist``; an UPDATE change
  set with nothing new ends ``FAILED`` with "The submitted information didn't contain changes...";
- CloudFormation refuses an update to a stack in ROLLBACK_COMPLETE, an *_IN_PROGRESS one, or a failed one;
- the MWAA environment is a resource in the nested MwaaStack: it is updated exactly when a parameter
  it reads changes, and replaced when its name or subnets change (createOnlyProperties).
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any

import botocore.session
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters

ACCOUNT = "123456789012"
REGION = "us-east-1"
_MODEL = botocore.session.get_session().get_service_model("cloudformation")
_IDS = itertools.count(1)

# Root parameters -> the nested stack whose resources read them.
ENVIRONMENT_PARAMETERS = {
    "AirflowVersion",
    "EnvironmentClass",
    "MaxWorkers",
    "WebserverAccessMode",
    "WorkerReplacementStrategy",
    "RequirementsS3Path",
    "RequirementsObjectVersion",
    "PluginsS3Path",
    "PluginsObjectVersion",
    "DagProcessingLogLevel",
    "SchedulerLogLevel",
    "TaskLogLevel",
    "WebserverLogLevel",
    "WorkerLogLevel",
}
# createOnlyProperties of AWS::MWAA::Environment: Name, NetworkConfiguration.SubnetIds (KmsKey, EndpointManagement).
REPLACING_PARAMETERS = {"EnvironmentName", "VpcId", "ExistingSubnetIds", "PrivateSubnetCidrs"}
NETWORK_PARAMETERS = {
    "VpcId",
    "ExistingSubnetIds",
    "VpcCidr",
    "PublicSubnetCidrs",
    "PrivateSubnetCidrs",
    "NatGateways",
}


def _error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message, "Type": "Sender"}}, operation)


@dataclass
class Stack:
    name: str
    status: str
    parameters: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)  # newest first
    outputs: dict[str, str] = field(default_factory=dict)
    nested: dict[str, Stack] = field(default_factory=dict)
    stack_id: str = ""

    def __post_init__(self) -> None:
        self.stack_id = (
            self.stack_id or f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{self.name}/{next(_IDS)}"
        )

    def event(
        self, logical: str, status: str, reason: str = "", resource_type: str = "", physical: str = ""
    ) -> None:
        own = logical == self.name
        entry = {
            "StackId": self.stack_id,
            "EventId": f"e{next(_IDS)}",
            "StackName": self.name,
            "LogicalResourceId": logical,
            "PhysicalResourceId": self.stack_id if own else (physical or f"{logical}-physical"),
            "ResourceType": "AWS::CloudFormation::Stack" if own else resource_type,
            "Timestamp": dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc),
            "ResourceStatus": status,
        }
        if reason:
            entry["ResourceStatusReason"] = reason
        self.events.insert(0, entry)


@dataclass
class ChangeSet:
    change_set_id: str
    stack: Stack
    kind: str
    parameters: dict[str, str]
    changes: list[dict[str, Any]]
    nested: dict[str, ChangeSet] = field(default_factory=dict)
    status: str = "CREATE_COMPLETE"
    reason: str = ""


class FakeCloudFormation:
    """The client methods ``stack deploy`` calls, answering as CloudFormation does."""

    def __init__(self) -> None:
        self.stacks: dict[str, Stack] = {}
        # Deleted stacks stay describable by stack ID (not by name), as CloudFormation keeps them.
        self.retired: list[Stack] = []
        self.change_sets: dict[str, ChangeSet] = {}
        self.executed: list[ChangeSet] = []
        self.environment_updates = 0
        self.environment_replacements = 0
        # "MwaaStack/Environment" -> reason: the next execution fails there.
        self.fail_next: dict[str, str] = {}

    # -- plumbing -----------------------------------------------------------------------------------------
    def _validate(self, operation: str, params: dict[str, Any]) -> None:
        validate_parameters(params, _MODEL.operation_model(operation).input_shape)

    def _stack(self, name_or_id: str, operation: str) -> Stack:
        for stack in self._all_stacks():
            if name_or_id in (stack.stack_id,) or (
                name_or_id == stack.name and stack.status != "DELETE_COMPLETE"
            ):
                return stack
        raise _error("ValidationError", f"Stack with id {name_or_id} does not exist", operation)

    def _all_stacks(self) -> list[Stack]:
        out = []
        for stack in [*self.stacks.values(), *self.retired]:
            out.append(stack)
            out.extend(stack.nested.values())
        return out

    # -- the API ------------------------------------------------------------------------------------------
    def describe_stacks(self, **params: Any) -> dict[str, Any]:
        self._validate("DescribeStacks", params)
        stack = self._stack(params["StackName"], "DescribeStacks")
        return {
            "Stacks": [
                {
                    "StackName": stack.name,
                    "StackId": stack.stack_id,
                    "StackStatus": stack.status,
                    "CreationTime": dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc),
                    "Parameters": [
                        {"ParameterKey": k, "ParameterValue": v} for k, v in stack.parameters.items()
                    ],
                    "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in stack.outputs.items()],
                }
            ]
        }

    def describe_stack_events(self, **params: Any) -> dict[str, Any]:
        self._validate("DescribeStackEvents", params)
        return {"StackEvents": list(self._stack(params["StackName"], "DescribeStackEvents").events)}

    def describe_stack_resources(self, **params: Any) -> dict[str, Any]:
        self._validate("DescribeStackResources", params)
        stack = self._stack(params["StackName"], "DescribeStackResources")
        return {
            "StackResources": [
                {
                    "LogicalResourceId": name,
                    "ResourceType": "AWS::CloudFormation::Stack",
                    "ResourceStatus": nested.status,
                    "Timestamp": dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc),
                }
                for name, nested in stack.nested.items()
            ]
        }

    def create_change_set(self, **params: Any) -> dict[str, Any]:
        self._validate("CreateChangeSet", params)
        name = params["StackName"]
        wanted = {p["ParameterKey"]: p["ParameterValue"] for p in params.get("Parameters", [])}
        existing = self.stacks.get(name)
        if params["ChangeSetType"] == "CREATE":
            if existing is not None and existing.status not in ("REVIEW_IN_PROGRESS", "DELETE_COMPLETE"):
                raise _error("AlreadyExistsException", f"Stack [{name}] already exists", "CreateChangeSet")
            if existing is not None:
                self.retired.append(existing)
            stack = Stack(name, "REVIEW_IN_PROGRESS")
            stack.event(name, "REVIEW_IN_PROGRESS", "User Initiated")
            self.stacks[name] = stack
            current: dict[str, str] = {}
        else:
            stack = self._stack(name, "CreateChangeSet")
            if stack.status not in (
                "CREATE_COMPLETE",
                "UPDATE_COMPLETE",
                "UPDATE_ROLLBACK_COMPLETE",
                "IMPORT_COMPLETE",
            ):
                raise _error(
                    "ValidationError",
                    f"Stack:{stack.stack_id} is in {stack.status} state and can not be updated.",
                    "CreateChangeSet",
                )
            current = stack.parameters
        change_set = self._plan(stack, params["ChangeSetType"], current, wanted)
        return {"Id": change_set.change_set_id, "StackId": stack.stack_id}

    def _plan(self, stack: Stack, kind: str, current: dict[str, str], wanted: dict[str, str]) -> ChangeSet:
        cs_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:changeSet/cs{next(_IDS)}/x"
        changed = {k for k in set(current) | set(wanted) if current.get(k) != wanted.get(k)}
        change_set = ChangeSet(cs_id, stack, kind, wanted, [])
        if kind == "UPDATE" and not changed:
            change_set.status = "FAILED"
            change_set.reason = "The submitted information didn't contain changes. Submit different information to create a change set."
        had_env = current.get("CreateEnvironment") == "true"
        wants_env = wanted.get("CreateEnvironment") == "true"
        for nested in ("NetworkStack", "StorageStack", "IamStack"):
            if kind == "CREATE":
                change_set.changes.append(self._stack_change("Add", nested))
            elif nested == "NetworkStack" and changed & NETWORK_PARAMETERS:
                change_set.changes.append(self._stack_change("Modify", nested))
        if wants_env and not had_env:
            change_set.changes.append(self._stack_change("Add", "MwaaStack"))
        elif had_env and not wants_env:
            change_set.changes.append(self._env_change(change_set, "Remove", ""))
        elif had_env and changed & (ENVIRONMENT_PARAMETERS | REPLACING_PARAMETERS):
            replacement = "True" if changed & REPLACING_PARAMETERS else "False"
            change_set.changes.append(self._env_change(change_set, "Modify", replacement))
        self.change_sets[cs_id] = change_set
        return change_set

    @staticmethod
    def _stack_change(action: str, logical: str, nested_id: str | None = None) -> dict[str, Any]:
        change: dict[str, Any] = {
            "Action": action,
            "LogicalResourceId": logical,
            "ResourceType": "AWS::CloudFormation::Stack",
        }
        if nested_id:
            change["ChangeSetId"] = nested_id
        return {"Type": "Resource", "ResourceChange": change}

    def _env_change(self, parent: ChangeSet, action: str, replacement: str) -> dict[str, Any]:
        nested_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:changeSet/nested{next(_IDS)}/x"
        env: dict[str, Any] = {
            "Action": action,
            "LogicalResourceId": "Environment",
            "ResourceType": "AWS::MWAA::Environment",
        }
        if replacement:
            env["Replacement"] = replacement
        nested = ChangeSet(
            nested_id, parent.stack, "UPDATE", {}, [{"Type": "Resource", "ResourceChange": env}]
        )
        parent.nested["MwaaStack"] = nested
        self.change_sets[nested_id] = nested
        return self._stack_change("Modify", "MwaaStack", nested_id)

    def describe_change_set(self, **params: Any) -> dict[str, Any]:
        self._validate("DescribeChangeSet", params)
        change_set = self.change_sets.get(params["ChangeSetName"])
        if change_set is None:
            raise _error(
                "ChangeSetNotFound",
                f"ChangeSet [{params['ChangeSetName']}] does not exist",
                "DescribeChangeSet",
            )
        answer: dict[str, Any] = {
            "ChangeSetId": change_set.change_set_id,
            "Status": change_set.status,
            "Changes": change_set.changes,
        }
        if change_set.reason:
            answer["StatusReason"] = change_set.reason
        return answer

    def delete_change_set(self, **params: Any) -> dict[str, Any]:
        self._validate("DeleteChangeSet", params)
        self.change_sets.pop(params["ChangeSetName"], None)
        return {}

    def execute_change_set(self, **params: Any) -> dict[str, Any]:
        self._validate("ExecuteChangeSet", params)
        change_set = self.change_sets.pop(params["ChangeSetName"])
        stack = change_set.stack
        self.executed.append(change_set)
        creating = change_set.kind == "CREATE"
        stack.event(stack.name, "CREATE_IN_PROGRESS" if creating else "UPDATE_IN_PROGRESS", "User Initiated")
        failure = next(iter(self.fail_next.items()), None)
        self.fail_next = {}
        env_changes = [
            c["ResourceChange"]
            for nested in change_set.nested.values()
            for c in nested.changes
            if c["ResourceChange"]["ResourceType"] == "AWS::MWAA::Environment"
        ]
        if failure is not None:
            self._fail(stack, creating, *failure)
            return {}
        for change in env_changes:
            if change.get("Replacement") == "True":
                self.environment_replacements += 1
            else:
                self.environment_updates += 1
        stack.parameters = dict(change_set.parameters)
        for nested in ("NetworkStack", "StorageStack", "IamStack"):
            stack.nested.setdefault(nested, Stack(f"{stack.name}-{nested}-X", "CREATE_COMPLETE"))
        if stack.parameters.get("CreateEnvironment") == "true":
            stack.nested.setdefault("MwaaStack", Stack(f"{stack.name}-MwaaStack-X", "CREATE_COMPLETE"))
        bucket = stack.parameters.get("BucketName") or f"{stack.name}-storagestack-bucket"
        stack.outputs = {"BucketName": bucket, "SageMakerExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/sm"}
        if "MwaaStack" in stack.nested:
            env = stack.parameters["EnvironmentName"]
            stack.outputs["EnvironmentArn"] = f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/{env}"
        stack.status = "CREATE_COMPLETE" if creating else "UPDATE_COMPLETE"
        stack.event(stack.name, stack.status)
        return {}

    def _fail(self, stack: Stack, creating: bool, where: str, reason: str) -> None:
        """The execution fails at ``<NestedStack>/<Resource>``: the nested stack records the cause, the root
        only "Embedded stack ... was not successfully ...", and the root rolls back."""
        nested_name, resource = where.split("/")
        nested = stack.nested.get(nested_name) or Stack(f"{stack.name}-{nested_name}-X", "CREATE_IN_PROGRESS")
        stack.nested[nested_name] = nested
        verb = "CREATE" if creating else "UPDATE"
        nested.event(nested.name, f"{verb}_IN_PROGRESS", "User Initiated")
        nested.event(resource, f"{verb}_FAILED", reason, "AWS::MWAA::Environment")
        nested.event(
            nested.name,
            f"{verb}_FAILED",
            f"The following resource(s) failed to {verb.lower()}: [{resource}]. ",
        )
        stack.event(
            nested_name,
            f"{verb}_FAILED",
            f"Embedded stack {nested.stack_id} was not successfully {verb.lower()}d: The following resource(s) "
            f"failed to {verb.lower()}: [{resource}]. ",
            "AWS::CloudFormation::Stack",
            nested.stack_id,
        )
        if creating:
            for sibling in ("NetworkStack", "StorageStack"):
                stack.event(
                    sibling, "CREATE_FAILED", "Resource creation cancelled", "AWS::CloudFormation::Stack"
                )
        stack.event(stack.name, "ROLLBACK_IN_PROGRESS" if creating else "UPDATE_ROLLBACK_IN_PROGRESS")
        stack.status = "ROLLBACK_COMPLETE" if creating else "UPDATE_ROLLBACK_COMPLETE"
        if creating:  # the rollback deletes what the create made
            for gone in stack.nested.values():
                gone.status = "DELETE_COMPLETE"
            self.retired.extend(stack.nested.values())
            stack.nested.clear()
        stack.event(stack.name, stack.status)

    def delete_stack(self, **params: Any) -> dict[str, Any]:
        self._validate("DeleteStack", params)
        stack = self._stack(params["StackName"], "DeleteStack")
        stack.event(stack.name, "DELETE_IN_PROGRESS", "User Initiated")
        stack.status = "DELETE_COMPLETE"
        stack.event(stack.name, "DELETE_COMPLETE")
        return {}


class FakeMwaa:
    """GetEnvironment's answer for the one environment the stack would run."""

    def __init__(self, status: str = "AVAILABLE") -> None:
        self.status = status

    def get_environment(self, Name: str) -> dict[str, Any]:
        if self.status == "MISSING":
            raise _error("ResourceNotFoundException", f"Environment {Name} not found", "GetEnvironment")
        return {"Environment": {"Name": Name, "Status": self.status, "AirflowVersion": "3.0.6"}}


class Session:
    """What deploy asks of a boto3 session: clients, the S3 one from moto."""

    def __init__(self, cfn: FakeCloudFormation, s3: Any, mwaa: FakeMwaa) -> None:
        self.clients = {"cloudformation": cfn, "s3": s3, "mwaa": mwaa}

    def client(self, name: str) -> Any:
        return self.clients[name]
