"""What the page shows of one pipeline, gathered from the runs' records and the connection's services.

The runs, their task states and returned values (XCom) come from Airflow (:class:`RunRecords`); every
job's status, timing and resources come from SageMaker itself (``Describe*``), the tuning trials from
``ListTrainingJobsForHyperParameterTuningJob``, the registry from ``ListModelPackages`` and
``DescribeModelPackage``, the drift report from the JSON the drift check wrote to S3. No Airflow
import: the records and the clients are handed in, so tests give it fakes or the local backend.

Each section catches its own failure and reports it in one line, so one unreachable service leaves
the rest of the page readable.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_dl_provider.drift.severity import ranked
from airflow_dl_provider.jobs.engine import poll_once
from airflow_dl_provider.jobs.kinds import JOB_KINDS, JobKind
from airflow_dl_provider.presets.instances import PRICE_REGION, list_price

# The pipelines' DAGs (pipelines.factory and pipelines.monitoring name them so).
DAG_PREFIXES = {"pipeline": "dl_pipeline_", "drift": "dl_drift_monitor_", "retrain": "dl_retrain_"}
RUNS_PER_DAG = 10
REGISTRY_VERSIONS = 20


class RunRecords(Protocol):
    """What Airflow knows of the pipelines' runs (``records.AirflowRunRecords`` reads its database)."""

    def dag_ids(self) -> list[str]: ...

    def runs(self, dag_id: str, limit: int) -> list[dict[str, Any]]:
        """Newest first: ``run_id``, ``state``, ``start``, ``end`` (datetimes or None)."""
        ...

    def tasks(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        """Per task id: ``state``, ``start``, ``end``, ``result`` (its returned value) and ``xcom``
        (every other key it pushed)."""
        ...


def pipelines(dag_ids: list[str]) -> dict[str, dict[str, str]]:
    """Pipeline name -> {"pipeline" | "drift" | "retrain": dag_id}, from the DAG ids."""
    found: dict[str, dict[str, str]] = {}
    for dag_id in sorted(dag_ids):
        for role, prefix in DAG_PREFIXES.items():
            if dag_id.startswith(prefix) and len(dag_id) > len(prefix):
                found.setdefault(dag_id.removeprefix(prefix), {})[role] = dag_id
                break
    return found


def _kebab(noun: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", noun).lower()


_KIND_OF_ARN_NOUN = {_kebab(kind.noun): kind for kind in JOB_KINDS.values()}


def job_kind_of(arn: str) -> JobKind | None:
    """The job kind of a SageMaker job ARN (``arn:aws:sagemaker:<region>:<account>:training-job/<name>``)."""
    resource = arn.split(":", 5)[-1] if arn.count(":") >= 5 else ""
    return _KIND_OF_ARN_NOUN.get(resource.partition("/")[0])


def _region_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 else ""


def _when(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, str) and value:
        try:
            return _when(dt.datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def _seconds(start: Any, end: Any) -> float | None:
    began, ended = _when(start), _when(end)
    return (ended - began).total_seconds() if began and ended else None


def job_timing(kind: JobKind, description: Mapping[str, Any]) -> tuple[Any, Any]:
    """When the job started and ended, from its own fields (``TrainingStartTime``, ...), else creation
    and, once it ended, its last change."""
    short = kind.noun.removesuffix("Job")
    start = description.get(f"{short}StartTime") or description.get("CreationTime")
    end = description.get(f"{short}EndTime")
    # Ended is what the one Outcome decision says, the same the operators, trigger and sensor act on.
    if end is None and poll_once(kind, description).done:
        end = description.get("LastModifiedTime")
    return start, end


def _resources(kind: JobKind, description: Mapping[str, Any]) -> tuple[str, int] | None:
    config = {
        "training": description.get("ResourceConfig"),
        "transform": description.get("TransformResources"),
        "processing": (description.get("ProcessingResources") or {}).get("ClusterConfig"),
    }.get(kind.key)
    if not config or not config.get("InstanceType"):
        return None
    return str(config["InstanceType"]), int(config.get("InstanceCount") or 1)


@dataclass(frozen=True)
class Cost:
    """An estimate: list price x instances x the time billed. ``usd`` is None where there is none."""

    usd: float | None
    basis: str


def instance_cost(instance_type: str, count: int, seconds: float | None, region: str) -> Cost:
    price = list_price(instance_type, region)
    if price is None:
        where = "" if region == PRICE_REGION else f" in {region}"
        return Cost(None, f"no list price for {instance_type}{where}")
    if seconds is None:
        return Cost(None, f"{count} x {instance_type}: not finished")
    usd = price * count * seconds / 3600.0
    return Cost(usd, f"{count} x {instance_type} x {seconds:.0f} s at ${price:,.3f}/h ({PRICE_REGION} list)")


def job_cost(kind: JobKind, description: Mapping[str, Any], region: str) -> Cost:
    """The job's estimated cost on SageMaker from its description (tuning: see :func:`trials_cost`)."""
    resources = _resources(kind, description)
    if resources is None:
        why = {
            "labeling": "priced per labeled object, not per instance-hour",
            "compilation": "not priced per instance-hour",
            "tuning": "the sum of its trials",
        }.get(kind.key, "no instance in the description")
        return Cost(None, why)
    instance_type, count = resources
    billed = description.get("BillableTimeInSeconds") if kind.key == "training" else None
    seconds = float(billed) if billed else _seconds(*job_timing(kind, description))
    return instance_cost(instance_type, count, seconds, region)


@dataclass
class Job:
    task_id: str
    kind: str
    name: str
    status: str
    start: dt.datetime | None
    seconds: float | None
    cost: Cost
    failure: str = ""


@dataclass
class Run:
    dag_id: str
    run_id: str
    state: str
    start: dt.datetime | None
    seconds: float | None
    jobs: list[Job] = field(default_factory=list)
    tasks: dict[str, str] = field(default_factory=dict)

    @property
    def cost_usd(self) -> float | None:
        costs = [j.cost.usd for j in self.jobs if j.cost.usd is not None]
        return sum(costs) if costs else None


@dataclass
class Trial:
    rank: int
    name: str
    status: str
    objective: float | None
    hyperparameters: dict[str, str]
    seconds: float | None


@dataclass
class Leaderboard:
    tuning_job: str
    objective: str
    direction: str
    trials: list[Trial]


@dataclass
class DriftFeature:
    name: str
    status: str
    severity: float
    reasons: list[str]
    scores: dict[str, float | None]


@dataclass
class DriftReport:
    run_id: str
    uri: str
    drifted: bool
    rows: int
    model_version: str | None
    features: list[DriftFeature]
    html_uri: str | None = None


@dataclass
class ModelVersion:
    version: int
    arn: str
    status: str
    approval: str
    created: dt.datetime | None
    description: str
    approval_description: str
    metrics: dict[str, str]
    champion: bool = False


@dataclass
class Registry:
    group: str
    versions: list[ModelVersion]
    decisions: list[dict[str, Any]]

    @property
    def champion(self) -> ModelVersion | None:
        return next((v for v in self.versions if v.champion), None)


@dataclass
class Overview:
    pipeline: str
    dags: dict[str, str]
    runs: list[Run] = field(default_factory=list)
    leaderboard: Leaderboard | None = None
    drift: DriftReport | None = None
    registry: Registry | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def cost_usd(self) -> float | None:
        costs = [r.cost_usd for r in self.runs if r.cost_usd is not None]
        return sum(costs) if costs else None


def _is_job_result(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value.get("job_name")) and bool(value.get("job_arn"))


def _error(err: Exception) -> str:
    code = getattr(err, "response", {}).get("Error", {}).get("Code") if hasattr(err, "response") else None
    return f"{code or type(err).__name__}: {err}".splitlines()[0]


class OverviewBuilder:
    """Builds one pipeline's :class:`Overview` from the records and the SageMaker and S3 clients.

    :param sagemaker: a SageMaker client (boto3's, or the local backend's drop-in one).
    :param s3: an S3 client on the same connection.
    """

    def __init__(
        self, records: RunRecords, sagemaker: Any, s3: Any, runs_per_dag: int = RUNS_PER_DAG
    ) -> None:
        self.records = records
        self.sagemaker = sagemaker
        self.s3 = s3
        self.runs_per_dag = runs_per_dag
        self._tasks: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}

    def build(self, pipeline: str, dags: dict[str, str]) -> Overview:
        overview = Overview(pipeline, dags)
        for section, fill in (
            ("runs", self._fill_runs),
            ("leaderboard", self._fill_leaderboard),
            ("drift", self._fill_drift),
            ("registry", self._fill_registry),
        ):
            try:
                fill(overview)
            except Exception as err:  # one failing service must not hide the other sections
                overview.errors[section] = _error(err)
        return overview

    def tasks(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        key = (dag_id, run_id)
        if key not in self._tasks:
            self._tasks[key] = self.records.tasks(dag_id, run_id)
        return self._tasks[key]

    def _runs_of(self, overview: Overview) -> list[tuple[str, dict[str, Any]]]:
        found = [
            (dag_id, run)
            for role in DAG_PREFIXES
            if (dag_id := overview.dags.get(role))
            for run in self.records.runs(dag_id, self.runs_per_dag)
        ]
        epoch = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
        return sorted(found, key=lambda item: _when(item[1].get("start")) or epoch, reverse=True)

    # -- runs and jobs ---------------------------------------------------------------------------------

    def _fill_runs(self, overview: Overview) -> None:
        for dag_id, record in self._runs_of(overview):
            tasks = self.tasks(dag_id, record["run_id"])
            run = Run(
                dag_id=dag_id,
                run_id=record["run_id"],
                state=str(record.get("state") or ""),
                start=_when(record.get("start")),
                seconds=_seconds(record.get("start"), record.get("end")),
                tasks={task_id: str(t.get("state") or "") for task_id, t in tasks.items()},
            )
            for task_id, task in sorted(
                tasks.items(),
                key=lambda t: _when(t[1].get("start")) or dt.datetime.max.replace(tzinfo=dt.timezone.utc),
            ):
                if _is_job_result(task.get("result")):
                    run.jobs.append(self._job(task_id, task["result"]))
            overview.runs.append(run)

    def _job(self, task_id: str, result: Mapping[str, Any]) -> Job:
        name, arn = str(result["job_name"]), str(result["job_arn"])
        kind = job_kind_of(arn)
        if kind is None:
            return Job(
                task_id, "?", name, str(result.get("status", "")), None, None, Cost(None, "unknown kind")
            )
        try:
            description = getattr(self.sagemaker, kind.describe_method)(**{kind.name_field: name})
        except Exception as err:
            return Job(task_id, kind.key, name, "unknown", None, None, Cost(None, _error(err)))
        outcome = poll_once(kind, description, name=name)
        start, end = job_timing(kind, description)
        if kind.key == "tuning":
            cost = trials_cost(self._trials(name, description, sort=False), description, _region_of(arn))
        else:
            cost = job_cost(kind, description, _region_of(arn))
        return Job(
            task_id=task_id,
            kind=kind.key,
            name=name,
            status=outcome.status,
            start=_when(start),
            seconds=_seconds(start, end),
            cost=cost,
            failure=outcome.reason,
        )

    # -- tuning ----------------------------------------------------------------------------------------

    def _trials(self, name: str, description: Mapping[str, Any], sort: bool = True) -> list[dict[str, Any]]:
        """Every trial of the tuning job, best first when ``sort`` (the API's own ordering)."""
        objective = (description.get("HyperParameterTuningJobConfig") or {}).get(
            "HyperParameterTuningJobObjective"
        ) or {}
        params: dict[str, Any] = {"HyperParameterTuningJobName": name, "MaxResults": 100}
        if sort:
            params["SortBy"] = "FinalObjectiveMetricValue"
            params["SortOrder"] = "Descending" if objective.get("Type") == "Maximize" else "Ascending"
        trials: list[dict[str, Any]] = []
        while True:
            page = self.sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(**params)
            trials += page.get("TrainingJobSummaries", [])
            if not page.get("NextToken"):
                return trials
            params["NextToken"] = page["NextToken"]

    def _fill_leaderboard(self, overview: Overview) -> None:
        for dag_id, record in self._runs_of(overview):
            for task in self.tasks(dag_id, record["run_id"]).values():
                result = task.get("result")
                if not _is_job_result(result):
                    continue
                assert isinstance(result, Mapping)
                if job_kind_of(str(result["job_arn"])) is JOB_KINDS["tuning"]:
                    overview.leaderboard = self._leaderboard(str(result["job_name"]))
                    return

    def _leaderboard(self, name: str) -> Leaderboard:
        description = self.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        objective = (description.get("HyperParameterTuningJobConfig") or {}).get(
            "HyperParameterTuningJobObjective"
        ) or {}
        trials = [
            Trial(
                rank=i + 1,
                name=t["TrainingJobName"],
                status=str(t.get("TrainingJobStatus", "")),
                objective=(t.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value"),
                hyperparameters={k: str(v) for k, v in (t.get("TunedHyperParameters") or {}).items()},
                seconds=_seconds(t.get("TrainingStartTime"), t.get("TrainingEndTime")),
            )
            for i, t in enumerate(self._trials(name, description))
        ]
        return Leaderboard(name, str(objective.get("MetricName", "")), str(objective.get("Type", "")), trials)

    # -- drift -----------------------------------------------------------------------------------------

    def _fill_drift(self, overview: Overview) -> None:
        dag_id = overview.dags.get("drift")
        if not dag_id:
            return
        for record in self.records.runs(dag_id, self.runs_per_dag):
            for task in self.tasks(dag_id, record["run_id"]).values():
                summary = task.get("result") if isinstance(task.get("result"), Mapping) else None
                summary = summary or (task.get("xcom") or {}).get("drift_summary")
                if isinstance(summary, Mapping) and summary.get("report_json"):
                    overview.drift = self._drift(record["run_id"], summary)
                    return

    def _drift(self, run_id: str, summary: Mapping[str, Any]) -> DriftReport:
        uri = str(summary["report_json"])
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        report = json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        return DriftReport(
            run_id=run_id,
            uri=uri,
            drifted=bool(report.get("drifted")),
            rows=int(report.get("rows") or 0),
            model_version=report.get("model_version"),
            features=ranked_features(report),
            html_uri=summary.get("report_html"),
        )

    # -- registry --------------------------------------------------------------------------------------

    def _fill_registry(self, overview: Overview) -> None:
        group, decisions = None, []
        for dag_id, record in self._runs_of(overview):
            for task in self.tasks(dag_id, record["run_id"]).values():
                result = task.get("result")
                if not isinstance(result, Mapping):
                    continue
                if result.get("decision") and result.get("reason"):
                    decisions.append({"run_id": record["run_id"], **dict(result)})
                arn = str(result.get("model_package_arn") or "")
                if group is None and ":model-package/" in arn:
                    group = arn.split(":model-package/", 1)[1].rsplit("/", 1)[0]
        if group is None:
            return
        overview.registry = Registry(group, self._versions(group), decisions)

    def _versions(self, group: str) -> list[ModelVersion]:
        summaries = self.sagemaker.list_model_packages(
            ModelPackageGroupName=group,
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=REGISTRY_VERSIONS,
        ).get("ModelPackageSummaryList", [])
        versions = []
        for summary in summaries:
            described = self.sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            versions.append(
                ModelVersion(
                    version=int(described.get("ModelPackageVersion") or 0),
                    arn=summary["ModelPackageArn"],
                    status=str(described.get("ModelPackageStatus", "")),
                    approval=str(described.get("ModelApprovalStatus", "")),
                    created=_when(described.get("CreationTime")),
                    description=str(described.get("ModelPackageDescription") or ""),
                    approval_description=str(described.get("ApprovalDescription") or ""),
                    metrics={
                        k: str(v) for k, v in (described.get("CustomerMetadataProperties") or {}).items()
                    },
                )
            )
        return mark_champion(versions)


def mark_champion(versions: list[ModelVersion]) -> list[ModelVersion]:
    """The champion is the newest Approved version, as ChampionLookupOperator and deployments find it."""
    approved = [v for v in versions if v.approval == "Approved"]
    if approved:
        max(approved, key=lambda v: v.version).champion = True
    return versions


def ranked_features(report: Mapping[str, Any]) -> list[DriftFeature]:
    """Drifted features first, each group by severity (highest first), ties in natural name order."""
    features = report.get("features") or {}
    return [
        DriftFeature(
            name=name,
            status=str(
                features[name].get("status") or ("drifted" if features[name].get("drifted") else "stable")
            ),
            severity=value,
            reasons=list(features[name].get("reasons") or []),
            scores=dict(features[name].get("scores") or {}),
        )
        for name, value in ranked(features, report.get("thresholds") or {})
    ]


def trials_cost(trials: Sequence[Mapping[str, Any]], description: Mapping[str, Any], region: str) -> Cost:
    """A tuning job's cost: every trial's instances for the time it ran."""
    resources = (description.get("TrainingJobDefinition") or {}).get("ResourceConfig") or {}
    instance_type, count = resources.get("InstanceType"), int(resources.get("InstanceCount") or 1)
    if not instance_type:
        return Cost(None, "no instance in the training job definition")
    total, priced = 0.0, 0
    for trial in trials:
        seconds = _seconds(trial.get("TrainingStartTime"), trial.get("TrainingEndTime"))
        cost = instance_cost(str(instance_type), count, seconds, region)
        if cost.usd is None:
            if cost.basis.startswith("no list price"):
                return cost
            continue
        total, priced = total + cost.usd, priced + 1
    return Cost(total, f"{priced} finished trial(s) x {count} x {instance_type} ({PRICE_REGION} list)")
