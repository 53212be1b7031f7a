"""``stack package``: the provider wheel, ``plugins.zip``, ``requirements.txt`` and ``dags/`` for MWAA.

MWAA's images (GitHub ``aws/amazon-mwaa-docker-images``, copied inputs in ``constraints/mwaa/``)
run Python 3.12 on Amazon Linux 2023, x86_64. The image installs its own packages with
``safe-pip-install -c airflow_constraints.txt <required packages>``; a user's ``requirements.txt``
is installed with ``pip3 install --constraint mwaa_essential_constraints.txt -r requirements.txt``
after ``plugins.zip`` is unzipped to ``/usr/local/airflow/plugins``. With a private web server and
no NAT nothing reaches PyPI, so ``requirements.txt`` says ``--no-index`` and ``--find-links`` the
wheels that ``plugins.zip`` carries.

What is shipped: the provider's resolution beside the image's packages, under both of MWAA's
constraint files, on Python 3.12, minus the image's own resolution (a package the image already
has at that version is not shipped). Both resolutions are pip ``--dry-run`` reports (metadata
only); then only the difference is downloaded, as cp312 manylinux wheels.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from airflow_dl_provider.stacks.render import MWAA_VERSIONS, StackError

MWAA_PLUGINS_DIR = "/usr/local/airflow/plugins"
WHEELS_DIR = "wheels"
CONSTRAINTS_NAME = "constraints.txt"
DIST_NAME = "airflow-dl-provider"
MWAA_PYTHON = "3.12"
# Amazon Linux 2023 has glibc 2.34: every manylinux wheel up to 2_34 runs there.
MWAA_PLATFORMS = ("manylinux2014_x86_64", *(f"manylinux_2_{n}_x86_64" for n in range(17, 35)))
# The image builds these from source against libpq and libcurl. They have no dependencies, and the
# provider needs neither, so resolving the image without them changes nothing else.
SOURCE_BUILT_IN_IMAGE = frozenset({"psycopg2", "pycurl"})
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
    training_code: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resolved:
    """One distribution of a pip resolution: its version and whether PyPI has a wheel for it."""

    version: str
    has_wheel: bool = True


@dataclass(frozen=True)
class MwaaImage:
    """MWAA's install inputs for one Airflow version, as copied into ``constraints/mwaa/``."""

    airflow_version: str
    airflow_constraints: Path
    essential_constraints: Path
    required_packages: tuple[str, ...]

    @classmethod
    def load(cls, directory: Path, airflow_version: str) -> MwaaImage:
        """Read ``directory``'s files for ``airflow_version`` and check they are for that version."""
        files = [
            directory / f"{stem}-{airflow_version}.txt"
            for stem in ("airflow_constraints", "mwaa_essential_constraints", "required-packages")
        ]
        for path in files:
            if not path.is_file():
                raise StackError(
                    f"--mwaa-constraints: {path} is missing; copy MWAA's files for {airflow_version} "
                    "there (constraints/mwaa/README.md says from where)"
                )
        # Airflow 3's own constraints do not pin apache-airflow; MWAA's essential constraints always do.
        for path, must_pin in ((files[0], False), (files[1], True)):
            pinned = constraint_pins(path).get("apache-airflow")
            if (pinned is not None or must_pin) and pinned != airflow_version:
                raise StackError(
                    f"--mwaa-constraints: {path} pins apache-airflow=={pinned}, not {airflow_version}; "
                    f"use MWAA's files for {airflow_version}"
                )
        lines = files[2].read_text().splitlines()
        required = tuple(
            line.strip().replace("${AIRFLOW_VERSION}", airflow_version)
            for line in lines
            if line.strip() and not line.lstrip().startswith("#")
        )
        return cls(airflow_version, files[0], files[1], required)

    def image_requirements(self) -> list[str]:
        """What the image's bootstrap installs, less what it builds from source (see above)."""
        return [
            r
            for r in self.required_packages
            if canonical(re.split(r"[\[=<>!~; ]", r)[0]) not in SOURCE_BUILT_IN_IMAGE
        ]

    def constraint_args(self) -> list[str]:
        """Both constraint files, as ``safe-pip-install`` applies them to the image's install."""
        return [
            "--constraint",
            str(self.essential_constraints),
            "--constraint",
            str(self.airflow_constraints),
        ]


def constraint_pins(constraints: Path) -> dict[str, str]:
    """``name -> version`` for every ``name==version`` line of a constraints file."""
    pins = {}
    for line in constraints.read_text().splitlines():
        if match := _PIN.match(line):
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def _pip(python: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [python, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        lines = [
            line.strip()
            for line in (proc.stderr or proc.stdout).splitlines()
            if line.strip() and "is ignored: it is neither a file nor a directory" not in line
        ]
        raise StackError(f"stack package: pip {args[0]} failed: {' | '.join(lines[-4:])}")
    return proc


def check_python(python: str) -> str:
    """``python`` if it is a Python 3.12, as MWAA's images; a one-line error otherwise."""
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise StackError(f"--python: cannot run {python}; pass a Python 3.12 interpreter") from None
    wanted = MWAA_PYTHON
    if out != wanted:
        raise StackError(
            f"--python: {python} is Python {out}; MWAA runs Python {wanted}: pass a Python {wanted} "
            "(e.g. $(pyenv root)/versions/3.12.*/bin/python3.12)"
        )
    return python


def find_python() -> str:
    """A Python 3.12: this one if it is, else pyenv's newest 3.12.x, else ``python3.12`` on ``PATH``."""
    import os
    import shutil

    if "{}.{}".format(*sys.version_info[:2]) == MWAA_PYTHON:
        return sys.executable
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found = sorted(
        root.glob("versions/3.12.*/bin/python3.12"),
        key=lambda p: [int(x) if x.isdigit() else -1 for x in p.parts[-3].split(".")],
    )
    if found:
        return str(found[-1])
    if on_path := shutil.which("python3.12"):
        return on_path
    raise StackError("--python: no Python 3.12 found (MWAA runs 3.12); install one or pass --python PATH")


def build_wheel(project_dir: Path, out_dir: Path, python: str = sys.executable) -> Path:
    """Build the provider wheel (pure Python, ``py3-none-any``) from ``project_dir`` into ``out_dir``."""
    if not (project_dir / "pyproject.toml").is_file():
        raise StackError(f"--project-dir: {project_dir} has no pyproject.toml; run from the repository root")
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("airflow_dl_provider-*.whl"):
        old.unlink()
    _pip(python, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out_dir), str(project_dir))
    built = sorted(out_dir.glob("airflow_dl_provider-*.whl"))
    if not built:
        raise StackError(f"stack package: no airflow_dl_provider wheel appeared in {out_dir}")
    return built[-1]


def resolve(requirements: list[str], image: MwaaImage, python: str) -> dict[str, Resolved]:
    """Everything pip would install for ``requirements`` into an empty Python, under MWAA's constraints."""
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
            *image.constraint_args(),
            *requirements,
        )
        data = json.loads(report.read_text())
    return {
        canonical(item["metadata"]["name"]): Resolved(
            item["metadata"]["version"],
            item.get("download_info", {}).get("url", "").endswith(".whl"),
        )
        for item in data["install"]
    }


def wheelhouse_plan(ours: dict[str, Resolved], image: dict[str, Resolved]) -> dict[str, Resolved]:
    """What to ship: every distribution of ``ours`` the image lacks at that version, not the provider."""
    return {
        name: item
        for name, item in sorted(ours.items())
        if name != canonical(DIST_NAME) and (name not in image or image[name].version != item.version)
    }


def _wheel_name(filename: str) -> str:
    return canonical(filename.split("-")[0])


def fetch_wheels(plan: dict[str, Resolved], out_dir: Path, python: str) -> list[Path]:
    """cp312 manylinux (or pure) wheels of ``plan`` in ``out_dir``: downloaded, or built from an sdist."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.whl"):
        old.unlink()
    wheels = [f"{name}=={item.version}" for name, item in plan.items() if item.has_wheel]
    sdists = [f"{name}=={item.version}" for name, item in plan.items() if not item.has_wheel]
    if wheels:
        platforms = [arg for platform in MWAA_PLATFORMS for arg in ("--platform", platform)]
        _pip(
            python,
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            MWAA_PYTHON,
            "--implementation",
            "cp",
            *platforms,
            "--dest",
            str(out_dir),
            *wheels,
        )
    if sdists:
        _pip(python, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out_dir), *sdists)
    found = sorted(out_dir.glob("*.whl"))
    for path in found:
        # A wheel built here from an sdist carries this machine's tag; MWAA needs Linux x86_64 or pure.
        if not (path.name.endswith("-none-any.whl") or ("linux" in path.name and "x86_64" in path.name)):
            raise StackError(
                f"stack package: {path.name} was built for this machine, not MWAA's Linux x86_64; "
                "run stack package on Linux x86_64"
            )
    missing = set(plan) - {_wheel_name(p.name) for p in found}
    if missing:
        raise StackError(f"stack package: no wheel for {', '.join(sorted(missing))} in {out_dir}")
    return found


def constraints_text(image: MwaaImage, plan: dict[str, Resolved]) -> str:
    """MWAA's Airflow constraints, plus a pin for each shipped wheel they leave open."""
    base = image.airflow_constraints.read_text()
    pinned = constraint_pins(image.airflow_constraints)
    extra = [f"{name}=={item.version}" for name, item in plan.items() if name not in pinned]
    if not extra:
        return base
    header = "# airflow-dl-provider's wheelhouse in plugins.zip: what the constraints above leave open"
    return base.rstrip("\n") + "\n" + "\n".join([header, *extra, ""])


def requirements_text(airflow_version: str, version: str) -> str:
    """``requirements.txt`` for MWAA: the provider and its wheels from ``plugins.zip``, never PyPI."""
    return "\n".join(
        [
            f"# Written by 'airflow-dl stack package' for Amazon MWAA, Apache Airflow {airflow_version}, "
            "Python 3.12.",
            "# MWAA unzips plugins.zip to /usr/local/airflow/plugins, then runs pip3 install with",
            "# mwaa_essential_constraints.txt and this file. --no-index: nothing comes from PyPI, so it",
            "# works with a private web server and no NAT; the constraints are MWAA's Airflow constraints.",
            "--no-index",
            f"--find-links {MWAA_PLUGINS_DIR}/{WHEELS_DIR}",
            f"--constraint {MWAA_PLUGINS_DIR}/{CONSTRAINTS_NAME}",
            f"{DIST_NAME}=={version}",
            "",
        ]
    )


def write_zip(path: Path, members: dict[str, bytes]) -> None:
    """Write ``members`` (name -> bytes) as a zip whose bytes depend on nothing else.

    Entries are sorted and carry a fixed timestamp and mode: a rebuild of the same package gives the
    same ``plugins.zip`` bytes, so ``stack deploy`` uploads nothing and MWAA is not restarted (a new
    S3 object version of plugins.zip is what makes MWAA reinstall). The provider wheel itself is
    reproducible (hatchling's default) and PyPI's wheels are fixed bytes.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, members[name])


def _wheel_version(wheel: Path) -> str:
    return wheel.name.split("-")[1]


def package(
    out_dir: Path,
    *,
    airflow_version: str,
    mwaa_constraints: Path | None = None,
    project_dir: Path = Path(),
    dags_dir: Path | None = None,
    plugins_dir: Path | None = None,
    python: str | None = None,
) -> Package:
    """Write ``plugins.zip``, ``requirements.txt`` and ``dags/`` into ``out_dir``.

    :param airflow_version: the MWAA environment's Airflow version (``2.11.0`` or ``3.0.6``).
    :param mwaa_constraints: the folder of MWAA's files (default ``<project_dir>/constraints/mwaa``).
    :param dags_dir: copied to ``out_dir/dags`` without caches or tests, with the training code its
        pipeline configs point at (see :mod:`airflow_dl_provider.stacks.dag_folder`), if given.
    :param plugins_dir: Airflow plugin modules to put at the root of ``plugins.zip``, if given.
    :param python: a Python 3.12 whose pip resolves and downloads (default: :func:`find_python`).
    """
    if airflow_version not in MWAA_VERSIONS:
        raise StackError(
            f"--airflow-version: MWAA does not offer {airflow_version!r} for this provider; use one of {', '.join(MWAA_VERSIONS)}"
        )
    project_dir = project_dir.resolve()
    image = MwaaImage.load(mwaa_constraints or project_dir / "constraints" / "mwaa", airflow_version)
    python = check_python(python or find_python())
    out_dir.mkdir(parents=True, exist_ok=True)

    wheel = build_wheel(project_dir, out_dir / "dist", python)
    image_set = resolve(image.image_requirements(), image, python)
    ours = resolve([*image.image_requirements(), str(wheel)], image, python)
    plan = wheelhouse_plan(ours, image_set)
    house = fetch_wheels(plan, out_dir / "wheelhouse", python)

    plugins_zip = out_dir / "plugins.zip"
    members = {f"{WHEELS_DIR}/{path.name}": path.read_bytes() for path in [wheel, *house]}
    members[CONSTRAINTS_NAME] = constraints_text(image, plan).encode()
    if plugins_dir is not None:
        members.update({path.name: path.read_bytes() for path in sorted(plugins_dir.glob("*.py"))})
    write_zip(plugins_zip, members)

    requirements = out_dir / "requirements.txt"
    requirements.write_text(requirements_text(airflow_version, _wheel_version(wheel)))

    dags_out: Path | None = None
    code: tuple[str, ...] = ()
    if dags_dir is not None:
        from airflow_dl_provider.stacks.dag_folder import package_dags

        dags_out = out_dir / "dags"
        code = tuple(package_dags(dags_dir, dags_out))
    return Package(out_dir, wheel, plugins_zip, requirements, dags_out, tuple(p.name for p in house), code)
