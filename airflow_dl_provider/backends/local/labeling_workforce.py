"""The local labeling job's declared simulated workforce and its automated-labeling model.

The workforce is *simulated*, and declared: each worker answers from a hidden truth the user
supplies (the ``airflow-dl:simulated-truth`` tag), and gets it wrong with probability
``error_rate`` by choosing another label at random. Answers are consolidated by majority vote.

Consolidation confidence (ours; Ground Truth does not publish its formula): the share of workers
who chose the winning label, e.g. 2 of 3 -> 0.67. With one worker per object it is 0.00, as
Ground Truth writes it. A tie is broken by a seeded draw among the tied labels. Multi-label: a label
is kept when more than half of the workers chose it, with that share as its confidence.

Automated labeling: a logistic regression on the gray pixels of the images (PNG, JPEG: decoded by
Pillow in :mod:`airflow_dl_provider.manifests.images`) or on TF-IDF features of the text, trained on
the human-labeled objects.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

# Machine labels must be this accurate on held-out human labels at the chosen confidence threshold.
MACHINE_LABEL_TARGET_ACCURACY = 0.95
# A threshold is only trusted when this many held-out objects lie above it.
MIN_OBJECTS_ABOVE_THRESHOLD = 10
_RESAMPLED_SIDE = 16


# -- the workforce ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Consolidated:
    """One object's consolidated label: class indexes (one unless multi-label) and confidences."""

    indexes: tuple[int, ...]
    confidences: tuple[float, ...]
    answers: tuple[tuple[int, ...], ...]


class SimulatedWorkforce:
    """``workers`` simulated workers per object, answering from ``truth`` with ``error_rate``.

    :param labels: the label names, in class-index order.
    :param truth: object key -> class name (or a list of names for multi-label jobs).
    """

    def __init__(
        self,
        labels: Sequence[str],
        truth: dict[str, Any],
        *,
        error_rate: float,
        workers: int,
        multi_label: bool,
        seed: int,
    ) -> None:
        self.labels = list(labels)
        self.index = {name: i for i, name in enumerate(self.labels)}
        self.truth = truth
        self.error_rate = error_rate
        self.workers = workers
        self.multi_label = multi_label
        self.rng = random.Random(seed)

    def true_indexes(self, key: str) -> tuple[int, ...] | None:
        """The hidden answer for ``key``; None when the truth has no entry or names an unknown label."""
        if key not in self.truth:
            return None
        value = self.truth[key]
        names = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        if any(name not in self.index for name in names):
            return None
        return tuple(sorted(self.index[name] for name in names))

    def _one_answer(self, truth: tuple[int, ...]) -> tuple[int, ...]:
        if self.rng.random() >= self.error_rate or len(self.labels) < 2:
            return truth
        if self.multi_label:
            flipped = set(truth) ^ {self.rng.randrange(len(self.labels))}
            return tuple(sorted(flipped))
        return (self.rng.choice([i for i in range(len(self.labels)) if i != truth[0]]),)

    def label(self, key: str) -> Consolidated | None:
        """Ask every worker, then consolidate; None when the truth cannot answer for ``key``."""
        truth = self.true_indexes(key)
        if truth is None:
            return None
        answers = tuple(self._one_answer(truth) for _ in range(self.workers))
        return self.consolidate(answers)

    def consolidate(self, answers: tuple[tuple[int, ...], ...]) -> Consolidated:
        share = (lambda votes: 0.0) if self.workers == 1 else (lambda votes: round(votes / self.workers, 2))
        if self.multi_label:
            votes = Counter(i for answer in answers for i in answer)
            kept = sorted(i for i, n in votes.items() if n * 2 > self.workers)
            return Consolidated(tuple(kept), tuple(share(votes[i]) for i in kept), answers)
        votes = Counter(answer[0] for answer in answers)
        top = max(votes.values())
        winner = self.rng.choice(sorted(i for i, n in votes.items() if n == top))
        return Consolidated((winner,), (share(top),), answers)


# -- features -----------------------------------------------------------------------------------------


def image_features(images: Sequence[np.ndarray]) -> np.ndarray:
    """One row per image: raw pixels when all share a size, else a nearest-neighbour 16x16 grid."""
    if len({image.shape for image in images}) == 1:
        return np.stack([image.ravel() for image in images])
    rows = []
    for image in images:
        ys = np.arange(_RESAMPLED_SIDE) * image.shape[0] // _RESAMPLED_SIDE
        xs = np.arange(_RESAMPLED_SIDE) * image.shape[1] // _RESAMPLED_SIDE
        rows.append(image[np.ix_(ys, xs)].ravel())
    return np.stack(rows)


def text_features(texts: Sequence[str]) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True).fit_transform(texts)


# -- the automated-labeling model ---------------------------------------------------------------------


def _model() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000, C=1.0)


def confidence_threshold(features: Any, labels: np.ndarray, *, seed: int) -> float | None:
    """The lowest confidence at which held-out predictions reach the target accuracy, or None.

    Predictions come from 3-fold cross-validation over the human-labeled objects, the way Ground
    Truth validates its model on a human-labeled validation set before it trusts any machine label.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    counts = Counter(labels.tolist())
    folds = min(3, min(counts.values()))
    if len(counts) < 2 or folds < 2:
        return None
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    probabilities = cross_val_predict(_model(), features, labels, cv=splitter, method="predict_proba")
    classes = np.array(sorted(counts))
    predicted = classes[probabilities.argmax(axis=1)]
    confidence = probabilities.max(axis=1)
    order = np.argsort(-confidence)
    correct = np.cumsum(predicted[order] == labels[order])
    accuracy = correct / np.arange(1, len(order) + 1)
    good = [
        k
        for k in range(MIN_OBJECTS_ABOVE_THRESHOLD - 1, len(order))
        if accuracy[k] >= MACHINE_LABEL_TARGET_ACCURACY
    ]
    if not good:
        return None
    return float(confidence[order[max(good)]])


def predict(features: Any, labels: np.ndarray, unlabeled: Any) -> tuple[np.ndarray, np.ndarray]:
    """Train on the human-labeled objects; return the class and its probability for ``unlabeled``."""
    model = _model().fit(features, labels)
    probabilities = model.predict_proba(unlabeled)
    return model.classes_[probabilities.argmax(axis=1)], probabilities.max(axis=1)
