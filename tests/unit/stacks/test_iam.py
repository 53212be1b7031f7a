"""The MWAA execution role allows every AWS call the operators make, and no action has a wildcard.

The calls are read from the code, not listed here: an AST scan of ``airflow_dl_provider/`` finds
every method call whose name is an operation of SageMaker, SageMaker Runtime, S3 or CloudWatch Logs
(boto3's snake_case name -> botocore's operation name -> the IAM action), plus the Create/Describe/Stop
calls the job engine makes by name from the job-kinds table. A new operator is covered the day it lands.

Not scanned, because it never runs on MWAA: the local backend (``backends/local``), the demo and the
``airflow-dl`` command line (``cli.py``, ``demo.py``, ``local_airflow.py``), and the stack tooling (``stacks/``), which
runs on the deployer's machine with the deployer's credentials.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import botocore.session
import pytest
import yaml

from airflow_dl_provider.jobs.kinds import KINDS, _snake
from airflow_dl_provider.presets.containers import DLC_ACCOUNTS
from airflow_dl_provider.stacks.render import load_template

PACKAGE = Path(__file__).resolve().parents[3] / "airflow_dl_provider"
NOT_ON_MWAA = ("backends/local/", "stacks/", "cli.py", "demo.py", "local_airflow.py")
# boto3 client name -> IAM service prefix (SageMaker Runtime is authorized as sagemaker:InvokeEndpoint).
SERVICES = {
    "sagemaker": "sagemaker",
    "sagemaker-runtime": "sagemaker",
    "s3": "s3",
    "logs": "logs",
    "cloudwatch": "cloudwatch",
}
# S3's IAM actions are not its operation names; boto3's transfer helpers are not operations at all.
S3_ACTIONS = {
    "HeadObject": ["s3:GetObject"],
    "GetObject": ["s3:GetObject"],
    "PutObject": ["s3:PutObject"],
    "CopyObject": ["s3:GetObject", "s3:PutObject"],
    "ListObjects": ["s3:ListBucket"],
    "ListObjectsV2": ["s3:ListBucket"],
    "HeadBucket": ["s3:ListBucket"],
    "ListBuckets": ["s3:ListAllMyBuckets"],
    "CreateMultipartUpload": ["s3:PutObject"],
    "UploadPart": ["s3:PutObject"],
    "CompleteMultipartUpload": ["s3:PutObject"],
    "AbortMultipartUpload": ["s3:AbortMultipartUpload"],
    "upload_file": ["s3:PutObject"],
    "upload_fileobj": ["s3:PutObject"],
    "download_file": ["s3:GetObject"],
    "download_fileobj": ["s3:GetObject"],
}


# Method names that are an AWS operation's snake_case name but are called on another client here.
NOT_AWS_CALLS = {
    "create_project": "Label Studio's SDK (operators/label_studio.py); SageMaker's CreateProject is never used",
}
# (module, method) calls that run only against the local backend's embedded S3 server, never on MWAA.
LOCAL_ONLY_CALLS = {
    ("hooks/sagemaker.py", "list_buckets"): "Test Connection of a local-backend connection",
    # On AWS the stacks create the queue and the notification (stacks/templates/arrival.yaml, storage.yaml).
    ("pipelines/arrival.py", "put_bucket_notification_configuration"): "the local server's arrival queue",
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
            if "_" in _snake_op(op) and _snake_op(op) not in NOT_AWS_CALLS:
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


def _scanned_modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if not rel.startswith(NOT_ON_MWAA):
            yield rel, ast.parse(path.read_text())


def _method_names(node: ast.AST) -> list[str]:
    """The boto3 method names a call node may invoke."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return []
    names = [node.func.attr]
    # client.get_paginator("list_objects_v2") calls the named operation.
    if node.func.attr == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
        names.append(str(node.args[0].value))
    return names


def _prerequisite_operations(node: ast.AST) -> list[str]:
    """Prerequisite("Model", "CreateModel", ...): created by its operation, found by Describe<noun>."""
    if not (
        isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "Prerequisite"
        and len(node.args) >= 2
    ):
        return []
    noun, create = (getattr(a, "value", None) for a in node.args[:2])
    return [create, f"Describe{noun}"] if isinstance(noun, str) and isinstance(create, str) else []


def _kind_methods(kind) -> list[str]:
    """What the engine calls through getattr for one row of the kinds table."""
    methods = [kind.create_method, kind.describe_method]
    if not kind.resource:
        return [*methods, kind.stop_method]
    methods.append(kind.update_method)
    if kind.versioned_in:
        methods.append(kind.list_method)
    # Only a resource that takes nothing but a delete in some state is ever deleted (an endpoint that
    # Failed is deleted to be created again); the engine never deletes a model package.
    if kind.only_deletable:
        methods.append(kind.delete_method)
    return methods


def called_actions() -> dict[str, set[str]]:
    """IAM action -> the files that make the call."""
    found: dict[str, set[str]] = {}
    ops = _operations()
    for rel, tree in _scanned_modules():
        for node in ast.walk(tree):
            for name in _method_names(node):
                if (rel, name) in LOCAL_ONLY_CALLS:
                    continue
                for client, op in ops.get(name, []):
                    for action in _iam_actions(client, op):
                        found.setdefault(action, set()).add(rel)
            for op in _prerequisite_operations(node):
                found.setdefault(f"sagemaker:{op}", set()).add(rel)
    for kind in KINDS.values():
        for method in _kind_methods(kind):
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


def _statement(statements: list[dict], sid: str) -> dict:
    (statement,) = [s for s in statements if s.get("Sid") == sid]
    return statement


def test_the_operators_policy_allows_nothing_they_do_not_call():
    """Unused actions are removed: every SageMaker, S3 and Logs action the DAGs' own policy allows is
    one the code calls (AddTags: every Create* carries the request's Tags, and overrides may add them)."""
    role = load_template("iam.yaml")["Resources"]["MwaaExecutionRole"]["Properties"]
    (policy,) = [p for p in role["Policies"] if p["PolicyName"] == "deep-learning-lifecycle"]
    allowed = {
        a
        for s in policy["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow"
        for a in _as_list(s["Action"])
        if a.split(":")[0] in ("sagemaker", "s3", "logs")
    }
    called = set(called_actions()) | {"sagemaker:AddTags", "s3:AbortMultipartUpload"}
    assert sorted(allowed - called) == []


@pytest.mark.parametrize("role", ["MwaaExecutionRole", "SageMakerExecutionRole"])
def test_neither_role_can_write_what_mwaa_runs(role):
    statements = [s for d in _documents(role) for s in d["Statement"]]
    deny = _statement(statements, "NeverWriteWhatMwaaRuns")
    assert deny["Effect"] == "Deny"
    assert set(deny["Action"]) == {"s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"}
    keys = {r["Fn::Sub"].rsplit("${BucketName}/", 1)[1] for r in deny["Resource"]}
    assert keys == {"dags/*", "mwaa/*", "requirements.txt", "plugins.zip"}


def test_deploy_stages_artifacts_under_the_denied_prefix():
    from airflow_dl_provider.stacks.artifacts import DAGS_PREFIX, STAGING_PREFIX

    assert (DAGS_PREFIX, STAGING_PREFIX) == ("dags/", "mwaa/")


def test_mwaa_role_trusts_only_this_accounts_environment():
    role = load_template("iam.yaml")["Resources"]["MwaaExecutionRole"]["Properties"]
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert statement["Condition"]["ArnLike"] == {
        "aws:SourceArn": {
            "Fn::Sub": "arn:${AWS::Partition}:airflow:${AWS::Region}:${AWS::AccountId}:environment/${EnvironmentName}"
        }
    }


def test_images_come_only_from_the_dlc_account_and_this_one():
    template = load_template("iam.yaml")
    mapping = {region: row["Account"] for region, row in template["Mappings"]["DlcRegistry"].items()}
    assert mapping == DLC_ACCOUNTS
    statements = sagemaker_role_statements()
    pull = _statement(statements, "PullTrainingImages")
    dlc, own = pull["Resource"]
    assert dlc["Fn::Sub"][0] == "arn:${AWS::Partition}:ecr:${AWS::Region}:${DlcAccount}:repository/*"
    assert dlc["Fn::Sub"][1] == {
        "DlcAccount": {"Fn::FindInMap": ["DlcRegistry", {"Ref": "AWS::Region"}, "Account"]}
    }
    assert own == {"Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/*"}
    # No other statement lets the role read a repository.
    readers = [
        s
        for s in statements
        if any(a.startswith("ecr:") and a != "ecr:GetAuthorizationToken" for a in _as_list(s["Action"]))
    ]
    assert readers == [pull]
