"""Great Expectations' import-time registry chatter stays out of the task log, only where GX is used."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import logging
logging.basicConfig(level=logging.INFO)
from airflow_dl_provider.validation import data
# Importing the module (DAG parse time) changes no logger.
print("level at import:", logging.getLogger("great_expectations._docs_decorators").level)
data.load_expectations([{"type": "expect_column_to_exist", "kwargs": {"column": "a"}}])
"""


def test_skipping_registering_function_lines_are_silenced_on_the_validation_path() -> None:
    # A fresh interpreter: GX logs those lines once, while its modules are first imported.
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "level at import: 0" in done.stdout
    assert "Skipping registering function" not in done.stderr
