"""Run a deferrable task as Airflow does: execute, the trigger in the triggerer, then execute_complete."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable


def task_deferred() -> type[BaseException]:
    try:
        from airflow.sdk.exceptions import TaskDeferred  # Airflow 3
    except ImportError:  # Airflow 2
        from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]
    return TaskDeferred


def first_event(trigger: Any, timeout: float = 20) -> Any:
    async def first() -> Any:
        async for event in trigger.run():
            return event
        return None

    return asyncio.run(asyncio.wait_for(first(), timeout=timeout))


def run_deferred(make: Callable[[], Any], context: Any) -> tuple[Any, Any]:
    """Execute (it must defer), rebuild the trigger from its serialized form, run it, resume.

    :return: the event payload and the resumed task's result (or the exception it raised).
    """
    with pytest.raises(task_deferred()) as caught:
        make().execute(context)
    deferred: Any = caught.value
    path, kwargs = deferred.trigger.serialize()
    assert path == "airflow_dl_provider.triggers.job.SageMakerJobTrigger"
    event = first_event(type(deferred.trigger)(**kwargs))
    assert deferred.method_name == "execute_complete"
    resumed = make()
    try:
        result = getattr(resumed, deferred.method_name)(context, event=event.payload, **deferred.kwargs)
    except Exception as err:  # the caller asserts on it
        return event.payload, err
    return event.payload, result
