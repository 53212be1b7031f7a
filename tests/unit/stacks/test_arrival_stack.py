"""The data-arrival stack: queue, dead-letter queue, policy, the bucket's notification and the role's access."""

from __future__ import annotations

import pytest

from airflow_dl_provider.service_behaviour import SQS_MAX_RETENTION_SECONDS
from airflow_dl_provider.stacks.render import StackError, StackOptions, load_template


def test_the_queue_is_encrypted_keeps_messages_and_moves_unclaimed_ones_to_a_longer_lived_dlq():
    resources = load_template("arrival.yaml")["Resources"]
    queue, dlq = resources["Queue"]["Properties"], resources["DeadLetterQueue"]["Properties"]

    assert queue["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    # A moved message keeps its first enqueue time: the DLQ must keep it longer than the queue did.
    assert queue["MessageRetentionPeriod"] < dlq["MessageRetentionPeriod"] == SQS_MAX_RETENTION_SECONDS
    # Not a name MWAA's own Celery queues (airflow-celery-*) or their role statements match.
    assert queue["QueueName"] == {"Fn::Sub": "${EnvironmentName}-data-arrival"}


def test_only_s3_on_behalf_of_this_bucket_in_this_account_may_send():
    policy = load_template("arrival.yaml")["Resources"]["QueuePolicy"]["Properties"]["PolicyDocument"]
    allows = [s for s in policy["Statement"] if s["Effect"] == "Allow"]

    assert len(allows) == 1
    (allow,) = allows
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Resource"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert allow["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${BucketName}"}},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }


def test_the_bucket_notifies_created_objects_under_the_prefix_only_when_given_a_queue():
    storage = load_template("storage.yaml")
    condition, with_queue, without = storage["Resources"]["Bucket"]["Properties"][
        "NotificationConfiguration"
    ]["Fn::If"]

    assert condition == "WithArrival"
    assert storage["Conditions"]["WithArrival"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ArrivalQueueArn"}, ""]}]
    }
    assert without == {"Ref": "AWS::NoValue"}
    (queue,) = with_queue["QueueConfigurations"]
    assert queue["Event"] == "s3:ObjectCreated:*"
    assert queue["Queue"] == {"Ref": "ArrivalQueueArn"}
    assert queue["Filter"] == {"S3Key": {"Rules": [{"Name": "prefix", "Value": {"Ref": "ArrivalPrefix"}}]}}


def test_the_mwaa_role_may_only_receive_delete_and_read_attributes_on_that_queue():
    resources = load_template("iam.yaml")["Resources"]
    policy = resources["MwaaDataArrivalPolicy"]

    assert policy["Condition"] == "WithArrival"
    assert policy["Properties"]["RoleName"] == {"Ref": "MwaaExecutionRole"}
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert sorted(statement["Action"]) == [
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
    ]
    assert statement["Resource"] == {"Ref": "ArrivalQueueArn"}
    role = resources["MwaaExecutionRole"]["Properties"]
    assert not any(
        a.startswith("sqs:") and "data-arrival" in str(s.get("Resource"))
        for p in role["Policies"]
        for s in p["PolicyDocument"]["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    )


def test_the_root_creates_the_queue_before_the_bucket_and_needs_the_bucket_named():
    root = load_template("root.yaml")
    resources = root["Resources"]
    queue_arn = {"Fn::If": ["WithArrival", {"Fn::GetAtt": ["ArrivalStack", "Outputs.QueueArn"]}, ""]}

    assert resources["ArrivalStack"]["Condition"] == "WithArrival"
    # The storage stack reads the queue's ARN, so CloudFormation creates the queue and its policy first:
    # S3 checks that policy when the notification is put.
    assert resources["StorageStack"]["Properties"]["Parameters"]["ArrivalQueueArn"] == queue_arn
    assert resources["IamStack"]["Properties"]["Parameters"]["ArrivalQueueArn"] == queue_arn
    (assertion,) = root["Rules"]["ArrivalNamesTheBucket"]["Assertions"]
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "BucketName"}, ""]}]}
    assert root["Outputs"]["ArrivalQueueUrl"]["Value"] == {"Fn::GetAtt": ["ArrivalStack", "Outputs.QueueUrl"]}


@pytest.mark.parametrize(
    ("options", "names"),
    [
        (StackOptions(enable_arrival=True), ["bucket_name", "--bucket-name"]),
        (
            StackOptions(enable_arrival=True, bucket_name="team-data", arrival_prefix="incoming"),
            ["arrival_prefix"],
        ),
        (StackOptions(enable_arrival=True, bucket_name="team-data", environment_name="e" * 64), ["63"]),
    ],
)
def test_bad_arrival_options_fail_on_one_line(options, names):
    with pytest.raises(StackError) as err:
        options.validate()
    assert "\n" not in str(err.value)
    for name in names:
        assert name in str(err.value)


def test_arrival_options_reach_the_root_parameters():
    options = StackOptions(enable_arrival=True, bucket_name="team-data", arrival_prefix="uploads/")

    parameters = options.validate().parameters("https://example-bucket.s3.amazonaws.com/stacks")

    assert (parameters["EnableArrival"], parameters["ArrivalPrefix"]) == ("true", "uploads/")
