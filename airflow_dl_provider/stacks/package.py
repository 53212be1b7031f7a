"""``stack package``: the provider wheel, ``plugins.zip`` and ``requirements.txt`` for MWAA.

MWAA installs ``requirements.txt`` with pip on its workers. With a private web server and no NAT to
PyPI, pip can only reach what is already in the image and what ``plugins.zip`` (unzipped to
``/usr/local/airflow/plugins``) carries. So ``plugins.zip`` holds the provider wheel, a wheelhouse of
every distribution it needs that MWAA's image does not already have, and MWAA's constraints; and
``requirements.txt`` installs from there with ``--no-index``.

What "MWAA's image already has" means here: the resolution of ``apache-airflow`` and every
``apache-airflow-providers-*`` pinned in MWAA's constraints file. The wheelhouse is our wheel's
resolution under the same constraints, minus that set. Both resolutions are pip ``--dry-run``
reports (metadata only), so only the wheelhouse itself is downloaded.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from airflow_dl_provider.stacks.render import MWAA_VERSIONS, StackError

MWAA_PLUGINS_DIR = "/usr/local/airflow/plugins"
CONSTRAINTS_NAME = "constraints.txt"
DIST_NAME = "airflow-dl-provider"
_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Package:
    """What ``stack package`` wrote; the paths ``stack deploy`` uploads."""

    out_dir: Path
    wheel: Path
    plugins_zip: Path
    requirements: Path
    dags: Path | None
    wheelhouse: tuple[str, ...]


def _pip(python: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [python, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise StackError(f"stack package: pip {args[0]} failed: {' | '.join(tail)}")
    return proc


def build_wheel(project_dir: Path, out_dir: Path, python: str = sys.executable) -> Path:
    """Build the provider wheel from ``project_dir`` into ``out_dir``; return its path."""
    if not (project_dir / "pyproject.toml").is_file():
        raise StackError(f"--project-dir: {project_dir} has no pyproject.toml; run from the repository root")
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.glob("*.whl"))
    _pip(python, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out_dir), str(project_dir))
    built = sorted(set(out_dir.glob("airflow_dl_provider-*.whl")) - before) or sorted(
        out_dir.glob("airflow_dl_provider-*.whl")
    )
    if not built:
        raise StackError(f"stack package: no airflow_dl_provider wheel appeared in {out_dir}")
    return built[-1]


def constraint_pins(constraints: Path) -> dict[str, str]:
    """``name -> version`` for every ``name==version`` line of a constraints file."""
    pins = {}
    for line in constraints.read_text().splitlines():
        if match := _PIN.match(line):
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def mwaa_base_requirements(constraints: Path, airflow_version: str) -> list[str]:
    """What MWAA's image installs: Airflow and the providers its constraints pin."""
    pins = constraint_pins(constraints)
    if pins.get("apache-airflow") != airflow_version:
        raise StackError(
            f"--constraints: {constraints} pins apache-airflow=={pins.get('apache-airflow')}, "
            f"not {airflow_version}; use MWAA's constraints for {airflow_version}"
        )
    return [
        f"{name}=={version}"
        for name, version in sorted(pins.items())
        if name == "apache-airflow" or name.startswith("apache-airflow-providers-")
    ]


def resolve(requirements: list[str], constraints: Path, python: str = sys.executable) -> dict[str, str]:
    """``name -> version`` of everything pip would install for ``requirements`` into an empty env."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        _pip(
            python,
            "install",
            "--quiet",
            "--dry-run",
            "--ignore-installed",
            "--report",
            str(report),
            "--constraint",
            str(constraints),
            *requirements,
        )
        data = json.loads(report.read_text())
    return {canonical(i["metadata"]["name"]): i["metadata"]["version"] for i in data["install"]}


def build_wheelhouse(
    wheel: Path, constraints: Path, airflow_version: str, out_dir: Path, python: str = sys.executable
) -> list[Path]:
    """Wheels of every distribution ``wheel`` needs that MWAA's image lacks, built or downloaded."""
    base = resolve(mwaa_base_requirements(constraints, airflow_version), constraints, python)
    ours = resolve([str(wheel)], constraints, python)
    conflicts = sorted(n for n in ours if n in base and ours[n] != base[n])
    if conflicts:
        raise StackError(
            f"stack package: the provider needs other versions than MWAA ships of {', '.join(conflicts)}; "
            "relax the pins in pyproject.toml"
        )
    missing = sorted(f"{n}=={v}" for n, v in ours.items() if n not in base and n != canonical(DIST_NAME))
    out_dir.mkdir(parents=True, exist_ok=True)
    if missing:
        _pip(python, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out_dir), *missing)
    return sorted(out_dir.glob("*.whl"))


def requirements_text(version: str) -> str:
    """``requirements.txt`` for MWAA: the provider from ``plugins.zip``, nothing from the internet."""
    return "\n".join(
        [
            "# Written by 'airflow-dl stack package'. Installs the provider offline from plugins.zip,",
            "# which MWAA unzips to /usr/local/airflow/plugins; --no-index: pip never reaches PyPI.",
            "--no-index",
            f"--find-links {MWAA_PLUGINS_DIR}",
            f"--constraint {MWAA_PLUGINS_DIR}/{CONSTRAINTS_NAME}",
            f"{DIST_NAME}=={version}",
            "",
        ]
    )


def _wheel_version(wheel: Path) -> str:
    return wheel.name.split("-")[1]


def package(
    out_dir: Path,
    *,
    airflow_version: str,
    constraints: Path,
    project_dir: Path = Path(),
    dags_dir: Path | None = None,
    plugins_dir: Path | None = None,
    python: str = sys.executable,
) -> Package:
    """Write ``plugins.zip``, ``requirements.txt`` and ``dags/`` into ``out_dir``.

    :param constraints: MWAA's constraints for ``airflow_version`` (``constraints/mwaa-<v>.txt``).
    :param dags_dir: copied to ``out_dir/dags`` without caches or tests, if given.
    :param plugins_dir: Airflow plugin modules to put at the root of ``plugins.zip``, if given.
    :param python: the interpreter whose pip resolves and builds (Python 3.11 on Linux x86_64, as MWAA).
    """
    if airflow_version not in MWAA_VERSIONS:
        raise StackError(
            f"--airflow-version: MWAA does not offer {airflow_version!r} for this provider; use one of {', '.join(MWAA_VERSIONS)}"
        )
    if not constraints.is_file():
        raise StackError(
            f"--constraints: {constraints} does not exist; pass MWAA's constraints for {airflow_version}"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = build_wheel(project_dir.resolve(), out_dir / "dist", python)
    house = build_wheelhouse(wheel, constraints, airflow_version, out_dir / "wheelhouse", python)

    plugins_zip = out_dir / "plugins.zip"
    with zipfile.ZipFile(plugins_zip, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(wheel, wheel.name)
        for path in house:
            archive.write(path, path.name)
        archive.write(constraints, CONSTRAINTS_NAME)
        if plugins_dir is not None:
            for path in sorted(plugins_dir.glob("*.py")):
                archive.write(path, path.name)

    requirements = out_dir / "requirements.txt"
    requirements.write_text(requirements_text(_wheel_version(wheel)))

    dags_out = None
    if dags_dir is not None:
        dags_out = out_dir / "dags"
        shutil.rmtree(dags_out, ignore_errors=True)
        shutil.copytree(dags_dir, dags_out, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests"))
    return Package(out_dir, wheel, plugins_zip, requirements, dags_out, tuple(p.name for p in house))
