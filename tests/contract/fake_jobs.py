"""SageMaker's jobs as the service runs them: Create -> running states over several Describes -> an end.

Each job advances only when it is described, so a test decides how many polls a job runs for and
nothing depends on the wall clock. A job ends as its :class:`Plan` says (Completed, Failed with a
FailureReason, stopped by the service at a limit, or running until stopped); Stop shows Stopping
for one Describe, then Stopped. While it runs a job writes its log lines to CloudWatch Logs under
the group and stream names the service uses; when it completes it writes its outputs to S3 where
the service would (model artifacts, output manifest, compiled model, transform ``.out`` files).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import posixpath
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.validation.requests import output_shape
from tests.contract.fake_service import ACCOUNT, ServiceError, arn, not_found, now

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable

    from tests.contract.fake_service import SageMakerService

_API = "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_{}.html"


@dataclass(frozen=True)
class JobApi:
    """One job API as the service defines it (the ``Describe<noun>`` status enum and its order).

    :param running: the states a running job shows, in order; the last one repeats.
    :param words: how the service's messages name the job ("training job").
    """

    key: str
    noun: str
    resource: str
    words: str
    running: tuple[str, ...]
    completed: str = "Completed"
    failed: str = "Failed"
    stopping: str = "Stopping"
    stopped: str = "Stopped"
    source: str = ""

    @property
    def status_field(self) -> str:
        return f"{self.noun}Status"

    @property
    def name_field(self) -> str:
        return f"{self.noun}Name"

    @property
    def arn_field(self) -> str:
        return f"{self.noun}Arn"


JOB_APIS = {
    api.noun: api
    for api in (
        JobApi(
            "training",
            "TrainingJob",
            "training-job",
            "training job",
            ("InProgress",),
            source=_API.format("DescribeTrainingJob"),
        ),
        JobApi(
            "tuning",
            "HyperParameterTuningJob",
            "hyper-parameter-tuning-job",
            "tuning job",
            ("InProgress",),
            source=_API.format("DescribeHyperParameterTuningJob"),
        ),
        JobApi(
            "labeling",
            "LabelingJob",
            "labeling-job",
            "labeling job",
            ("Initializing", "InProgress"),
            source=_API.format("DescribeLabelingJob"),
        ),
        # Neo spells its states in capitals.
        JobApi(
            "compilation",
            "CompilationJob",
            "compilation-job",
            "compilation job",
            ("STARTING", "INPROGRESS"),
            completed="COMPLETED",
            failed="FAILED",
            stopping="STOPPING",
            stopped="STOPPED",
            source=_API.format("DescribeCompilationJob"),
        ),
        JobApi(
            "transform",
            "TransformJob",
            "transform-job",
            "transform job",
            ("InProgress",),
            source=_API.format("DescribeTransformJob"),
        ),
        JobApi(
            "processing",
            "ProcessingJob",
            "processing-job",
            "processing job",
            ("InProgress",),
            source=_API.format("DescribeProcessingJob"),
        ),
    )
}
# SecondaryStatus of a running training job, in the order the service reports them.
TRAINING_SECONDARY = ("Starting", "Downloading", "Training", "Uploading")


@dataclass
class Plan:
    """How the next jobs of a kind will run.

    :param polls: Describes that show the job running before it ends; None: until it is stopped.
    :param failure_reason: end Failed with this FailureReason.
    :param stopped_by: the service stops the job itself at a limit (SecondaryStatus, e.g.
        ``MaxRuntimeExceeded``).
    :param metrics: the final metrics (training; tuning: the objective of the best trial).
    :param log_lines: written to CloudWatch, one per Describe while the job runs.
    :param predict: transform: the output line for one input record.
    """

    polls: int | None = 3
    failure_reason: str | None = None
    stopped_by: str | None = None
    metrics: dict[str, float] = field(default_factory=lambda: {"validation_accuracy": 0.91})
    log_lines: tuple[str, ...] = ("starting", "epoch=1 loss=0.9", "epoch=2 loss=0.4")
    predict: Callable[[str], str] = lambda _record: "0"


@dataclass
class Job:
    api: JobApi
    name: str
    request: dict[str, Any]
    plan: Plan
    created: dt.datetime = field(default_factory=now)
    describes: int = 0
    stopped_at: int | None = None
    status: str = ""
    logged: int = 0
    ended: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        return arn(self.api.resource, self.name)


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


class Jobs:
    """Every job of every kind, by API noun and name."""

    def __init__(self, service: SageMakerService) -> None:
        self.service = service
        self.jobs: dict[tuple[str, str], Job] = {}
        self._plans: dict[str, Plan] = {}

    # -- what tests ask ------------------------------------------------------------------------------

    def plan(self, noun: str, **kwargs: Any) -> Plan:
        """Run the next ``noun`` jobs (``TrainingJob``, ...) as ``kwargs`` say (see :class:`Plan`)."""
        self._plans[noun] = Plan(**kwargs)
        return self._plans[noun]

    def get(self, noun: str, name: str) -> Job:
        return self.jobs[(noun, name)]

    def of(self, noun: str) -> list[Job]:
        return [job for (kind, _), job in self.jobs.items() if kind == noun]

    def add_completed_training_job(self, name: str, metrics: dict[str, float]) -> Job:
        """A training job that finished before the test (e.g. the one a model came from)."""
        request = {
            "AlgorithmSpecification": {
                "TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311",
                "TrainingInputMode": "File",
            },
            "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/SageMakerExecution",
            "OutputDataConfig": {"S3OutputPath": "s3://earlier/output"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        }
        job = Job(JOB_APIS["TrainingJob"], name, request, Plan(polls=0, metrics=metrics, log_lines=()))
        job.describes = 1
        job.status, job.ended = "Completed", True
        self.jobs[("TrainingJob", name)] = job
        return job

    # -- the API -------------------------------------------------------------------------------------

    def create_training_job(self, **request: Any) -> dict[str, Any]:
        return self._create("TrainingJob", request)

    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:
        return self._describe("TrainingJob", TrainingJobName)

    def stop_training_job(self, TrainingJobName: str) -> dict[str, Any]:
        return self._stop("TrainingJob", TrainingJobName)

    def create_hyper_parameter_tuning_job(self, **request: Any) -> dict[str, Any]:
        return self._create("HyperParameterTuningJob", request)

    def describe_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> dict[str, Any]:
        return self._describe("HyperParameterTuningJob", HyperParameterTuningJobName)

    def stop_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> dict[str, Any]:
        return self._stop("HyperParameterTuningJob", HyperParameterTuningJobName)

    def create_labeling_job(self, **request: Any) -> dict[str, Any]:
        return self._create("LabelingJob", request)

    def describe_labeling_job(self, LabelingJobName: str) -> dict[str, Any]:
        return self._describe("LabelingJob", LabelingJobName)

    def stop_labeling_job(self, LabelingJobName: str) -> dict[str, Any]:
        return self._stop("LabelingJob", LabelingJobName)

    def create_compilation_job(self, **request: Any) -> dict[str, Any]:
        return self._create("CompilationJob", request)

    def describe_compilation_job(self, CompilationJobName: str) -> dict[str, Any]:
        return self._describe("CompilationJob", CompilationJobName)

    def stop_compilation_job(self, CompilationJobName: str) -> dict[str, Any]:
        return self._stop("CompilationJob", CompilationJobName)

    def create_transform_job(self, **request: Any) -> dict[str, Any]:
        model = request["ModelName"]
        if model not in self.service.hosting.models:
            raise not_found("DescribeModel", model, arn("model", model))
        return self._create("TransformJob", request)

    def describe_transform_job(self, TransformJobName: str) -> dict[str, Any]:
        return self._describe("TransformJob", TransformJobName)

    def stop_transform_job(self, TransformJobName: str) -> dict[str, Any]:
        return self._stop("TransformJob", TransformJobName)

    def create_processing_job(self, **request: Any) -> dict[str, Any]:
        return self._create("ProcessingJob", request)

    def describe_processing_job(self, ProcessingJobName: str) -> dict[str, Any]:
        return self._describe("ProcessingJob", ProcessingJobName)

    def stop_processing_job(self, ProcessingJobName: str) -> dict[str, Any]:
        return self._stop("ProcessingJob", ProcessingJobName)

    def list_training_jobs_for_hyper_parameter_tuning_job(
        self,
        HyperParameterTuningJobName: str,
        SortBy: str = "Name",
        SortOrder: str = "Ascending",
        MaxResults: int = 10,
        **_filters: Any,
    ) -> dict[str, Any]:
        operation = "ListTrainingJobsForHyperParameterTuningJob"
        tuning = self.jobs.get(("HyperParameterTuningJob", HyperParameterTuningJobName))
        if tuning is None:
            raise not_found(operation, HyperParameterTuningJobName, tuning_arn(HyperParameterTuningJobName))
        summaries = [dict(s) for s in tuning.extra.get("summaries", [])]
        if SortBy == "FinalObjectiveMetricValue":
            summaries.sort(key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
        elif SortBy == "CreationTime":
            summaries.sort(key=lambda s: s["CreationTime"])
        else:
            summaries.sort(key=lambda s: s["TrainingJobName"])
        if SortOrder == "Descending":
            summaries.reverse()
        return {"TrainingJobSummaries": summaries[:MaxResults]}

    # -- the lifecycle -------------------------------------------------------------------------------

    def _create(self, noun: str, request: dict[str, Any]) -> dict[str, Any]:
        api = JOB_APIS[noun]
        name = request.pop(api.name_field)
        if (noun, name) in self.jobs:
            # TODO(service_behaviour): the duplicate-name answer of every Create<Job>.
            raise ServiceError(
                "ResourceInUse",
                f"{api.words.capitalize()} names must be unique within an AWS account and region, and a "
                f"{api.words} with this name already exists ({arn(api.resource, name)})",
            )
        job = Job(api, name, request, self._plans.get(noun) or Plan())
        job.status = api.running[0]
        self.jobs[(noun, name)] = job
        return {api.arn_field: job.arn}

    def _advance(self, job: Job) -> str:
        """The status this Describe shows; the job moves on one step per Describe."""
        api, plan = job.api, job.plan
        if job.ended:
            return job.status
        job.describes += 1
        if job.stopped_at is not None:
            job.status = api.stopping if job.describes - job.stopped_at <= 1 else api.stopped
        elif plan.polls is None or job.describes <= plan.polls:
            job.status = api.running[min(job.describes - 1, len(api.running) - 1)]
        elif plan.failure_reason is not None:
            job.status = api.failed
        elif plan.stopped_by is not None:
            job.status = api.stopped
        else:
            job.status = api.completed
        if job.status in (api.completed, api.failed, api.stopped):
            job.ended = True
            if job.status == api.completed:
                getattr(self, f"_complete_{api.key}")(job)
        self._log(job)
        return job.status

    def _describe(self, noun: str, name: str) -> dict[str, Any]:
        job = self.jobs.get((noun, name))
        if job is None:
            raise not_found(f"Describe{noun}", name, arn(JOB_APIS[noun].resource, name))
        status = self._advance(job)
        return self.description(job, status)

    def description(self, job: Job, status: str | None = None) -> dict[str, Any]:
        api = job.api
        members = output_shape(f"Describe{api.noun}").members
        body = {k: v for k, v in job.request.items() if k in members}
        body.update(
            {
                api.name_field: job.name,
                api.arn_field: job.arn,
                api.status_field: status or job.status,
                "CreationTime": job.created,
            }
        )
        if "LastModifiedTime" in members:
            body["LastModifiedTime"] = now()
        if job.status == api.failed and job.plan.failure_reason:
            body["FailureReason"] = job.plan.failure_reason
        body.update(getattr(self, f"_{api.key}_fields")(job))
        return body

    def _stop(self, noun: str, name: str) -> dict[str, Any]:
        api = JOB_APIS[noun]
        job = self.jobs.get((noun, name))
        if job is None:
            raise not_found(f"Stop{noun}", name, arn(api.resource, name))
        if job.ended or job.stopped_at is not None:
            # TODO(service_behaviour): the answer of Stop<Job> on an ended or stopping job.
            raise ServiceError(
                "ValidationException",
                f"The request was rejected because the {api.words} is in status {job.status}.",
            )
        job.stopped_at = job.describes
        return {}

    # -- CloudWatch Logs -----------------------------------------------------------------------------

    def streams(self, job: Job) -> list[str]:
        prefix, exact = service_behaviour.log_stream_prefix(job.api.key, job.name)
        if exact:
            return [prefix]
        resources = (
            job.request.get("ResourceConfig")
            or job.request.get("TransformResources")
            or (job.request.get("ProcessingResources") or {}).get("ClusterConfig")
            or {}
        )
        hosts = int(resources.get("InstanceCount", 1))
        epoch = int(job.created.timestamp())
        if job.api.key == "transform":
            return [f"{prefix}i-0{index:016x}-{epoch}" for index in range(1, hosts + 1)]
        return [f"{prefix}algo-{index}-{epoch}" for index in range(1, hosts + 1)]

    def _log(self, job: Job) -> None:
        """One more log line per host, in the group and streams the service writes them to."""
        if job.api.key not in service_behaviour.LOG_STREAMS or job.logged >= len(job.plan.log_lines):
            return
        group = service_behaviour.LOG_STREAMS[job.api.key].group
        logs = self.service.logs
        if job.logged == 0:
            with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_group(logGroupName=group)
            for stream in self.streams(job):
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
        line = job.plan.log_lines[job.logged]
        job.logged += 1
        stamp = int(now().timestamp() * 1000)
        for stream in self.streams(job):
            logs.put_log_events(
                logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": stamp, "message": line}]
            )

    # -- what each kind reports and leaves behind ----------------------------------------------------

    def _put(self, uri: str, body: bytes) -> None:
        bucket, key = _split(uri)
        self.service.s3.put_object(Bucket=bucket, Key=key, Body=body)

    def _get(self, uri: str) -> bytes:
        bucket, key = _split(uri)
        return self.service.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def _training_fields(self, job: Job) -> dict[str, Any]:
        output = job.request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        fields: dict[str, Any] = {
            "ModelArtifacts": {"S3ModelArtifacts": f"{output}/{job.name}/output/model.tar.gz"},
            "SecondaryStatus": {
                "Completed": "Completed",
                "Failed": "Failed",
                "Stopping": "Stopping",
                "Stopped": job.plan.stopped_by if job.stopped_at is None else "Stopped",
            }.get(job.status)
            or TRAINING_SECONDARY[min(max(job.describes - 1, 0), len(TRAINING_SECONDARY) - 1)],
        }
        if job.status == "Completed":
            fields.update(
                FinalMetricDataList=[
                    {"MetricName": k, "Value": float(v), "Timestamp": job.created}
                    for k, v in job.plan.metrics.items()
                ],
                TrainingStartTime=job.created,
                TrainingEndTime=now(),
                TrainingTimeInSeconds=60,
                BillableTimeInSeconds=60,
            )
        return fields

    def _complete_training(self, job: Job) -> None:
        self._put(self._training_fields(job)["ModelArtifacts"]["S3ModelArtifacts"], b"model.tar.gz")

    def _tuning_fields(self, job: Job) -> dict[str, Any]:
        summaries = job.extra.get("summaries", [])
        done = sum(1 for s in summaries if s["TrainingJobStatus"] == "Completed")
        fields: dict[str, Any] = {
            "TrainingJobStatusCounters": {
                "Completed": done,
                "InProgress": 0,
                "RetryableError": 0,
                "NonRetryableError": 0,
                "Stopped": 0,
            },
            "ObjectiveStatusCounters": {"Succeeded": done, "Pending": 0, "Failed": 0},
        }
        if job.extra.get("best"):
            fields["BestTrainingJob"] = job.extra["best"]
        return fields

    def _complete_tuning(self, job: Job) -> None:
        """The trials: training jobs named ``<tuning job>-<nnn>-<hash>``, as the service names them."""
        config = job.request["HyperParameterTuningJobConfig"]
        objective = config["HyperParameterTuningJobObjective"]
        limits = config["ResourceLimits"]
        ranges = config.get("ParameterRanges") or {}
        trials = int(limits.get("MaxNumberOfTrainingJobs") or 2)
        base = float(job.plan.metrics.get(objective["MetricName"], 0.9))
        definition = job.request["TrainingJobDefinition"]
        summaries: list[dict[str, Any]] = []
        for index in range(1, trials + 1):
            tuned = _trial_hyperparameters(ranges, index)
            digest = hashlib.sha256(f"{job.name}{index}".encode()).hexdigest()[:8]
            name = f"{job.name}-{index:03d}-{digest}"
            value = base - 0.01 * (index - 1)
            request = {
                "AlgorithmSpecification": {
                    k: v
                    for k, v in definition["AlgorithmSpecification"].items()
                    if k in ("TrainingImage", "TrainingInputMode", "MetricDefinitions", "AlgorithmName")
                },
                "RoleArn": definition["RoleArn"],
                "OutputDataConfig": definition["OutputDataConfig"],
                "ResourceConfig": definition["ResourceConfig"],
                "StoppingCondition": definition["StoppingCondition"],
                "HyperParameters": {**(definition.get("StaticHyperParameters") or {}), **tuned},
                "TuningJobArn": job.arn,
            }
            trial = Job(
                JOB_APIS["TrainingJob"],
                name,
                request,
                Plan(polls=0, metrics={objective["MetricName"]: value}, log_lines=()),
            )
            trial.describes, trial.status, trial.ended = 1, "Completed", True
            self.jobs[("TrainingJob", name)] = trial
            self._complete_training(trial)
            summaries.append(
                {
                    "TrainingJobName": name,
                    "TrainingJobArn": trial.arn,
                    "TuningJobName": job.name,
                    "CreationTime": trial.created,
                    "TrainingStartTime": trial.created,
                    "TrainingEndTime": now(),
                    "TrainingJobStatus": "Completed",
                    "TunedHyperParameters": tuned,
                    "FinalHyperParameterTuningJobObjectiveMetric": {
                        "Type": objective["Type"],
                        "MetricName": objective["MetricName"],
                        "Value": value,
                    },
                    "ObjectiveStatus": "Succeeded",
                }
            )
        pick = max if objective["Type"] == "Maximize" else min
        best = pick(summaries, key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
        job.extra.update(summaries=summaries, best={k: v for k, v in best.items() if k != "TuningJobName"})

    def _labeling_fields(self, job: Job) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "LabelCounters": job.extra.get(
                "counters",
                {"TotalLabeled": 0, "HumanLabeled": 0, "MachineLabeled": 0, "FailedNonRetryableError": 0},
            ),
            "JobReferenceCode": hashlib.sha256(job.name.encode()).hexdigest()[:20],
        }
        if "output" in job.extra:
            fields["LabelingJobOutput"] = {"OutputDatasetS3Uri": job.extra["output"]}
        return fields

    def _complete_labeling(self, job: Job) -> None:
        """Every object labeled with the first category, written as Ground Truth writes its manifest."""
        request = job.request
        attribute = request["LabelAttributeName"]
        manifest = self._get(request["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"])
        categories = json.loads(self._get(request["LabelCategoryConfigS3Uri"]))
        label = categories["labels"][0]["label"]
        records = [json.loads(line) for line in manifest.decode().splitlines() if line.strip()]
        lines = []
        for record in records:
            record[attribute] = 0
            record[f"{attribute}-metadata"] = {
                "class-name": label,
                "confidence": 0.95,
                "type": "groundtruth/image-classification",
                "job-name": f"labeling-job/{job.name}",
                "human-annotated": "yes",
                "creation-date": now().strftime("%Y-%m-%dT%H:%M:%S.%f"),
            }
            lines.append(json.dumps(record))
        output = f"{request['OutputConfig']['S3OutputPath'].rstrip('/')}/{job.name}/manifests/output/output.manifest"
        self._put(output, ("\n".join(lines) + "\n").encode())
        machine = len(records) // 2 if request.get("LabelingJobAlgorithmsConfig") else 0
        job.extra["output"] = output
        job.extra["counters"] = {
            "TotalLabeled": len(records),
            "HumanLabeled": len(records) - machine,
            "MachineLabeled": machine,
            "FailedNonRetryableError": 0,
            "Unlabeled": 0,
        }

    def _compilation_fields(self, job: Job) -> dict[str, Any]:
        output = job.request["OutputConfig"]
        model = posixpath.basename(job.request["InputConfig"]["S3Uri"]).removesuffix(".tar.gz")
        target = output.get("TargetDevice") or "_".join(output.get("TargetPlatform", {}).values())
        fields: dict[str, Any] = {
            "ModelArtifacts": {
                "S3ModelArtifacts": f"{output['S3OutputLocation'].rstrip('/')}/{model}-{target}.tar.gz"
            },
            # A required member: the service sends it empty until something fails.
            "FailureReason": job.plan.failure_reason if job.status == "FAILED" else "",
        }
        if job.status == "COMPLETED":
            fields.update(CompilationStartTime=job.created, CompilationEndTime=now())
        return fields

    def _complete_compilation(self, job: Job) -> None:
        self._put(self._compilation_fields(job)["ModelArtifacts"]["S3ModelArtifacts"], b"compiled")

    def _transform_fields(self, job: Job) -> dict[str, Any]:
        if job.status != "Completed":
            return {}
        return {"TransformStartTime": job.created, "TransformEndTime": now()}

    def _complete_transform(self, job: Job) -> None:
        """``<output>/<key relative to the input prefix>.out``, one prediction per input line."""
        source = job.request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        output = job.request["TransformOutput"]["S3OutputPath"].rstrip("/")
        bucket, prefix = _split(source)
        listed = self.service.s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        for item in listed:
            key = item["Key"]
            relative = posixpath.basename(key) if key == prefix else key[len(prefix) :].lstrip("/")
            body = self.service.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
            lines = [job.plan.predict(line) for line in body.splitlines() if line.strip()]
            self._put(f"{output}/{relative}.out", ("\n".join(lines) + "\n").encode())

    def _processing_fields(self, job: Job) -> dict[str, Any]:
        if job.status != "Completed":
            return {}
        return {"ProcessingStartTime": job.created, "ProcessingEndTime": now()}

    def _complete_processing(self, job: Job) -> None:
        """Each output's directory, uploaded at the end (EndOfJob): one file, naming the inputs it read."""
        inputs = sorted(item["InputName"] for item in job.request.get("ProcessingInputs") or [])
        for item in (job.request.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
            self._put(f"{item['S3Output']['S3Uri'].rstrip('/')}/part-0", ",".join(inputs).encode())


def tuning_arn(name: str) -> str:
    return arn("hyper-parameter-tuning-job", name)


def _trial_hyperparameters(ranges: dict[str, Any], index: int) -> dict[str, str]:
    """Trial ``index``'s values: a different point of every range (strings, as the service sends them)."""
    tuned: dict[str, str] = {}
    for spec in ranges.get("CategoricalParameterRanges") or []:
        tuned[spec["Name"]] = spec["Values"][(index - 1) % len(spec["Values"])]
    for spec in ranges.get("IntegerParameterRanges") or []:
        first, last = int(spec["MinValue"]), int(spec["MaxValue"])
        tuned[spec["Name"]] = str(first + (index - 1) % (last - first + 1))
    for spec in ranges.get("ContinuousParameterRanges") or []:
        low, high = float(spec["MinValue"]), float(spec["MaxValue"])
        tuned[spec["Name"]] = repr(low + (high - low) * ((index - 1) % 5) / 4)
    return tuned
