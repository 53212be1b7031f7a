"""``stack package`` without the network: MWAA's inputs, the wheelhouse plan, the files it writes.

pip is replaced by a fake that records its arguments and writes what pip would (a report, wheels),
so these tests check what is asked of pip and what is done with its answers. The real resolution,
download and offline install run in tests/integration/test_package_offline.py.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from airflow_dl_provider.stacks import package as pkg
from airflow_dl_provider.stacks.render import StackError

ROOT = Path(__file__).resolve().parents[3]
MWAA = ROOT / "constraints" / "mwaa"


@pytest.mark.parametrize("version", ["2.11.0", "3.0.6"])
def test_mwaa_inputs_load_for_each_version(version):
    image = pkg.MwaaImage.load(MWAA, version)

    assert f"apache-airflow[celery,statsd]=={version}" in image.required_packages
    assert not any("${" in r for r in image.required_packages)
    requirements = image.image_requirements()
    assert "psycopg2" not in requirements and "pycurl" not in requirements
    assert "apache-airflow-providers-amazon[aiobotocore]" in requirements
    assert len(requirements) == len(image.required_packages) - 2
    assert image.constraint_args() == [
        "--constraint",
        str(MWAA / f"mwaa_essential_constraints-{version}.txt"),
        "--constraint",
        str(MWAA / f"airflow_constraints-{version}.txt"),
    ]


def test_mwaa_inputs_for_another_version_are_refused(tmp_path):
    for stem in ("airflow_constraints", "mwaa_essential_constraints", "required-packages"):
        (tmp_path / f"{stem}-3.0.6.txt").write_bytes((MWAA / f"{stem}-2.11.0.txt").read_bytes())

    with pytest.raises(StackError) as info:
        pkg.MwaaImage.load(tmp_path, "3.0.6")

    assert "\n" not in str(info.value)
    assert str(info.value).startswith("--mwaa-constraints: ")
    assert "pins apache-airflow==2.11.0, not 3.0.6" in str(info.value)


def test_missing_mwaa_inputs_say_where_they_come_from(tmp_path):
    with pytest.raises(
        StackError, match=r"^--mwaa-constraints: .*airflow_constraints-3\.0\.6\.txt is missing"
    ):
        pkg.MwaaImage.load(tmp_path, "3.0.6")


def test_wheelhouse_is_what_the_image_lacks_at_that_version():
    image = {"boto3": pkg.Resolved("1.40.0"), "numpy": pkg.Resolved("1.26.4"), "attrs": pkg.Resolved("25.1")}
    ours = {
        **image,
        "attrs": pkg.Resolved("25.3"),  # a different version than the image's: shipped
        "great-expectations": pkg.Resolved("1.5.0"),
        "airflow-dl-provider": pkg.Resolved("0.1.0"),  # the provider's wheel is added on its own
    }

    plan = pkg.wheelhouse_plan(ours, image)

    assert plan == {"attrs": pkg.Resolved("25.3"), "great-expectations": pkg.Resolved("1.5.0")}


def test_requirements_install_offline_with_a_constraint_mwaa_recognises():
    text = pkg.requirements_text("3.0.6", "0.1.0")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]

    assert lines == [
        "--no-index",
        "--find-links /usr/local/airflow/plugins/wheels",
        "--constraint /usr/local/airflow/plugins/constraints.txt",
        "airflow-dl-provider==0.1.0",
    ]
    # MWAA's entrypoint (mwaa/utils/user_requirements.py) forces Airflow's constraints on a
    # requirements.txt unless a line matches this.
    assert any(re.search(r"-c |--constraint ", line) for line in lines)


def test_shipped_constraints_are_mwaa_airflow_constraints_plus_open_pins():
    image = pkg.MwaaImage.load(MWAA, "3.0.6")
    pinned = pkg.constraint_pins(image.airflow_constraints)
    numpy = pinned["numpy"]

    text = pkg.constraints_text(
        image, {"numpy": pkg.Resolved(numpy), "great-expectations": pkg.Resolved("1.24.1")}
    )

    assert text.startswith(image.airflow_constraints.read_text().rstrip("\n"))
    added = text.removeprefix(image.airflow_constraints.read_text().rstrip("\n")).splitlines()
    assert [line for line in added if line and not line.startswith("#")] == ["great-expectations==1.24.1"]


def test_python_other_than_312_is_refused_in_one_line():
    if sys.version_info[:2] == (3, 12):
        pytest.skip("this interpreter is MWAA's Python")
    with pytest.raises(StackError) as info:
        pkg.check_python(sys.executable)

    message = str(info.value)
    assert "\n" not in message and message.startswith(f"--python: {sys.executable} is Python 3.")
    assert "MWAA runs Python 3.12" in message


def test_unknown_airflow_version_fails_before_building(tmp_path, monkeypatch):
    monkeypatch.setattr(pkg, "_pip", lambda *a: pytest.fail("pip ran"))

    with pytest.raises(StackError, match=r"^--airflow-version: MWAA does not offer '2\.10\.3'"):
        pkg.package(tmp_path, airflow_version="2.10.3", project_dir=ROOT)


class FakePip:
    """Stands in for ``python -m pip``: records each call and writes what pip would."""

    def __init__(self, files: dict[str, list[str]], report: list[dict[str, Any]] | None = None) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.files = files
        self.report = report or []

    def __call__(self, python: str, *args: str) -> None:
        self.calls.append(args)
        if "--report" in args:
            Path(args[args.index("--report") + 1]).write_text(json.dumps({"install": self.report}))
        for flag in ("--dest", "--wheel-dir"):
            if flag in args:
                for name in self.files[args[0]]:
                    (Path(args[args.index(flag) + 1]) / name).write_bytes(b"")


def test_resolve_reads_pip_report(monkeypatch):
    report = [
        {
            "metadata": {"name": "Great_Expectations", "version": "1.24.1"},
            "download_info": {"url": "https://x/great_expectations-1.24.1-py3-none-any.whl"},
        },
        {
            "metadata": {"name": "tiny", "version": "0.1"},
            "download_info": {"url": "https://x/tiny-0.1.tar.gz"},
        },
    ]
    fake = FakePip({}, report)
    monkeypatch.setattr(pkg, "_pip", fake)
    image = pkg.MwaaImage.load(MWAA, "3.0.6")

    resolved = pkg.resolve(["great-expectations"], image, "python3.12")

    assert resolved == {
        "great-expectations": pkg.Resolved("1.24.1", has_wheel=True),
        "tiny": pkg.Resolved("0.1", has_wheel=False),
    }
    (args,) = fake.calls
    assert args[:4] == ("install", "--quiet", "--dry-run", "--ignore-installed")
    assert args[-5:] == (*image.constraint_args(), "great-expectations")


def test_wheels_are_downloaded_for_mwaa_python_and_platform(tmp_path, monkeypatch):
    fake = FakePip(
        {
            "download": ["numpy-1.26.4-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"],
            "wheel": ["tiny-0.1-py3-none-any.whl"],
        }
    )
    monkeypatch.setattr(pkg, "_pip", fake)

    found = pkg.fetch_wheels(
        {"numpy": pkg.Resolved("1.26.4"), "tiny": pkg.Resolved("0.1", has_wheel=False)}, tmp_path, "py"
    )

    assert [p.name for p in found] == [
        "numpy-1.26.4-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "tiny-0.1-py3-none-any.whl",
    ]
    download, build = fake.calls
    assert download[0] == "download" and download[-1] == "numpy==1.26.4"
    assert "--only-binary=:all:" in download and "--no-deps" in download
    assert download[download.index("--python-version") + 1] == "3.12"
    assert download[download.index("--implementation") + 1] == "cp"
    platforms = [download[i + 1] for i, a in enumerate(download) if a == "--platform"]
    assert "manylinux2014_x86_64" in platforms and "manylinux_2_34_x86_64" in platforms
    assert "manylinux_2_35_x86_64" not in platforms  # newer than Amazon Linux 2023's glibc 2.34
    assert build[0] == "wheel" and build[-1] == "tiny==0.1"


def test_a_wheel_built_for_another_platform_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(pkg, "_pip", FakePip({"wheel": ["tiny-0.1-cp312-cp312-macosx_14_0_arm64.whl"]}))

    with pytest.raises(
        StackError, match=r"tiny-0\.1-cp312-cp312-macosx_14_0_arm64\.whl was built for this machine"
    ):
        pkg.fetch_wheels({"tiny": pkg.Resolved("0.1", has_wheel=False)}, tmp_path, "py")


def test_a_planned_wheel_that_did_not_arrive_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(
        pkg, "_pip", FakePip({"download": ["numpy-1.26.4-cp312-cp312-manylinux2014_x86_64.whl"]})
    )

    with pytest.raises(StackError, match=r"no wheel for scipy"):
        pkg.fetch_wheels({"numpy": pkg.Resolved("1.26.4"), "scipy": pkg.Resolved("1.16.1")}, tmp_path, "py")


def _fake_package(tmp_path: Path, monkeypatch, out: str = "out") -> pkg.Package:
    """``stack package`` with pip faked: the provider wheel, one wheel MWAA's image lacks, one plugin."""
    image_report = [
        {"metadata": {"name": "numpy", "version": "1.26.4"}, "download_info": {"url": "numpy.whl"}}
    ]
    ours_report = [
        *image_report,
        {"metadata": {"name": "great-expectations", "version": "1.24.1"}, "download_info": {"url": "ge.whl"}},
        {"metadata": {"name": "airflow-dl-provider", "version": "0.1.0"}, "download_info": {"url": "p.whl"}},
    ]
    reports = iter([image_report, ours_report])

    def fake(python: str, *args: str) -> None:
        if args[0] == "wheel":  # the provider's own wheel
            (
                Path(args[args.index("--wheel-dir") + 1]) / "airflow_dl_provider-0.1.0-py3-none-any.whl"
            ).write_bytes(b"")
        elif "--report" in args:
            Path(args[args.index("--report") + 1]).write_text(json.dumps({"install": next(reports)}))
        else:
            assert args[-1] == "great-expectations==1.24.1"  # numpy is in the image: not downloaded
            (Path(args[args.index("--dest") + 1]) / "great_expectations-1.24.1-py3-none-any.whl").write_bytes(
                b""
            )

    monkeypatch.setattr(pkg, "_pip", fake)
    monkeypatch.setattr(pkg, "check_python", lambda python: python)
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    if not (plugins / "ui.py").exists():
        (plugins / "ui.py").write_text("# a plugin module\n")

    return pkg.package(
        tmp_path / out,
        airflow_version="3.0.6",
        project_dir=ROOT,
        dags_dir=ROOT / "dags",
        plugins_dir=plugins,
        python="python3.12",
    )


def test_package_writes_plugins_zip_requirements_and_dags(tmp_path, monkeypatch):
    """The whole command with pip faked: what lands in plugins.zip, and where."""
    result = _fake_package(tmp_path, monkeypatch)

    with zipfile.ZipFile(result.plugins_zip) as archive:
        assert sorted(archive.namelist()) == [
            "constraints.txt",
            "ui.py",
            "wheels/airflow_dl_provider-0.1.0-py3-none-any.whl",
            "wheels/great_expectations-1.24.1-py3-none-any.whl",
        ]
        assert archive.read("constraints.txt").decode().endswith("great-expectations==1.24.1\n")
    assert result.wheelhouse == ("great_expectations-1.24.1-py3-none-any.whl",)
    assert "airflow-dl-provider==0.1.0" in result.requirements.read_text()
    assert result.training_code == ("training_code/training",)


def test_a_rebuild_of_the_same_package_is_the_same_plugins_zip(tmp_path, monkeypatch):
    """Same contents, later files: same bytes, so deploy uploads nothing and MWAA is not restarted."""
    first = _fake_package(tmp_path, monkeypatch, "one").plugins_zip.read_bytes()
    later = time.time() + 3600
    os.utime(tmp_path / "plugins" / "ui.py", (later, later))
    second = _fake_package(tmp_path, monkeypatch, "two")
    assert second.plugins_zip.read_bytes() == first
    with zipfile.ZipFile(second.plugins_zip) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
