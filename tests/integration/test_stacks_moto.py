"""Deploy the storage and IAM stacks to moto's CloudFormation and read their outputs back.

moto's nested-stack support is limited, so each nested template is created as its own stack, wired
the way root.yaml wires them (storage outputs -> IAM parameters).
"""

from __future__ import annotations

import ast
import json

import boto3
import pytest
from moto import mock_aws

from airflow_dl_provider.stacks.deploy import stack_outputs
from airflow_dl_provider.stacks.render import template_text

REGION = "us-east-1"


pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")


@pytest.fixture
def aws(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


def _create(cfn, name: str, template: str, parameters: dict[str, str]) -> dict[str, str]:
    cfn.create_stack(
        StackName=name,
        TemplateBody=template_text(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    assert status == "CREATE_COMPLETE", cfn.describe_stack_events(StackName=name)["StackEvents"][:3]
    return stack_outputs(cfn, name)


def test_storage_then_iam_deploy_and_outputs_feed_the_pipeline_config(aws):
    cfn = aws.client("cloudformation")
    storage = _create(
        cfn, "dl-storage", "storage.yaml", {"EnvironmentName": "dl", "BucketName": "team-dl-data"}
    )
    assert storage["BucketName"] == "team-dl-data"
    assert storage["BucketArn"] == "arn:aws:s3:::team-dl-data"
    assert storage["KmsKeyArn"].startswith(f"arn:aws:kms:{REGION}:")

    s3 = aws.client("s3")
    # moto creates the bucket but not its versioning/encryption settings from CloudFormation; those
    # are asserted on the template in tests/unit/stacks/test_render.py.
    s3.head_bucket(Bucket="team-dl-data")

    iam_out = _create(
        cfn,
        "dl-iam",
        "iam.yaml",
        {"EnvironmentName": "dl", "BucketName": storage["BucketName"], "KmsKeyArn": storage["KmsKeyArn"]},
    )
    assert set(iam_out) == {"MwaaExecutionRoleArn", "SageMakerExecutionRoleArn"}
    iam = aws.client("iam")
    sm_role = iam.get_role(RoleName=iam_out["SageMakerExecutionRoleArn"].rsplit("/", 1)[1])["Role"]
    trust = sm_role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}

    mwaa_role = iam_out["MwaaExecutionRoleArn"].rsplit("/", 1)[1]
    policy = iam.get_role_policy(RoleName=mwaa_role, PolicyName="deep-learning-lifecycle")["PolicyDocument"]
    # moto hands back the document as CloudFormation resolved it, in Python's repr.
    policy = ast.literal_eval(policy) if isinstance(policy, str) else policy
    pass_role = next(s for s in policy["Statement"] if s.get("Sid") == "PassOnlyTheSageMakerRole")
    assert pass_role["Resource"] == iam_out["SageMakerExecutionRoleArn"]
    training = next(s for s in policy["Statement"] if s.get("Sid") == "TrainingJobs")
    assert training["Resource"] == f"arn:aws:sagemaker:{REGION}:123456789012:training-job/*"
