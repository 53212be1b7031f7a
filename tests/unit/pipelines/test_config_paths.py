"""Local paths in a pipeline config resolve against the config file, never the current directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_dl_provider.pipelines.config import PipelineConfig, load_config

DIGITS_YAML = Path(__file__).resolve().parents[3] / "dags" / "configs" / "digits.yaml"


def _write(folder: Path, source_dir: str) -> Path:
    raw: dict[str, Any] = yaml.safe_load(DIGITS_YAML.read_text())
    raw["training"]["source_dir"] = source_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_relative_source_dir_resolves_against_the_config_file_not_the_cwd(tmp_path, monkeypatch):
    config = _write(tmp_path / "dags" / "configs", "../../code/training")
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)

    loaded = load_config(config)

    assert loaded.training.source_dir == str(tmp_path / "code" / "training")


def test_config_path_given_relative_to_the_cwd(tmp_path, monkeypatch):
    _write(tmp_path / "dags" / "configs", "training")
    monkeypatch.chdir(tmp_path / "dags")

    loaded = load_config(Path("configs") / "pipeline.yaml")

    assert loaded.training.source_dir == str(tmp_path / "dags" / "configs" / "training")


@pytest.mark.parametrize(
    "source_dir",
    [
        "s3://bucket/code/sourcedir.tar.gz",
        "/opt/ml/code",
        "{{ var.value.training_code }}",
    ],
)
def test_uris_absolute_paths_and_templates_are_kept(tmp_path, source_dir):
    assert load_config(_write(tmp_path, source_dir)).training.source_dir == source_dir


def test_a_config_not_read_from_a_file_keeps_its_relative_path():
    raw = yaml.safe_load(DIGITS_YAML.read_text())

    assert PipelineConfig.model_validate(raw).training.source_dir == "../../docker/training"


def test_shipped_config_points_at_the_training_script():
    training = load_config(DIGITS_YAML).training

    assert training.source_dir == str(DIGITS_YAML.parents[2] / "docker" / "training")
    assert (Path(training.source_dir) / str(training.entry_point)).is_file()
