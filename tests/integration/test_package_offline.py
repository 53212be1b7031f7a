"""The packaged requirements.txt installs the provider offline, as on MWAA, on Airflow 2.11.0 and 3.0.6.

For each version: ``stack package`` builds the wheel, ``plugins.zip`` and ``requirements.txt`` with
the compat venv's Python 3.11 (``.venv-compat-<v>``, which ``make test-compat`` builds from MWAA's
constraints). Then a fresh venv stands in for MWAA's image and ``pip install -r requirements.txt``
runs in it with ``--no-index``, the unzipped ``plugins.zip`` as the only place to find wheels, and no
pip configuration (so no site-wide find-links or index can help).

Shortcut (to stay inside CI's time budget): the fresh venv is not populated by installing Airflow
again. MWAA's pre-installed set (Airflow and the providers MWAA's constraints pin, resolved) is
taken from the compat venv, which has exactly those versions installed: every file of those
distributions, and nothing else, is symlinked into one folder that a ``.pth`` file puts on the fresh
venv's path. pip sees them as installed, exactly as on MWAA; anything else the provider needs (Great
Expectations and its dependencies) must come from the wheelhouse in ``plugins.zip``. Two seconds of
symlinks instead of two minutes of installs per version.

Runs only from ``make test-package`` (part of ``make test-compat``), which sets
``AIRFLOW_DL_PACKAGE_TEST=1``; the compat venvs can be pointed elsewhere with
``AIRFLOW_DL_COMPAT_PYTHON_<2110|306>``.
"""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from airflow_dl_provider.stacks.package import (
    MWAA_PLUGINS_DIR,
    mwaa_base_requirements,
    package,
    resolve,
)

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        not os.environ.get("AIRFLOW_DL_PACKAGE_TEST"),
        reason="the offline MWAA install runs in 'make test-package' (part of make test-compat)",
    ),
]


def _compat_python(version: str) -> str:
    override = os.environ.get(f"AIRFLOW_DL_COMPAT_PYTHON_{version.replace('.', '')}")
    python = Path(override or ROOT / f".venv-compat-{version}" / "bin" / "python")
    if not python.exists():
        pytest.fail(f"{python} is missing; 'make test-compat' builds it")
    return str(python)


def _run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd)
    assert proc.returncode == 0, f"{' '.join(args)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


_LINK_BASE = r"""
import importlib.metadata as md, os, re, sys
names, target = set(sys.argv[2].split(",")), sys.argv[1]
for dist in md.distributions():
    if re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower() not in names:
        continue
    for f in dist.files or []:
        if str(f).startswith(".."):
            continue
        src, dst = str(dist.locate_file(f)), os.path.join(target, str(f))
        if os.path.exists(src) and not os.path.lexists(dst):
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            os.symlink(src, dst)
"""


def _mwaa_mirror(compat_python: str, base: dict[str, str], where: Path) -> str:
    """A fresh venv that sees exactly MWAA's pre-installed distributions (symlinked from the compat venv)."""
    _run(compat_python, "-m", "venv", str(where / "venv"))
    python = str(where / "venv" / "bin" / "python")
    site = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    base_dir = where / "mwaa-base"
    base_dir.mkdir()
    _run(compat_python, "-c", _LINK_BASE, str(base_dir), ",".join(sorted(base)))
    (Path(site) / "mwaa_base.pth").write_text(f"{base_dir}\n")
    return python


@pytest.mark.parametrize("version", ["2.11.0", "3.0.6"])
def test_packaged_requirements_install_offline(tmp_path, version):
    compat = _compat_python(version)
    constraints = ROOT / "constraints" / f"mwaa-{version}.txt"
    result = package(
        tmp_path / "out",
        airflow_version=version,
        constraints=constraints,
        project_dir=ROOT,
        dags_dir=ROOT / "dags",
        python=compat,
    )
    requirements = result.requirements.read_text()
    assert "--no-index" in requirements and f"--find-links {MWAA_PLUGINS_DIR}" in requirements
    with zipfile.ZipFile(result.plugins_zip) as archive:
        names = archive.namelist()
    assert result.wheel.name in names and "constraints.txt" in names
    assert any(n.startswith("great_expectations-") for n in names), names
    assert (result.dags / "configs").is_dir()

    base = resolve(mwaa_base_requirements(constraints, version), constraints, compat)
    assert "great-expectations" not in base
    python = _mwaa_mirror(compat, base, tmp_path)
    version_seen = _run(python, "-c", "import airflow; print(airflow.__version__)").strip()
    assert version_seen == version

    plugins = tmp_path / "plugins"
    with zipfile.ZipFile(result.plugins_zip) as archive:
        archive.extractall(plugins)
    local_requirements = tmp_path / "requirements.txt"
    local_requirements.write_text(requirements.replace(MWAA_PLUGINS_DIR, str(plugins)))
    # No pip configuration at all: the site config's find-links and indexes must not help.
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INPUT": "1"}
    env.pop("PIP_FIND_LINKS", None)
    env.pop("PIP_INDEX_URL", None)
    env.pop("PIP_EXTRA_INDEX_URL", None)
    env.pop("PIP_CONSTRAINT", None)
    _run(
        python, "-m", "pip", "install", "--disable-pip-version-check", "-r", str(local_requirements), env=env
    )

    # Both came from plugins.zip into the fresh venv, not from the MWAA base folder.
    where = _run(
        python,
        "-c",
        "import airflow_dl_provider, great_expectations; "
        "from airflow_dl_provider.operators.training import DistributedTrainingOperator; "
        "print(airflow_dl_provider.__file__); print(great_expectations.__file__)",
        env=env,
        cwd=tmp_path,  # not the checkout, whose airflow_dl_provider/ would shadow the installed one
    )
    venv = str(Path(python).parents[1])
    assert all(line.startswith(venv) for line in where.splitlines()[-2:]), where
