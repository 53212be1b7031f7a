"""What CloudFormation, MWAA, S3 event notifications and SQS do, for ``airflow-dl stack`` and data arrival."""

from __future__ import annotations

# -- CloudFormation stack states and MWAA updates (airflow-dl stack deploy) ----------------------------------
# What deploy may do with a stack in each StackStatus, and the one line it prints otherwise ({stack} is
# the name). "create": DescribeStacks by name shows no usable stack (a deleted one is not listed; a
# REVIEW_IN_PROGRESS one holds only an unexecuted CREATE change set); "recreate": a failed first create
# rolled back, holding nothing, and CloudFormation refuses updates until it is deleted; "busy": an
# operation runs and CloudFormation refuses another; "blocked": a person must act first.
CFN_STATES_SOURCE = (
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html"
    "#cfn-console-view-stack-data-resources-status-codes"
)
CFN_CONTINUE_ROLLBACK_SOURCE = "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-continueupdaterollback.html"
_BUSY = (
    "another operation is running on it; wait for it to finish ('airflow-dl stack status') and deploy again"
)
_DELETE = "delete it (aws cloudformation delete-stack --stack-name {stack}) and deploy again"
STACK_STATES: dict[str, tuple[str, str]] = {
    "CREATE_COMPLETE": ("update", ""),
    "UPDATE_COMPLETE": ("update", ""),
    "UPDATE_ROLLBACK_COMPLETE": ("update", "the last update was rolled back; the stack is as before it"),
    "IMPORT_COMPLETE": ("update", ""),
    "IMPORT_ROLLBACK_COMPLETE": ("update", "the last import was rolled back"),
    "DELETE_COMPLETE": ("create", ""),
    "REVIEW_IN_PROGRESS": ("create", "only an unexecuted change set; creating the stack anew"),
    "ROLLBACK_COMPLETE": ("recreate", "its first create failed and rolled back; it holds nothing"),
    "CREATE_FAILED": ("blocked", "its create failed with rollback disabled; " + _DELETE),
    "ROLLBACK_FAILED": (
        "blocked",
        "its failed create could not roll back; delete it (aws cloudformation delete-stack --stack-name "
        "{stack} --deletion-mode FORCE_DELETE_STACK) and deploy again",
    ),
    "DELETE_FAILED": (
        "blocked",
        "its delete failed; fix the resources named above, or delete it again with --deletion-mode "
        "FORCE_DELETE_STACK (retained resources stay), then deploy",
    ),
    "UPDATE_FAILED": (
        "blocked",
        "an update failed with rollback disabled; roll it back (aws cloudformation rollback-stack "
        "--stack-name {stack}) and deploy again",
    ),
    "UPDATE_ROLLBACK_FAILED": (
        "blocked",
        "an update's rollback failed; fix the cause named above and run aws cloudformation "
        "continue-update-rollback --stack-name {stack} (--resources-to-skip <NestedStack>.<Resource> for "
        "resources that cannot roll back), then deploy again",
    ),
    "IMPORT_ROLLBACK_FAILED": (
        "blocked",
        "a resource import's rollback failed (airflow-dl never imports); resolve it in the CloudFormation "
        "console, then deploy again",
    ),
    **dict.fromkeys(
        (
            "CREATE_IN_PROGRESS",
            "ROLLBACK_IN_PROGRESS",
            "DELETE_IN_PROGRESS",
            "UPDATE_IN_PROGRESS",
            "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
            "UPDATE_ROLLBACK_IN_PROGRESS",
            "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
            "IMPORT_IN_PROGRESS",
            "IMPORT_ROLLBACK_IN_PROGRESS",
        ),
        ("busy", _BUSY),
    ),
}

# MWAA: a new requirements.txt/plugins.zip key or S3 object version is an environment update, which
# replaces the scheduler, web server and workers (the environment is UPDATING for tens of minutes);
# WorkerReplacementStrategy GRACEFUL lets running tasks finish for up to 12 hours first, FORCED stops them.
# Graceful updates are "not yet supported in the Canada West (Calgary) and Asia Pacific (Malaysia)".
MWAA_UPDATE_SOURCE = "https://docs.aws.amazon.com/mwaa/latest/userguide/update-environment.html"
MWAA_NO_GRACEFUL_REGIONS = frozenset({"ca-west-1", "ap-southeast-5"})
# GetEnvironment Status values in which MWAA takes no update (an update CloudFormation starts then fails,
# and its rollback fails the same way: UPDATE_ROLLBACK_FAILED).
MWAA_STATUS_SOURCE = "https://docs.aws.amazon.com/mwaa/latest/API/API_Environment.html"
MWAA_BUSY_STATUSES = frozenset(
    {"CREATING", "UPDATING", "DELETING", "ROLLING_BACK", "CREATING_SNAPSHOT", "PENDING", "MAINTENANCE"}
)
# InvokeRestApi: Airflow's own 4xx/5xx answers come back as RestApiClientException/RestApiServerException
# with RestApiStatusCode and RestApiResponse; both are HTTP 400 to botocore, so its retries never see an
# Airflow 5xx. CreateCliToken's token lasts 60 seconds; /aws_mwaa/cli answers {"stdout", "stderr"} base64.
MWAA_INVOKE_REST_API_SOURCE = "https://docs.aws.amazon.com/mwaa/latest/API/API_InvokeRestApi.html"
MWAA_CLI_SOURCE = "https://docs.aws.amazon.com/mwaa/latest/userguide/access-mwaa-apache-airflow-cli.html"


# S3 event notifications to SQS, read by the data-arrival watcher (triggers/arrival.py), and the stacks' queue.
S3_EVENT_SOURCE = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html"
# Configuring a notification makes S3 send this test message (no Records) to the queue first. Records[]
# carry eventName "ObjectCreated:Put|Post|Copy|CompleteMultipartUpload" and s3.object.key URL-encoded
# as a form value ("red flower.jpg" arrives as "red+flower.jpg"); delivery is at least once.
S3_TEST_EVENT = "s3:TestEvent"
# S3 checks its permission to send when the notification is put, and refuses the whole configuration:
# the queue policy must let s3.amazonaws.com sqs:SendMessage (aws:SourceArn, aws:SourceAccount) first.
S3_DESTINATION_PERMISSION_SOURCE = (
    "https://docs.aws.amazon.com/AmazonS3/latest/userguide/grant-destinations-permissions-to-s3.html"
)
# It answers InvalidArgument "Unable to validate the following destination configurations".
SQS_RECEIVE_SOURCE = (
    "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html"
)
SQS_MAX_MESSAGES_PER_RECEIVE = 10  # MaxNumberOfMessages: 1 to 10
SQS_MAX_WAIT_SECONDS = 20  # WaitTimeSeconds, long polling: 0 to 20
# VisibilityTimeout: 0 to 43,200 s (12 h), 30 by default; a message not deleted by then is received again.
SQS_MAX_VISIBILITY_TIMEOUT_SECONDS = 43200
# MessageRetentionPeriod: 60 s to 14 days, 4 days by default. A standard queue's message keeps its first
# enqueue time when it moves to the dead-letter queue, so that queue must keep messages longer.
SQS_RETENTION_SOURCE = (
    "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html"
)
SQS_MAX_RETENTION_SECONDS = 1209600
