"""Polling cost and progress lines, counted on a fake clock (nothing sleeps, nothing is timed).

The simulated job is the one ``benchmarks/polling.py`` measures: Starting 4 min, Downloading 2 min,
Training with one host writing a line every 10 s, Uploading for the last 5 min.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_dl_provider.jobs.kinds import JOB_KINDS
from airflow_dl_provider.jobs.polling import CEILING_SECONDS, PollSchedule
from airflow_dl_provider.jobs.progress import JobProgress
from benchmarks.polling import SimulatedJob, run_deferred, run_old_policy, run_worker

HOUR = 3600.0
TRAINING_STARTS = 360.0


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def log() -> Any:
    logger = logging.getLogger(f"test_polling.{id(object())}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = Lines()
    logger.addHandler(handler)
    logger.lines = handler.lines  # type: ignore[attr-defined]
    return logger


def _fixed(_low: float, _high: float) -> float:
    return 1.0


# -- the schedule -------------------------------------------------------------------------------------


def test_pauses_grow_from_a_second_to_the_60s_ceiling_whatever_a_shorter_poll_interval() -> None:
    schedule = PollSchedule(10, uniform=_fixed)
    pauses = [schedule.next_pause() for _ in range(14)]
    assert pauses[:4] == [1.0, 1.5, 2.25, 3.375]
    assert pauses[-3:] == [CEILING_SECONDS] * 3
    assert max(pauses) == CEILING_SECONDS


def test_a_poll_interval_under_a_second_starts_there_and_one_over_60s_is_the_ceiling() -> None:
    assert PollSchedule(0.2, uniform=_fixed).next_pause() == 0.2
    slow = PollSchedule(300, uniform=_fixed)
    assert [slow.next_pause() for _ in range(30)][-1] == 300


def test_the_ceiling_carries_no_jitter_and_a_pause_never_runs_past_the_deadline() -> None:
    schedule = PollSchedule(10, uniform=lambda low, high: high)  # the largest jitter every time
    pauses = [schedule.next_pause() for _ in range(20)]
    assert max(pauses) == CEILING_SECONDS
    assert schedule.next_pause(remaining=7.5) == 7.5
    assert schedule.next_pause(remaining=0.0) == 0.0


def test_a_throttled_look_doubles_the_pause() -> None:
    schedule = PollSchedule(10, uniform=_fixed)
    assert schedule.next_pause() == 1.0
    assert schedule.after_throttling() == 10.0  # at least poll_interval
    assert schedule.after_throttling() == 30.0


# -- calls per job-hour on the worker -------------------------------------------------------------------


def test_a_one_hour_job_on_a_worker_costs_60_describes_an_hour_once_at_the_ceiling(log: Any) -> None:
    job = SimulatedJob(HOUR)
    run_worker(job, poll_interval=10, log=log)
    describes = job.times["DescribeTrainingJob"]
    # The old policy made 363 here; the ramp of the first minutes costs about 11 more than 60.
    assert len(describes) <= 72
    assert job.longest_gap() <= CEILING_SECONDS + 1e-6
    assert sum(1 for t in describes if HOUR / 2 <= t < HOUR) == 30
    assert describes[-1] - HOUR < CEILING_SECONDS  # the end is seen within a minute


def test_log_streams_are_listed_once_a_host_started_and_until_its_stream_is_known(log: Any) -> None:
    job = SimulatedJob(HOUR)
    run_worker(job, poll_interval=10, log=log)
    listings = job.times["DescribeLogStreams"]
    assert min(listings) >= TRAINING_STARTS  # nothing during Starting and Downloading
    assert len(listings) == 2  # when it started, and once more at the end (a restarted host's stream)
    reads = job.times["GetLogEvents"]
    assert min(reads) >= TRAINING_STARTS
    running_looks = [t for t in job.looks if TRAINING_STARTS <= t < HOUR]
    assert len(reads) <= len(running_looks) + 2  # one read per look; the end drains to the same token


def test_every_log_line_and_every_transition_is_logged_exactly_once(log: Any) -> None:
    job = SimulatedJob(HOUR)
    run_worker(job, poll_interval=10, log=log)
    steps = [line for line in log.lines if line.startswith("[algo-1] step ")]
    written = int((HOUR - 300 - TRAINING_STARTS) // 10)
    assert steps == [f"[algo-1] step {i}" for i in range(written)]
    transitions = [line.split(": ", 1)[1] for line in log.lines if " - " in line]
    assert transitions == [
        "Starting - Starting...",
        "Downloading - Downloading...",
        "Training - Training...",
        "Uploading - Uploading...",
        "Completed - Training job completed",
    ]


def test_the_deferred_path_polls_by_the_same_schedule_and_copies_the_lines_once_on_resume(log: Any) -> None:
    job = SimulatedJob(HOUR)
    run_deferred(job, poll_interval=10, log=log)
    assert len(job.times["DescribeTrainingJob"]) <= 72
    assert job.longest_gap() <= CEILING_SECONDS + 1e-6
    assert len(job.times["DescribeLogStreams"]) == 1  # the resumed task's one drain
    assert len(job.times["GetLogEvents"]) == 2  # all lines, then the same token back
    assert sum(1 for line in log.lines if " - " in line) == 5  # transitions from the trigger's looks


def test_the_old_policy_baseline_is_several_times_dearer() -> None:
    ours, old = SimulatedJob(HOUR), SimulatedJob(HOUR)
    run_worker(ours, poll_interval=10)
    run_old_policy(old, poll_interval=10)
    assert old.calls["DescribeTrainingJob"] >= 5 * ours.calls["DescribeTrainingJob"]
    assert old.calls["DescribeLogStreams"] >= 100 * ours.calls["DescribeLogStreams"]


# -- progress lines -------------------------------------------------------------------------------------

TUNING = JOB_KINDS["tuning"]


class Trials:
    """ListTrainingJobsForHyperParameterTuningJob from a list that grows as trials end."""

    def __init__(self) -> None:
        self.summaries: list[dict[str, Any]] = []
        self.calls = 0
        self.fail = False

    def list_training_jobs_for_hyper_parameter_tuning_job(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.fail:
            raise RuntimeError("connection reset")
        return {"TrainingJobSummaries": list(self.summaries)}

    def end(self, name: str, value: float, **tuned: str) -> None:
        self.summaries.append(
            {
                "TrainingJobName": name,
                "TrainingJobStatus": "Completed",
                "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "val:acc", "Value": value},
                "TunedHyperParameters": tuned,
            }
        )


def _tuning(completed: int, running: int) -> dict[str, Any]:
    return {
        "HyperParameterTuningJobName": "tune-1",
        "HyperParameterTuningJobStatus": "InProgress",
        "TrainingJobStatusCounters": {"Completed": completed, "InProgress": running},
    }


def test_each_tuning_trial_is_logged_once_as_it_ends_with_its_objective(log: Any) -> None:
    trials = Trials()
    progress = JobProgress(TUNING, "tune-1", log, trials)
    progress.observe(_tuning(0, 2), "InProgress")
    assert trials.calls == 0  # nothing ended: nothing listed
    trials.end("tune-1-001", 0.91, lr='"0.01"')
    progress.observe(_tuning(1, 1), "InProgress")
    progress.observe(_tuning(1, 1), "InProgress")  # the same counters: no listing, no line
    trials.end("tune-1-002", 0.95, lr='"0.1"')
    progress.observe(_tuning(2, 0), "InProgress")
    lines = [line for line in log.lines if "trial" in line]
    assert lines == [
        "HyperParameterTuningJob tune-1: trial tune-1-001 Completed: val:acc=0.91 (lr=0.01)",
        "HyperParameterTuningJob tune-1: trial tune-1-002 Completed: val:acc=0.95 (lr=0.1)",
    ]
    assert trials.calls == 2


def test_a_failing_trial_listing_warns_once_and_the_trial_is_logged_later(log: Any) -> None:
    trials = Trials()
    trials.fail = True
    trials.end("tune-1-001", 0.9)
    progress = JobProgress(TUNING, "tune-1", log, trials)
    progress.observe(_tuning(1, 1), "InProgress")
    progress.observe(_tuning(1, 0), "InProgress")
    warnings = [line for line in log.lines if "Listing the trials" in line]
    assert len(warnings) == 1
    trials.fail = False
    progress.observe(_tuning(1, 1), "InProgress")
    assert any("trial tune-1-001 Completed" in line for line in log.lines)


def test_a_new_message_within_the_same_secondary_status_is_logged_once(log: Any) -> None:
    progress = JobProgress(JOB_KINDS["training"], "t", log)
    first = {"SecondaryStatusTransitions": [{"Status": "Training", "StatusMessage": "Downloading the image"}]}
    later = {"SecondaryStatusTransitions": [{"Status": "Training", "StatusMessage": "Training in progress."}]}
    for description in (first, first, later, later):
        progress.observe(description, "InProgress")
    assert log.lines == [
        "TrainingJob t: InProgress",
        "TrainingJob t: Training - Downloading the image",
        "TrainingJob t: Training - Training in progress.",
    ]
