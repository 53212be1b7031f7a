"""Ground Truth labeling jobs on this machine, with a declared simulated workforce.

Nobody labels anything here: the job's tags declare the answers. ``airflow-dl:simulated-truth`` is
the ``s3://`` URI of a JSON object mapping each data object (its ``source-ref``, or the ``source``
text) to its class name (a list of names for multi-label jobs). ``airflow-dl:simulated-error-rate``
(default 0.05) is how often a worker answers wrong; ``NumberOfHumanWorkersPerDataObject`` is how many
workers answer each object. Tags leave the request valid for SageMaker, where they are only tags;
a job without the truth tag fails with a ``FailureReason`` that says how to declare it. The job's
CloudWatch log says plainly that the workforce is simulated.

With ``LabelingJobAlgorithmsConfig``, it runs Ground Truth's active-learning loop: a random sample
goes to the workforce first; a quick model trained on every human label so far machine-labels the
objects it is confident about (threshold from cross-validation, see :mod:`.labeling_workforce`); the
least confident of the rest go to the workforce; repeat until everything is labeled or a stopping
condition is reached.

Output, at Ground Truth's paths under ``<S3OutputPath>/<job>/``: ``manifests/output/output.manifest``
(each input line plus ``<attr>`` and ``<attr>-metadata``, in Ground Truth's format),
``annotations/worker-response/iteration-N/<object>/<time>.json`` (each worker's answers),
``annotations/consolidated-annotation/consolidation-response/iteration-N/<time>.json`` and, with
automated labeling, ``activelearning/iteration-N/summary.json`` (threshold, counts: our format).

Runs the classification types only (image and text, single and multi-label); others fail with a
clear ``FailureReason``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_dl_provider.backends.local.labeling_workforce import (
    Consolidated,
    SimulatedWorkforce,
    confidence_threshold,
    image_features,
    predict,
    text_features,
)
from airflow_dl_provider.backends.local.training import split_s3_uri
from airflow_dl_provider.backends.local.work import CloudWatchStream, JobFailure, Services
from airflow_dl_provider.manifests.images import decode_gray
from airflow_dl_provider.presets.labeling import PRESETS_BY_LAMBDA_TYPE, TaskPreset

if TYPE_CHECKING:
    from airflow_dl_provider.backends.local.state import LocalJob

ARN_NOUN = "labeling-job"
STATUS_NAMES: dict[str, str] = {}  # Describe spells the statuses as the worker records them
LOG_GROUP = "/aws/sagemaker/LabelingJobs"
TRUTH_TAG = "airflow-dl:simulated-truth"
ERROR_RATE_TAG = "airflow-dl:simulated-error-rate"
DEFAULT_ERROR_RATE = 0.05
# After this many rounds every object still pending goes to the workforce.
MAX_ROUNDS = 10
_ANSWER_ELEMENTS = {
    "image_classification": ("crowd-image-classifier", "label"),
    "image_multilabel_classification": ("crowd-image-classifier-multi-select", "labels"),
    "text_classification": ("crowd-classifier", "label"),
    "text_multilabel_classification": ("crowd-classifier-multi-select", "labels"),
}
_DOWNLOAD_THREADS = 8


def _stamp() -> str:
    # Ground Truth writes creation dates as naive UTC with microseconds: 2018-10-18T22:18:13.527256
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds")


def _read(s3: Any, uri: str) -> bytes:
    bucket, key = split_s3_uri(uri)
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except Exception as err:
        raise JobFailure(f"ClientError: cannot read {uri}: {err}") from None


def _put(s3: Any, uri: str, body: bytes) -> None:
    bucket, key = split_s3_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def _preset(request: dict[str, Any]) -> TaskPreset:
    arn = request["HumanTaskConfig"].get("PreHumanTaskLambdaArn", "")
    preset = PRESETS_BY_LAMBDA_TYPE.get(arn.rsplit(":PRE-", 1)[-1])
    if preset is None or preset.key not in _ANSWER_ELEMENTS:
        raise JobFailure(
            f"ClientError: the local backend simulates classification task types only "
            f"({', '.join(_ANSWER_ELEMENTS)}); PreHumanTaskLambdaArn {arn!r} is not one of them"
        )
    return preset


class LabelingRun:
    """One local labeling job: its inputs, the workforce, the labels so far and the counters."""

    def __init__(self, job: LocalJob, services: Services) -> None:
        self.job, self.services, self.s3 = job, services, services.s3
        request = self.request = job.request()
        self.name = job.name
        self.region = services.origin.region
        self.preset = _preset(request)
        self.attribute = request["LabelAttributeName"]
        self.root = f"{request['OutputConfig']['S3OutputPath'].rstrip('/')}/{self.name}"
        manifest = _read(self.s3, request["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"])
        self.lines = [json.loads(line) for line in manifest.decode().splitlines() if line.strip()]
        if not request.get("LabelCategoryConfigS3Uri"):
            raise JobFailure(
                "ClientError: LabelCategoryConfigS3Uri is required for classification task types"
            )
        config = json.loads(_read(self.s3, request["LabelCategoryConfigS3Uri"]))
        self.labels = [str(item["label"]) for item in config["labels"]]
        tags = {t["Key"]: t["Value"] for t in request.get("Tags") or []}
        if TRUTH_TAG not in tags:
            raise JobFailure(
                "ClientError: the local backend labels with a declared simulated workforce; tag the job "
                f"{TRUTH_TAG}=<s3:// URI of a JSON object: data object -> class name> (docs/operators/labeling.rst)"
            )
        self.error_rate = float(tags.get(ERROR_RATE_TAG, DEFAULT_ERROR_RATE))
        self.workers = int(request["HumanTaskConfig"]["NumberOfHumanWorkersPerDataObject"])
        seed = int(hashlib.sha256(self.name.encode()).hexdigest()[:8], 16)
        self.seed = seed
        self.workforce = SimulatedWorkforce(
            self.labels,
            json.loads(_read(self.s3, tags[TRUTH_TAG])),
            error_rate=self.error_rate,
            workers=self.workers,
            multi_label=self.preset.multi_label,
            seed=seed,
        )
        self.results: dict[int, dict[str, Any]] = {}
        self.failed: set[int] = set()
        self.human = self.machine = 0
        stopping = request.get("StoppingConditions") or {}
        self.human_budget = int(stopping.get("MaxHumanLabeledObjectCount") or len(self.lines))
        percent = stopping.get("MaxPercentageOfInputDatasetLabeled")
        self.label_budget = math.ceil(len(self.lines) * int(percent) / 100) if percent else len(self.lines)
        # Ground Truth writes one stream named exactly after the job (service_behaviour.LOG_STREAMS).
        self.stream = CloudWatchStream(services.logs, LOG_GROUP, self.name)

    def key(self, index: int) -> str:
        line = self.lines[index]
        return str(line.get("source-ref", line.get("source", "")))

    def log(self, message: str) -> None:
        self.stream.put([(int(time.time() * 1000), message)])

    def counters(self) -> dict[str, int]:
        labeled = self.human + self.machine
        return {
            "TotalLabeled": labeled,
            "HumanLabeled": self.human,
            "MachineLabeled": self.machine,
            "FailedNonRetryableError": len(self.failed),
            "Unlabeled": len(self.lines) - labeled - len(self.failed),
        }

    def room(self) -> int:
        return self.label_budget - self.human - self.machine

    # -- labels -------------------------------------------------------------------------------------------

    def _metadata(
        self, human: bool, confidences: tuple[float, ...], indexes: tuple[int, ...]
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "type": self.preset.output_type,
            "job-name": f"labeling-job/{self.name}",
            "human-annotated": "yes" if human else "no",
            "creation-date": _stamp(),
        }
        if self.preset.multi_label:
            metadata["class-map"] = {str(i): self.labels[i] for i in indexes}
            metadata["confidence-map"] = {str(i): c for i, c in zip(indexes, confidences, strict=True)}
        else:
            metadata["class-name"] = self.labels[indexes[0]]
            metadata["confidence"] = confidences[0]
        return metadata

    def _record(
        self, index: int, indexes: tuple[int, ...], confidences: tuple[float, ...], human: bool
    ) -> None:
        value: Any = list(indexes) if self.preset.multi_label else indexes[0]
        self.results[index] = {
            self.attribute: value,
            f"{self.attribute}-metadata": self._metadata(human, confidences, indexes),
        }

    def ask_workforce(self, indexes: list[int], iteration: int) -> list[int]:
        """Send objects to the workforce; return those it labeled."""
        indexes = indexes[: max(0, min(self.human_budget - self.human, self.room()))]
        done: list[int] = []
        responses: list[tuple[str, bytes]] = []
        consolidated: list[dict[str, Any]] = []
        element, field = _ANSWER_ELEMENTS[self.preset.key]
        for index in indexes:
            outcome: Consolidated | None = self.workforce.label(self.key(index))
            if outcome is None:
                self.failed.add(index)
                continue
            self._record(index, outcome.indexes, outcome.confidences, human=True)
            self.human += 1
            done.append(index)
            answers = [
                {
                    "workerId": f"simulated.{self.region}.worker-{w + 1}",
                    "submissionTime": _stamp(),
                    "answerContent": {
                        element: {field: [self.labels[i] for i in answer]}
                        if self.preset.multi_label
                        else {field: self.labels[answer[0]]}
                    },
                }
                for w, answer in enumerate(outcome.answers)
            ]
            stamp = _stamp().replace(":", "-")
            responses.append(
                (
                    f"{self.root}/annotations/worker-response/iteration-{iteration}/{index}/{stamp}.json",
                    json.dumps({"answers": answers}).encode(),
                )
            )
            consolidated.append(
                {"datasetObjectId": str(index), "consolidatedAnnotation": {"content": self.results[index]}}
            )
        with ThreadPoolExecutor(_DOWNLOAD_THREADS) as pool:
            list(pool.map(lambda item: _put(self.s3, *item), responses))
        if consolidated:
            _put(
                self.s3,
                f"{self.root}/annotations/consolidated-annotation/consolidation-response/"
                f"iteration-{iteration}/{_stamp().replace(':', '-')}.json",
                json.dumps(consolidated).encode(),
            )
        self.job.update(LabelCounters=self.counters())
        return done

    # -- the whole job ------------------------------------------------------------------------------------

    def features(self) -> Any:
        keys = [self.key(i) for i in range(len(self.lines))]
        if self.preset.data_key == "source":
            return text_features(keys)
        with ThreadPoolExecutor(_DOWNLOAD_THREADS) as pool:
            images = list(pool.map(lambda uri: decode_gray(_read(self.s3, uri)), keys))
        return image_features(images)

    def human_only(self) -> None:
        batch = self.request["HumanTaskConfig"].get("MaxConcurrentTaskCount", 1000)
        pending = list(range(len(self.lines)))
        iteration = 1
        while (
            pending and not self.services.stop.is_set() and self.human < self.human_budget and self.room() > 0
        ):
            self.ask_workforce(pending[:batch], iteration)
            self.log(f"iteration {iteration}: workforce labeled {self.human} object(s) so far")
            pending, iteration = pending[batch:], iteration + 1

    def active_learning(self) -> None:
        total = len(self.lines)
        order = np.random.default_rng(self.seed).permutation(total).tolist()
        # The first human batch is a random 20% of the data set (10% from 5,000 objects on): the
        # validation sample; later human batches are the same size, least confident objects first.
        batch = max(1, math.ceil(total * (0.2 if total < 5000 else 0.1)))
        self.log(f"automated labeling: decoding {total} object(s) for the model")
        features = self.features()
        pending = order
        for iteration in range(1, MAX_ROUNDS + 1):
            if self.services.stop.is_set() or not pending or self.room() <= 0:
                return
            if self.human:
                pending = self._machine_round(features, pending, iteration)
                if not pending or self.room() <= 0:
                    return
            if self.human >= self.human_budget:
                self.log("MaxHumanLabeledObjectCount reached: no more objects go to the workforce")
                return
            size = len(pending) if iteration == MAX_ROUNDS else batch
            done = set(self.ask_workforce(pending[:size], iteration))
            pending = [i for i in pending if i not in done and i not in self.failed]
            self.log(f"iteration {iteration}: workforce labeled {len(done)} object(s); {len(pending)} left")

    def _machine_round(self, features: Any, pending: list[int], iteration: int) -> list[int]:
        """Machine-label what the model is confident about; return the rest, least confident first."""
        human = [
            i for i, r in self.results.items() if r[f"{self.attribute}-metadata"]["human-annotated"] == "yes"
        ]
        labels = np.array([self.results[i][self.attribute] for i in human])
        threshold = confidence_threshold(features[human], labels, seed=self.seed)
        predicted, confidence = predict(features[human], labels, features[pending])
        confident = (
            [] if threshold is None else [k for k in range(len(pending)) if confidence[k] >= threshold]
        )
        confident = sorted(confident, key=lambda k: -confidence[k])[: self.room()]
        for k in confident:
            self._record(pending[k], (int(predicted[k]),), (round(float(confidence[k]), 2),), human=False)
        self.machine += len(confident)
        chosen = set(confident)
        rest = sorted((k for k in range(len(pending)) if k not in chosen), key=lambda k: confidence[k])
        summary = {
            "iteration": iteration,
            "human_labeled_for_training": len(human),
            "confidence_threshold": threshold,
            "target_accuracy": 0.95,
            "machine_labeled": len(confident),
            "remaining": len(rest),
        }
        _put(
            self.s3,
            f"{self.root}/activelearning/iteration-{iteration}/summary.json",
            json.dumps(summary).encode(),
        )
        self.job.update(LabelCounters=self.counters())
        shown = "none (too few accurate predictions)" if threshold is None else f"{threshold:.3f}"
        self.log(
            f"iteration {iteration}: model trained on {len(human)} human label(s), confidence threshold "
            f"{shown}; machine-labeled {len(confident)}, {len(rest)} left"
        )
        return [pending[k] for k in rest]

    def write_output(self) -> str:
        out = []
        for index, line in enumerate(self.lines):
            out.append(json.dumps({**line, **self.results.get(index, {})}))
        uri = f"{self.root}/manifests/output/output.manifest"
        _put(self.s3, uri, "".join(f"{line}\n" for line in out).encode())
        return uri


def run(job: LocalJob, services: Services) -> None:
    labeling = LabelingRun(job, services)
    request = labeling.request
    auto = bool(request.get("LabelingJobAlgorithmsConfig"))
    labeling.log(
        f"local backend: simulated workforce: answers from hidden truth (tag {TRUTH_TAG}) with error "
        f"rate {labeling.error_rate:g}, {labeling.workers} workers per object, majority vote; "
        f"{len(labeling.lines)} object(s), task type {labeling.preset.key}"
        + ("; automated labeling: logistic regression on this machine" if auto else "")
    )
    if auto:
        labeling.active_learning()
    else:
        labeling.human_only()
    uri = labeling.write_output()
    counters = labeling.counters()
    labeling.log(f"output manifest {uri}; label counters {json.dumps(counters)}")
    if services.stop.is_set():
        job.transition("Stopped", "Labeling job stopped", LabelingJobStatus="Stopped", LabelCounters=counters)
        return
    job.transition(
        "Completed",
        "Labeling job completed",
        LabelingJobStatus="Completed",
        LabelCounters=counters,
        LabelingJobOutput={"OutputDatasetS3Uri": uri},
    )


def initial_state(request: dict[str, Any], name: str) -> dict[str, Any]:
    # Describe always carries these (the service model marks them required), from the first call on.
    return {
        "LabelCounters": {
            "TotalLabeled": 0,
            "HumanLabeled": 0,
            "MachineLabeled": 0,
            "FailedNonRetryableError": 0,
            "Unlabeled": 0,
        },
        "JobReferenceCode": hashlib.sha256(name.encode()).hexdigest()[:20],
    }
