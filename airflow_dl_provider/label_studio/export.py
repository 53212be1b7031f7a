"""A Label Studio JSON export -> a Ground Truth output manifest, so everything after labeling is unchanged.

Each output line is the input manifest line plus ``<attribute>`` and ``<attribute>-metadata``, with
the keys Ground Truth writes (developer guide, "Labeling job output data"): ``class-name`` and
``confidence`` (``class-map`` and ``confidence-map`` for multi-label), ``type``, ``job-name``,
``human-annotated`` and ``creation-date``.

Consolidation (ours, the same rule as the local Ground Truth workforce): each annotator's choice is a
vote; the label is the majority, its confidence the winning share of the votes (0.00 with one
annotator, as Ground Truth writes it); a tie is broken by a draw seeded by the object, so the same
export always converts the same way. Multi-label: a label is kept when more than half chose it.
Cancelled (skipped) annotations are not votes. Machine labels (auto-labeling) are not in the
export: the operator keeps them and they are written with ``human-annotated: no``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_dl_provider.label_studio.configs import chosen, object_key, task_for
from airflow_dl_provider.presets.labeling import task_preset

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence


@dataclass(frozen=True)
class Label:
    """One object's consolidated label: class indexes, a confidence each, who labeled, and when."""

    indexes: tuple[int, ...]
    confidences: tuple[float, ...]
    human: bool
    creation_date: str

    def to_json(self) -> dict[str, Any]:
        return {
            "indexes": list(self.indexes),
            "confidences": list(self.confidences),
            "human": self.human,
            "creation_date": self.creation_date,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Label:
        return cls(
            tuple(int(i) for i in value["indexes"]),
            tuple(float(c) for c in value["confidences"]),
            bool(value["human"]),
            str(value["creation_date"]),
        )


def ground_truth_date(value: str | None = None) -> str:
    """Ground Truth's creation-date format: naive UTC with microseconds (2018-10-18T22:18:13.527256)."""
    if value:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return parsed.isoformat(timespec="microseconds")
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds")


def _share(votes: int, answers: int) -> float:
    return 0.0 if answers == 1 else round(votes / answers, 2)


def consolidate(
    answers: Sequence[Sequence[int]], *, multi_label: bool, tie_key: str
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Majority vote over the annotators' answers (class indexes each); see the module docstring."""
    if multi_label:
        votes = Counter(i for answer in answers for i in set(answer))
        kept = sorted(i for i, n in votes.items() if n * 2 > len(answers))
        return tuple(kept), tuple(_share(votes[i], len(answers)) for i in kept)
    votes = Counter(answer[0] for answer in answers)
    top = max(votes.values())
    tied = sorted(i for i, n in votes.items() if n == top)
    winner = tied[int(hashlib.sha256(tie_key.encode()).hexdigest(), 16) % len(tied)]
    return (winner,), (_share(top, len(answers)),)


def human_labels(
    exported: Iterable[Mapping[str, Any]], task_type: str, labels: Sequence[str]
) -> dict[str, Label]:
    """Object key -> its consolidated human label, for every exported task with a usable annotation.

    Annotations choosing a name not in ``labels`` (a label config edited in the UI) are not votes.
    """
    task = task_for(task_type)
    index = {str(name): i for i, name in enumerate(labels)}
    out: dict[str, Label] = {}
    for exported_task in exported:
        key = object_key(task_type, exported_task)
        answers: list[tuple[int, ...]] = []
        dates: list[str] = []
        for annotation in exported_task.get("annotations") or []:
            if annotation.get("was_cancelled"):
                continue
            names = chosen(annotation.get("result") or [])
            if not names or any(n not in index for n in names):
                continue
            answers.append(tuple(sorted(index[n] for n in names)))
            dates.append(str(annotation.get("created_at") or ""))
        if not key or not answers:
            continue
        indexes, confidences = consolidate(answers, multi_label=task.multi_label, tie_key=key)
        if not indexes:  # multi-label: no label had a majority
            continue
        out[key] = Label(indexes, confidences, True, ground_truth_date(max(dates) or None))
    return out


def metadata(label: Label, *, task_type: str, labels: Sequence[str], job_name: str) -> dict[str, Any]:
    """``<attribute>-metadata`` as Ground Truth writes it for the task type."""
    preset = task_preset(task_type)
    meta: dict[str, Any] = {
        "type": preset.output_type,
        "job-name": job_name,
        "human-annotated": "yes" if label.human else "no",
        "creation-date": label.creation_date,
    }
    if preset.multi_label:
        meta["class-map"] = {str(i): labels[i] for i in label.indexes}
        meta["confidence-map"] = {str(i): c for i, c in zip(label.indexes, label.confidences, strict=True)}
    else:
        meta["class-name"] = labels[label.indexes[0]]
        meta["confidence"] = label.confidences[0]
    return meta


def output_manifest(
    lines: Sequence[Mapping[str, Any]],
    found: Mapping[str, Label],
    *,
    task_type: str,
    labels: Sequence[str],
    attribute: str,
    job_name: str,
) -> tuple[bytes, dict[str, int]]:
    """The output manifest (each input line, plus its label where there is one) and the label counters.

    :param found: object key -> label, human and machine together.
    :return: the manifest's bytes and ``LabelCounters`` as Ground Truth reports them.
    """
    task = task_for(task_type)
    out: list[str] = []
    human = machine = 0
    for line in lines:
        label = found.get(str(line.get(task.manifest_key, "")))
        row = dict(line)
        if label is not None:
            row[attribute] = list(label.indexes) if task.multi_label else label.indexes[0]
            row[f"{attribute}-metadata"] = metadata(
                label, task_type=task_type, labels=labels, job_name=job_name
            )
            human += label.human
            machine += not label.human
        out.append(json.dumps(row, ensure_ascii=False))
    counters = {
        "TotalLabeled": human + machine,
        "HumanLabeled": human,
        "MachineLabeled": machine,
        "FailedNonRetryableError": 0,
        "Unlabeled": len(lines) - human - machine,
    }
    return "".join(f"{line}\n" for line in out).encode(), counters
