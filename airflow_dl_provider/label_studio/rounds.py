"""Active learning across Label Studio rounds, as Ground Truth's automated data labeling does it.

Round 1 sends a random 20% of the objects (10% from 5,000 on) to people. Each later round trains a
model on every human label so far, in this process: a scikit-learn logistic regression on the gray
pixels of the images (decoded by Pillow) or on TF-IDF features of the text, the local Ground Truth
job's model (:mod:`airflow_dl_provider.backends.local.labeling_workforce`). Its threshold is the
lowest confidence at which 3-fold cross-validated predictions on the human labels are at least 95%
right; objects at or above it become machine labels (``human-annotated: no``) and are never shown to
people; the least confident of the rest go to people next, pre-annotated with the model's
prediction and its score. After 10 rounds everything left goes to people.

Each round's decision is written to ``<output_path>/<name>/activelearning/iteration-N/decision.json``
before its tasks are imported, so a retried task reads it back instead of deciding again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_dl_provider.label_studio.export import Label

MAX_ROUNDS = 10
TARGET_ACCURACY = 0.95


def round_size(total: int) -> int:
    return max(1, math.ceil(total * (0.2 if total < 5000 else 0.1)))


@dataclass
class Decision:
    """One round: machine labels accepted, and the objects sent to people with their predictions."""

    round: int
    threshold: float | None
    machine: dict[str, Label] = field(default_factory=dict)
    send: list[str] = field(default_factory=list)
    predictions: dict[str, tuple[int, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "iteration": self.round,
            "confidence_threshold": self.threshold,
            "target_accuracy": TARGET_ACCURACY,
            "machine_labeled": len(self.machine),
            "sent_to_people": len(self.send),
            "machine": {k: v.to_json() for k, v in self.machine.items()},
            "send": self.send,
            "predictions": {k: list(v) for k, v in self.predictions.items()},
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Decision:
        from airflow_dl_provider.label_studio.export import Label

        return cls(
            round=int(value["iteration"]),
            threshold=value.get("confidence_threshold"),
            machine={k: Label.from_json(v) for k, v in (value.get("machine") or {}).items()},
            send=[str(k) for k in value.get("send") or []],
            predictions={k: (int(v[0]), float(v[1])) for k, v in (value.get("predictions") or {}).items()},
        )


def first_round(keys: Sequence[str], pending: Sequence[str], *, seed: int) -> Decision:
    """A random sample of ``pending`` for people, no model yet."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(pending)).tolist()
    return Decision(round=1, threshold=None, send=[pending[i] for i in order[: round_size(len(keys))]])


def model_round(
    number: int,
    features: Any,
    index: Mapping[str, int],
    human: Mapping[str, Label],
    pending: Sequence[str],
    *,
    total: int,
    seed: int,
    machine_room: int,
) -> Decision:
    """Train on ``human``, machine-label the confident part of ``pending``, send the least confident on.

    :param features: one row per object, in manifest order; ``index`` maps an object key to its row.
    :param machine_room: at most this many machine labels (a labeling budget).
    """
    import numpy as np

    from airflow_dl_provider.backends.local.labeling_workforce import confidence_threshold, predict
    from airflow_dl_provider.label_studio.export import Label, ground_truth_date

    keys = [k for k in human if k in index]
    rows = [index[k] for k in keys]
    labels = np.array([human[k].indexes[0] for k in keys])
    threshold = confidence_threshold(features[rows], labels, seed=seed)
    pending_rows = [index[k] for k in pending]
    predicted, confidence = predict(features[rows], labels, features[pending_rows])
    order = sorted(range(len(pending)), key=lambda k: -confidence[k])
    confident = [] if threshold is None else [k for k in order if confidence[k] >= threshold][:machine_room]
    stamp = ground_truth_date()
    machine = {
        pending[k]: Label((int(predicted[k]),), (round(float(confidence[k]), 2),), False, stamp)
        for k in confident
    }
    chosen = set(confident)
    rest = sorted((k for k in range(len(pending)) if k not in chosen), key=lambda k: confidence[k])
    size = len(rest) if number >= MAX_ROUNDS else round_size(total)
    send = [pending[k] for k in rest[:size]]
    predictions = {pending[k]: (int(predicted[k]), round(float(confidence[k]), 4)) for k in rest[:size]}
    return Decision(number, threshold, machine, send, predictions)


def features_of(task_type: str, keys: Sequence[str], read: Any) -> Any:
    """The model's features for every object: pixels of each image (``read(uri) -> bytes``) or TF-IDF."""
    from concurrent.futures import ThreadPoolExecutor

    from airflow_dl_provider.backends.local.labeling_workforce import image_features, text_features
    from airflow_dl_provider.manifests.images import decode_gray

    if task_type.startswith("text"):
        return text_features(keys)
    with ThreadPoolExecutor(8) as pool:
        images = list(pool.map(lambda uri: decode_gray(read(uri)), keys))
    return image_features(images)
