"""On the local backend a task's extra links open what it wrote, from the embedded S3 server."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

# At module level: importing the operator configures Airflow's logging before any capture starts.
from airflow_dl_provider.links.console import DataDocsLink
from airflow_dl_provider.operators.validation import DataValidationOperator

SUITE = {
    "name": "ids",
    "expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}}],
}


def test_the_data_docs_link_opens_the_page_from_the_embedded_s3(
    local_backend: Any, task_context: Any
) -> None:
    local_backend.upload("data/part-0.csv", "id,age\n1,20\n2,35\n")
    suite_uri = local_backend.upload("suites/ids.json", json.dumps(SUITE))
    op = DataValidationOperator(task_id="validate", data_uri=local_backend.uri("data/"), suite_uri=suite_uri)
    assert any(isinstance(link, DataDocsLink) for link in op.operator_extra_links)
    context = task_context()

    summary = op.execute(context)

    url = DataDocsLink().format_link(**context["ti"].pushed[DataDocsLink.key])
    bucket_and_key = summary["data_docs"].removeprefix("s3://")
    assert url.startswith(f"{local_backend.s3.meta.endpoint_url}/{bucket_and_key}?")
    # A browser's plain GET of the presigned URL: the embedded server, which checks signatures, answers.
    with urllib.request.urlopen(url, timeout=30) as answer:
        page = answer.read().decode()
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/html")
    assert "<style>" in page and "Expectation Validation Result" in page
    assert not re.search(r"<(link|script)\b[^>]*(href|src)=[\"']?https?://", page, re.IGNORECASE)
