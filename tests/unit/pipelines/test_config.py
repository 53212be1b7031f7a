"""The pipeline YAML schema: every user mistake is one line naming the file, the field and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_dl_provider.exceptions import PipelineConfigError
from airflow_dl_provider.operators.datasets import split_rows
from airflow_dl_provider.pipelines.config import PipelineConfig, load_config

DIGITS_YAML = Path(__file__).resolve().parents[3] / "dags" / "configs" / "digits.yaml"


@pytest.fixture
def digits() -> dict[str, Any]:
    """The shipped config as a mapping, to break one field at a time."""
    return yaml.safe_load(DIGITS_YAML.read_text())


def _error(tmp_path: Path, content: dict[str, Any] | str) -> tuple[Path, str]:
    """Write ``content`` as a config, load it, and return the path and its one-line error."""
    path = tmp_path / "pipeline.yaml"
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    with pytest.raises(PipelineConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}:"), message
    return path, message


def test_shipped_digits_config_loads() -> None:
    config = load_config(DIGITS_YAML)

    assert isinstance(config, PipelineConfig)
    assert config.dag_id == "dl_pipeline_digits"
    assert config.bucket == "airflow-dl-demo"
    assert config.s3_uri("datasets") == "s3://airflow-dl-demo/digits/datasets"
    assert config.data.source is None  # the labeling output is the data
    assert config.labeling is not None and config.labeling.auto_labeling
    assert config.labeling.input_prefix == "s3://airflow-dl-demo/digits/images/"
    assert config.tuning is not None and config.registry is not None and config.retraining is not None
    assert config.drift_asset_uri == "s3://airflow-dl-demo/digits/drift/digits"
    assert config.training.instance_type == "ml.p3dn.24xlarge"
    assert config.training.instance_count == 2
    assert config.training.distribution == "torch_distributed"
    assert set(config.training.metric_definitions) == {"train_loss", "validation_accuracy", "test_accuracy"}
    assert (DIGITS_YAML.parent / config.training.source_dir / config.training.entry_point).is_file()


def test_misspelled_key_names_file_field_and_fix(tmp_path: Path, digits: dict[str, Any]) -> None:
    digits["training"]["instnce_type"] = digits["training"].pop("instance_type")

    path, message = _error(tmp_path, digits)

    assert message == f"{path}: training.instnce_type: unknown key; did you mean 'instance_type'?"


def test_misspelled_top_level_key(tmp_path: Path, digits: dict[str, Any]) -> None:
    digits["bukcet"] = digits.pop("bucket")

    path, message = _error(tmp_path, digits)

    # The first problem leads; the rest follow on the same line.
    assert message.startswith(f"{path}: bucket: required key is missing"), message
    assert "bukcet: unknown key; did you mean 'bucket'?" in message
    assert "(and 1 more: " in message


def test_unknown_key_without_close_match_lists_allowed_keys(tmp_path: Path, digits: dict[str, Any]) -> None:
    digits["data"]["zzz"] = 1

    path, message = _error(tmp_path, digits)

    assert message.startswith(f"{path}: data.zzz: unknown key; allowed keys: source, label_column"), message


@pytest.mark.parametrize(
    ("section", "key", "field"),
    [
        (None, "role_arn", "role_arn"),
        (None, "training", "training"),
        ("labeling", "labels", "labeling.labels"),
    ],
)
def test_missing_required_key(
    tmp_path: Path, digits: dict[str, Any], section: str | None, key: str, field: str
) -> None:
    (digits[section] if section else digits).pop(key)

    path, message = _error(tmp_path, digits)

    assert message == f"{path}: {field}: required key is missing"


def test_no_data_source_and_no_labeling(tmp_path: Path, digits: dict[str, Any]) -> None:
    for section in ("labeling", "label_validation", "drift", "retraining"):
        digits.pop(section)

    path, message = _error(tmp_path, digits)

    assert message == f"{path}: data.source: set the CSV to train on, or add a labeling section"


def test_retraining_needs_the_drift_monitor(tmp_path: Path, digits: dict[str, Any]) -> None:
    digits.pop("drift")

    path, message = _error(tmp_path, digits)

    assert message == f"{path}: retraining: is triggered by the drift monitor's Asset; add a drift section"


@pytest.mark.parametrize(
    "arn",
    [
        "SageMakerExecution",
        "arn:aws:iam::1234:role/SageMakerExecution",
        "arn:aws:iam::123456789012:user/alice",
        "arn:aws:s3:::airflow-dl-demo",
    ],
)
def test_bad_role_arn(tmp_path: Path, digits: dict[str, Any], arn: str) -> None:
    digits["role_arn"] = arn

    path, message = _error(tmp_path, digits)

    assert message.startswith(f"{path}: role_arn: String should match pattern"), message
    assert message.endswith(f"(got {arn!r})")


def test_role_arn_of_other_partitions_is_accepted(tmp_path: Path, digits: dict[str, Any]) -> None:
    digits["role_arn"] = "arn:aws-cn:iam::123456789012:role/service-role/SageMaker"
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(digits))

    assert load_config(path).role_arn == digits["role_arn"]


def test_bad_distribution(tmp_path: Path, digits: dict[str, Any]) -> None:
    digits["training"]["distribution"] = "horovod"

    path, message = _error(tmp_path, digits)

    assert message.startswith(f"{path}: training.distribution: "), message
    for allowed in ("torch_distributed", "pytorch_ddp", "smdataparallel", "mpi"):
        assert repr(allowed) in message
    assert message.endswith("(got 'horovod')")


@pytest.mark.parametrize(
    "source", ["/data/digits.csv", "https://example.com/digits.csv", "airflow-dl-demo/digits.csv"]
)
def test_data_source_must_be_s3(tmp_path: Path, digits: dict[str, Any], source: str) -> None:
    digits["data"]["source"] = source

    path, message = _error(tmp_path, digits)

    assert message == f"{path}: data.source: Value error, must be an s3:// URI (got {source!r})"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("pipeline: digits\ntraining: [unclosed\n", 3),
        ("pipeline: digits\n  role_arn: indented\n", 2),
        ("pipeline: digits\n\tbucket: tab\n", 2),
    ],
)
def test_invalid_yaml(tmp_path: Path, text: str, line: int) -> None:
    path, message = _error(tmp_path, text)

    assert message.startswith(f"{path}: line {line} is not valid YAML: "), message


@pytest.mark.parametrize("text", ["", "- a list\n- of things\n", "just a string\n"])
def test_config_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path, message = _error(tmp_path, text)

    assert message == f"{path}: must be a mapping of keys (pipeline, role_arn, bucket, data, training)"


@pytest.mark.parametrize(
    ("fractions", "field", "problem"),
    [
        ({"validation_fraction": 1.5}, "data.validation_fraction", "Input should be less than 1 (got 1.5)"),
        ({"validation_fraction": 1.0}, "data.validation_fraction", "Input should be less than 1 (got 1.0)"),
        (
            {"test_fraction": -0.1},
            "data.test_fraction",
            "Input should be greater than or equal to 0 (got -0.1)",
        ),
        (
            {"validation_fraction": 0.5, "test_fraction": 0.6},
            "data",
            "Value error, validation_fraction + test_fraction must be < 1 (got 1.10)",
        ),
    ],
)
def test_fractions_out_of_range(
    tmp_path: Path, digits: dict[str, Any], fractions: dict[str, float], field: str, problem: str
) -> None:
    digits["data"].update(fractions)

    path, message = _error(tmp_path, digits)

    assert message == f"{path}: {field}: {problem}"


def test_zero_fractions_are_allowed(tmp_path: Path, digits: dict[str, Any]) -> None:
    digits["data"].update(validation_fraction=0.0, test_fraction=0.0)
    # auto approves on the test split's evaluation; a person can approve without one.
    digits["approval"] = "human"
    digits["registry"].pop("approval_status", None)
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(digits))

    data = load_config(path).data

    assert (data.validation_fraction, data.test_fraction) == (0.0, 0.0)


def test_pipeline_name_must_fit_a_dag_id(tmp_path: Path, digits: dict[str, Any]) -> None:
    digits["pipeline"] = "my digits"

    path, message = _error(tmp_path, digits)

    assert message.startswith(f"{path}: pipeline: String should match pattern"), message


def test_config_is_frozen() -> None:
    config = load_config(DIGITS_YAML)

    with pytest.raises(ValueError, match="frozen"):
        config.bucket = "other"  # type: ignore[misc]


# split_rows: the prepare_data split. Determinism is what ties a model to the exact rows it saw.


def test_split_rows_is_deterministic_and_pinned() -> None:
    first = split_rows(10, 0.2, 0.2, seed=0)

    assert first == split_rows(10, 0.2, 0.2, seed=0)
    # Pinned: random.Random(seed).shuffle is stable across Python versions and machines; a change
    # here would silently move rows between train and test for every existing pipeline.
    assert first == {"test": [7, 8], "validation": [1, 5], "train": [0, 2, 3, 4, 6, 9]}
    assert split_rows(10, 0.2, 0.2, seed=1) != first


@pytest.mark.parametrize(
    ("n_rows", "validation", "test"),
    [(1797, 0.15, 0.2), (100, 0.0, 0.3), (100, 0.25, 0.0), (7, 0.3, 0.3), (1, 0.2, 0.2), (0, 0.1, 0.1)],
)
def test_split_rows_channels_are_disjoint_and_cover_all_rows(
    n_rows: int, validation: float, test: float
) -> None:
    split = split_rows(n_rows, validation, test, seed=42)

    assert set(split) == {"train", "validation", "test"}
    indices = [i for channel in split.values() for i in channel]
    assert sorted(indices) == list(range(n_rows))  # every row once: disjoint and complete
    assert len(split["test"]) == round(n_rows * test)
    assert len(split["validation"]) == round(n_rows * validation)
    assert all(channel == sorted(channel) for channel in split.values())


def test_split_rows_seed_chooses_the_split() -> None:
    tests = {tuple(split_rows(50, 0.2, 0.2, seed)["test"]) for seed in range(5)}

    assert len(tests) == 5


@pytest.mark.parametrize(("validation", "test"), [(0.5, 0.5), (0.6, 0.5), (1.0, 0.0)])
def test_split_rows_rejects_fractions_summing_to_one(validation: float, test: float) -> None:
    with pytest.raises(ValueError, match=r"validation_fraction \+ test_fraction must be < 1"):
        split_rows(10, validation, test, seed=0)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2026-03-01", "2026-03-01"),
        ("'2026-03-01'", "2026-03-01"),
        ("2026-03-01T06:00:00Z", "2026-03-01T06:00:00+00:00"),
    ],
)
def test_start_date_as_yaml_writes_it(tmp_path: Path, written: str, expected: str) -> None:
    # Unquoted, YAML reads a date (or datetime): it is accepted like the quoted string.
    path = tmp_path / "pipeline.yaml"
    path.write_text(DIGITS_YAML.read_text() + f"start_date: {written}\n")

    assert load_config(path).start_date == expected


@pytest.mark.parametrize("written", ["yesterday", "'2026-13-01'", "P1D"])
def test_bad_start_date(tmp_path: Path, written: str) -> None:
    path, message = _error(tmp_path, DIGITS_YAML.read_text() + f"start_date: {written}\n")

    problem = "Value error, must be a date like 2026-01-01 (ISO 8601)"
    assert message == f"{path}: start_date: {problem} (got {written.strip(chr(39))!r})"


def test_impossible_unquoted_date_is_a_yaml_error(tmp_path: Path) -> None:
    # PyYAML raises a bare ValueError while it builds the date; it still becomes our one-line error.
    path, message = _error(tmp_path, DIGITS_YAML.read_text() + "start_date: 2026-13-01\n")

    assert message == f"{path}: is not valid YAML: month must be in 1..12"
