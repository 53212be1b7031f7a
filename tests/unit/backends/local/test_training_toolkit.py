"""The local trainer hands hyperparameters and code to the script as SageMaker's training toolkit does.

The toolkit (aws/sagemaker-training-toolkit, ``sagemaker_training/mapping.py`` and ``environment.py``)
JSON-decodes each value of ``hyperparameters.json``, then builds the command line with
``to_cmd_args`` and the ``SM_*`` variables with ``to_env_vars``; these pin the same results.
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import TYPE_CHECKING

import pytest

from airflow_dl_provider.backends.local.training import (
    _fetch_source,
    cmd_args,
    decode_hyperparameters,
    env_value,
    host_environment,
    user_hyperparameters,
)
from airflow_dl_provider.backends.local.work import JobFailure

if TYPE_CHECKING:
    from pathlib import Path

# What DistributedTrainingOperator sends in script mode: every value json.dumps'ed.
SENT = {
    "epochs": "3",
    "lr": "0.1",
    "optimizer": '"sgd"',
    "layers": "[64, 32]",
    "opts": '{"b": 2, "a": "x"}',
    "amp": "true",
    "k": "5",
    "sagemaker_program": '"train.py"',
    "sagemaker_submit_directory": '"s3://b/source/sourcedir.tar.gz"',
    "sagemaker_container_log_level": "20",
    "_tuning_objective_metric": '"validation_accuracy"',
}


def test_the_toolkit_keeps_its_own_hyperparameters() -> None:
    user = user_hyperparameters(decode_hyperparameters(SENT))
    assert set(user) == {"epochs", "lr", "optimizer", "layers", "opts", "amp", "k"}


def test_command_line_is_sorted_with_dicts_as_pairs() -> None:
    user = user_hyperparameters(decode_hyperparameters(SENT))
    assert cmd_args(user) == [
        "--amp", "True",
        "--epochs", "3",
        "-k", "5",
        "--layers", "[64, 32]",
        "--lr", "0.1",
        "--optimizer", "sgd",
        "--opts", "a=x,b=2",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("sgd", "sgd"),
        (3, "3"),
        (0.1, "0.1"),
        (True, "true"),
        ([64, 32], "[64,32]"),
        ({"b": 2, "a": "x"}, '{"a":"x","b":2}'),
        (None, ""),
    ],
)
def test_environment_values_are_json_except_strings(value: object, text: str) -> None:
    assert env_value(value) == text


def test_host_environment(tmp_path: Path) -> None:
    request = {
        "ResourceConfig": {"InstanceType": "ml.m5.large"},
        "InputDataConfig": [{"ChannelName": "train"}, {"ChannelName": "code"}],
    }
    env = host_environment(request, decode_hyperparameters(SENT), ["algo-1"], 0, tmp_path / "algo-1", 0)
    assert env["SM_HP_OPTS"] == '{"a":"x","b":2}'
    assert env["SM_HP_LAYERS"] == "[64,32]"
    assert env["SM_HP_AMP"] == "true"
    assert env["SM_HP_OPTIMIZER"] == "sgd"
    assert "SM_HP__TUNING_OBJECTIVE_METRIC" not in env
    assert json.loads(env["SM_HPS"])["opts"] == {"a": "x", "b": 2}
    assert json.loads(env["SM_USER_ARGS"])[:2] == ["--amp", "True"]
    assert env["SM_CHANNELS"] == '["code","train"]'
    assert env["SM_HOSTS"] == '["algo-1"]'


def _archive(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        data = b"print('hi')\n"
        info = tarfile.TarInfo("train.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def test_code_from_the_code_channel(tmp_path: Path) -> None:
    host_root = tmp_path / "algo-1"
    _archive(host_root / "input" / "data" / "code" / "sourcedir.tar.gz")
    code = tmp_path / "code"
    _fetch_source(None, "/opt/ml/input/data/code/sourcedir.tar.gz", code, host_root, isolated=True)
    assert (code / "train.py").read_text() == "print('hi')\n"


def test_network_isolated_container_cannot_fetch_code_from_s3(tmp_path: Path) -> None:
    with pytest.raises(JobFailure) as caught:
        _fetch_source(None, "s3://b/source/sourcedir.tar.gz", tmp_path / "code", tmp_path, isolated=True)
    assert str(caught.value).startswith(
        "AlgorithmError: sagemaker_submit_directory s3://b/source/sourcedir.tar.gz is in S3, which a "
        "network-isolated container cannot reach"
    )


def test_a_missing_code_channel_fails_the_job(tmp_path: Path) -> None:
    with pytest.raises(JobFailure) as caught:
        _fetch_source(None, "/opt/ml/input/data/code/sourcedir.tar.gz", tmp_path / "code", tmp_path, True)
    assert "is not in the container" in str(caught.value)
