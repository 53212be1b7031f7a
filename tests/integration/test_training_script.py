"""The training container's script: real DDP runs of docker/training/train.py, then serving via inference.py."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from types import ModuleType

TRAINING_DIR = Path(__file__).resolve().parents[2] / "docker" / "training"
TRAIN_PY = TRAINING_DIR / "train.py"
RUN_TIMEOUT_S = 240
EPOCHS = 30
HOSTS = ["algo-1", "algo-2"]

EPOCH_LINE = re.compile(r"^epoch=(\d+) train_loss=(\d+\.\d{4}) validation_accuracy=(\d\.\d{4})$")
TEST_LINE = re.compile(r"^test_accuracy=(\d\.\d{4})$")
VALIDATION_LINE = re.compile(r"^validation_accuracy=(\d\.\d{4})$")
HEADER = ["label"] + [f"p{i}" for i in range(64)]


@dataclass
class Split:
    """Digits rows with raw 0..16 pixel values."""

    features: np.ndarray
    labels: np.ndarray


@dataclass
class Run:
    """Outcome of one launch of train.py (one entry per process, rank order)."""

    returncodes: list[int]
    stdouts: list[str]
    stderrs: list[str]
    wall_s: float
    model_dir: Path
    output_dir: Path


def _load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _digits_splits() -> dict[str, Split]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x, y = digits.data.astype(np.int64), digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    x_train, x_val, y_train, y_val = train_test_split(
        x_train, y_train, test_size=0.15, stratify=y_train, random_state=0
    )
    return {
        "train": Split(x_train, y_train),
        "validation": Split(x_val, y_val),
        "test": Split(x_test, y_test),
    }


def _write_csv(path: Path, split: Split, *, header: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(HEADER)
        for label, row in zip(split.labels, split.features, strict=True):
            writer.writerow([int(label), *(int(v) for v in row)])


def _write_channels(root: Path, splits: dict[str, Split]) -> dict[str, Path]:
    """Train as two headed CSV parts, validation headerless (label first), test headed."""
    train = splits["train"]
    half = len(train.labels) // 2
    _write_csv(
        root / "train" / "part-0000.csv", Split(train.features[:half], train.labels[:half]), header=True
    )
    _write_csv(
        root / "train" / "part-0001.csv", Split(train.features[half:], train.labels[half:]), header=True
    )
    _write_csv(root / "validation" / "validation.csv", splits["validation"], header=False)
    _write_csv(root / "test" / "test.csv", splits["test"], header=True)
    return {name: root / name for name in ("train", "validation", "test")}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _base_env() -> dict[str, str]:
    # Never inherit a launcher's rendezvous or SageMaker variables from the test runner's environment.
    dropped = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}
    return {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("SM_")}


def _launch(
    root: Path,
    channels: dict[str, Path],
    *,
    world_size: int,
    hps: dict[str, object],
    args: list[str] | None = None,
) -> Run:
    """Start ``world_size`` train.py processes the way torchrun would (one host each) and wait for them."""
    model_dir, output_dir = root / "model", root / "output"
    common = _base_env() | {
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DIR": str(output_dir),
        "SM_OUTPUT_DATA_DIR": str(output_dir / "data"),
        "SM_HPS": json.dumps(hps),
        "SM_HOSTS": json.dumps(HOSTS[:world_size]),
        # Keeps the run on CPU/gloo even on a machine with a GPU.
        "SM_NUM_GPUS": "0",
        **{f"SM_CHANNEL_{name.upper()}": str(path) for name, path in channels.items()},
    }
    if world_size > 1:
        common |= {
            "WORLD_SIZE": str(world_size),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(_free_port()),
        }
    started = time.perf_counter()
    procs = []
    for rank in range(world_size):
        env = common | {"SM_CURRENT_HOST": HOSTS[rank]}
        if world_size > 1:
            env |= {"RANK": str(rank), "LOCAL_RANK": "0"}
        procs.append(
            subprocess.Popen(
                [sys.executable, str(TRAIN_PY), *(args or [])],
                cwd=root,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = []
    try:
        for proc in procs:
            remaining = max(1.0, RUN_TIMEOUT_S - (time.perf_counter() - started))
            outputs.append(proc.communicate(timeout=remaining))
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        details = [proc.communicate() for proc in procs]
        pytest.fail(f"train.py did not finish within {RUN_TIMEOUT_S}s: {details}")
    return Run(
        returncodes=[proc.returncode for proc in procs],
        stdouts=[out for out, _ in outputs],
        stderrs=[err for _, err in outputs],
        wall_s=time.perf_counter() - started,
        model_dir=model_dir,
        output_dir=output_dir,
    )


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def splits() -> dict[str, Split]:
    return _digits_splits()


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory, splits: dict[str, Split]) -> Run:
    root = tmp_path_factory.mktemp("ddp")
    channels = _write_channels(root / "input", splits)
    # Mixed value types on purpose: SageMaker may hand over JSON strings or real numbers.
    hps = {"epochs": str(EPOCHS), "batch_size": 64, "lr": "0.1", "seed": 0, "sagemaker_program": "train.py"}
    run = _launch(root, channels, world_size=2, hps=hps)
    print(f"2-process train.py wall time: {run.wall_s:.2f}s")
    return run


@pytest.mark.slow
def test_two_process_run_prints_metrics_and_saves_model(ddp_run: Run) -> None:
    assert ddp_run.returncodes == [0, 0], ddp_run.stderrs
    rank0 = _lines(ddp_run.stdouts[0])
    assert rank0[0] == 'world_size=2 rank=0 backend=gloo device=cpu hosts=["algo-1","algo-2"]'
    epochs = [EPOCH_LINE.match(line) for line in rank0[1:-2]]
    assert all(epochs), rank0
    assert [int(m.group(1)) for m in epochs if m] == list(range(1, EPOCHS + 1))
    validation, test = VALIDATION_LINE.match(rank0[-2]), TEST_LINE.match(rank0[-1])
    assert validation and test, rank0
    assert float(test.group(1)) >= 0.90
    # Metric lines come from rank 0 only, or SageMaker's regexes would see every value world_size times.
    assert not any(
        "accuracy=" in line or line.startswith("world_size=") for line in _lines(ddp_run.stdouts[1])
    )

    assert (ddp_run.model_dir / "model.ckpt").is_file()
    # Neo compiles the one .pt/.pth file of the archive: the traced model, nothing else.
    assert sorted(p.name for p in ddp_run.model_dir.iterdir() if p.suffix in (".pt", ".pth")) == ["model.pth"]
    assert (ddp_run.model_dir / "code" / "inference.py").read_text() == (
        TRAINING_DIR / "inference.py"
    ).read_text()
    metrics = json.loads((ddp_run.output_dir / "data" / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert metrics["epochs"] == EPOCHS
    assert abs(metrics["test_accuracy"] - float(test.group(1))) <= 5e-5
    assert abs(metrics["validation_accuracy"] - float(validation.group(1))) <= 5e-5
    assert not (ddp_run.output_dir / "failure").exists()


@pytest.mark.slow
def test_packaged_inference_reproduces_test_accuracy(ddp_run: Run, splits: dict[str, Split]) -> None:
    assert ddp_run.returncodes == [0, 0], ddp_run.stderrs
    inference = _load_module(ddp_run.model_dir / "code" / "inference.py", "packaged_digits_inference")
    model = inference.model_fn(str(ddp_run.model_dir))
    test = splits["test"]
    body = io.StringIO()
    writer = csv.writer(body)
    writer.writerow(HEADER[1:])
    writer.writerows(test.features.tolist())

    prediction = inference.predict_fn(inference.input_fn(body.getvalue().encode(), "text/csv"), model)
    csv_labels = [int(line) for line in inference.output_fn(prediction, "text/csv").splitlines()]
    accuracy = float(np.mean(np.asarray(csv_labels) == test.labels))
    metrics = json.loads((ddp_run.output_dir / "data" / "metrics.json").read_text())
    assert abs(accuracy - metrics["test_accuracy"]) <= 1e-9
    assert accuracy >= 0.90

    json_body = json.dumps({"instances": test.features.tolist()})
    as_json = json.loads(
        inference.output_fn(
            inference.predict_fn(inference.input_fn(json_body, "application/json"), model), "application/json"
        )
    )
    assert [p["label"] for p in as_json["predictions"]] == csv_labels
    assert all(0.0 < p["probability"] <= 1.0 for p in as_json["predictions"])


@pytest.mark.slow
def test_single_process_run(tmp_path: Path, splits: dict[str, Split]) -> None:
    channels = _write_channels(tmp_path / "input", splits)
    del channels["validation"]
    # The CLI value must win over SM_HPS, as SageMaker passes hyperparameters both ways.
    run = _launch(tmp_path, channels, world_size=1, hps={"epochs": 3, "lr": 0.1}, args=["--epochs", "4"])
    assert run.returncodes == [0], run.stderrs
    lines = _lines(run.stdouts[0])
    assert lines[0] == 'world_size=1 rank=0 backend=gloo device=cpu hosts=["algo-1"]'
    assert [re.fullmatch(r"epoch=(\d+) train_loss=\d+\.\d{4}", line) is not None for line in lines[1:-1]] == [
        True
    ] * 4
    assert lines[-2] == "epoch=4 " + lines[-2].split(" ", 1)[1]
    test = TEST_LINE.match(lines[-1])
    assert test and float(test.group(1)) >= 0.5
    assert (run.model_dir / "model.ckpt").is_file() and (run.model_dir / "model.pth").is_file()
    assert (run.model_dir / "code" / "inference.py").is_file()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "world_size", "expected"),
    [
        ("empty_train_channel", 2, "contains no *.csv files"),
        ("invalid_hyperparameter", 1, "hyperparameter epochs='ten' is not an integer"),
    ],
)
def test_failing_run_writes_failure_file(
    tmp_path: Path, splits: dict[str, Split], case: str, world_size: int, expected: str
) -> None:
    channels = _write_channels(tmp_path / "input", splits)
    hps: dict[str, object] = {"epochs": 2}
    if case == "empty_train_channel":
        for path in channels["train"].glob("*.csv"):
            path.unlink()
    else:
        hps["epochs"] = "ten"
    run = _launch(tmp_path, channels, world_size=world_size, hps=hps)
    assert all(rc != 0 for rc in run.returncodes), run.returncodes
    failure = (run.output_dir / "failure").read_text()
    assert failure.count("\n") == 1 and failure.endswith("\n")
    assert expected in failure
    assert all("Traceback" in err for err in run.stderrs)
    assert not (run.model_dir / "model.ckpt").exists() and not (run.model_dir / "model.pth").exists()


@pytest.mark.slow
def test_traced_model_is_torchscript_that_computes_what_the_checkpoint_does(
    ddp_run: Run, splits: dict[str, Split]
) -> None:
    """What Neo receives: TorchScript loadable without this code, giving the served model's outputs."""
    import torch

    assert ddp_run.returncodes == [0, 0], ddp_run.stderrs
    traced = torch.jit.load(str(ddp_run.model_dir / "model.pth"))
    assert isinstance(traced, torch.jit.ScriptModule)
    inference = _load_module(ddp_run.model_dir / "code" / "inference.py", "packaged_digits_for_trace")
    served = inference.model_fn(str(ddp_run.model_dir))
    rows = torch.as_tensor(splits["test"].features, dtype=torch.float32)
    with torch.no_grad():
        assert torch.allclose(traced(rows), served(rows), atol=1e-5)
        # Traced with a batch of one (Neo's DataInputConfig shape), it still takes any batch size here.
        assert traced(rows[:1]).shape == (1, 10)


@pytest.fixture(scope="module")
def inference_module() -> ModuleType:
    return _load_module(TRAINING_DIR / "inference.py", "digits_inference_under_test")


def test_input_fn_accepts_csv_json_and_npy(inference_module: ModuleType) -> None:
    rows = np.arange(128, dtype=np.float32).reshape(2, 64) % 17
    csv_text = (
        ",".join(HEADER[1:]) + "\n" + "\n".join(",".join(str(int(v)) for v in row) for row in rows) + "\n"
    )
    npy = io.BytesIO()
    np.save(npy, rows)
    decoded = [
        inference_module.input_fn(csv_text, "text/csv; charset=utf-8"),
        inference_module.input_fn(csv_text.split("\n", 1)[1].encode(), "text/csv"),
        inference_module.input_fn(json.dumps({"instances": rows.tolist()}), "application/json"),
        inference_module.input_fn(json.dumps(rows.tolist()).encode(), "application/json"),
        inference_module.input_fn(npy.getvalue(), "application/x-npy"),
    ]
    for array in decoded:
        assert array.dtype == np.float32
        np.testing.assert_array_equal(array, rows)
    with pytest.raises(ValueError, match="unsupported content type"):
        inference_module.input_fn("{}", "text/plain")
    with pytest.raises(ValueError, match="different numbers of columns"):
        inference_module.input_fn("1,2,3\n4,5\n", "text/csv")


def test_predict_and_output_fn_formats(inference_module: ModuleType) -> None:
    model = inference_module.DigitsNet(input_dim=64, hidden=8, num_classes=10).eval()
    prediction = inference_module.predict_fn(np.zeros((3, 64), dtype=np.float32), model)
    assert prediction["labels"].shape == (3,)
    np.testing.assert_allclose(prediction["probabilities"].sum(axis=1), 1.0, rtol=1e-5)
    assert inference_module.output_fn(prediction, "text/csv").splitlines() == [
        str(int(k)) for k in prediction["labels"]
    ]
    payload = json.loads(inference_module.output_fn(prediction, "application/json"))
    assert [p["label"] for p in payload["predictions"]] == prediction["labels"].tolist()
    with pytest.raises(ValueError, match="rows of 64 features"):
        inference_module.predict_fn(np.zeros((1, 63), dtype=np.float32), model)
    with pytest.raises(ValueError, match="unsupported accept"):
        inference_module.output_fn(prediction, "image/png")
