"""A task run as Airflow runs it: tries until one succeeds, deferral through a trigger rebuilt from its kwargs.

A retryable error starts the next try on a fresh operator, up to ``retries`` (the pipelines' default is
2); ``AirflowFailException`` (and a skip) ends the task at once, as Airflow's task runner does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.contract.deferral import first_event, task_deferred

if TYPE_CHECKING:
    from collections.abc import Callable

RETRIES = 2


def skipped() -> type[BaseException]:
    try:
        from airflow.sdk.exceptions import AirflowSkipException
    except ImportError:  # Airflow 2 and 3.0
        from airflow.exceptions import AirflowSkipException  # type: ignore[no-redef]
    return AirflowSkipException


def fail_fast() -> type[BaseException]:
    try:
        from airflow.sdk.exceptions import AirflowFailException  # Airflow >= 3.1
    except ImportError:  # Airflow 2 and 3.0
        from airflow.exceptions import AirflowFailException  # type: ignore[no-redef]
    return AirflowFailException


def rebuilt(trigger: Any) -> Any:
    """The trigger as the triggerer makes it: from its serialized classpath and kwargs (stored as JSON)."""
    import importlib
    import json

    path, kwargs = trigger.serialize()
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))


def triggerer(trigger: Any, *, dies_when: Callable[[], bool] | None = None, timeout: float = 60) -> Any:
    """Run ``trigger`` as a triggerer does, to its first event; None if the triggerer died first.

    ``dies_when`` is checked every few milliseconds: once true, the triggerer stops the trigger where it
    is (mid-poll or mid-sleep), as a triggerer restart or a crash does.
    """

    async def first() -> Any:
        async for event in trigger.run():
            return event
        return None

    async def run() -> Any:
        running = asyncio.ensure_future(first())
        deadline = time.monotonic() + timeout
        while not running.done():
            if dies_when is not None and dies_when():
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
                return None
            assert time.monotonic() < deadline, "the trigger fired no event in time"
            await asyncio.sleep(0.005)
        return running.result()

    return asyncio.run(run())


def one_try(make: Callable[[], Any], context: Any) -> Any:
    """Execute; if it defers, run its trigger (rebuilt) to the first event and resume a fresh operator."""
    try:
        return make().execute(context)
    except task_deferred() as caught:
        deferred: Any = caught
    event = first_event(rebuilt(deferred.trigger))
    return resume(make(), deferred, context, event)


def resume(operator: Any, deferred: Any, context: Any, event: Any) -> Any:
    """Resume ``operator`` as the worker does after the event: its method, the stored (JSON) kwargs."""
    import json

    kwargs = json.loads(json.dumps(deferred.kwargs or {}))
    return getattr(operator, deferred.method_name)(context, event=event.payload, **kwargs)


def log_mark(task_log: Any) -> tuple[int, int]:
    """Where the captured task log (``tests/conftest.py``'s ``task_log``: stdlib records, structlog events) is now."""
    return len(task_log.caplog.records), len(task_log.events)


def log_since(task_log: Any, mark: tuple[int, int]) -> list[str]:
    """The task log's messages from ``mark`` on."""
    records, events = mark
    return [r.getMessage() for r in task_log.caplog.records[records:]] + [
        str(e.get("event", "")) for e in task_log.events[events:]
    ]


@dataclass
class TaskRun:
    """How a task's tries went: the result, the retryable errors that ended earlier tries."""

    result: Any = None
    errors: list[BaseException] = field(default_factory=list)
    #: Where each try's task log begins (:func:`log_mark`).
    try_log_starts: list[tuple[int, int]] = field(default_factory=list)

    @property
    def retries(self) -> int:
        return len(self.errors)


def run_task(
    make: Callable[[], Any],
    context: Any,
    *,
    retries: int = RETRIES,
    task_log: Any = None,
) -> TaskRun:
    """Try the task up to ``1 + retries`` times; raise what ended the last try, or an AirflowFailException."""
    run = TaskRun()
    while True:
        run.try_log_starts.append(log_mark(task_log) if task_log is not None else (0, 0))
        try:
            run.result = one_try(make, context)
            return run
        except (fail_fast(), skipped()):
            raise
        except Exception as err:
            run.errors.append(err)
            if run.retries > retries:
                err.add_note("tries ended by: " + "; ".join(repr(e)[:200] for e in run.errors))
                raise
