"""SageMaker PyTorch inference handlers for the digits classifier, and the model class itself.

Packaged as ``code/inference.py`` inside ``model.tar.gz``; ``train.py`` imports :class:`DigitsNet` from
here so training and serving share one definition. Pure torch + numpy, CPU only.

``model.tar.gz`` holds the weights twice: ``model.ckpt`` (state dict and constructor arguments, what
:func:`model_fn` loads) and ``model.pth``, the model traced with ``torch.jit.trace``, which is what
SageMaker Neo compiles. Neo takes exactly one ``.pt``/``.pth`` file per archive, so the checkpoint has
another suffix.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

CHECKPOINT_FILENAME = "model.ckpt"
TRACED_FILENAME = "model.pth"
CSV = "text/csv"
JSON = "application/json"
NPY = "application/x-npy"


class DigitsNet(nn.Module):
    """MLP ``input_dim -> hidden -> hidden -> num_classes`` over raw 0..16 pixel values.

    The pixel scaling lives in the model (not in the data pipeline) so a served model cannot drift
    from the preprocessing it was trained with.
    """

    def __init__(
        self, input_dim: int = 64, hidden: int = 128, num_classes: int = 10, input_scale: float = 16.0
    ):
        super().__init__()
        self.input_dim = input_dim
        self.hidden = hidden
        self.num_classes = num_classes
        # A plain attribute, not a buffer: DDP would otherwise broadcast it on every forward.
        self.input_scale = float(input_scale)
        self.net = nn.Sequential(
            nn.Linear(input_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def config(self) -> dict[str, Any]:
        """Constructor arguments, saved next to the weights in ``model.ckpt``."""
        return {
            "input_dim": self.input_dim,
            "hidden": self.hidden,
            "num_classes": self.num_classes,
            "input_scale": self.input_scale,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x / self.input_scale)


def model_fn(model_dir: str) -> DigitsNet:
    """Load ``model.ckpt`` (``{"state_dict", "config"}``) on CPU in eval mode."""
    # weights_only: the checkpoint holds only tensors and plain types, so refuse anything that would unpickle code.
    checkpoint = torch.load(Path(model_dir) / CHECKPOINT_FILENAME, map_location="cpu", weights_only=True)
    model = DigitsNet(**checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    return model


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _as_text(body: str | bytes | bytearray) -> str:
    return body.decode("utf-8") if isinstance(body, bytes | bytearray) else body


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _parse_csv(text: str) -> np.ndarray:
    rows = [[cell.strip() for cell in line.split(",")] for line in text.splitlines() if line.strip()]
    if rows and not _is_number(rows[0][0]):
        rows = rows[1:]
    if not rows:
        raise ValueError("text/csv request has no data rows")
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise ValueError(f"text/csv rows have different numbers of columns: {sorted(widths)}")
    try:
        return np.asarray([[float(cell) for cell in row] for row in rows], dtype=np.float32)
    except ValueError as exc:
        raise ValueError(f"text/csv request has a non-numeric value: {exc}") from None


def _parse_json(text: str) -> np.ndarray:
    payload = json.loads(text)
    if isinstance(payload, dict):
        if "instances" not in payload:
            raise ValueError('application/json request must be a list of rows or {"instances": [...]}')
        payload = payload["instances"]
    return np.asarray(payload, dtype=np.float32)


def input_fn(request_body: str | bytes, request_content_type: str | None) -> np.ndarray:
    """Decode a request into a float32 ``(n, features)`` array of raw 0..16 pixel values.

    ``text/csv``: one row per line, optional header row (first cell not a number). ``application/json``:
    ``{"instances": [[...], ...]}`` or a bare list of rows. ``application/x-npy``: a saved numpy array.
    A single 1-D row is accepted in every format.
    """
    media_type = _media_type(request_content_type)
    if media_type == CSV:
        array = _parse_csv(_as_text(request_body))
    elif media_type == JSON:
        array = _parse_json(_as_text(request_body))
    elif media_type == NPY:
        raw = request_body.encode("utf-8") if isinstance(request_body, str) else bytes(request_body)
        array = np.load(io.BytesIO(raw), allow_pickle=False).astype(np.float32)
    else:
        raise ValueError(f"unsupported content type {request_content_type!r}; use {CSV}, {JSON} or {NPY}")
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"expected a non-empty 2-D array of rows, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("request contains NaN or infinite values")
    return array


def predict_fn(input_data: np.ndarray, model: DigitsNet) -> dict[str, np.ndarray]:
    """Return ``{"labels": (n,) int64, "probabilities": (n, num_classes) float32}``."""
    if input_data.ndim != 2 or input_data.shape[1] != model.input_dim:
        raise ValueError(f"expected rows of {model.input_dim} features, got shape {tuple(input_data.shape)}")
    with torch.no_grad():
        logits = model(torch.as_tensor(input_data, dtype=torch.float32))
        # argmax of the logits (not of the softmax) so labels match the accuracy train.py reports bit for bit.
        labels = logits.argmax(dim=1)
        probabilities = torch.softmax(logits, dim=1)
    return {"labels": labels.numpy(), "probabilities": probabilities.numpy()}


def output_fn(prediction: dict[str, np.ndarray], accept: str | None) -> str:
    """Encode predictions: ``text/csv`` one label per line, ``application/json`` (also the default)
    ``{"predictions": [{"label": k, "probability": p}, ...]}`` with ``p`` the predicted class's probability."""
    labels = prediction["labels"]
    wanted = [_media_type(part) for part in (accept or "").split(",")]
    for media_type in wanted:
        if media_type == CSV:
            return "".join(f"{int(label)}\n" for label in labels)
        if media_type in (JSON, "*/*", "application/*", ""):
            chosen = prediction["probabilities"][np.arange(len(labels)), labels]
            predictions = [
                {"label": int(label), "probability": float(p)}
                for label, p in zip(labels, chosen, strict=True)
            ]
            return json.dumps({"predictions": predictions})
    raise ValueError(f"unsupported accept type {accept!r}; use {CSV} or {JSON}")
