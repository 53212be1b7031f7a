"""What Neo accepts for PyTorch, per target, from AWS's "Supported Frameworks" tables."""

from __future__ import annotations

import pytest

from airflow_dl_provider.exceptions import PreflightError
from airflow_dl_provider.presets.compilation import (
    check_framework_version,
    newest_pytorch_version,
    pytorch_target,
)


@pytest.mark.parametrize(
    ("device", "family"),
    [
        ("ml_c5", "cloud instances"),
        ("ml_g4dn", "cloud instances"),
        ("ml_inf1", "ml_inf1 (Inferentia)"),
        ("ml_inf2", "ml_inf2 and ml_trn1 (Inferentia2, Trainium)"),
        ("ml_trn1", "ml_inf2 and ml_trn1 (Inferentia2, Trainium)"),
        ("jetson_xavier", "edge devices and target platforms"),
        (None, "edge devices and target platforms"),
    ],
)
def test_targets_map_to_their_table(device: str | None, family: str) -> None:
    assert pytorch_target(device).family == family


def test_the_documented_versions() -> None:
    assert pytorch_target("ml_c5").versions == ("1.4", "1.5", "1.6", "1.7", "1.8", "1.12", "1.13", "2.0")
    assert pytorch_target("ml_inf1").versions == ("1.7", "1.8", "1.9")
    assert pytorch_target("jetson_nano").versions == ("1.7", "1.8")
    assert pytorch_target("ml_inf1").needs_shapes and not pytorch_target("ml_c5").needs_shapes


@pytest.mark.parametrize(
    ("version", "device", "sent"),
    [("2.0", "ml_c5", "2.0"), ("2.0.1", "ml_m5", "2.0"), ("1.9", "ml_inf1", "1.9"), ("1.8.1", None, "1.8")],
)
def test_accepted_versions_are_sent_as_major_minor(version: str, device: str | None, sent: str) -> None:
    assert check_framework_version("PYTORCH", version, device) == sent


@pytest.mark.parametrize(
    ("framework", "version", "device", "start"),
    [
        (
            "PYTORCH",
            "2.5.1",
            "ml_c5",
            "framework_version: Neo does not compile PyTorch 2.5.1 for cloud instances",
        ),
        ("PYTORCH", "1.13", "ml_inf1", "framework_version: Neo does not compile PyTorch 1.13 for ml_inf1"),
        ("PYTORCH", None, "ml_c5", "framework_version: Neo needs the PyTorch version of the model"),
        ("PYTORCH", "latest", "ml_c5", "framework_version: 'latest' is not a version"),
        (
            "XGBOOST",
            "1.3",
            "ml_c5",
            "framework_version: Neo takes it for MXNET, PYTORCH, TENSORFLOW, TFLITE only",
        ),
    ],
)
def test_refusals_are_one_line(framework: str, version: str | None, device: str, start: str) -> None:
    with pytest.raises(PreflightError) as caught:
        check_framework_version(framework, version, device)
    assert str(caught.value).startswith(start), str(caught.value)
    assert "\n" not in str(caught.value)


def test_other_frameworks_need_no_version() -> None:
    assert check_framework_version("XGBOOST", None, "ml_c5") is None
    assert check_framework_version("TENSORFLOW", "2.9", "ml_c5") == "2.9"


@pytest.mark.parametrize(
    ("device", "trained", "compiled_as"),
    [
        ("ml_c5", "2.5.1", "2.0"),  # newer than Neo's newest: Neo's newest
        ("ml_c5", "1.13.1", "1.13"),
        ("ml_c5", "1.10.0", "1.8"),  # between listed versions: the one below
        ("ml_c5", "1.0.0", "1.4"),  # older than Neo's oldest: the oldest
        ("ml_inf1", "2.5.1", "1.9"),
    ],
)
def test_newest_version_not_newer_than_the_training_framework(
    device: str, trained: str, compiled_as: str
) -> None:
    assert newest_pytorch_version(device, trained) == compiled_as
