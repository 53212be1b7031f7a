"""Light at parse time: importing a DAG file loads none of the heavy libraries (DESIGN principle 6).

Each DAG file is imported in a fresh interpreter that has already imported Airflow, as the DAG
processor has, and under a mangled module name, as the DAG processor imports it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
# DESIGN.md principle 6 and STYLE.md rule 9 (ruff's banned-module-level-imports in pyproject.toml).
HEAVY = ("great_expectations", "pandas", "torch", "scipy", "sklearn", "sagemaker", "PIL", "jsonpath_ng")

PROBE = """
import importlib.util, json, sys

def loaded():
    return {name.partition(".")[0] for name in sys.modules}

import airflow  # noqa: F401  (the DAG processor's interpreter has Airflow loaded before any DAG file)
heavy = set(json.loads(sys.argv[2]))
# If Airflow itself ever loads one of them, a DAG file cannot be blamed for it: subtract that baseline.
baseline = loaded() & heavy
spec = importlib.util.spec_from_file_location("unusual_prefix_parse_light_probe", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
print(json.dumps({"baseline": sorted(baseline), "loaded": sorted((loaded() & heavy) - baseline)}))
"""


def _heavy_modules_loaded_by(dag_file: Path) -> dict[str, list[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(dag_file), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),  # conftest's throwaway AIRFLOW_HOME
        cwd=dag_file.parent,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, list[str]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("dag_file", sorted(DAGS.glob("*.py")), ids=lambda p: p.name)
def test_dag_file_imports_nothing_heavy(dag_file: Path) -> None:
    result = _heavy_modules_loaded_by(dag_file)

    assert result["loaded"] == [], f"{dag_file.name} loads {result['loaded']} at parse time"
    # Today Airflow alone loads none of them either; if that changes, the baseline keeps this test
    # about our files, and this line says so.
    assert result["baseline"] == [], f"Airflow itself now loads {result['baseline']}"


def test_probe_catches_a_heavy_import(tmp_path: Path) -> None:
    """The probe is not vacuous: a DAG file with a module-level heavy import is caught."""
    if importlib.util.find_spec("sklearn") is None:
        pytest.skip("scikit-learn is not installed")
    dag_file = tmp_path / "heavy_dag.py"
    dag_file.write_text("import sklearn  # noqa: F401\n")

    assert "sklearn" in _heavy_modules_loaded_by(dag_file)["loaded"]


def test_the_config_schema_imports_without_airflow(tmp_path: Path) -> None:
    """The demo reads its config before it has made its own Airflow home: importing Airflow then would
    write into the user's AIRFLOW_HOME (its logs folder, its airflow.cfg)."""
    code = (
        "import sys\n"
        "from airflow_dl_provider.pipelines.config import load_config\n"
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))\n"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "user-home")}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
    assert not (tmp_path / "user-home").exists()
