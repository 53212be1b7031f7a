"""Deploy the storage and IAM stacks to moto's CloudFormation and read their outputs back.

moto's nested-stack support is limited, so each nested template is created as its own stack, wired
the way root.yaml wires them (storage outputs -> IAM parameters). The network layouts (an existing
VPC, private routing) and the FSx key policy are deployed the same way. Whole deploys (change sets,
states, MWAA updates) are in tests/unit/stacks/test_deploy_scenarios.py on moto's S3 and a
CloudFormation fake, since moto's CloudFormation has no nested outputs and moto no MWAA.
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


def test_fsx_linked_storage_lets_fsx_use_the_key_only_then(aws):
    cfn, kms = aws.client("cloudformation"), aws.client("kms")
    for enable, name in (("true", "dl-fsx-storage"), ("false", "dl-plain-storage")):
        out = _create(cfn, name, "storage.yaml", {"EnvironmentName": "dl", "EnableFsx": enable})
        key_id = out["KmsKeyArn"].rsplit("/", 1)[1]
        raw = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
        policy = json.loads(raw) if isinstance(raw, str) else raw
        # moto leaves an AWS::NoValue list item as None where CloudFormation drops it.
        sids = [s["Sid"] for s in policy["Statement"] if s]
        assert ("FsxLinkedBucketThroughS3" in sids) is (enable == "true"), sids


def test_network_in_an_existing_vpc_adds_only_security_groups(aws):
    ec2, cfn = aws.client("ec2"), aws.client("cloudformation")
    vpc = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.50.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in ((1, "a"), (2, "b"))
    ]
    vpcs_before = len(ec2.describe_vpcs()["Vpcs"])
    out = _create(
        cfn,
        "dl-network",
        "network.yaml",
        {"EnvironmentName": "dl", "VpcId": vpc, "ExistingSubnetIds": ",".join(subnets)},
    )
    assert out["VpcId"] == vpc
    assert out["PrivateSubnetIds"] == ",".join(subnets)
    assert (out["PrivateSubnet1Id"], out["PrivateSubnet2Id"]) == tuple(subnets)
    assert len(ec2.describe_vpcs()["Vpcs"]) == vpcs_before, "a VPC was created in existing-VPC mode"
    groups = ec2.describe_security_groups(GroupIds=[out["MwaaSecurityGroupId"], out["EfaSecurityGroupId"]])
    assert {g["VpcId"] for g in groups["SecurityGroups"]} == {vpc}
    assert ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"] == []


def test_network_with_private_routing_creates_the_endpoints_and_no_nat(aws):
    ec2, cfn = aws.client("ec2"), aws.client("cloudformation")
    out = _create(
        cfn,
        "dl-private",
        "network.yaml",
        {"EnvironmentName": "dl", "NatGateways": "0", "PrivateSubnetCidrs": "10.192.20.0/24,10.192.21.0/24"},
    )
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [out["VpcId"]]}])[
        "VpcEndpoints"
    ]
    services = {e["ServiceName"].removeprefix(f"com.amazonaws.{REGION}.") for e in endpoints}
    assert {
        "s3",
        "logs",
        "monitoring",
        "sqs",
        "kms",
        "ecr.api",
        "ecr.dkr",
        "sts",
        "airflow.api",
        "airflow.env",
        "airflow.ops",
    } <= services
    nats = ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [out["VpcId"]]}])["NatGateways"]
    assert nats == []


ARRIVAL_BUCKET = "team-dl-arrivals"


def test_the_arrival_queue_is_encrypted_with_a_dead_letter_queue_and_feeds_storage_and_iam(aws):
    cfn, sqs = aws.client("cloudformation"), aws.client("sqs")
    arrival = _create(
        cfn, "dl-arrival", "arrival.yaml", {"EnvironmentName": "dl", "BucketName": ARRIVAL_BUCKET}
    )
    assert arrival["QueueUrl"].endswith("/dl-data-arrival")
    attributes = sqs.get_queue_attributes(QueueUrl=arrival["QueueUrl"], AttributeNames=["All"])["Attributes"]
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"] == arrival["DeadLetterQueueArn"]
    assert (attributes["SqsManagedSseEnabled"], attributes["VisibilityTimeout"]) == ("true", "300")
    # moto's CloudFormation does not attach AWS::SQS::QueuePolicy; the policy is asserted on the template
    # in tests/unit/stacks/test_arrival_stack.py.

    storage = _create(
        cfn,
        "dl-storage",
        "storage.yaml",
        {"EnvironmentName": "dl", "BucketName": ARRIVAL_BUCKET, "ArrivalQueueArn": arrival["QueueArn"]},
    )
    # moto's CloudFormation does not put the bucket's NotificationConfiguration either: the filter is
    # asserted on the template, and S3 -> SQS delivery in tests/integration/test_arrival_local.py.
    assert storage["BucketName"] == ARRIVAL_BUCKET

    iam_out = _create(
        cfn,
        "dl-iam",
        "iam.yaml",
        {
            "EnvironmentName": "dl",
            "BucketName": storage["BucketName"],
            "KmsKeyArn": storage["KmsKeyArn"],
            "ArrivalQueueArn": arrival["QueueArn"],
        },
    )
    assert set(iam_out) == {"MwaaExecutionRoleArn", "SageMakerExecutionRoleArn"}
    # moto's CloudFormation creates no AWS::IAM::RolePolicy: the data-arrival policy's scope is asserted
    # on the template in tests/unit/stacks/test_arrival_stack.py.
