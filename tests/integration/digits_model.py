"""A small, untrained digits model packaged as training leaves it: ``model.ckpt``, the traced
``model.pth`` and ``code/inference.py``.

Untrained weights are enough where a test compares the backend's output with the same handlers
called directly; building it takes milliseconds where training would take seconds.
"""

from __future__ import annotations

import importlib.util
import io
import shutil
import tarfile
from typing import TYPE_CHECKING, Any

from tests.conftest import REPO

if TYPE_CHECKING:
    from pathlib import Path

INFERENCE = REPO / "docker" / "training" / "inference.py"


def inference_module() -> Any:
    spec = importlib.util.spec_from_file_location("digits_inference_for_tests", INFERENCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def model_dir(root: Path, seed: int = 0) -> Path:
    """An unpacked model: ``model.ckpt`` and ``model.pth`` (DigitsNet, hidden=32), ``code/inference.py``."""
    import torch

    inference = inference_module()
    torch.manual_seed(seed)
    model = inference.DigitsNet(hidden=32).eval()
    root.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"state_dict": model.state_dict(), "config": model.config()}, root / inference.CHECKPOINT_FILENAME
    )
    torch.jit.save(torch.jit.trace(model, torch.zeros(1, 64)), str(root / inference.TRACED_FILENAME))
    (root / "code").mkdir(exist_ok=True)
    shutil.copy(INFERENCE, root / "code" / "inference.py")
    return root


def model_tar(root: Path, seed: int = 0) -> bytes:
    directory = model_dir(root, seed)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    return buffer.getvalue()


def digit_rows(count: int, seed: int = 0) -> list[list[int]]:
    import random

    rng = random.Random(seed)
    return [[rng.randint(0, 16) for _ in range(64)] for _ in range(count)]
