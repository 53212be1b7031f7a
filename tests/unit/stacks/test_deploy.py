"""deploy/status: change sets and the replacement guard (botocore Stubber), the template's Environment as a
create_environment request, and whole deploys on moto's S3 with a CloudFormation fake
(``cloudformation_fake``: moto's CloudFormation has no nested-stack outputs and no MWAA)."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
from botocore.stub import ANY, Stubber

from airflow_dl_provider.stacks.deploy import apply_change_set, environment_threats
from airflow_dl_provider.stacks.pacing import Poll
from airflow_dl_provider.stacks.render import StackError, load_template

STACK = "airflow-dl"
CS_ARN = "arn:aws:cloudformation:us-east-1:123456789012:changeSet/airflow-dl-1/abc"
NESTED_CS = "arn:aws:cloudformation:us-east-1:123456789012:changeSet/nested/def"
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/airflow-dl/1"
NOW = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


def _client(service: str):
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def _waiter(lines: list[str]) -> Poll:
    return Poll(interval=0, sleep=lambda _s: None, say=lines.append)


def _stack(status: str) -> dict:
    return {"Stacks": [{"StackName": STACK, "StackId": STACK_ID, "StackStatus": status, "CreationTime": NOW}]}


def _event(event_id: str, status: str, logical: str = STACK) -> dict:
    return {
        "StackId": STACK_ID,
        "EventId": event_id,
        "StackName": STACK,
        "LogicalResourceId": logical,
        "ResourceType": "AWS::CloudFormation::Stack",
        "Timestamp": NOW,
        "ResourceStatus": status,
    }


def _stub_update_until_change_set(stub: Stubber, nested_changes: list[dict]) -> None:
    stub.add_response("describe_stacks", _stack("UPDATE_COMPLETE"), {"StackName": STACK})
    stub.add_response(
        "describe_stack_events", {"StackEvents": [_event("e0", "UPDATE_COMPLETE")]}, {"StackName": STACK}
    )
    stub.add_response(
        "create_change_set",
        {"Id": CS_ARN, "StackId": STACK_ID},
        {
            "StackName": STACK,
            "ChangeSetName": ANY,
            "ChangeSetType": "UPDATE",
            "TemplateURL": "https://t.s3.us-east-1.amazonaws.com/stacks/root.yaml",
            "Parameters": ANY,
            "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
            "IncludeNestedStacks": True,
        },
    )
    stub.add_response(
        "describe_change_set",
        {"ChangeSetName": "cs", "Status": "CREATE_COMPLETE", "Changes": []},
        {"ChangeSetName": CS_ARN, "StackName": STACK},
    )
    root_change = {
        "Type": "Resource",
        "ResourceChange": {
            "Action": "Modify",
            "LogicalResourceId": "MwaaStack",
            "ResourceType": "AWS::CloudFormation::Stack",
            "ChangeSetId": NESTED_CS,
        },
    }
    stub.add_response(
        "describe_change_set",
        {"ChangeSetName": "cs", "Status": "CREATE_COMPLETE", "Changes": [root_change]},
        {"ChangeSetName": CS_ARN},
    )
    stub.add_response(
        "describe_change_set",
        {
            "ChangeSetName": "nested",
            "Status": "CREATE_COMPLETE",
            "Changes": [{"Type": "Resource", "ResourceChange": c} for c in nested_changes],
        },
        {"ChangeSetName": NESTED_CS},
    )


REPLACE_ENV = {
    "Action": "Modify",
    "LogicalResourceId": "Environment",
    "PhysicalResourceId": "airflow-dl",
    "ResourceType": "AWS::MWAA::Environment",
    "Replacement": "True",
    "Details": [
        {
            "Target": {
                "Attribute": "Properties",
                "Name": "NetworkConfiguration",
                "RequiresRecreation": "Always",
            }
        }
    ],
}


def test_replacing_the_environment_is_refused_without_allow_replace():
    cfn = _client("cloudformation")
    lines: list[str] = []
    with Stubber(cfn) as stub:
        _stub_update_until_change_set(stub, [REPLACE_ENV])
        stub.add_response("delete_change_set", {}, {"ChangeSetName": CS_ARN, "StackName": STACK})
        with pytest.raises(StackError) as err:
            apply_change_set(
                cfn,
                STACK,
                "https://t.s3.us-east-1.amazonaws.com/stacks/root.yaml",
                {"A": "b"},
                waiter=_waiter(lines),
            )
        stub.assert_no_pending_responses()
    message = str(err.value)
    assert "\n" not in message
    assert "Environment would be replaced (changed: NetworkConfiguration)" in message
    assert "--allow-replace" in message
    assert any("AWS::MWAA::Environment" in line and "replacement: True" in line for line in lines)


def test_allow_replace_executes_and_shows_events():
    cfn = _client("cloudformation")
    lines: list[str] = []
    with Stubber(cfn) as stub:
        _stub_update_until_change_set(stub, [REPLACE_ENV])
        stub.add_response("execute_change_set", {}, {"ChangeSetName": CS_ARN, "StackName": STACK})
        stub.add_response(
            "describe_stack_events",
            {
                "StackEvents": [
                    _event("e2", "UPDATE_COMPLETE"),
                    _event("e1", "UPDATE_IN_PROGRESS", "MwaaStack"),
                    _event("e0", "UPDATE_COMPLETE"),
                ]
            },
            {"StackName": STACK},
        )
        stub.add_response("describe_stacks", _stack("UPDATE_COMPLETE"), {"StackName": STACK})
        applied = apply_change_set(
            cfn,
            STACK,
            "https://t.s3.us-east-1.amazonaws.com/stacks/root.yaml",
            {"A": "b"},
            allow_replace=True,
            waiter=_waiter(lines),
        )
        stub.assert_no_pending_responses()
    assert applied.status == "UPDATE_COMPLETE" and applied.environment_updated
    events = [line for line in lines if "UPDATE_" in line]
    assert "MwaaStack" in events[0] and events[1].rstrip().endswith(STACK)


def test_in_place_changes_and_other_resources_are_not_threats():
    changes = [
        {**REPLACE_ENV, "Replacement": "False"},
        {
            "Action": "Modify",
            "LogicalResourceId": "Bucket",
            "ResourceType": "AWS::S3::Bucket",
            "Replacement": "True",
        },
    ]
    assert environment_threats(changes) == []
    assert environment_threats(
        [{"Action": "Remove", "LogicalResourceId": "Environment", "ResourceType": "AWS::MWAA::Environment"}]
    ) == ["Environment would be deleted"]


def test_no_changes_is_not_an_error():
    cfn = _client("cloudformation")
    with Stubber(cfn) as stub:
        stub.add_response("describe_stacks", _stack("UPDATE_COMPLETE"), {"StackName": STACK})
        stub.add_response(
            "describe_stack_events", {"StackEvents": [_event("e0", "UPDATE_COMPLETE")]}, {"StackName": STACK}
        )
        stub.add_response("create_change_set", {"Id": CS_ARN}, None)
        stub.add_response(
            "describe_change_set",
            {
                "Status": "FAILED",
                "StatusReason": "The submitted information didn't contain changes. Submit different information to create a change set.",
            },
            None,
        )
        stub.add_response("delete_change_set", {}, None)
        applied = apply_change_set(cfn, STACK, "https://x/root.yaml", {}, waiter=_waiter([]))
    assert (applied.status, applied.environment) == ("NO_CHANGES", "")


def _resolve(value, params):
    """Just enough of CloudFormation's intrinsics for mwaa.yaml's Environment."""
    if isinstance(value, dict):
        if "Ref" in value:
            return params[value["Ref"]]
        if "Fn::If" in value:
            cond, yes, no = value["Fn::If"]
            return _resolve(yes if params[f"?{cond}"] else no, params)
        return {k: v for k, v in ((k, _resolve(v, params)) for k, v in value.items()) if v is not None}
    if isinstance(value, list):
        return [_resolve(v, params) for v in value]
    return value


def _environment_properties() -> dict:
    template = load_template("mwaa.yaml")
    params = {name: p.get("Default") for name, p in template["Parameters"].items()}
    params.update(
        {
            "EnvironmentName": "airflow-dl",
            "AirflowVersion": "2.11.0",
            "BucketArn": "arn:aws:s3:::team-dl-data",
            "ExecutionRoleArn": "arn:aws:iam::123456789012:role/mwaa",
            "SubnetIds": ["subnet-0a", "subnet-0b"],
            "SecurityGroupId": "sg-01",
            "RequirementsS3Path": "mwaa/requirements/0123456789abcdef/requirements.txt",
            "RequirementsObjectVersion": "v1",
            "AWS::NoValue": None,
            "?RequirementsGiven": True,
            "?RequirementsVersionGiven": True,
            "?PluginsGiven": False,
            "?PluginsVersionGiven": False,
        }
    )
    props = _resolve(template["Resources"]["Environment"]["Properties"], params)
    props["MaxWorkers"] = int(props["MaxWorkers"])
    return props


def test_mwaa_environment_properties_are_a_valid_create_environment_request():
    """moto does not model MWAA: the template's Environment, resolved, must pass botocore's model.

    WorkerReplacementStrategy is an UpdateEnvironment field (CloudFormation applies it on updates only).
    """
    props = _environment_properties()
    request = {k: v for k, v in props.items() if k != "WorkerReplacementStrategy"}
    mwaa = _client("mwaa")
    with Stubber(mwaa) as stub:
        stub.add_response(
            "create_environment",
            {"Arn": "arn:aws:airflow:us-east-1:123456789012:environment/airflow-dl"},
            request,
        )
        response = mwaa.create_environment(**request)
    assert response["Arn"].endswith("environment/airflow-dl")
    assert "PluginsS3Path" not in request and "PluginsS3ObjectVersion" not in request
    assert request["RequirementsS3Path"].startswith("mwaa/requirements/")
    assert request["RequirementsS3ObjectVersion"] == "v1"
    assert all(cfg["Enabled"] for cfg in request["LoggingConfiguration"].values())


def test_an_update_lets_running_tasks_finish():
    """The properties an update sends, WorkerReplacementStrategy GRACEFUL among them, are UpdateEnvironment's."""
    props = _environment_properties()
    request = {k: v for k, v in props.items() if k not in ("NetworkConfiguration",)}
    request["NetworkConfiguration"] = {"SecurityGroupIds": props["NetworkConfiguration"]["SecurityGroupIds"]}
    assert request["WorkerReplacementStrategy"] == "GRACEFUL"
    mwaa = _client("mwaa")
    with Stubber(mwaa) as stub:
        stub.add_response(
            "update_environment", {"Arn": "arn:aws:airflow:us-east-1:123456789012:environment/x"}, request
        )
        mwaa.update_environment(**request)
