"""The fault suite's fixtures, and the counts each test proves, printed at the end of the run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

# The AWS path as the contract suite plays it: an ordinary aws connection, moto's S3 and Logs, the fake
# SageMaker. Imported, not copied: the faults are injected in front of that same service.
from tests.contract.conftest import aws  # noqa: F401

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests.contract.conftest import Aws
    from tests.faults.injection import Faults

COUNTS: list[str] = []


@pytest.fixture
def counts(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record one line of what the test proved (its counts), printed in the run's summary."""

    def record(line: str) -> None:
        COUNTS.append(f"{request.node.name}: {line}")

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if COUNTS:
        terminalreporter.section("fault suite counts")
        for line in COUNTS:
            terminalreporter.write_line(line)


@pytest.fixture
def faults(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Faults]:  # noqa: F811
    """Throttling and 5xx on every SageMaker, S3 and CloudWatch Logs call of clients created from now on.

    The test's own S3 and Logs clients (``aws.s3``, ``aws.logs``: setting inputs up, reading outputs) and
    the service's were created before, and are not faulted.
    """
    import botocore.handlers

    from tests.faults.injection import Faults

    injected = Faults(aws.service)
    monkeypatch.setattr(
        botocore.handlers, "BUILTIN_HANDLERS", injected.gated(botocore.handlers.BUILTIN_HANDLERS)
    )
    yield injected
