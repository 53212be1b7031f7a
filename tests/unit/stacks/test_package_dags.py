"""The packaged ``dags/`` carries the training code its configs point at, and the configs point at it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from airflow_dl_provider.pipelines.config import load_config
from airflow_dl_provider.stacks.dag_folder import package_dags
from airflow_dl_provider.stacks.render import StackError

ROOT = Path(__file__).resolve().parents[3]
DIGITS = ROOT / "dags" / "configs" / "digits.yaml"


def _dags(tmp_path: Path, **configs: str) -> Path:
    """A DAG folder with one digits-like config per ``name=source_dir``."""
    folder = tmp_path / "repo" / "dags"
    (folder / "configs").mkdir(parents=True)
    (folder / "dl_pipeline.py").write_text("# the DAG file\n")
    text = DIGITS.read_text()
    for name, source_dir in configs.items():
        body = text.replace("source_dir: ../../docker/training", f"source_dir: {source_dir}")
        (folder / "configs" / f"{name}.yaml").write_text(
            body.replace("pipeline: digits", f"pipeline: {name}")
        )
    return folder


def _code(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "train.py").write_text("print('train')\n")
    (path / "__pycache__").mkdir()
    (path / "__pycache__" / "train.cpython-312.pyc").write_bytes(b"")
    return path


def test_shipped_dags_carry_the_training_code(tmp_path):
    out = tmp_path / "dags"

    brought = package_dags(ROOT / "dags", out)

    assert brought == ["training_code/training"]
    assert (out / "training_code" / "training" / "train.py").read_bytes() == (
        ROOT / "docker" / "training" / "train.py"
    ).read_bytes()
    packaged = out / "configs" / "digits.yaml"
    # Only the source_dir line changed: the comments a user reads stay.
    before, after = DIGITS.read_text().splitlines(), packaged.read_text().splitlines()
    assert [(a, b) for a, b in zip(before, after, strict=True) if a != b] == [
        ("  source_dir: ../../docker/training", "  source_dir: ../training_code/training")
    ]
    training = load_config(packaged).training
    assert training.source_dir == str(out / "training_code" / "training")
    assert (Path(training.source_dir) / str(training.entry_point)).is_file()
    assert (out / ".airflowignore").read_text().splitlines() == ["training_code"]
    # The repository's own config is untouched.
    assert "source_dir: ../../docker/training" in DIGITS.read_text()


def test_packaged_dags_work_from_anywhere_the_folder_is_moved(tmp_path, monkeypatch):
    package_dags(ROOT / "dags", tmp_path / "build" / "dags")
    moved = tmp_path / "usr" / "local" / "airflow" / "dags"
    moved.parent.mkdir(parents=True)
    shutil.move(tmp_path / "build" / "dags", moved)
    monkeypatch.chdir(tmp_path)

    training = load_config(moved / "configs" / "digits.yaml").training

    assert training.source_dir == str(moved / "training_code" / "training")
    assert (Path(training.source_dir) / "train.py").is_file()


def test_code_inside_the_dag_folder_is_left_where_it_is(tmp_path):
    dags = _dags(tmp_path, inside="../code")
    _code(dags / "code")

    brought = package_dags(dags, tmp_path / "out")

    assert brought == []
    assert (tmp_path / "out" / "configs" / "inside.yaml").read_text() == (
        dags / "configs" / "inside.yaml"
    ).read_text()
    assert not (tmp_path / "out" / ".airflowignore").exists()


def test_one_folder_is_copied_once_and_same_names_do_not_collide(tmp_path):
    dags = _dags(tmp_path, a="../../team-a/training", b="../../team-a/training", c="../../team-c/training")
    _code(tmp_path / "repo" / "team-a" / "training")
    _code(tmp_path / "repo" / "team-c" / "training")
    out = tmp_path / "out"

    brought = package_dags(dags, out)

    assert brought == ["training_code/training", "training_code/training-2"]
    sources = {name: load_config(out / "configs" / f"{name}.yaml").training.source_dir for name in "abc"}
    assert sources == {
        "a": str(out / "training_code" / "training"),
        "b": str(out / "training_code" / "training"),
        "c": str(out / "training_code" / "training-2"),
    }
    assert not (out / "training_code" / "training" / "__pycache__").exists()


def test_flow_style_training_section_is_rewritten_too(tmp_path):
    dags = _dags(tmp_path)
    _code(tmp_path / "code")
    raw = yaml.safe_load(DIGITS.read_text())
    raw["training"]["source_dir"] = str(tmp_path / "code")
    (dags / "configs" / "flow.yaml").write_text(yaml.safe_dump(raw, default_flow_style=True))
    out = tmp_path / "out"

    package_dags(dags, out)

    assert load_config(out / "configs" / "flow.yaml").training.source_dir == str(
        out / "training_code" / "code"
    )


def test_s3_source_dir_needs_nothing(tmp_path):
    dags = _dags(tmp_path, remote="s3://bucket/code/sourcedir.tar.gz")

    assert package_dags(dags, tmp_path / "out") == []


def test_missing_training_code_fails_packaging_in_one_line(tmp_path):
    dags = _dags(tmp_path, lost="../../nowhere")

    with pytest.raises(StackError) as info:
        package_dags(dags, tmp_path / "out")

    message = str(info.value)
    assert "\n" not in message
    assert message == (
        f"--dags-folder: {dags / 'configs' / 'lost.yaml'}: training.source_dir: "
        f"{tmp_path / 'repo' / 'nowhere'} is not a directory; point it at the folder holding the entry point"
    )
