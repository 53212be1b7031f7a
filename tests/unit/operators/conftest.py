"""Fixtures the operator request tests share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from botocore.stub import Stubber

from tests.unit.operators.stubs import sagemaker_client

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def sagemaker() -> Iterator[tuple[Any, Stubber]]:
    client = sagemaker_client()
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()
