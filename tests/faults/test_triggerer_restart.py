"""The triggerer restarted mid-deferral: the trigger, rebuilt from its serialized kwargs, resumes.

A deferred task's trigger is stopped where it is (mid-poll or mid-sleep) twice, as a triggerer restart
does, and made again from what Airflow stored: its classpath and JSON kwargs. The third triggerer
fires the event; the task resumes with the log cursor it stored when it deferred and copies the lines
written meanwhile. Every line reaches the task log exactly once per stream, and there is one job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.contract.deferral import task_deferred
from tests.contract.job_cases import CASES, JobCase
from tests.faults.task_tries import rebuilt, resume, triggerer

if TYPE_CHECKING:
    from pathlib import Path

    from tests.contract.conftest import Aws

LOGGED = [case for case in CASES if case.key != "tuning"]  # a tuning job's trials log, it does not
RESTARTS = 2
POLLS_PER_TRIGGERER = 3


def _copied(messages: list[str], line: str) -> int:
    return sum(1 for m in messages if m.endswith(f"] {line}"))


@pytest.mark.parametrize("case", LOGGED, ids=str)
def test_triggerer_restarted_2_times_mid_deferral_copies_each_line_once(
    aws: Aws, tmp_path: Path, task_context: Any, task_log: Any, counts: Any, case: JobCase
) -> None:
    lines = tuple(f"{case.key} step {index}" for index in range(12))
    aws.service.jobs.plan(case.noun, polls=len(lines), log_lines=lines)
    context = task_context(task_id=case.build(aws, tmp_path).task_id)
    with pytest.raises(task_deferred()) as caught:
        case.build(aws, tmp_path, deferrable=True).execute(context)
    deferred: Any = caught.value
    before_deferral = list(task_log.messages)

    describe = f"Describe{case.noun}"
    triggers = []
    for _ in range(RESTARTS):
        dies_at = aws.service.count(describe) + POLLS_PER_TRIGGERER
        trigger = rebuilt(deferred.trigger)
        triggers.append(trigger)
        died = triggerer(trigger, dies_when=lambda at=dies_at: aws.service.count(describe) >= at)
        assert died is None, "the triggerer died before the job ended"
    last = rebuilt(deferred.trigger)
    event = triggerer(last)
    assert len({id(t) for t in [*triggers, last]}) == RESTARTS + 1, "each triggerer made its own trigger"
    assert event.payload["status"] == "success", event.payload

    result = resume(case.build(aws, tmp_path, deferrable=True), deferred, context, event)

    assert result["status"] == case.completed
    assert [job.name for job in aws.service.jobs.of(case.noun)] == [result["job_name"]]
    job = aws.service.jobs.get(case.noun, result["job_name"])
    streams = len(aws.service.jobs.streams(job))
    copied_before = sum(1 for line in lines if _copied(before_deferral, line))
    assert 0 < copied_before < len(lines), "some lines before deferring, the rest after resuming"
    for line in lines:
        assert _copied(task_log.messages, line) == streams, line
    counts(
        f"{RESTARTS} triggerer restarts; {len(lines) * streams} log lines ({streams} streams), each copied "
        f"once ({copied_before * streams} before deferring, {(len(lines) - copied_before) * streams} on "
        "resuming); 1 job Completed"
    )
