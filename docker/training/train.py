"""SageMaker script-mode training entry point: PyTorch DDP classifier for the 8x8 digits data.

Reads only the SageMaker training environment (``SM_*`` variables plus torchrun's ``RANK``/``WORLD_SIZE``/
``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT``), so the same file runs under SageMaker's ``torch_distributed``
launcher on GPU (NCCL) and under the local backend on CPU (gloo). Metric lines are printed by rank 0 only::

    world_size=2 rank=0 backend=gloo device=cpu hosts=["algo-1","algo-2"]
    epoch=3 train_loss=0.1234 validation_accuracy=0.9500
    validation_accuracy=0.9722
    test_accuracy=0.9650

Channels must be FullyReplicated: every rank reads the whole channel and DistributedSampler shards it.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import torch

_HERE = Path(__file__).resolve().parent
# runpy.run_path and some launchers do not put the script's directory on sys.path.
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

_STARTED_AT = time.time()
LABEL_COLUMN = "label"
BACKENDS = ("auto", "nccl", "gloo")
DEFAULT_MASTER_PORT = "7777"
# SageMaker's FailureReason holds at most 1024 characters.
MAX_FAILURE_CHARS = 1024


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse would sys.exit(2) and bypass the failure file.
        raise ValueError(f"invalid command-line arguments: {message}")


@dataclass(frozen=True)
class Hyperparameters:
    """Training hyperparameters; ``batch_size`` is per process."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.1
    hidden: int = 128
    seed: int = 0
    backend: str = "auto"


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int
    world_size: int
    local_rank: int
    hosts: list[str]


def _unquote(name: str, value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        # The SageMaker SDK JSON-encodes every hyperparameter; tolerate a value that was never decoded.
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = json.loads(value)
    if isinstance(value, bool) or value is None or isinstance(value, list | dict):
        raise ValueError(f"hyperparameter {name}={value!r} has the wrong type")
    return value


def _to_int(name: str, value: Any) -> int:
    value = _unquote(name, value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not number.is_integer():
        raise ValueError(f"hyperparameter {name}={value!r} is not an integer")
    return int(number)


def _to_float(name: str, value: Any) -> float:
    value = _unquote(name, value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise ValueError(f"hyperparameter {name}={value!r} is not a finite number")
    return number


def _to_str(name: str, value: Any) -> str:
    return str(_unquote(name, value))


_CONVERTERS: dict[str, Callable[[str, Any], Any]] = {
    "epochs": _to_int,
    "batch_size": _to_int,
    "lr": _to_float,
    "hidden": _to_int,
    "seed": _to_int,
    "backend": _to_str,
}


def parse_hyperparameters(argv: Sequence[str], sm_hps: str | None) -> tuple[Hyperparameters, list[str]]:
    """Merge ``SM_HPS`` with ``--name value`` CLI args (CLI wins); return them and the ignored names."""
    raw: dict[str, Any] = {}
    ignored: list[str] = []
    hps = json.loads(sm_hps) if sm_hps else {}
    if not isinstance(hps, dict):
        raise ValueError(f"SM_HPS must be a JSON object, got {type(hps).__name__}")
    for key, value in hps.items():
        name = key.replace("-", "_")
        if name in _CONVERTERS:
            raw[name] = value
        elif not name.startswith("sagemaker_"):
            ignored.append(key)

    parser = _ArgumentParser(description=__doc__, allow_abbrev=False)
    for name in _CONVERTERS:
        flags = {f"--{name}", f"--{name.replace('_', '-')}"}
        parser.add_argument(*sorted(flags), dest=name, default=None)
    args, unknown = parser.parse_known_args(list(argv))
    raw.update({name: value for name, value in vars(args).items() if value is not None})
    ignored.extend(arg for arg in unknown if arg.startswith("--"))

    values = {name: _CONVERTERS[name](name, value) for name, value in raw.items()}
    params = Hyperparameters(**values)
    _validate(params)
    return params, ignored


def _validate(params: Hyperparameters) -> None:
    for name in ("epochs", "batch_size", "hidden"):
        if getattr(params, name) < 1:
            raise ValueError(f"hyperparameter {name} must be >= 1, got {getattr(params, name)}")
    if params.lr <= 0:
        raise ValueError(f"hyperparameter lr must be > 0, got {params.lr}")
    if params.backend not in BACKENDS:
        raise ValueError(f"hyperparameter backend must be one of {BACKENDS}, got {params.backend!r}")


def _read_csv(path: Path) -> tuple[list[str] | None, list[list[str]]]:
    with path.open(newline="") as handle:
        rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    if not rows:
        return None, []
    first = rows[0]
    try:
        [float(cell) for cell in first]
    except ValueError:
        return [cell.strip() for cell in first], rows[1:]
    return None, rows


def _to_arrays(path: Path, header: list[str] | None, rows: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    if header is None:
        label_index = 0  # headerless: label first, like SageMaker's built-in algorithms
    elif LABEL_COLUMN in header:
        label_index = header.index(LABEL_COLUMN)
    else:
        raise ValueError(f"{path}: header has no {LABEL_COLUMN!r} column")
    widths = {len(row) for row in rows}
    if len(widths) != 1 or (header is not None and widths != {len(header)}):
        raise ValueError(f"{path}: rows have inconsistent column counts {sorted(widths)}")
    try:
        table = np.asarray(rows, dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"{path}: non-numeric value ({exc})") from None
    if not np.isfinite(table).all():
        raise ValueError(f"{path}: contains NaN or infinite values")
    labels = table[:, label_index]
    if (labels < 0).any() or not np.equal(np.mod(labels, 1), 0).all():
        raise ValueError(f"{path}: column {LABEL_COLUMN!r} must hold non-negative integer class ids")
    features = np.delete(table, label_index, axis=1).astype(np.float32)
    return features, labels.astype(np.int64)


def load_channel(name: str, directory: str) -> tuple[np.ndarray, np.ndarray]:
    """Read every ``*.csv`` under a channel directory into ``(features float32, labels int64)``."""
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"channel {name!r} directory {directory} does not exist")
    files = sorted(p for p in root.rglob("*.csv") if p.is_file())
    if not files:
        raise ValueError(f"channel {name!r} ({directory}) contains no *.csv files")
    features, labels, first_header = [], [], None
    for path in files:
        header, rows = _read_csv(path)
        if not rows:
            continue
        if header is not None:
            if first_header is not None and header != first_header:
                raise ValueError(f"{path}: header differs from the channel's other CSV files")
            first_header = header
        x, y = _to_arrays(path, header, rows)
        features.append(x)
        labels.append(y)
    if not features:
        raise ValueError(f"channel {name!r} ({directory}) has CSV files but no data rows")
    if len({x.shape[1] for x in features}) != 1:
        raise ValueError(f"channel {name!r}: CSV files have different feature counts")
    return np.concatenate(features), np.concatenate(labels)


def _resolve_distribution(env: dict[str, str]) -> DistInfo:
    hosts = json.loads(env.get("SM_HOSTS") or "[]")
    if int(env.get("WORLD_SIZE", "1")) > 1:
        # torchrun (SageMaker torch_distributed) already exported the rendezvous variables.
        return DistInfo(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", "0")), hosts)
    if len(hosts) > 1 and "RANK" not in env:
        # Plain script mode on several instances: one process per host, rank from the host's position.
        current = env.get("SM_CURRENT_HOST", "")
        if current not in hosts:
            raise ValueError(f"SM_CURRENT_HOST={current!r} is not in SM_HOSTS={hosts}")
        rank = hosts.index(current)
        os.environ.update(RANK=str(rank), WORLD_SIZE=str(len(hosts)), LOCAL_RANK="0")
        os.environ.setdefault("MASTER_ADDR", hosts[0])
        os.environ.setdefault("MASTER_PORT", DEFAULT_MASTER_PORT)
        return DistInfo(rank, len(hosts), 0, hosts)
    return DistInfo(0, 1, int(env.get("LOCAL_RANK", "0")), hosts)


def _select_device(
    dist_info: DistInfo, params: Hyperparameters, env: dict[str, str]
) -> tuple[torch.device, str]:
    import torch

    num_gpus = env.get("SM_NUM_GPUS")
    # SM_NUM_GPUS=0 means the job asked for CPU even if this machine happens to have a GPU.
    use_cuda = torch.cuda.is_available() and (num_gpus is None or int(num_gpus) > 0)
    backend = params.backend if params.backend != "auto" else ("nccl" if use_cuda else "gloo")
    if backend == "nccl" and not use_cuda:
        raise ValueError("backend=nccl needs CUDA, which is not available here")
    if not use_cuda:
        return torch.device("cpu"), backend
    if dist_info.local_rank >= torch.cuda.device_count():
        raise ValueError(
            f"LOCAL_RANK={dist_info.local_rank} but only {torch.cuda.device_count()} GPUs are visible"
        )
    torch.cuda.set_device(dist_info.local_rank)
    return torch.device("cuda", dist_info.local_rank), backend


def _accuracy(model: torch.nn.Module, features: torch.Tensor, labels: torch.Tensor) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        correct = int((model(features).argmax(dim=1) == labels).sum())
    model.train()
    return correct / len(labels)


def _load_data(env: dict[str, str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Load the train channel and the optional validation/test channels, checking they agree."""
    if "SM_CHANNEL_TRAIN" not in env:
        raise ValueError("SM_CHANNEL_TRAIN is not set: the job needs a 'train' input channel")
    data = {
        name: load_channel(name, env[f"SM_CHANNEL_{name.upper()}"])
        for name in ("train", "validation", "test")
        if f"SM_CHANNEL_{name.upper()}" in env
    }
    input_dim = data["train"][0].shape[1]
    for name, (x, _) in data.items():
        if x.shape[1] != input_dim:
            raise ValueError(f"channel {name!r} has {x.shape[1]} features, train has {input_dim}")
    return data


def _fit(
    model: torch.nn.Module,
    params: Hyperparameters,
    dist_info: DistInfo,
    data: dict[str, tuple[torch.Tensor, torch.Tensor]],
) -> dict[str, Any]:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DistributedSampler

    device = next(model.parameters()).device
    wrapped: torch.nn.Module = model
    if dist_info.world_size > 1:
        wrapped = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.SGD(
        wrapped.parameters(), lr=params.lr, momentum=0.9, nesterov=True, weight_decay=1e-4
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=params.epochs)
    loss_fn = torch.nn.CrossEntropyLoss()
    x_train, y_train = data["train"]
    sampler = DistributedSampler(
        range(len(y_train)),
        num_replicas=dist_info.world_size,
        rank=dist_info.rank,
        shuffle=True,
        seed=params.seed,
    )

    metrics: dict[str, Any] = {}
    for epoch in range(1, params.epochs + 1):
        sampler.set_epoch(epoch)
        # DistributedSampler pads every rank to the same length, so all ranks take the same number of steps.
        order = torch.tensor(list(sampler), device=device)
        totals = torch.zeros(2, device=device, dtype=torch.float64)
        for start in range(0, len(order), params.batch_size):
            batch = order[start : start + params.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(wrapped(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
            # Accumulate on the device: .item() here would synchronise the GPU every step.
            totals[0] += loss.detach() * len(batch)
            totals[1] += len(batch)
        scheduler.step()
        if dist_info.world_size > 1:
            dist.all_reduce(totals)
        metrics["train_loss"] = float(totals[0] / totals[1])
        if dist_info.rank == 0:
            line = f"epoch={epoch} train_loss={metrics['train_loss']:.4f}"
            if "validation" in data:
                metrics["validation_accuracy"] = _accuracy(model, *data["validation"])
                line += f" validation_accuracy={metrics['validation_accuracy']:.4f}"
            print(line, flush=True)
    return metrics


def train(params: Hyperparameters, env: dict[str, str]) -> dict[str, Any]:
    """Run the whole job; return the final metrics (complete on rank 0 only)."""
    import torch
    import torch.distributed as dist
    from inference import DigitsNet

    # Load and validate everything before the rendezvous: a bad channel then fails fast and identically on
    # every rank instead of leaving peers blocked in init_process_group.
    arrays = _load_data(env)
    num_classes = max(int(y.max()) for _, y in arrays.values()) + 1
    dist_info = _resolve_distribution(env)
    device, backend = _select_device(dist_info, params, env)
    if device.type == "cpu" and "OMP_NUM_THREADS" not in env:
        # The model is tiny: extra intra-op threads only contend with the other ranks on the same host.
        torch.set_num_threads(1)
    if dist_info.rank == 0:
        hosts = json.dumps(dist_info.hosts, separators=(",", ":"))
        print(
            f"world_size={dist_info.world_size} rank={dist_info.rank} backend={backend} "
            f"device={device.type} hosts={hosts}",
            flush=True,
        )
    if dist_info.world_size > 1:
        dist.init_process_group(backend=backend, init_method="env://")

    torch.manual_seed(params.seed)  # identical initial weights on every rank
    model = DigitsNet(input_dim=arrays["train"][0].shape[1], hidden=params.hidden, num_classes=num_classes)
    model.to(device)
    tensors = {
        name: (torch.from_numpy(x).to(device), torch.from_numpy(y).to(device))
        for name, (x, y) in arrays.items()
    }
    started = time.perf_counter()
    metrics = _fit(model, params, dist_info, tensors)
    if dist_info.rank == 0:
        if "test" in tensors:
            metrics["test_accuracy"] = _accuracy(model, *tensors["test"])
        if "validation_accuracy" in metrics:
            print(f"validation_accuracy={metrics['validation_accuracy']:.4f}", flush=True)
        if "test_accuracy" in metrics:
            print(f"test_accuracy={metrics['test_accuracy']:.4f}", flush=True)
        metrics.update(
            epochs=params.epochs,
            world_size=dist_info.world_size,
            train_seconds=round(time.perf_counter() - started, 3),
            hyperparameters=asdict(params),
        )
        _save(model, metrics, env)
    if dist_info.world_size > 1:
        dist.destroy_process_group()
    return metrics


def save_traced(model: torch.nn.Module, input_dim: int, path: Path) -> None:
    """Trace ``model`` on CPU with one float32 row and save it as TorchScript: SageMaker Neo's PyTorch input.

    Neo loads the file with ``torch.jit.load`` and compiles it for the input shape given in the
    compilation job's ``DataInputConfig`` (``{"input0": [1, <features>]}``); it never sees this code.
    """
    import torch

    model = model.cpu().eval()
    example = torch.zeros(1, input_dim, dtype=torch.float32)
    with torch.no_grad():
        traced = torch.jit.trace(model, example)  # check_trace compares it with the eager model
    torch.jit.save(traced, str(path))


def _save(model: torch.nn.Module, metrics: dict[str, Any], env: dict[str, str]) -> None:
    import torch
    from inference import CHECKPOINT_FILENAME, TRACED_FILENAME

    model_dir = Path(env.get("SM_MODEL_DIR", "/opt/ml/model"))
    code_dir = model_dir / "code"
    code_dir.mkdir(parents=True, exist_ok=True)
    state_dict = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    torch.save({"state_dict": state_dict, "config": model.config()}, model_dir / CHECKPOINT_FILENAME)
    save_traced(model, int(model.config()["input_dim"]), model_dir / TRACED_FILENAME)
    # SageMaker's PyTorch serving container looks for the handlers in model.tar.gz's code/ directory.
    shutil.copyfile(_HERE / "inference.py", code_dir / "inference.py")
    data_dir = Path(env.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"))
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")


def write_failure(exc: BaseException, env: dict[str, str]) -> None:
    """Write the one-line error to ``$SM_OUTPUT_DIR/failure`` unless a peer already did during this run."""
    message = " ".join(f"{type(exc).__name__}: {exc}".split())[:MAX_FAILURE_CHARS]
    path = Path(env.get("SM_OUTPUT_DIR", "/opt/ml/output")) / "failure"
    try:
        # A rank that fails only because its peer died ("connection closed") must not hide the root cause.
        if path.exists() and path.stat().st_mtime >= _STARTED_AT:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(message + "\n")
    except OSError as write_error:
        print(f"could not write {path}: {write_error}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 on success, 1 after recording the failure."""
    env = dict(os.environ)
    try:
        params, ignored = parse_hyperparameters(sys.argv[1:] if argv is None else argv, env.get("SM_HPS"))
        if ignored and env.get("RANK", "0") == "0":
            print(f"ignoring unknown hyperparameters: {ignored}", file=sys.stderr, flush=True)
        train(params, env)
    except Exception as exc:
        traceback.print_exc()
        write_failure(exc, env)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
