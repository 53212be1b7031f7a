"""The table of SageMaker job and resource kinds.

Labeling, training, tuning, compilation, transform and processing jobs differ only in a row of this
table: API names, where the name, status and failure reason live, which states are terminal, how long
the job may run and the console page. Endpoints and model packages are rows too (:data:`RESOURCE_KINDS`):
they have no Stop call, a Delete that the service finishes later, and (endpoints) an Update. The engine
reads the row; nothing else about a kind is written in code. What the service itself does (not-found
answers, log stream names, why it stopped a job, which calls it refuses meanwhile) is in
:mod:`airflow_dl_provider.service_behaviour`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_dl_provider import service_behaviour


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _dig(data: Mapping[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping) or key not in data:
            return None
        data = data[key]
    return data


def _training_max_seconds(request: Mapping[str, Any]) -> int | None:
    cond = request.get("StoppingCondition") or {}
    return cond.get("MaxWaitTimeInSeconds") or cond.get("MaxRuntimeInSeconds")


def _tuning_max_seconds(request: Mapping[str, Any]) -> int | None:
    limits = _dig(request, "HyperParameterTuningJobConfig", "ResourceLimits") or {}
    if limits.get("MaxRuntimeInSeconds"):
        return int(limits["MaxRuntimeInSeconds"])
    per_job = _training_max_seconds(request.get("TrainingJobDefinition") or {})
    jobs = limits.get("MaxNumberOfTrainingJobs")
    parallel = limits.get("MaxParallelTrainingJobs") or 1
    if per_job and jobs:
        return int(per_job * -(-jobs // parallel))
    return None


def _metrics(description: Mapping[str, Any]) -> dict[str, float]:
    return {m["MetricName"]: float(m["Value"]) for m in description.get("FinalMetricDataList") or []}


def _training_result(d: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "model_artifacts": _dig(d, "ModelArtifacts", "S3ModelArtifacts"),
        "metrics": _metrics(d),
        "training_seconds": d.get("TrainingTimeInSeconds"),
        "billable_seconds": d.get("BillableTimeInSeconds"),
    }


def _tuning_result(d: Mapping[str, Any]) -> dict[str, Any]:
    best = d.get("BestTrainingJob") or {}
    objective = best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    return {
        "best_training_job": best.get("TrainingJobName"),
        "best_hyperparameters": best.get("TunedHyperParameters") or {},
        "objective": objective.get("MetricName"),
        "objective_value": objective.get("Value"),
        "training_job_counts": d.get("TrainingJobStatusCounters") or {},
    }


def _labeling_result(d: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "output_manifest": _dig(d, "LabelingJobOutput", "OutputDatasetS3Uri"),
        "label_counters": d.get("LabelCounters") or {},
    }


def _compilation_result(d: Mapping[str, Any]) -> dict[str, Any]:
    return {"compiled_artifacts": _dig(d, "ModelArtifacts", "S3ModelArtifacts")}


def _transform_result(d: Mapping[str, Any]) -> dict[str, Any]:
    return {"output_path": _dig(d, "TransformOutput", "S3OutputPath")}


def _processing_result(d: Mapping[str, Any]) -> dict[str, Any]:
    outputs = _dig(d, "ProcessingOutputConfig", "Outputs") or []
    return {"outputs": {o["OutputName"]: _dig(o, "S3Output", "S3Uri") for o in outputs}}


def _training_hosts(d: Mapping[str, Any]) -> int | None:
    config = d.get("ResourceConfig") or {}
    groups = config.get("InstanceGroups") or []
    if groups:  # a heterogeneous cluster: each group's hosts write their own streams
        return sum(int(g.get("InstanceCount") or 0) for g in groups) or None
    return config.get("InstanceCount")


def _failure_reason(d: Mapping[str, Any]) -> str:
    return str(d.get("FailureReason") or "")


def _model_package_reason(d: Mapping[str, Any]) -> str:
    # A package fails in its validation or image scan steps; each step says why in its own item.
    details = d.get("ModelPackageStatusDetails") or {}
    steps = [*(details.get("ValidationStatuses") or []), *(details.get("ImageScanStatuses") or [])]
    return "; ".join(f"{s.get('Name')}: {s['FailureReason']}" for s in steps if s.get("FailureReason"))


@dataclass(frozen=True)
class JobKind:
    """One row: everything the engine needs to know about a SageMaker job kind.

    :param key: short name used in trigger payloads and the local backend (``training``).
    :param noun: the API's noun; ``Create<noun>``, ``Describe<noun>``, ``Stop<noun>``.
    :param status_field: where Describe puts the status; the name and ARN fields follow the noun.
    :param running: non-terminal states; a job in one of these is reattached to and awaited.
    :param succeeded: the states that mean done and usable.
    :param failed: the states that mean the job cannot be used (Failed, Stopped).
    :param max_name_length: the API's limit on the job name.
    :param console_fragment: the SageMaker console page after ``#/``, with ``{job_name}``.
    :param max_seconds: how long the request lets the job run, if it says.
    :param result: the JSON-safe fields of a description that go to XCom.
    :param reason: why a failed one failed, from its description (``FailureReason``).
    :param resource: a resource, not a job: no ``Stop<noun>``; ``Delete<noun>`` ends it, and the
        service finishes the delete later, showing ``deleting`` meanwhile.
    :param deleting: the status a resource shows while it is being deleted (``ASYNC_DELETE``).
    :param versioned_in: the request field naming the group a versioned resource is created in
        (``ModelPackageGroupName``): it has no name of its own, the service numbers it.
    :param only_deletable: states in which a resource takes no call but its delete; one found in
        such a state is deleted and created again under its name.
    :param hosts: how many hosts the job runs on, from its description: each writes its own log
        stream, so streams are listed until that many are known (None: listed once a host started).
    :param counters_field: a Describe member counting the job's progress (``LabelCounters``), logged
        when it changes.
    :param trials_method: the client method listing a job's child jobs (a tuning job's trials), each
        logged once as it ends.
    """

    key: str
    noun: str
    status_field: str
    running: frozenset[str]
    succeeded: frozenset[str]
    failed: frozenset[str]
    max_name_length: int = 63
    console_fragment: str = ""
    max_seconds: Callable[[Mapping[str, Any]], int | None] = field(default=lambda _request: None)
    result: Callable[[Mapping[str, Any]], dict[str, Any]] = field(default=lambda _d: {})
    reason: Callable[[Mapping[str, Any]], str] = field(default=_failure_reason)
    resource: bool = False
    deleting: str | None = None
    versioned_in: str | None = None
    only_deletable: frozenset[str] = frozenset()
    hosts: Callable[[Mapping[str, Any]], int | None] = field(default=lambda _d: None)
    counters_field: str | None = None
    trials_method: str | None = None

    @property
    def name_field(self) -> str:
        return f"{self.noun}Name"

    @property
    def arn_field(self) -> str:
        return f"{self.noun}Arn"

    @property
    def create_operation(self) -> str:
        return f"Create{self.noun}"

    @property
    def create_method(self) -> str:
        return _snake(self.create_operation)

    @property
    def describe_operation(self) -> str:
        return f"Describe{self.noun}"

    @property
    def describe_method(self) -> str:
        return _snake(self.describe_operation)

    @property
    def stop_operation(self) -> str:
        return f"Stop{self.noun}"

    @property
    def stop_method(self) -> str:
        return _snake(self.stop_operation)

    @property
    def delete_operation(self) -> str:
        return f"Delete{self.noun}"

    @property
    def delete_method(self) -> str:
        return _snake(self.delete_operation)

    @property
    def update_operation(self) -> str:
        return f"Update{self.noun}"

    @property
    def update_method(self) -> str:
        return _snake(self.update_operation)

    @property
    def list_method(self) -> str:
        """``list_<noun>s``: how a versioned resource's versions are found (``ListModelPackages``)."""
        return f"list_{_snake(self.noun)}s"

    @property
    def summaries_field(self) -> str:
        return f"{self.noun}SummaryList"

    @property
    def log_group(self) -> str | None:
        """The CloudWatch Logs group the job writes to (service_behaviour.LOG_STREAMS), if any."""
        return service_behaviour.log_group(self.key)

    def host_started(self, description: Mapping[str, Any]) -> bool:
        """True once a host runs the job's container, so its log streams can exist; an ended job too."""
        if str(description.get(self.status_field)) in self.terminal:
            return True
        return service_behaviour.host_started(self.key, dict(description))

    @property
    def terminal(self) -> frozenset[str]:
        return self.succeeded | self.failed

    def failure_reason(self, description: Mapping[str, Any]) -> str:
        """FailureReason, and why the service stopped the job when it did (``MaxRuntimeExceeded: ...``)."""
        reason = self.reason(description)
        stopped_by_service = service_behaviour.stop_reason(dict(description))
        return "; ".join(part for part in (stopped_by_service, reason) if part)

    def console_path(self, name: str, description: Mapping[str, Any] | None = None) -> str:
        """The console page after ``#/``: ``{job_name}`` is ``name``, other fields come from ``description``."""
        fields = {k: v for k, v in (description or {}).items() if isinstance(v, str)}
        return self.console_fragment.format_map({**fields, "job_name": name})


_SUCCESS = frozenset({"Completed"})
_FAILED = frozenset({"Failed", "Stopped"})
_RUNNING = frozenset({"InProgress", "Stopping"})

JOB_KINDS: dict[str, JobKind] = {
    kind.key: kind
    for kind in (
        JobKind(
            key="training",
            noun="TrainingJob",
            status_field="TrainingJobStatus",
            running=_RUNNING,
            succeeded=_SUCCESS,
            # DeleteTrainingJob: a job being deleted cannot be used; a retry starts the next attempt.
            failed=_FAILED | {"Deleting"},
            console_fragment="jobs/{job_name}",
            max_seconds=_training_max_seconds,
            result=_training_result,
            hosts=_training_hosts,
        ),
        JobKind(
            key="tuning",
            noun="HyperParameterTuningJob",
            status_field="HyperParameterTuningJobStatus",
            running=_RUNNING | {"Deleting"},
            succeeded=_SUCCESS,
            failed=_FAILED | {"DeleteFailed"},
            max_name_length=32,
            console_fragment="hyper-tuning-jobs/{job_name}",
            max_seconds=_tuning_max_seconds,
            result=_tuning_result,
            counters_field="TrainingJobStatusCounters",
            trials_method="list_training_jobs_for_hyper_parameter_tuning_job",
        ),
        JobKind(
            key="labeling",
            noun="LabelingJob",
            status_field="LabelingJobStatus",
            running=_RUNNING | {"Initializing"},
            succeeded=_SUCCESS,
            failed=_FAILED,
            console_fragment="labeling-jobs/details/{job_name}",
            max_seconds=lambda r: _dig(r, "StoppingConditions", "MaxRuntimeInSeconds"),
            result=_labeling_result,
            counters_field="LabelCounters",
        ),
        JobKind(
            key="compilation",
            noun="CompilationJob",
            status_field="CompilationJobStatus",
            running=frozenset({"INPROGRESS", "STARTING", "STOPPING"}),
            succeeded=frozenset({"COMPLETED"}),
            failed=frozenset({"FAILED", "STOPPED"}),
            console_fragment="compilation-jobs/{job_name}",
            max_seconds=lambda r: _dig(r, "StoppingCondition", "MaxRuntimeInSeconds"),
            result=_compilation_result,
        ),
        JobKind(
            key="transform",
            noun="TransformJob",
            status_field="TransformJobStatus",
            running=_RUNNING,
            succeeded=_SUCCESS,
            failed=_FAILED,
            console_fragment="transform-jobs/{job_name}",
            result=_transform_result,
            hosts=lambda d: _dig(d, "TransformResources", "InstanceCount"),
        ),
        JobKind(
            key="processing",
            noun="ProcessingJob",
            status_field="ProcessingJobStatus",
            running=_RUNNING,
            succeeded=_SUCCESS,
            failed=_FAILED,
            console_fragment="processing-jobs/{job_name}",
            max_seconds=lambda r: _dig(r, "StoppingCondition", "MaxRuntimeInSeconds"),
            result=_processing_result,
            hosts=lambda d: _dig(d, "ProcessingResources", "ClusterConfig", "InstanceCount"),
        ),
    )
}


_ENDPOINT_CHANGING = service_behaviour.IN_PROGRESS["Endpoint"]

RESOURCE_KINDS: dict[str, JobKind] = {
    kind.key: kind
    for kind in (
        # Live until deleted: Creating (or an update) ends InService or Failed; OutOfService and a
        # rollback that failed cannot serve either. Being deleted is its own state (ASYNC_DELETE).
        JobKind(
            key="endpoint",
            noun="Endpoint",
            status_field="EndpointStatus",
            running=_ENDPOINT_CHANGING.statuses,
            succeeded=frozenset({"InService"}),
            failed=frozenset({"Failed", "OutOfService", "UpdateRollbackFailed"}),
            console_fragment="endpoints/{job_name}",
            resource=True,
            # A Failed endpoint takes DeleteEndpoint only; OutOfService and UpdateRollbackFailed ones
            # may still serve, so they are updated, never deleted, by a deploy.
            only_deletable=frozenset({"Failed"}),
            deleting=service_behaviour.ASYNC_DELETE["Endpoint"].deleting,
        ),
        # A version in a model package group: registered asynchronously (Pending, InProgress), then
        # Completed, or Failed in a validation or image scan step.
        JobKind(
            key="model_package",
            noun="ModelPackage",
            status_field="ModelPackageStatus",
            running=frozenset({"Pending", "InProgress"}),
            succeeded=frozenset({"Completed"}),
            failed=frozenset({"Failed"}),
            console_fragment="model-registry/{ModelPackageGroupName}",
            reason=_model_package_reason,
            resource=True,
            deleting=service_behaviour.ASYNC_DELETE["ModelPackage"].deleting,
            versioned_in="ModelPackageGroupName",
        ),
    )
}

KINDS: dict[str, JobKind] = {**JOB_KINDS, **RESOURCE_KINDS}


def job_kind(key: str) -> JobKind:
    """Return the row for ``key`` (a job or a resource kind); an unknown key names the known ones."""
    try:
        return KINDS[key]
    except KeyError:
        raise ValueError(f"kind {key!r} is not one of {', '.join(KINDS)}") from None
