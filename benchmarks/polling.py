"""Polling cost: SageMaker and CloudWatch Logs calls per job-hour, ours against the old policy.

A simulated training job runs on a fake clock (nothing sleeps): ``Starting`` for 4 minutes,
``Downloading`` for 2, ``Training`` until 5 minutes before its end (one host, whose stream appears
when training starts and gets a line every 10 s), ``Uploading``, then ``Completed``. A counting
client answers DescribeTrainingJob, DescribeLogStreams and GetLogEvents from that timeline, with
GetLogEvents' real token rule (the same token back at the end of the stream).

Three waits are measured in the same run, at the shipped ``poll_interval: 10``:

* ours, on a worker: :meth:`~airflow_dl_provider.jobs.engine.JobEngine.wait` with log copying;
* ours, deferred: :class:`~airflow_dl_provider.triggers.job.SageMakerJobTrigger` (Describe only;
  the task copies the log lines when it resumes: that drain is counted too);
* the baseline: the engine's policy before this change (pauses from 1 s growing to ``poll_interval``,
  and every look listing the streams and reading each until the same token comes back).

Goals: Describe <= 60 per job-hour once the pauses reach their ceiling (the ramp of the first three
minutes adds about 11 to the first hour), a look at least every 60 s, and DescribeLogStreams only
until the host's stream is known. Exits 0 either way.

    python benchmarks/polling.py [--hours 1] [--poll-interval 10]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from airflow_dl_provider.jobs.engine import JobEngine
from airflow_dl_provider.jobs.kinds import JOB_KINDS

NAME = "polling-bench-0123456789"
STREAM = f"{NAME}/algo-1-1700000000"
TRAINING = JOB_KINDS["training"]
LINE_EVERY = 10.0
QUIET = logging.getLogger("benchmarks.polling")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


class SimulatedJob:
    """One training job's timeline on a fake clock, and counting clients that answer from it.

    :param seconds: how long the job runs, from its creation at ``t=0``.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.now = 0.0
        self.calls: Counter[str] = Counter()
        self.looks: list[float] = []
        self.times: dict[str, list[float]] = {}
        self.phases = [
            (0.0, "Starting"),
            (240.0, "Downloading"),
            (360.0, "Training"),
            (max(360.0, seconds - 300.0), "Uploading"),
        ]

    def _count(self, call: str) -> None:
        self.calls[call] += 1
        self.times.setdefault(call, []).append(self.now)
        if call == "DescribeTrainingJob":
            self.looks.append(self.now)

    # -- the clock ------------------------------------------------------------------------------------

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    # -- SageMaker ------------------------------------------------------------------------------------

    def describe_training_job(self, **kwargs: Any) -> dict[str, Any]:
        self._count("DescribeTrainingJob")
        done = self.now >= self.seconds
        started = [p for p in self.phases if p[0] <= self.now]
        transitions = [{"Status": status, "StatusMessage": f"{status}..."} for _, status in started]
        if done:
            transitions.append({"Status": "Completed", "StatusMessage": "Training job completed"})
        return {
            "TrainingJobName": kwargs["TrainingJobName"],
            "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{NAME}",
            "TrainingJobStatus": "Completed" if done else "InProgress",
            "SecondaryStatus": transitions[-1]["Status"],
            "SecondaryStatusTransitions": transitions,
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        }

    # -- CloudWatch Logs ------------------------------------------------------------------------------

    def _lines(self) -> int:
        """Lines the host has written by now (from when training starts, one every LINE_EVERY s)."""
        end = min(self.now, self.phases[3][0])
        return max(0, int((end - self.phases[2][0]) // LINE_EVERY))

    def describe_log_streams(self, **kwargs: Any) -> dict[str, Any]:
        self._count("DescribeLogStreams")
        streams = [{"logStreamName": STREAM}] if self.now >= self.phases[2][0] else []
        return {"logStreams": streams}

    def get_log_events(self, **kwargs: Any) -> dict[str, Any]:
        self._count("GetLogEvents")
        start = int(str(kwargs.get("nextToken", "f/0")).split("/")[1])
        end = self._lines()
        events = [{"timestamp": i, "message": f"step {i}"} for i in range(start, end)]
        # The end of the stream: the token passed in comes back (GetLogEvents' documented rule).
        return {
            "events": events,
            "nextForwardToken": f"f/{end}" if events else kwargs.get("nextToken", "f/0"),
        }

    def per_hour(self) -> dict[str, float]:
        hours = self.seconds / 3600.0
        return {call: count / hours for call, count in sorted(self.calls.items())}

    def longest_gap(self) -> float:
        return max((b - a for a, b in zip(self.looks, self.looks[1:], strict=False)), default=0.0)


def run_worker(job: SimulatedJob, poll_interval: float, log: Any = QUIET) -> None:
    """Our wait on a worker, log lines copied."""
    engine = JobEngine(TRAINING, job, logs_client=job, log=log, sleep=job.sleep, clock=job.clock)
    engine.wait(NAME, poll_interval=poll_interval, log_cursor={})


class _FakeTime:
    def __init__(self, job: SimulatedJob) -> None:
        self.job = job

    def time(self) -> float:
        return self.job.now


class _FakeAsyncio:
    """What the trigger module uses of asyncio, on the fake clock: no thread, no real sleep."""

    def __init__(self, job: SimulatedJob) -> None:
        self.job = job

    async def sleep(self, seconds: float) -> None:
        self.job.sleep(seconds)

    async def to_thread(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)


def run_deferred(job: SimulatedJob, poll_interval: float, log: Any = QUIET) -> None:
    """Our wait deferred: the trigger's looks, then the resumed task's one drain of the log lines."""
    from airflow_dl_provider.triggers import job as trigger_module

    trigger = trigger_module.SageMakerJobTrigger(
        job_kind="training", job_name=NAME, poll_interval=poll_interval
    )
    trigger.__dict__["engine"] = JobEngine(TRAINING, job, log=log, sleep=job.sleep, clock=job.clock)
    saved = trigger_module.asyncio, trigger_module.time
    trigger_module.asyncio, trigger_module.time = _FakeAsyncio(job), _FakeTime(job)  # type: ignore[assignment]
    try:

        async def first_event() -> Any:
            async for event in trigger.run():
                return event.payload

        event = asyncio.run(first_event())
    finally:
        trigger_module.asyncio, trigger_module.time = saved
    assert event["status"] == "success", event
    JobEngine(TRAINING, job, logs_client=job, log=log).copy_logs(NAME, {})


def run_old_policy(job: SimulatedJob, poll_interval: float) -> None:
    """The engine's loop before this change, kept here only as the baseline."""
    delay = min(1.0, poll_interval)
    cursor: dict[str, str] = {}
    while True:
        status = job.describe_training_job(TrainingJobName=NAME)["TrainingJobStatus"]
        for stream in job.describe_log_streams(logGroupName="g", logStreamNamePrefix=f"{NAME}/")[
            "logStreams"
        ]:
            name = stream["logStreamName"]
            while True:
                page = job.get_log_events(
                    logStreamName=name, **({"nextToken": cursor[name]} if name in cursor else {})
                )
                token = page["nextForwardToken"]
                if token == cursor.get(name):
                    break
                cursor[name] = token
                if not page["events"]:
                    break
        if status == "Completed":
            return
        job.sleep(delay * random.uniform(0.8, 1.2))
        delay = min(delay * 1.5, poll_interval)


def measure(hours: float, poll_interval: float) -> dict[str, SimulatedJob]:
    jobs = {name: SimulatedJob(hours * 3600.0) for name in ("baseline", "worker", "deferred")}
    run_old_policy(jobs["baseline"], poll_interval)
    run_worker(jobs["worker"], poll_interval)
    run_deferred(jobs["deferred"], poll_interval)
    return jobs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--poll-interval", type=float, default=10.0)
    args = parser.parse_args()
    for hours in sorted({args.hours, 4.0}):
        jobs = measure(hours, args.poll_interval)
        print(f"\n{hours:g}-hour training job, poll_interval={args.poll_interval:g}: calls per job-hour")
        calls = ("DescribeTrainingJob", "DescribeLogStreams", "GetLogEvents")
        print(f"{'':10} " + " ".join(f"{c:>20}" for c in calls) + f" {'longest gap':>12}")
        for name, job in jobs.items():
            rates = job.per_hour()
            print(
                f"{name:10} "
                + " ".join(f"{rates.get(c, 0):20.1f}" for c in calls)
                + f" {job.longest_gap():11.1f}s"
            )
        base = jobs["baseline"].per_hour()
        for name in ("worker", "deferred"):
            rates = jobs[name].per_hour()
            ratios = ", ".join(f"{c} {base[c] / max(rates.get(c, 0), 1e-9):.1f}x fewer" for c in calls)
            print(f"{name}: {ratios}")
    steady = measure(4.0, args.poll_interval)["worker"]
    last_hour = sum(1 for t in steady.looks if 3 * 3600.0 <= t < 4 * 3600.0)
    ok = last_hour <= 60 and steady.longest_gap() <= 60.0 + 1e-6 and steady.calls["DescribeLogStreams"] <= 3
    print(
        f"\nsteady state (4th hour): {last_hour} Describe; longest gap {steady.longest_gap():.0f}s; "
        f"DescribeLogStreams {steady.calls['DescribeLogStreams']} in all: {'PASS' if ok else 'MISS'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
