"""Wait in the triggerer until a Label Studio project has enough labeled tasks, holding no worker slot."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class LabelStudioAnnotationTrigger(BaseTrigger):
    """Poll the number of labeled tasks (as many annotations as the task's overlap).

    Fires one event ``{"status", "job_name", "message", "labeled"}``: ``success`` once ``target``
    tasks are labeled, ``error`` when the project is gone, ``timeout`` at ``deadline``.

    :param project_id: the Label Studio project.
    :param target: how many labeled tasks to wait for.
    :param job_name: the project's title (the operator's deterministic name).
    :param deadline: Unix time to give up at; None waits as long as the people take.
    """

    def __init__(
        self,
        *,
        project_id: int,
        target: int,
        job_name: str,
        label_studio_conn_id: str = "label_studio_default",
        poll_interval: float = 30.0,
        deadline: float | None = None,
    ) -> None:
        super().__init__()
        self.project_id = project_id
        self.target = target
        self.job_name = job_name
        self.label_studio_conn_id = label_studio_conn_id
        self.poll_interval = poll_interval
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "project_id": self.project_id,
                "target": self.target,
                "job_name": self.job_name,
                "label_studio_conn_id": self.label_studio_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
            },
        )

    def _event(self, status: str, message: str, labeled: int) -> TriggerEvent:
        return TriggerEvent(
            {"status": status, "job_name": self.job_name, "message": message, "labeled": labeled}
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_dl_provider.hooks.label_studio import LabelStudioHook
        from airflow_dl_provider.label_studio.api import LabelStudioApiError

        client = LabelStudioHook(self.label_studio_conn_id).client
        while True:
            try:
                # requests is blocking: keep it off the triggerer's event loop.
                labeled, _total = await asyncio.to_thread(client.labeled, self.project_id)
            except LabelStudioApiError as err:
                if err.status == 404:
                    yield self._event("error", f"Label Studio project {self.project_id} does not exist", 0)
                    return
                # The server restarting or unreachable: the people go on labeling; ask again later.
                self.log.warning("%s; polling again in %ss", err, self.poll_interval)
                await asyncio.sleep(self.poll_interval)
                continue
            if labeled >= self.target:
                yield self._event("success", f"{labeled} of {self.target} task(s) labeled", labeled)
                return
            if self.deadline is not None and time.time() >= self.deadline:
                yield self._event(
                    "timeout", f"{labeled} of {self.target} task(s) labeled at the deadline", labeled
                )
                return
            self.log.info(
                "Label Studio project %s: %d of %d task(s) labeled; next check in %ss",
                self.job_name,
                labeled,
                self.target,
                self.poll_interval,
            )
            await asyncio.sleep(self.poll_interval)
