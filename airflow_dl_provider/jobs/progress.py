"""What a job's descriptions say about its progress, each thing logged once as it appears.

Status changes, each ``SecondaryStatusTransition`` (and a new message within one), the kind's progress
counters (a labeling job's ``LabelCounters``, a tuning job's ``TrainingJobStatusCounters``) and, for a
tuning job, each trial once it ends with its objective metric. The engine's wait, the trigger and the
sensor all hand their descriptions here, so the task log reads the same on a worker and deferred.

Progress is best effort, like log copying: a failing trial listing warns once and never fails the task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_dl_provider import service_behaviour

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_dl_provider.jobs.kinds import JobKind

# Trial listings page at most 100 (ListTrainingJobsForHyperParameterTuningJob's MaxResults); a tuning job
# runs at most 750 trials (the account quota's default), so 10 pages cover any of them.
_TRIALS_PAGE = 100
_MAX_TRIAL_PAGES = 10
# Counters that are not a trial's end (TrainingJobStatusCounters).
_NOT_ENDED = frozenset({"InProgress"})


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def trial_line(summary: Mapping[str, Any]) -> str:
    """``<trial> Completed: validation:accuracy=0.93 (lr=0.01, epochs=5)`` from a trial's summary."""
    objective = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    parts = [f"{summary.get('TrainingJobName')} {summary.get('TrainingJobStatus')}"]
    if objective:
        parts[0] += f": {objective.get('MetricName')}={_number(objective.get('Value'))}"
    elif summary.get("FailureReason"):
        parts[0] += f": {summary['FailureReason']}"
    tuned = summary.get("TunedHyperParameters") or {}
    if tuned:
        parts.append("(" + ", ".join(f"{k}={str(v).strip(chr(34))}" for k, v in sorted(tuned.items())) + ")")
    return " ".join(parts)


class JobProgress:
    """Log what is new in each description of one job.

    :param client: the SageMaker client; lists a tuning job's trials (kinds with ``trials_method``).
    """

    def __init__(self, kind: JobKind, name: str, log: Any, client: Any = None) -> None:
        self.kind = kind
        self.name = name
        self.log = log
        self.client = client
        self._status: str | None = None
        self._transitions: list[tuple[str, str]] = []
        self._counters: Any = None
        self._ended = 0
        self._trials: set[str] = set()
        self._warned = False

    @property
    def _subject(self) -> str:
        return f"{self.kind.noun} {self.name}"

    def observe(self, description: Mapping[str, Any] | None, status: str) -> None:
        """Log the status when it changed, then what the description has that no earlier one had."""
        if status != self._status:
            self.log.info("%s: %s", self._subject, status)
            self._status = status
        if not description:
            return
        self._log_transitions(description.get("SecondaryStatusTransitions") or [])
        if self.kind.counters_field:
            counters = description.get(self.kind.counters_field)
            if counters and counters != self._counters:
                self._counters = counters
                shown = ", ".join(f"{k} {v}" for k, v in counters.items())
                self.log.info("%s: %s", self._subject, shown)
                if self.kind.trials_method:
                    self._log_ended_trials(counters)

    def _log_transitions(self, transitions: list[Mapping[str, Any]]) -> None:
        for index, transition in enumerate(transitions):
            seen = (str(transition.get("Status")), str(transition.get("StatusMessage") or ""))
            if index < len(self._transitions) and self._transitions[index] == seen:
                continue
            # New, or the same status with a new message ("Downloading the training image" ->
            # "Training image download completed. Training in progress.").
            self._transitions[index:] = [seen]
            self.log.info("%s: %s", self._subject, " - ".join(part for part in seen if part))

    def _log_ended_trials(self, counters: Mapping[str, Any]) -> None:
        ended = sum(int(v or 0) for k, v in counters.items() if k not in _NOT_ENDED)
        if ended <= self._ended or self.client is None:
            return
        try:
            summaries = self._list_trials()
        except Exception as err:  # progress is best effort: the job and the task go on
            if not self._warned:
                self._warned = True
                code, message = service_behaviour.error_of(err)
                self.log.warning(
                    "Listing the trials of %s failed (%s); the job is unaffected",
                    self._subject,
                    f"{code}: {message}" if code else err,
                )
            return
        self._ended = ended
        done = [s for s in summaries if s.get("TrainingJobStatus") not in _NOT_ENDED]
        for summary in sorted(done, key=lambda s: str(s.get("TrainingEndTime") or s.get("TrainingJobName"))):
            trial = str(summary.get("TrainingJobName"))
            if trial not in self._trials:
                self._trials.add(trial)
                self.log.info("%s: trial %s", self._subject, trial_line(summary))

    def _list_trials(self) -> list[Mapping[str, Any]]:
        method = getattr(self.client, str(self.kind.trials_method))
        kwargs: dict[str, Any] = {
            self.kind.name_field: self.name,
            "SortBy": "CreationTime",
            "SortOrder": "Ascending",
            "MaxResults": _TRIALS_PAGE,
        }
        summaries: list[Mapping[str, Any]] = []
        for _ in range(_MAX_TRIAL_PAGES):
            page = method(**kwargs)
            summaries.extend(page.get("TrainingJobSummaries") or [])
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        return summaries
