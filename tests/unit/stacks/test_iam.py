"""The MWAA execution role allows every AWS call the operators make, and no action has a wildcard.

The calls are read from the code, not listed here: an AST scan of ``airflow_dl_provider/`` finds
every method call whose name is an operation of SageMaker, SageMaker Runtime, S3 or CloudWatch Logs
(boto3's snake_case name -> botocore's operation name -> the IAM action), plus the Create/Describe/Stop
calls the job engine makes by name from the job-kinds table. A new operator is covered the day it lands.

Not scanned, because it never runs on MWAA: the local backend (``backends/local``), the demo and the
``airflow-dl`` command line (``cli.py``, ``demo.py``), and the stack tooling (``stacks/``), which
runs on the deployer's machine with the deployer's credentials.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import botocore.session
import pytest
import yaml

from airflow_dl_provider.jobs.kinds import JOB_KINDS, _snake
from airflow_dl_provider.stacks.render import load_template

PACKAGE = Path(__file__).resolve().parents[3] / "airflow_dl_provider"
NOT_ON_MWAA = ("backends/local/", "stacks/", "cli.py", "demo.py")
# boto3 client name -> IAM service prefix (SageMaker Runtime is authorized as sagemaker:InvokeEndpoint).
SERVICES = {"sagemaker": "sagemaker", "sagemaker-runtime": "sagemaker", "s3": "s3", "logs": "logs"}
# S3's IAM actions are not its operation names; boto3's transfer helpers are not operations at all.
S3_ACTIONS = {
    "HeadObject": ["s3:GetObject"],
    "GetObject": ["s3:GetObject"],
    "PutObject": ["s3:PutObject"],
    "CopyObject": ["s3:GetObject", "s3:PutObject"],
    "ListObjects": ["s3:ListBucket"],
    "ListObjectsV2": ["s3:ListBucket"],
    "HeadBucket": ["s3:ListBucket"],
    "CreateMultipartUpload": ["s3:PutObject"],
    "UploadPart": ["s3:PutObject"],
    "CompleteMultipartUpload": ["s3:PutObject"],
    "AbortMultipartUpload": ["s3:AbortMultipartUpload"],
    "upload_file": ["s3:PutObject"],
    "upload_fileobj": ["s3:PutObject"],
    "download_file": ["s3:GetObject"],
    "download_fileobj": ["s3:GetObject"],
}


@cache
def _operations() -> dict[str, list[tuple[str, str]]]:
    """snake_case method -> [(client name, OperationName)] over the scanned services."""
    session = botocore.session.get_session()
    table: dict[str, list[tuple[str, str]]] = {}
    for client in SERVICES:
        for op in session.get_service_model(client).operation_names:
            # One-word operations (sagemaker ``Search``) collide with Python's own methods
            # (``re.Pattern.search``); the scan would see AWS calls that are not there.
            if "_" in _snake_op(op):
                table.setdefault(_snake_op(op), []).append((client, op))
    for helper in ("upload_file", "upload_fileobj", "download_file", "download_fileobj"):
        table.setdefault(helper, []).append(("s3", helper))
    return table


def _snake_op(op: str) -> str:
    from botocore import xform_name

    return str(xform_name(op))


def _iam_actions(client: str, op: str) -> list[str]:
    if client == "s3":
        return S3_ACTIONS.get(op, [f"s3:{op}"])
    return [f"{SERVICES[client]}:{op}"]


def called_actions() -> dict[str, set[str]]:
    """IAM action -> the files that make the call."""
    found: dict[str, set[str]] = {}
    ops = _operations()
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(NOT_ON_MWAA):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                names.append(node.func.attr)
                # client.get_paginator("list_objects_v2") calls the named operation.
                if node.func.attr == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
                    names.append(str(node.args[0].value))
            for name in names:
                for client, op in ops.get(name, []):
                    for action in _iam_actions(client, op):
                        found.setdefault(action, set()).add(rel)
    # The engine calls create_/describe_/stop_<noun> through getattr, from the job-kinds table.
    for kind in JOB_KINDS.values():
        for method in (kind.create_method, kind.describe_method, kind.stop_method):
            for _client, op in ops.get(method, []):
                found.setdefault(f"sagemaker:{op}", set()).add(f"jobs/kinds.py ({kind.key})")
    return found


def mwaa_role_statements() -> list[dict]:
    role = load_template("iam.yaml")["Resources"]["MwaaExecutionRole"]["Properties"]
    return [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def allowed_actions() -> set[str]:
    return {a for s in mwaa_role_statements() if s["Effect"] == "Allow" for a in _as_list(s["Action"])}


def test_the_scan_sees_the_calls_the_code_makes_today():
    actions = called_actions()
    # One from each route: the kinds table, a direct SageMaker-family call, S3, logs.
    assert "sagemaker:CreateTrainingJob" in actions
    assert "sagemaker:StopHyperParameterTuningJob" in actions
    assert "s3:PutObject" in actions
    assert "logs:GetLogEvents" in actions


def test_mwaa_role_allows_every_call_the_operators_make():
    allowed = allowed_actions()
    missing = {action: sorted(files) for action, files in called_actions().items() if action not in allowed}
    assert not missing, f"add these to MwaaExecutionRole in stacks/templates/iam.yaml: {missing}"


def _documents(resource: str) -> list[dict]:
    """The policy documents of one resource: a role's inline policies, or a policy resource's own."""
    props = load_template("iam.yaml")["Resources"][resource]["Properties"]
    return [p["PolicyDocument"] for p in props.get("Policies", [])] or [props["PolicyDocument"]]


def sagemaker_role_statements() -> list[dict]:
    """Every statement that applies to the SageMaker execution role, wherever the template attaches it."""
    resources = load_template("iam.yaml")["Resources"]
    attached = [
        name
        for name, r in resources.items()
        if r["Type"] in ("AWS::IAM::RolePolicy", "AWS::IAM::Policy")
        and {"Ref": "SageMakerExecutionRole"}
        in [r["Properties"].get("RoleName"), *r["Properties"].get("Roles", [])]
    ]
    return [
        s for name in ("SageMakerExecutionRole", *attached) for d in _documents(name) for s in d["Statement"]
    ]


def _policy_resources():
    resources = load_template("iam.yaml")["Resources"]
    return [n for n, r in resources.items() if r["Type"] in ("AWS::IAM::Role", "AWS::IAM::RolePolicy")]


@pytest.mark.parametrize("resource", _policy_resources())
def test_no_action_has_a_wildcard(resource):
    actions = [
        a
        for document in _documents(resource)
        for s in document["Statement"]
        for a in _as_list(s.get("Action", []))
    ]
    assert actions
    assert [a for a in actions if "*" in a] == []


def test_every_policy_resource_is_checked():
    assert set(_policy_resources()) >= {
        "MwaaExecutionRole",
        "SageMakerExecutionRole",
        "SageMakerAutomatedLabelingPolicy",
    }


def test_sagemaker_role_passes_itself_to_sagemaker_for_automated_labeling():
    """Ground Truth runs the active-learning jobs as the labeling job's role: the role passes itself."""
    statements = [s for s in sagemaker_role_statements() if "iam:PassRole" in _as_list(s["Action"])]
    assert len(statements) == 1
    (statement,) = statements
    assert statement["Effect"] == "Allow"
    assert _as_list(statement["Action"]) == ["iam:PassRole"]
    assert statement["Resource"] == {"Fn::GetAtt": ["SageMakerExecutionRole", "Arn"]}
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_sagemaker_role_grants_the_volume_key_to_aws_resources_only():
    """A VolumeKmsKeyId for automated labeling needs kms:CreateGrant: on the stack's key, for AWS resources."""
    statements = [s for s in sagemaker_role_statements() if "kms:CreateGrant" in _as_list(s["Action"])]
    assert len(statements) == 1
    (statement,) = statements
    assert _as_list(statement["Action"]) == ["kms:CreateGrant"]
    assert statement["Resource"] == {"Ref": "KmsKeyArn"}
    assert statement["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_sagemaker_role_policy_is_attached_to_that_role_and_nothing_else():
    policy = load_template("iam.yaml")["Resources"]["SageMakerAutomatedLabelingPolicy"]["Properties"]
    assert policy["RoleName"] == {"Ref": "SageMakerExecutionRole"}
    assert "Roles" not in policy and "Users" not in policy and "Groups" not in policy


def test_pass_role_only_the_sagemaker_role_to_sagemaker():
    statements = [s for s in mwaa_role_statements() if "iam:PassRole" in _as_list(s["Action"])]
    assert len(statements) == 1
    (statement,) = statements
    assert _as_list(statement["Action"]) == ["iam:PassRole"]
    assert statement["Resource"] == {"Fn::GetAtt": ["SageMakerExecutionRole", "Arn"]}
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_sagemaker_actions_are_resource_scoped_except_list_calls():
    for statement in mwaa_role_statements():
        actions = _as_list(statement["Action"])
        if any(a.startswith("sagemaker:") for a in actions) and statement["Resource"] == "*":
            assert all(a.startswith("sagemaker:List") for a in actions), statement["Sid"]


def test_the_dl_lifecycle_actions_are_all_there():
    """The operators being written next (labeling, tuning, Neo, serving, registry) need no policy change."""
    allowed = allowed_actions()
    expected = {
        "sagemaker:CreateLabelingJob",
        "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
        "sagemaker:CreateCompilationJob",
        "sagemaker:CreateModel",
        "sagemaker:CreateTransformJob",
        "sagemaker:CreateEndpointConfig",
        "sagemaker:CreateEndpoint",
        "sagemaker:UpdateEndpoint",
        "sagemaker:DescribeEndpoint",
        "sagemaker:InvokeEndpoint",
        "sagemaker:CreateModelPackageGroup",
        "sagemaker:CreateModelPackage",
        "sagemaker:DescribeModelPackage",
        "sagemaker:DescribeModelPackageGroup",
        "sagemaker:UpdateModelPackage",
        "sagemaker:ListModelPackages",
        "logs:DescribeLogStreams",
        "logs:GetLogEvents",
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
    }
    assert expected - allowed == set()


def test_template_round_trips_through_plain_yaml():
    """Long-form intrinsics only: rendering loads and dumps with PyYAML."""
    text = (PACKAGE / "stacks" / "templates" / "iam.yaml").read_text()
    assert "!Sub" not in text and "!Ref" not in text
    assert yaml.safe_load(text)["Resources"]


def test_snake_names_match_botocore():
    assert _snake("CreateTrainingJob") == _snake_op("CreateTrainingJob") == "create_training_job"
