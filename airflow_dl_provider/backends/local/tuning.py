"""Hyperparameter tuning on this machine: each trial is a local training job, as SageMaker runs them.

The runner of a tuning job proposes hyperparameters (:mod:`.search`), starts each trial through the
local client of its services, on the tuning job's own home and S3 server (``CreateTrainingJob`` with the ``TrainingJobDefinition``, its static
hyperparameters and the trial's tuned ones), ``MaxParallelTrainingJobs`` at a time, reads each trial's
objective from ``FinalMetricDataList``, and keeps ``BestTrainingJob``, the status counters and the
trial list that ``ListTrainingJobsForHyperParameterTuningJob`` returns up to date.

Said plainly in the job log (``runner.log``) and the docs: the Bayesian optimiser is ours (a Gaussian
process), not SageMaker's; Hyperband runs as Random with full-budget trials; ``Auto`` early stopping
does not stop trials early; convergence is detected for Bayesian only.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from airflow_dl_provider.backends.local import search, warm_pool
from airflow_dl_provider.backends.local.state import now_iso
from airflow_dl_provider.backends.local.work import JobFailure

if TYPE_CHECKING:
    from airflow_dl_provider.backends.local.state import LocalJob
    from airflow_dl_provider.backends.local.work import Services

ARN_NOUN = "hyper-parameter-tuning-job"
STATUS_NAMES: dict[str, str] = {}  # Describe spells the statuses as the worker records them
_POLL_SECONDS = 0.3
_STOP_WAIT_SECONDS = 60.0
# Expected improvement (in standard deviations of the objective) below which Bayesian has converged.
_CONVERGED_EI = 1e-3
# Members of a training job definition that CreateTrainingJob does not take.
_DEFINITION_ONLY = frozenset(
    {"DefinitionName", "TuningObjective", "HyperParameterRanges", "StaticHyperParameters"}
)
_TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
# How long a trial's hosts wait for the next trial; the tuning job terminates its pools when it ends.
TRIAL_KEEP_ALIVE_SECONDS = 120

log = logging.getLogger("airflow_dl_provider.local.tuning")


def initial_state(request: dict[str, Any], name: str) -> dict[str, Any]:
    # Describe always carries the counters (the service model marks them required), from the first call on.
    return {
        "TrainingJobStatusCounters": _training_counters([]),
        "ObjectiveStatusCounters": _objective_counters([]),
        "_trials": [],
    }


def _training_counters(summaries: list[dict[str, Any]]) -> dict[str, int]:
    statuses = [s["TrainingJobStatus"] for s in summaries]
    return {
        "Completed": statuses.count("Completed"),
        "InProgress": statuses.count("InProgress") + statuses.count("Stopping"),
        "RetryableError": 0,
        "NonRetryableError": statuses.count("Failed"),
        "Stopped": statuses.count("Stopped"),
    }


def _objective_counters(summaries: list[dict[str, Any]]) -> dict[str, int]:
    states = [s.get("ObjectiveStatus") for s in summaries]
    return {
        "Succeeded": states.count("Succeeded"),
        "Pending": states.count("Pending"),
        "Failed": states.count("Failed"),
    }


def objective_value(summary: dict[str, Any]) -> float | None:
    metric = summary.get("FinalHyperParameterTuningJobObjectiveMetric")
    return None if metric is None else float(metric["Value"])


def best_summary(summaries: list[dict[str, Any]], maximize: bool) -> dict[str, Any] | None:
    """The succeeded trial with the best objective; the earliest wins a tie."""
    scored = [s for s in summaries if s.get("ObjectiveStatus") == "Succeeded"]
    if not scored:
        return None
    sign = 1.0 if maximize else -1.0
    return max(scored, key=lambda s: sign * (objective_value(s) or 0.0))


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def trial_name(tuning_name: str, index: int) -> str:
    """``<tuning job>-<NNN>-<8 hex>``, as SageMaker names trials: at most 32 + 13 characters."""
    digest = hashlib.sha256(f"{tuning_name}\x1f{index}".encode()).hexdigest()[:8]
    return f"{tuning_name}-{index:03d}-{digest}"


@dataclass
class Trial:
    name: str
    arn: str
    tuned: dict[str, str]
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return str(self.summary.get("TrainingJobStatus", "InProgress"))


class TuningRun:
    """One tuning job's trials, their results, and the state Describe and List read."""

    def __init__(self, job: LocalJob, services: Services, request: dict[str, Any]) -> None:
        self.job = job
        self.client, self.store = services.client, services.store
        self.request = request
        self.config = request["HyperParameterTuningJobConfig"]
        definition = request.get("TrainingJobDefinition")
        if request.get("TrainingJobDefinitions") or not definition:
            raise JobFailure(
                "ClientError: the local backend runs a tuning job with exactly one TrainingJobDefinition"
            )
        if "ResourceConfig" not in definition:
            raise JobFailure(
                "ClientError: the local backend needs ResourceConfig in the TrainingJobDefinition"
            )
        self.definition: dict[str, Any] = definition
        objective = self.config.get("HyperParameterTuningJobObjective") or definition.get("TuningObjective")
        if not objective:
            raise JobFailure("ClientError: HyperParameterTuningJobObjective is required")
        self.metric = str(objective["MetricName"])
        self.objective_type = str(objective["Type"])
        self.maximize = self.objective_type == "Maximize"
        self.arn = job.state()["HyperParameterTuningJobArn"]
        self.trials: list[Trial] = []
        self.started = time.monotonic()
        self.since_best = 0
        self.converged_at: str | None = None
        self.parent_summaries: list[dict[str, Any]] = []

    # -- trials ------------------------------------------------------------------------------------

    @property
    def running(self) -> list[Trial]:
        return [t for t in self.trials if t.status not in _TERMINAL]

    def observations(self) -> list[search.Observation]:
        return [
            search.Observation(t.tuned, value)
            for t in self.trials
            if t.summary.get("ObjectiveStatus") == "Succeeded"
            and (value := objective_value(t.summary)) is not None
        ]

    def launch(self, proposal: search.Proposal) -> Trial:
        index = len(self.trials) + 1
        name = trial_name(self.job.name, index)
        static = dict(self.definition.get("StaticHyperParameters") or {})
        body = {k: v for k, v in self.definition.items() if k not in _DEFINITION_ONLY}
        body.update(TrainingJobName=name, HyperParameters={**static, **proposal.hyperparameters})
        # SageMaker reuses clusters between one tuning job's trials (HyperParameterTuningResourceConfig):
        # each trial keeps its hosts for the next, in pools that only this tuning job's trials take.
        body["ResourceConfig"] = {
            **body["ResourceConfig"],
            "KeepAlivePeriodInSeconds": TRIAL_KEEP_ALIVE_SECONDS,
        }
        body["Tags"] = [
            *(self.request.get("Tags") or []),
            {"Key": warm_pool.OWNER_TAG, "Value": self.job.name},
        ]
        arn = self.client.create_training_job(**body)["TrainingJobArn"]
        trained = self.store.get("training", name)
        if trained is not None:
            trained.update(TuningJobArn=self.arn)  # DescribeTrainingJob names the tuning job, as on AWS
        trial = Trial(name, arn, dict(proposal.hyperparameters))
        trial.summary = self._summary(trial, {"TrainingJobStatus": "InProgress", "CreationTime": now_iso()})
        self.trials.append(trial)
        extra = "" if proposal.expected_improvement is None else f", EI={proposal.expected_improvement:.4g}"
        log.info("trial %s (%s%s): %s", name, proposal.how, extra, proposal.hyperparameters)
        return trial

    def _summary(self, trial: Trial, description: dict[str, Any]) -> dict[str, Any]:
        status = description["TrainingJobStatus"]
        summary: dict[str, Any] = {
            "TrainingJobName": trial.name,
            "TrainingJobArn": trial.arn,
            "TuningJobName": self.job.name,
            "CreationTime": _iso(description["CreationTime"]),
            "TrainingJobStatus": status,
            "TunedHyperParameters": trial.tuned,
        }
        for key in ("TrainingStartTime", "TrainingEndTime"):
            if description.get(key):
                summary[key] = _iso(description[key])
        if description.get("FailureReason"):
            summary["FailureReason"] = str(description["FailureReason"])[:1024]
        metrics = {m["MetricName"]: m["Value"] for m in description.get("FinalMetricDataList") or []}
        if status not in _TERMINAL:
            summary["ObjectiveStatus"] = "Pending"
        elif status == "Completed" and self.metric in metrics:
            summary["ObjectiveStatus"] = "Succeeded"
            summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": self.objective_type,
                "MetricName": self.metric,
                "Value": float(metrics[self.metric]),
            }
        else:
            summary["ObjectiveStatus"] = "Failed"
        return summary

    def poll(self) -> list[Trial]:
        """Refresh the running trials; return those that ended since the last poll."""
        ended = []
        for trial in self.running:
            description = self.client.describe_training_job(TrainingJobName=trial.name)
            trial.summary = self._summary(trial, description)
            if trial.status in _TERMINAL:
                ended.append(trial)
                self._count_improvement(trial)
                log.info(
                    "trial %s %s, %s=%s",
                    trial.name,
                    trial.status,
                    self.metric,
                    objective_value(trial.summary),
                )
        return ended

    def _count_improvement(self, trial: Trial) -> None:
        if trial.summary.get("ObjectiveStatus") != "Succeeded":
            return
        best = best_summary([t.summary for t in self.trials if t.status in _TERMINAL], self.maximize)
        self.since_best = 0 if best is trial.summary else self.since_best + 1

    def stop_running(self, why: str) -> None:
        """Stop every running trial and wait (bounded) until each has ended."""
        for trial in self.running:
            log.info("stopping trial %s: %s", trial.name, why)
            with contextlib.suppress(ClientError):
                self.client.stop_training_job(TrainingJobName=trial.name)
        deadline = time.monotonic() + _STOP_WAIT_SECONDS
        while self.running and time.monotonic() < deadline:
            time.sleep(_POLL_SECONDS)
            self.poll()

    # -- completion --------------------------------------------------------------------------------

    def completion_reason(self, last: search.Proposal | None) -> str | None:
        criteria = self.config.get("TuningJobCompletionCriteria") or {}
        best = best_summary([t.summary for t in self.trials], self.maximize)
        target = criteria.get("TargetObjectiveMetricValue")
        if target is not None and best is not None:
            value = objective_value(best) or 0.0
            if (value >= target) if self.maximize else (value <= target):
                return f"TargetObjectiveMetricValue {target} reached by {best['TrainingJobName']} ({value})"
        patience = (criteria.get("BestObjectiveNotImproving") or {}).get(
            "MaxNumberOfTrainingJobsNotImproving"
        )
        if patience and self.since_best >= patience:
            return f"BestObjectiveNotImproving: {self.since_best} training jobs without a better objective"
        enabled = (criteria.get("ConvergenceDetected") or {}).get("CompleteOnConvergence") == "Enabled"
        improvement = last.expected_improvement if last is not None else None
        if enabled and improvement is not None and improvement < _CONVERGED_EI:
            self.converged_at = self.converged_at or now_iso()
            return f"ConvergenceDetected: expected improvement {improvement:.2g} < {_CONVERGED_EI}"
        return None

    def end_pools(self) -> None:
        """Terminate the warm pools of this tuning job's trials and wait until their processes are gone."""
        warm_pool.terminate_all(self.store.home, owner=self.job.name)

    # -- what Describe and List read ---------------------------------------------------------------

    def publish(self, **changes: Any) -> None:
        summaries = [t.summary for t in self.trials]
        state: dict[str, Any] = {
            "TrainingJobStatusCounters": _training_counters(summaries),
            "ObjectiveStatusCounters": _objective_counters(summaries),
            "ConsumedResources": {"RuntimeInSeconds": int(time.monotonic() - self.started)},
            "_trials": summaries,
        }
        best = best_summary(summaries, self.maximize)
        if best is not None:
            state["BestTrainingJob"] = best
        if self.parent_summaries:
            overall = best_summary([*self.parent_summaries, *summaries], self.maximize)
            if overall is not None:
                state["OverallBestTrainingJob"] = overall
        details: dict[str, Any] = {"NumberOfTrainingJobsObjectiveNotImproving": self.since_best}
        if self.converged_at:
            details["ConvergenceDetectedTime"] = self.converged_at
        state["TuningJobCompletionDetails"] = details
        self.job.update(**state, **changes)

    def warm_start(self) -> list[search.Observation]:
        """The finished trials of the parent tuning jobs, as observations for the optimiser."""
        config = self.request.get("WarmStartConfig")
        if not config:
            return []
        observations: list[search.Observation] = []
        for parent in config["ParentHyperParameterTuningJobs"]:
            name = parent["HyperParameterTuningJobName"]
            found = self.store.get("tuning", name)
            if found is None:
                raise JobFailure(f"ResourceNotFound: warm-start parent tuning job {name} does not exist")
            summaries = found.state().get("_trials") or []
            self.parent_summaries.extend(summaries)
            observations.extend(
                search.Observation(dict(s["TunedHyperParameters"]), value)
                for s in summaries
                if s.get("ObjectiveStatus") == "Succeeded" and (value := objective_value(s)) is not None
            )
        log.info(
            "warm start (%s) from %d parent job(s): %d finished trial(s)",
            config["WarmStartType"],
            len(config["ParentHyperParameterTuningJobs"]),
            len(observations),
        )
        return observations


def _budget(config: dict[str, Any], space: search.SearchSpace) -> int:
    limits = config["ResourceLimits"]
    requested = limits.get("MaxNumberOfTrainingJobs")
    if config["Strategy"] == "Grid":
        size = len(space.grid())
        if requested is not None and requested != size:
            raise JobFailure(
                f"ClientError: Grid search runs every combination ({size}); MaxNumberOfTrainingJobs "
                f"must be {size} or unset, got {requested}"
            )
        return size
    if requested is None:
        raise JobFailure(
            f"ClientError: {config['Strategy']} search needs ResourceLimits.MaxNumberOfTrainingJobs"
        )
    return int(requested)


def _announce(config: dict[str, Any], searcher: search.Searcher, budget: int, parallel: int) -> None:
    log.info(
        "local backend tuning (simulated service): %s; %d training job(s), %d at a time",
        searcher.describe(),
        budget,
        parallel,
    )
    if config.get("TrainingJobEarlyStoppingType") == "Auto":
        log.info("TrainingJobEarlyStoppingType=Auto: the local backend does not stop trials early")
    convergence = (config.get("TuningJobCompletionCriteria") or {}).get("ConvergenceDetected") or {}
    if convergence.get("CompleteOnConvergence") == "Enabled" and config["Strategy"] != "Bayesian":
        log.info("ConvergenceDetected: the local backend detects convergence for Bayesian search only")


def run(job: LocalJob, services: Services) -> None:
    try:
        _tune(job, services)
    finally:
        warm_pool.terminate_all(services.origin.home, owner=job.name)


def _tune(job: LocalJob, services: Services) -> None:
    request = job.request()
    config = request["HyperParameterTuningJobConfig"]
    tuning = TuningRun(job, services, request)
    try:
        space = search.SearchSpace.from_ranges(config.get("ParameterRanges"))
        budget = _budget(config, space)
        searcher = search.Searcher(
            space,
            config["Strategy"],
            maximize=tuning.maximize,
            seed=int(config.get("RandomSeed", 0)),
            prior=tuning.warm_start(),
        )
    except search.SearchSpaceError as err:
        raise JobFailure(f"ClientError: {err}") from err
    limits = config["ResourceLimits"]
    parallel = int(limits["MaxParallelTrainingJobs"])
    max_runtime = limits.get("MaxRuntimeInSeconds")
    _announce(config, searcher, budget, parallel)

    last: search.Proposal | None = None
    reason: str | None = None
    exhausted = False
    while True:
        if services.stop.is_set():
            tuning.stop_running("the tuning job was stopped")
            tuning.end_pools()
            tuning.publish(HyperParameterTuningJobStatus="Stopped", HyperParameterTuningEndTime=now_iso())
            log.info("tuning job %s stopped", job.name)
            return
        tuning.poll()
        if max_runtime and time.monotonic() - tuning.started > max_runtime:
            reason = reason or f"MaxRuntimeInSeconds={max_runtime} reached"
            tuning.stop_running(reason)
        reason = reason or tuning.completion_reason(last)
        while not reason and not exhausted and len(tuning.running) < parallel and len(tuning.trials) < budget:
            pending = [t.tuned for t in tuning.running]
            proposal = searcher.propose(tuning.observations(), pending)
            if proposal is None:
                exhausted = True
                break
            last = proposal
            tuning.launch(proposal)
        tuning.publish()
        if not tuning.running and (reason or exhausted or len(tuning.trials) >= budget):
            break
        services.stop.wait(_POLL_SECONDS)

    log.info("tuning job %s done: %s", job.name, reason or f"{len(tuning.trials)} training job(s) run")
    tuning.end_pools()  # before the job ends: nothing of a finished tuning job is left running
    if not tuning.observations():
        failures = [t.summary.get("FailureReason") for t in tuning.trials if t.summary.get("FailureReason")]
        tuning.publish(HyperParameterTuningEndTime=now_iso())
        raise JobFailure(
            f"ClientError: no training job reported the objective metric {tuning.metric!r}"
            + (f"; first failure: {failures[0]}" if failures else "; check the MetricDefinitions regex")
        )
    tuning.publish(HyperParameterTuningJobStatus="Completed", HyperParameterTuningEndTime=now_iso())
