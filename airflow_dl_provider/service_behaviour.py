"""What the real services do where a botocore Stubber cannot tell, recorded as data with its source.

A pure core: no Airflow, no backend. The engine, the sensor, the trigger and every resource helper ask
:func:`is_not_found` (the one not-found detector); the local backend answers with
:func:`not_found_error`, so a local run meets the same codes and messages as a run on AWS; the contract
suite (``tests/contract/``) plays the service from these rows.

The API (stable; the contract suite and the local backend build on it):

- :data:`NOT_FOUND` ``{operation: NotFound}``; :meth:`NotFound.error` ``(name, arn) -> {"Code", "Message"}``;
  :func:`not_found_error` ``(operation, name, arn="")``: what the service answers for a missing resource;
  :func:`is_not_found` ``(operation, err) -> bool``: the one detector.
- :data:`ASYNC_DELETE` ``{resource: AsyncDelete}``: resources that go on existing after their Delete call
  returns, the status they show meanwhile, and what the service answers to calls on one;
  :func:`deleting_refusal` ``(resource, operation, name, arn)``: that answer, or None.
- :data:`IN_PROGRESS` ``{resource: InProgress}`` and :func:`in_progress_refusal`
  ``(resource, operation, status, name, arn)``: calls the service refuses while it changes a resource.
- :data:`LOG_STREAMS` ``{job kind key: LogStreams}`` and :func:`log_stream_prefix`
  ``(kind_key, job_name) -> (prefix, exact)``: the CloudWatch log group and stream names per job kind;
  :data:`HOST_STARTED` and :func:`host_started`: when a job's hosts can have written a stream.
- :data:`THROTTLING` ``{service: {"Code", "Message"}}``, :data:`THROTTLING_CODES`, :func:`is_throttling`.
- :data:`STOP_REASONS` and :func:`stop_reason`: why the service itself stopped a job (MaxRuntimeExceeded).
- Re-exported, so that every row is read from here: hosting resources
  (:mod:`airflow_dl_provider.behaviour.hosting`: ``ASYNC_DELETE``, ``IN_PROGRESS``, ``BLUE_GREEN``) and
  the infrastructure's services (:mod:`airflow_dl_provider.behaviour.infrastructure`: CloudFormation
  ``STACK_STATES``, MWAA, S3 event notifications, SQS). A new row goes in the module of its area.

Each row cites the AWS page its behaviour comes from. Where AWS documents only the error code (most
Describe calls list ``ResourceNotFound`` while the service answers ``ValidationException``), the row
records what the service answers, as the ACK SageMaker controller's ``generator.yaml`` and AWS's own
SageMaker operator for Kubernetes record it, and the detector also accepts the documented code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from airflow_dl_provider.behaviour.hosting import *  # noqa: F403
from airflow_dl_provider.behaviour.infrastructure import *  # noqa: F403
from airflow_dl_provider.behaviour.sources import ACK_GENERATOR as ACK_GENERATOR
from airflow_dl_provider.behaviour.sources import API_PAGE as _API
from airflow_dl_provider.behaviour.sources import K8S_OPERATOR as K8S_OPERATOR
from airflow_dl_provider.behaviour.sources import RESOURCE_NOT_FOUND as RESOURCE_NOT_FOUND
from airflow_dl_provider.behaviour.sources import VALIDATION as VALIDATION


def _account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if arn.startswith("arn:") and len(parts) > 5 else ""


@dataclass(frozen=True)
class NotFound:
    """How one call says "no such resource".

    :param operation: the API operation, e.g. ``DescribeTrainingJob``.
    :param code: the error code the service answers with.
    :param message: the message it answers with; ``{name}`` is the resource name, ``{arn}`` its ARN
        (the name when no ARN is given), ``{account}`` the account in the ARN.
    :param also: other codes that mean not found for this call (any message).
    :param match: lower-case fragments of which one must be in a ``code`` message for it to mean not
        found (``code`` is often ``ValidationException``, which also means a malformed request).
        Empty: any message with ``code`` means not found.
    :param source: the AWS documentation page (and, where the page names only the code, where the
        message is recorded).
    """

    operation: str
    code: str
    message: str
    also: tuple[str, ...] = ()
    match: tuple[str, ...] = ()
    source: str = ""

    def error(self, name: str, arn: str = "") -> dict[str, str]:
        """The ``Error`` dict of the service's answer for a missing ``name``."""
        message = self.message.format(name=name, arn=arn or name, account=_account(arn))
        return {"Code": self.code, "Message": message}

    def matches(self, code: str, message: str) -> bool:
        if code in self.also:
            return True
        if code != self.code:
            return False
        lowered = message.lower()
        return not self.match or any(fragment in lowered for fragment in self.match)

    def for_operation(self, operation: str) -> NotFound:
        """The same answer from another call on the same resource (Stop, Delete, Update)."""
        return dataclasses.replace(self, operation=operation)


def _ack_404(noun: str, message: str, fragment: str) -> NotFound:
    """``Describe<noun>``'s not-found as the ACK SageMaker controller records it (its 404 rule): a
    ``ValidationException`` whose message holds ``fragment`` (``ResourceNotFound`` too)."""
    operation = f"Describe{noun}"
    return NotFound(
        operation,
        VALIDATION,
        message,
        also=(RESOURCE_NOT_FOUND,),
        match=(fragment,),
        source=f"{_API.format(operation)} ; {ACK_GENERATOR} ({noun} 404)",
    )


def _documented_code_only(noun: str, message: str) -> NotFound:
    """``Describe<noun>``'s not-found where AWS documents ``ResourceNotFound`` and no message."""
    operation = f"Describe{noun}"
    return NotFound(operation, RESOURCE_NOT_FOUND, message, also=(VALIDATION,), source=_API.format(operation))


_DESCRIBE_ROWS = (
    _ack_404("TrainingJob", "Requested resource not found.", "requested resource not found"),
    _ack_404("TransformJob", "Could not find requested job with name {name}", "could not find requested job"),
    _ack_404(
        "ProcessingJob", "Could not find requested job with name {name}", "could not find requested job"
    ),
    NotFound(
        "DescribeHyperParameterTuningJob",
        RESOURCE_NOT_FOUND,
        "Amazon SageMaker can't find a tuning job with name {name}",
        source=f"{_API.format('DescribeHyperParameterTuningJob')} ; {K8S_OPERATOR}",
    ),
    # Labeling and compilation: AWS documents ResourceNotFound and no message, and neither controller
    # records one; any ValidationException or ResourceNotFound means not found (as the Amazon provider
    # treats any Describe ValidationException). The message here is ours, in the service's style.
    _documented_code_only("LabelingJob", "Could not find labeling job {name}"),
    _documented_code_only("CompilationJob", "Could not find compilation job {name}"),
    # Hosting resources: the message names the resource's ARN (its name lower-cased), in quotes.
    _ack_404("Endpoint", 'Could not find endpoint "{arn}".', "could not find endpoint"),
    _ack_404(
        "EndpointConfig",
        'Could not find endpoint configuration "{arn}".',
        "could not find endpoint configuration",
    ),
    _ack_404("Model", 'Could not find model "{arn}".', "could not find model"),
    # The registry says "does not exist." after the ARN (ACK matches the suffix).
    _ack_404("ModelPackage", "ModelPackage {arn} does not exist.", "does not exist"),
    _ack_404("ModelPackageGroup", "ModelPackageGroup {arn} does not exist.", "does not exist"),
)
_BY_DESCRIBE = {row.operation: row for row in _DESCRIBE_ROWS}

# Other calls on a resource that may be missing answer as its Describe does.
_SAME_AS_DESCRIBE = {
    "StopTrainingJob": "DescribeTrainingJob",
    "StopTransformJob": "DescribeTransformJob",
    "StopProcessingJob": "DescribeProcessingJob",
    "StopHyperParameterTuningJob": "DescribeHyperParameterTuningJob",
    "ListTrainingJobsForHyperParameterTuningJob": "DescribeHyperParameterTuningJob",
    "StopLabelingJob": "DescribeLabelingJob",
    "StopCompilationJob": "DescribeCompilationJob",
    "UpdateEndpoint": "DescribeEndpoint",
    "DeleteEndpoint": "DescribeEndpoint",
    # CreateEndpoint with a config that does not exist names the config.
    "CreateEndpoint": "DescribeEndpointConfig",
    "DeleteEndpointConfig": "DescribeEndpointConfig",
    "DeleteModel": "DescribeModel",
    "UpdateModelPackage": "DescribeModelPackage",
    "CreateModelPackage": "DescribeModelPackageGroup",
    "ListModelPackages": "DescribeModelPackageGroup",
}

_OTHER_SERVICES = (
    # CloudWatch Logs: a job's group and streams appear only once its first container writes a line.
    NotFound(
        "DescribeLogStreams",
        "ResourceNotFoundException",
        "The specified log group does not exist.",
        source="https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_DescribeLogStreams.html",
    ),
    NotFound(
        "GetLogEvents",
        "ResourceNotFoundException",
        "The specified log stream does not exist.",
        source="https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html",
    ),
    # S3 HEAD has no body: botocore reports the HTTP status as the code.
    NotFound(
        "HeadObject",
        "404",
        "Not Found",
        also=("NoSuchKey",),
        source="https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html",
    ),
    # sagemaker-runtime: a missing endpoint (and one still Creating) is a ValidationError.
    NotFound(
        "InvokeEndpoint",
        "ValidationError",
        "Endpoint {name} of account {account} not found.",
        match=("not found",),
        source="https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html",
    ),
)

NOT_FOUND: dict[str, NotFound] = {
    **_BY_DESCRIBE,
    **{op: _BY_DESCRIBE[describe].for_operation(op) for op, describe in _SAME_AS_DESCRIBE.items()},
    **{row.operation: row for row in _OTHER_SERVICES},
}


def not_found_rule(operation: str) -> NotFound:
    """The row for ``operation``; an operation without one is a bug in the table, said at once."""
    try:
        return NOT_FOUND[operation]
    except KeyError:
        raise KeyError(f"service_behaviour has no not-found row for {operation}") from None


def not_found_error(operation: str, name: str, arn: str = "") -> dict[str, str]:
    """The ``Error`` dict (``Code``, ``Message``) the real service answers for a missing ``name``."""
    return not_found_rule(operation).error(name, arn)


def error_of(err: Any) -> tuple[str, str]:
    """``(code, message)`` of a botocore ``ClientError`` (empty strings for anything else)."""
    error = getattr(err, "response", None)
    error = error.get("Error", {}) if isinstance(error, dict) else {}
    return str(error.get("Code", "")), str(error.get("Message", ""))


def is_not_found(operation: str, err: Any) -> bool:
    """The one detector: does the ``ClientError`` ``err`` from ``operation`` mean "no such resource"?"""
    return not_found_rule(operation).matches(*error_of(err))


# -- CloudWatch log streams -------------------------------------------------------------------------------

_LOGGING = "https://docs.aws.amazon.com/sagemaker/latest/dg/logging-cloudwatch.html"


@dataclass(frozen=True)
class LogStreams:
    """Where a job kind's container output lands in CloudWatch Logs.

    :param group: the log group.
    :param stream: the stream name pattern, as AWS writes it.
    :param exact: True when the stream is named exactly after the job (one stream); False when each
        host writes ``<job>/<host>-<epoch>`` streams found by the prefix ``<job>/``.
    """

    group: str
    stream: str
    exact: bool = False
    source: str = _LOGGING


LOG_STREAMS: dict[str, LogStreams] = {
    "training": LogStreams(
        "/aws/sagemaker/TrainingJobs",
        "[training-job-name]/algo-[instance-number-in-cluster]-[epoch_timestamp]",
    ),
    "transform": LogStreams(
        "/aws/sagemaker/TransformJobs", "[transform-job-name]/[instance-id]-[epoch_timestamp]"
    ),
    "processing": LogStreams(
        "/aws/sagemaker/ProcessingJobs", "[processing-job-name]/[hostname]-[epoch_timestamp]"
    ),
    "labeling": LogStreams("/aws/sagemaker/LabelingJobs", "[labeling-job-name]", exact=True),
    "compilation": LogStreams("/aws/sagemaker/CompilationJobs", "[compilation-job-name]", exact=True),
    # Tuning has no stream of its own: each trial is a training job with its own streams.
}


def log_group(kind_key: str) -> str | None:
    """The CloudWatch log group of a job kind; None when the kind writes none."""
    streams = LOG_STREAMS.get(kind_key)
    return streams.group if streams else None


def log_stream_prefix(kind_key: str, job_name: str) -> tuple[str, bool]:
    """``(prefix, exact)``: the job's streams are named ``prefix`` itself (exact) or start with it."""
    streams = LOG_STREAMS[kind_key]
    return (job_name, True) if streams.exact else (f"{job_name}/", False)


# -- processing jobs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessingRules:
    """What SageMaker Processing does with a job's data and script, beyond the service model.

    :param container_root: every input's and output's ``LocalPath`` must begin with it.
    :param max_runtime_seconds: the cap on ``StoppingCondition.MaxRuntimeInSeconds``.
    :param statuses: ``ProcessingJobStatus``; Stop shows ``Stopping``, then ``Stopped``.
    :param hosts: the instances' host names, as ``/opt/ml/config/resourceconfig.json`` lists them; the
        ``[hostname]`` of the log stream ``<job>/<hostname>-<epoch>`` (:data:`LOG_STREAMS`).
    :param config_files: what the container finds in ``/opt/ml/config/``.
    :param failure: how FailureReason starts when the container exits non-zero.
    """

    container_root: str
    max_runtime_seconds: int
    statuses: tuple[str, ...]
    hosts: str
    config_files: tuple[str, ...]
    failure: str
    source: str


PROCESSING = ProcessingRules(
    container_root="/opt/ml/processing/",
    max_runtime_seconds=777600,
    statuses=("InProgress", "Completed", "Failed", "Stopping", "Stopped"),
    hosts="algo-{n}",
    config_files=("processingjobconfig.json", "resourceconfig.json"),
    # "Failed. Reason: AlgorithmError" for a script that raised: aws/amazon-sagemaker-examples#1604.
    failure="AlgorithmError",
    source=" ; ".join(
        (
            _API.format("ProcessingS3Input") + " (LocalPath)",
            _API.format("ProcessingStoppingCondition"),
            _API.format("DescribeProcessingJob") + " (ProcessingJobStatus)",
            "https://docs.aws.amazon.com/sagemaker/latest/dg/build-your-own-processing-container.html",
            "https://github.com/aws/amazon-sagemaker-examples/issues/1604",
        )
    ),
)
# The SageMaker Python SDK's ScriptProcessor ships its code as an input named "code" at this path and
# runs ``command + [path/<file>]`` (sagemaker/processing.py; the request is quoted in
# aws/amazon-sagemaker-examples#1604: InputName 'code', LocalPath '/opt/ml/processing/input/code').
PROCESSING_CODE_INPUT = ("code", "/opt/ml/processing/input/code")


@dataclass(frozen=True)
class HostStart:
    """What in a job's description says a host runs the job's container, so its log streams can exist.

    :param field: the Describe member; a host has started once it is present and not one of ``before``.
    :param before: values of ``field`` that come before any container runs.
    """

    field: str
    before: frozenset[str] = frozenset()
    source: str = ""


# Before these, no container writes: listing log streams would find none. Training's Starting and
# Downloading (and the retired LaunchingMLInstances, PreparingTrainingStack, DownloadingTrainingImage)
# come first; Training's own first message is often "Downloading the training image", so streams may
# still be missing then and are listed again until each host has one.
HOST_STARTED: dict[str, HostStart] = {
    "training": HostStart(
        "SecondaryStatus",
        frozenset(
            {
                "Pending",
                "Starting",
                "LaunchingMLInstances",
                "PreparingTrainingStack",
                "Downloading",
                "DownloadingTrainingImage",
            }
        ),
        source=_API.format("SecondaryStatusTransition"),
    ),
    # TransformStartTime: "when the transform job starts on ML instances".
    "transform": HostStart("TransformStartTime", source=_API.format("DescribeTransformJob")),
    "processing": HostStart("ProcessingStartTime", source=_API.format("DescribeProcessingJob")),
    "compilation": HostStart("CompilationStartTime", source=_API.format("DescribeCompilationJob")),
    "labeling": HostStart(
        "LabelingJobStatus", frozenset({"Initializing"}), source=_API.format("DescribeLabelingJob")
    ),
}


def host_started(kind_key: str, description: dict[str, Any]) -> bool:
    """True once the job's description says a host runs its container (kinds without a row: always)."""
    row = HOST_STARTED.get(kind_key)
    if row is None:
        return True
    value = description.get(row.field)
    return value is not None and value not in row.before


# GetLogEvents: "If you have reached the end of the stream, it returns the same token you passed in";
# a page holds at most 10,000 events or 1 MB, and may be empty while more events follow.
LOG_EVENTS_PAGE = {"max_events": 10_000, "max_bytes": 1_048_576}
LOG_EVENTS_SOURCE = (
    "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html"
)


# -- throttling -------------------------------------------------------------------------------------------

# What each service answers when its request rate quota is exceeded.
THROTTLING: dict[str, dict[str, str]] = {
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/CommonErrors.html
    "sagemaker": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
    # https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/CommonErrors.html
    "logs": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
    # https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
    "s3": {"Code": "SlowDown", "Message": "Please reduce your request rate."},
}
# Every code botocore's standard retry mode treats as throttling (botocore/retries/standard.py).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)


def is_throttling(err: Any) -> bool:
    """Did the service refuse ``err``'s call for its request rate (retrying later will do)?"""
    return error_of(err)[0] in THROTTLING_CODES


# -- jobs the service stopped itself ----------------------------------------------------------------------

# SecondaryStatus of a Stopped training job that the service stopped at a limit of the request.
STOP_REASONS: dict[str, str] = {
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTrainingJob.html#sagemaker-DescribeTrainingJob-response-SecondaryStatus
    "MaxRuntimeExceeded": "the job ran past StoppingCondition.MaxRuntimeInSeconds; raise it, or save "
    "checkpoints to resume from",
    "MaxWaitTimeExceeded": "the spot job waited and ran past StoppingCondition.MaxWaitTimeInSeconds; "
    "raise it or train on demand",
}


def stop_reason(description: dict[str, Any]) -> str:
    """``"MaxRuntimeExceeded: <why and the fix>"`` when the service stopped the job at a limit, else ``""``."""
    secondary = str(description.get("SecondaryStatus") or "")
    if secondary in STOP_REASONS:
        return f"{secondary}: {STOP_REASONS[secondary]}"
    # The transitions keep it when SecondaryStatus has moved on (e.g. to Stopped).
    for transition in reversed(description.get("SecondaryStatusTransitions") or []):
        status = str(transition.get("Status") or "")
        if status in STOP_REASONS:
            return f"{status}: {STOP_REASONS[status]}"
    return ""


# -- Training instances with local NVMe storage: no VolumeKmsKeyId ---------------------------------------
# CreateTrainingJob refuses ResourceConfig.VolumeKmsKeyId on an instance type with local instance storage,
# which a hardware module on the instance encrypts: "You can't request a VolumeKmsKeyId when using an
# instance type with local storage", and such types get no EBS volume (VolumeSizeInGB is fixed to the
# NVMe capacity). EC2 names instance store with a "d" attribute (c5d, m5d, r5d, g4dn, p3dn, p4d, m6id ...);
# the newer accelerated families have it without the letter (EC2 "Instance store volumes" table).
VOLUME_KMS_SOURCE = "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ResourceConfig.html"
INSTANCE_STORE_SOURCE = (
    "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/InstanceStorage.html#instance-store-volumes"
)
INSTANCE_STORE_ATTRIBUTE = (
    "d"  # https://docs.aws.amazon.com/ec2/latest/instancetypes/instance-type-names.html
)
NVME_INSTANCE_FAMILIES = frozenset(
    {
        "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "p6-b200",
        "g4dn", "g5", "g6", "g6e",
        "trn1", "trn1n", "trn2",
        "m5d", "c5d", "r5d",
    }
)  # fmt: skip


# -- a job name in use, a stop that comes too late ----------------------------------------------------------
# What the service answers when a job's create or stop loses a race: the local backend raises these.


@dataclass(frozen=True)
class JobRefusal:
    """One job call's refusal: ``code`` and ``message`` (``{noun}``: "training job", ``{arn}``, ``{status}``).

    :param source: where the answer is recorded: the API page lists the code; the message is the
        service's own, as reported verbatim.
    """

    code: str
    message: str
    source: str = ""

    def error(self, noun: str, **fields: str) -> dict[str, str]:
        words = "".join(f" {c.lower()}" if c.isupper() else c for c in noun).strip()  # TrainingJob
        return {
            "Code": self.code,
            "Message": self.message.format(noun=words, Noun=words.capitalize(), **fields),
        }


NAME_IN_USE: dict[str, JobRefusal] = {
    "CreateTrainingJob": JobRefusal(
        "ResourceInUse",
        "{Noun} names must be unique within an AWS account and region, and a {noun} with this name "
        "already exists ({arn})",
        source=_API.format("CreateTrainingJob")
        + "#API_CreateTrainingJob_Errors; message: https://github.com/aws/amazon-sagemaker-examples/pull/3108",
    ),
}
STOP_REFUSED: dict[str, JobRefusal] = {
    "StopTrainingJob": JobRefusal(
        VALIDATION,
        "The request was rejected because the {noun} is in status {status}.",
        source=_API.format("StopTrainingJob")
        + "; message: https://github.com/awslabs/benchmark-ai/issues/928",
    ),
}


def name_in_use_error(operation: str, noun: str, arn: str) -> dict[str, str]:
    """What ``Create<noun>`` answers for a name already taken; other kinds in CreateTrainingJob's words."""
    return NAME_IN_USE.get(operation, NAME_IN_USE["CreateTrainingJob"]).error(noun, arn=arn)


# Hosting resources answer a taken name with a ValidationException of their own words. The SageMaker
# Python SDK matches "Cannot create already existing model" (session.py, create_model); a retried
# CreateEndpoint meets "Cannot create already existing endpoint" (hashicorp/terraform-provider-aws#48966).
_SDK_SESSION = "https://github.com/aws/sagemaker-python-sdk/blob/master/src/sagemaker/session.py"
HOSTING_NAME_IN_USE: dict[str, JobRefusal] = {
    "CreateModel": JobRefusal(
        VALIDATION,
        'Cannot create already existing model "{arn}".',
        source=f"{_API.format('CreateModel')} ; {_SDK_SESSION}",
    ),
    "CreateEndpointConfig": JobRefusal(
        VALIDATION,
        'Cannot create already existing endpoint configuration "{arn}".',
        source=_API.format("CreateEndpointConfig"),
    ),
    "CreateEndpoint": JobRefusal(
        VALIDATION,
        'Cannot create already existing endpoint "{arn}".',
        source=f"{_API.format('CreateEndpoint')} ; https://github.com/hashicorp/terraform-provider-aws/pull/48966",
    ),
}


def is_name_in_use(operation: str, err: Any) -> bool:
    """Did ``Create<noun>`` refuse ``err`` because the name is taken (by an earlier call whose answer was lost,
    when the name is the task instance's own)? A malformed request is never taken for it."""
    code, message = error_of(err)
    hosting = HOSTING_NAME_IN_USE.get(operation)
    if hosting is not None:
        return code == hosting.code and "cannot create already existing" in message.lower()
    if operation.startswith("Create") and operation.endswith("Job"):
        return code == NAME_IN_USE.get(operation, NAME_IN_USE["CreateTrainingJob"]).code
    return False


def stop_refused_error(operation: str, noun: str, status: str) -> dict[str, str]:
    """What ``Stop<noun>`` answers for a job that is not InProgress; other kinds in StopTrainingJob's words."""
    return STOP_REFUSED.get(operation, STOP_REFUSED["StopTrainingJob"]).error(noun, status=status)


# -- model approval (the registry's gate before production) -----------------------------------------------


@dataclass(frozen=True)
class ModelApproval:
    """How a model package version is approved: its ``ModelApprovalStatus``, set by CreateModelPackage and
    changed by UpdateModelPackage (``ModelPackageArn``, ``ModelApprovalStatus`` required;
    ``ApprovalDescription`` at most 1024 characters). The status changes at once (no async state); each
    change emits an EventBridge "SageMaker Model Package State Change" event, which is how a CI/CD deploy
    is usually started. Any status may follow any other: an Approved version can be Rejected later (a
    rollback), a Rejected one Approved. Only versioned packages (in a group) carry the status.

    :param pending: the status of a version nobody has decided on yet.
    :param decided: the statuses a waiting approver ends on.
    :param description_max: the limit on ``ApprovalDescription``.
    """

    pending: str = "PendingManualApproval"
    approved: str = "Approved"
    rejected: str = "Rejected"
    description_max: int = 1024
    source: str = (
        f"{_API.format('UpdateModelPackage')} ; "
        "https://docs.aws.amazon.com/sagemaker/latest/dg/model-registry-approve.html ; "
        "https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html"
    )

    @property
    def statuses(self) -> tuple[str, str, str]:
        return (self.pending, self.approved, self.rejected)

    @property
    def decided(self) -> tuple[str, str]:
        return (self.approved, self.rejected)


MODEL_APPROVAL = ModelApproval()


# -- Managed warm pools: ResourceConfig.KeepAlivePeriodInSeconds -------------------------------------------
# A finished job's instances are kept KeepAlivePeriodInSeconds (at most 3600) for the next job whose
# WARM_POOL_MATCH values are identical (the image is not one of them), which must set its own keep-alive;
# a pool moves from job to job for at most 7 days. None with spot or heterogeneous clusters. Tuning jobs
# refuse the keep-alive in their resource config and reuse clusters between their own trials.
WARM_POOL_SOURCE = "https://docs.aws.amazon.com/sagemaker/latest/dg/train-warm-pools.html"
WARM_POOL_STATUS_SOURCE = _API.format("WarmPoolStatus")  # InUse | Available | Reused | Terminated
WARM_POOL_TUNING_SOURCE = _API.format("HyperParameterTuningResourceConfig")
WARM_POOL_MAX_KEEP_ALIVE_SECONDS = 3600
WARM_POOL_MAX_LIFETIME_SECONDS = 7 * 24 * 3600
WARM_POOL_STATUSES = frozenset({"InUse", "Available", "Reused", "Terminated"})
WARM_POOL_MATCH = (
    ("RoleArn",), ("ResourceConfig", "InstanceCount"), ("ResourceConfig", "InstanceType"),
    ("ResourceConfig", "VolumeKmsKeyId"), ("ResourceConfig", "VolumeSizeInGB"), ("VpcConfig", "SecurityGroupIds"),
    ("VpcConfig", "Subnets"), ("EnableInterContainerTrafficEncryption",), ("EnableNetworkIsolation",),
)  # fmt: skip
WARM_POOL_NEVER_WITH = (("ResourceConfig", "InstanceGroups"), ("EnableManagedSpotTraining",))


def _member(request: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = request
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return sorted(value) if isinstance(value, list) else value


def warm_pool_match(request: dict[str, Any]) -> dict[str, Any]:
    """The values a warm pool is matched on (:data:`WARM_POOL_MATCH`): two jobs match when they are equal."""
    return {".".join(path): _member(request, path) for path in WARM_POOL_MATCH}


def warm_pool_keep_alive(request: dict[str, Any]) -> int:
    """The seconds a CreateTrainingJob request keeps its instances after the job; 0: no warm pool."""
    if any(_member(request, path) for path in WARM_POOL_NEVER_WITH):
        return 0
    return int((request.get("ResourceConfig") or {}).get("KeepAlivePeriodInSeconds") or 0)
