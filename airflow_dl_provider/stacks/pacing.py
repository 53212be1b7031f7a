"""How the stack commands wait and retry: one shape for ``stack deploy`` and ``airflow-dl trigger``.

Injectable (clock, sleep, output), so that tests do not sleep.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


def _say(message: str) -> None:
    print(message, flush=True)


@dataclass
class Retry:
    """Exponential backoff for transient failures: ``first_delay``, doubling, at most ``max_delay``."""

    attempts: int = 6
    first_delay: float = 2.0
    max_delay: float = 30.0

    def delays(self) -> Iterator[float]:
        delay = self.first_delay
        for _ in range(self.attempts - 1):
            yield delay
            delay = min(delay * 2, self.max_delay)


@dataclass
class Poll:
    """Check every ``interval`` seconds, for at most ``timeout`` seconds; say what happens on ``say``.

    The defaults are a DAG run's (up to 6 hours); ``stack deploy`` passes its own.
    """

    interval: float = 15.0
    timeout: float = 6 * 3600
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    say: Callable[[str], None] = field(default=_say)
    retry: Retry = field(default_factory=Retry)
