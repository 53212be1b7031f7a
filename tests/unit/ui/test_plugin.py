"""The plugin is imported by every Airflow process: it must cost nothing (DESIGN principle 6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import json, sys
import airflow.plugins_manager  # every Airflow process has it before plugins load
before = set(sys.modules)
from airflow_dl_provider.ui.plugin import DeepLearningPlugin
loaded = sorted({m.partition(".")[0] for m in set(sys.modules) - before})
views = [(v["url_route"], v["destination"], v["href"]) for v in DeepLearningPlugin.external_views]
apps = [(a["url_prefix"], type(a["app"]).__name__) for a in DeepLearningPlugin.fastapi_apps]
print(json.dumps({"loaded": loaded, "views": views, "apps": apps}))
"""


def test_the_plugin_imports_only_itself_and_registers_the_page() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        check=True,
    )
    result = json.loads(probe.stdout.strip().splitlines()[-1])

    assert result["loaded"] == ["airflow_dl_provider"], result["loaded"]
    assert ["deep-learning", "nav", "/deep-learning/"] in result["views"]
    assert ["deep-learning-dag", "dag", "/deep-learning/dags/{DAG_ID}"] in result["views"]
    assert result["apps"] == [["/deep-learning", "LazyApp"]]
