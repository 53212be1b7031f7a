"""The packaged requirements.txt installs offline into MWAA's image, and the packaged dags/ import there.

For each MWAA version, ``.venv-mwaa-<v>`` (``make test-package`` builds it, see the Makefile) is MWAA's
image as its bootstrap builds it: Python 3.12, ``required-packages-<v>.txt`` installed with
``-c airflow_constraints-<v>.txt`` under ``mwaa_essential_constraints-<v>.txt`` (psycopg2 and pycurl
left out: they build against libpq and libcurl headers, and nothing here imports them). Then:

1. ``stack package`` resolves and downloads with that venv's Python 3.12 and pip.
2. A full copy of the venv (real files, so the test never changes the shared one and pip sees exactly
   the image's installed distributions) gets ``plugins.zip`` unzipped beside it and the packaged
   ``requirements.txt`` installed the way MWAA's entrypoint runs ``safe-pip-install``:
   ``pip3 install --constraint mwaa_essential_constraints.txt -r requirements.txt``, with no pip
   configuration and no index: only the wheels in ``plugins.zip`` can satisfy it.
3. Airflow's DagBag parses the packaged ``dags/`` in that venv: 0 import errors.

The one liberty: ``/usr/local/airflow/plugins`` in ``requirements.txt`` is replaced by the folder the
zip was unzipped into. Runs only from ``make test-package`` (``AIRFLOW_DL_PACKAGE_TEST=1``); the venvs
can be pointed elsewhere with ``AIRFLOW_DL_MWAA_VENV_<2110|306>`` and the versions chosen with
``AIRFLOW_DL_PACKAGE_VERSIONS`` (comma-separated).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from airflow_dl_provider.stacks.package import (
    CONSTRAINTS_NAME,
    MWAA_PLUGINS_DIR,
    WHEELS_DIR,
    canonical,
    package,
)

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = [v for v in os.environ.get("AIRFLOW_DL_PACKAGE_VERSIONS", "2.11.0,3.0.6").split(",") if v]
HEAVY = ("torch", "pandas", "great_expectations", "scipy", "sklearn")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1500),
    pytest.mark.skipif(
        not os.environ.get("AIRFLOW_DL_PACKAGE_TEST"),
        reason="the offline MWAA install runs in 'make test-package' (part of make test-compat)",
    ),
]

_PARSE = r"""
import json, sys
from airflow.models.dagbag import DagBag
from airflow.utils.file import list_py_file_paths
import airflow_dl_provider
folder = sys.argv[1]
bag = DagBag(dag_folder=folder, include_examples=False)
print(json.dumps({
    "dags": sorted(bag.dag_ids),
    "errors": {path: str(error)[-800:] for path, error in bag.import_errors.items()},
    "scanned": list_py_file_paths(folder, safe_mode=False),
    "provider": airflow_dl_provider.__file__,
    "heavy": sorted(m for m in sys.argv[2].split(",") if m in sys.modules),
}))
"""


def _mwaa_venv(version: str) -> Path:
    override = os.environ.get(f"AIRFLOW_DL_MWAA_VENV_{version.replace('.', '')}")
    venv = Path(override or ROOT / f".venv-mwaa-{version}")
    if not (venv / ".installed").exists() and not override:
        pytest.fail(f"{venv} is missing; 'make test-package' builds it")
    return venv


def _run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    assert proc.returncode == 0, f"{' '.join(args)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _freeze(python: str) -> set[tuple[str, str]]:
    out = _run(python, "-m", "pip", "--disable-pip-version-check", "list", "--format=json")
    return {(canonical(d["name"]), d["version"]) for d in json.loads(out)}


def _isolated_env(**extra: str) -> dict[str, str]:
    """No pip configuration, index or find-links of this machine: only what requirements.txt names."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "AIRFLOW", "PYTHON"))}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INPUT": "1", **extra}


@pytest.mark.parametrize("version", VERSIONS)
def test_package_installs_offline_and_dags_import(tmp_path, version):
    venv = _mwaa_venv(version)
    started = time.monotonic()
    result = package(
        tmp_path / "out",
        airflow_version=version,
        project_dir=ROOT,
        dags_dir=ROOT / "dags",
        python=str(venv / "bin" / "python"),
    )
    packaged_s = time.monotonic() - started

    requirements = result.requirements.read_text()
    lines = [line for line in requirements.splitlines() if line and not line.startswith("#")]
    assert lines == [
        "--no-index",
        f"--find-links {MWAA_PLUGINS_DIR}/{WHEELS_DIR}",
        f"--constraint {MWAA_PLUGINS_DIR}/{CONSTRAINTS_NAME}",
        f"airflow-dl-provider=={result.wheel.name.split('-')[1]}",
    ]
    with zipfile.ZipFile(result.plugins_zip) as archive:
        names = archive.namelist()
    wheels = [n.removeprefix(f"{WHEELS_DIR}/") for n in names if n.endswith(".whl")]
    assert all(n.startswith(f"{WHEELS_DIR}/") for n in names if n.endswith(".whl"))
    assert CONSTRAINTS_NAME in names and result.wheel.name in wheels
    assert any(n.startswith("great_expectations-") for n in wheels), wheels
    # MWAA's Python and platform only: cp312 manylinux x86_64, or pure Python.
    for name in wheels:
        tags = name.removesuffix(".whl").split("-")[-3:]
        assert tags[2] == "any" or (tags[0] == "cp312" and "manylinux" in tags[2] and "x86_64" in tags[2]), (
            name
        )

    # Nothing the image already has at that version is shipped.
    image_python = str(venv / "bin" / "python")
    image = _freeze(image_python)
    shipped = {(canonical(n.split("-")[0]), n.split("-")[1]) for n in wheels}
    assert not shipped & image, sorted(shipped & image)

    # The image, copied for real (no links into the shared venv), and plugins.zip where MWAA puts it.
    started = time.monotonic()
    copy = tmp_path / "image"
    _run("cp", "-a", str(venv), str(copy))
    python = str(copy / "bin" / "python")
    plugins = tmp_path / "plugins"
    with zipfile.ZipFile(result.plugins_zip) as archive:
        archive.extractall(plugins)
    local = tmp_path / "requirements.txt"
    local.write_text(requirements.replace(MWAA_PLUGINS_DIR, str(plugins)))
    assert any(re.search(r"-c |--constraint ", line) for line in local.read_text().splitlines())
    essential = ROOT / "constraints" / "mwaa" / f"mwaa_essential_constraints-{version}.txt"
    _run(
        python,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--constraint",
        str(essential),
        "-r",
        str(local),
        env=_isolated_env(),
        cwd=tmp_path,
    )
    installed_s = time.monotonic() - started

    # Exactly the shipped wheels were installed, and nothing of the image changed.
    assert _freeze(python) - image == shipped
    assert image - _freeze(python) == set()

    dags = result.dags
    assert dags is not None and result.training_code == ("training_code/training",)
    home = tmp_path / "airflow-home"
    home.mkdir()
    env = _isolated_env(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(plugins),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    parsed = json.loads(
        _run(python, "-c", _PARSE, str(dags), ",".join(HEAVY), env=env, cwd=tmp_path).splitlines()[-1]
    )
    assert parsed["errors"] == {}
    assert parsed["dags"] == ["dl_drift_monitor_digits", "dl_pipeline_digits", "dl_retrain_digits"]
    assert parsed["provider"].startswith(str(copy))
    assert parsed["heavy"] == []
    assert [Path(p).name for p in parsed["scanned"]] == ["dl_pipeline.py"]  # .airflowignore holds
    print(
        f"\nAirflow {version}: stack package {packaged_s:.0f} s, copy + offline install {installed_s:.0f} s, "
        f"{len(wheels)} wheels ({result.plugins_zip.stat().st_size / 2**20:.0f} MiB): {', '.join(sorted(wheels))}"
    )
