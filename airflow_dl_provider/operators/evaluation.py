"""Champion/challenger: score a model on a holdout, find the approved champion, promote only a winner.

The retraining DAG runs the challenger and the champion over the same holdout with batch transform,
scores both predictions with :class:`ModelEvaluationOperator`, and lets
:class:`ChampionChallengerOperator` approve the challenger only when it wins, or reject it, writing
why either way: in the package's ``ApprovalDescription`` and in a decision record in S3.
:class:`ChampionLookupOperator` finds the champion: the group's newest ``Approved`` version.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import re
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from botocore.exceptions import ClientError

from airflow_dl_provider.hooks.sagemaker import SageMakerJobHook
from airflow_dl_provider.links.published import PublishedOutputs
from airflow_dl_provider.operators.base import S3Operator
from airflow_dl_provider.service_behaviour import is_not_found

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

METRICS = ("accuracy", "macro_f1")
#: Rendered templates of a missing value: an XCom of ``None`` renders as the string ``"None"``.
_MISSING = frozenset({"", "none", "null"})
#: The service's cap on ApprovalDescription.
_MAX_DESCRIPTION = 1024
# What RegisterModelOperator records in CustomerMetadataProperties (see operators/registry.py).
_TRAINING_JOB_KEY = "training-job"
_METRIC_PREFIX = "metric:"
_CHAMPION_FIELDS = (
    "model_package_arn",
    "model_package_version",
    "model_artifacts",
    "baseline_uri",
    "training_job_name",
    "metrics",
)


def _object_keys(s3: Any, uri: str, field: str, keep: Callable[[str], bool]) -> tuple[str, list[str]]:
    """``(bucket, keys)``: the object ``uri`` names, or every kept non-empty object under it, in key order."""
    from airflow_dl_provider.validation.preflight import split_s3_uri

    bucket, key = split_s3_uri(uri, field)
    prefix = "" if not key or key.endswith("/") else key + "/"
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
        for item in page.get("Contents", []):
            if item["Key"] == key and not key.endswith("/"):
                return bucket, [key]
            if item["Size"] > 0 and item["Key"].startswith(prefix) and keep(item["Key"]):
                keys.append(item["Key"])
    if not keys:
        raise ValueError(f"{field}: {uri} holds no objects to read; is the upstream task done?")
    return bucket, sorted(keys)


def _label(value: Any) -> str:
    """One label as comparable text: ``3``, ``"3"``, ``3.0`` and ``" 3 "`` are the same class."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else repr(number)


def parse_predictions(text: str, where: str) -> list[str]:
    """Predicted labels from a transform output: a label per line (``text/csv``), or the JSON
    ``{"predictions": [{"label": k, ...}, ...]}`` the inference handler writes for ``application/json``."""
    labels: list[str] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if not line.startswith(("{", "[")):
            labels.append(_label(line.split(",", 1)[0]))
            continue
        try:
            decoded = json.loads(line)
        except ValueError as err:
            raise ValueError(f"predictions_uri: {where} line {line_no} is not JSON ({err})") from None
        items = decoded.get("predictions", [decoded]) if isinstance(decoded, dict) else decoded
        for item in items:
            labels.append(_label(item["label"] if isinstance(item, dict) else item))
    return labels


def score(metric: str, predicted: Sequence[str], actual: Sequence[str]) -> float:
    """``accuracy``, or ``macro_f1``: the unweighted mean F1 over every class seen in either list."""
    if metric == "accuracy":
        return sum(p == a for p, a in zip(predicted, actual, strict=True)) / len(actual)
    f1s = []
    for label in sorted(set(predicted) | set(actual)):
        tp = sum(p == label and a == label for p, a in zip(predicted, actual, strict=True))
        fp = sum(p == label and a != label for p, a in zip(predicted, actual, strict=True))
        fn = sum(p != label and a == label for p, a in zip(predicted, actual, strict=True))
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return sum(f1s) / len(f1s)


class ModelEvaluationOperator(S3Operator):
    """Score batch-transform predictions against the holdout's labels.

    Run the champion and the challenger over the same holdout and score both with this operator: the
    two values are then comparable. Only S3 is read; nothing is started.

    :param predictions_uri: a batch-transform output prefix: every ``*.out`` object under it, in key
        order, one predicted label per line (``text/csv``), or the inference handler's JSON. (templated)
    :param labels_uri: a CSV object, or a prefix of them read in key order, with a header naming
        ``label_column``; its rows are in the order of the transform input. (templated)
    :param label_column: the column of true labels.
    :param metric: ``accuracy`` or ``macro_f1``.
    :return: ``{"metric": name, "value": float, "records": n, "predictions_uri": uri,
        "labels_uri": uri}``
    """

    template_fields: Sequence[str] = aws_template_fields("predictions_uri", "labels_uri")
    ui_color = "#f0ede4"

    def __init__(
        self,
        *,
        predictions_uri: str,
        labels_uri: str,
        label_column: str = "label",
        metric: str = "accuracy",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if metric not in METRICS:
            raise ValueError(f"{self.task_id}: metric: {metric!r} is not one of {', '.join(METRICS)}")
        self.predictions_uri = predictions_uri
        self.labels_uri = labels_uri
        self.label_column = label_column
        self.metric = metric

    def _text(self, s3: Any, bucket: str, key: str) -> str:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")

    def predictions(self, s3: Any) -> list[str]:
        bucket, keys = _object_keys(s3, self.predictions_uri, "predictions_uri", lambda k: k.endswith(".out"))
        labels: list[str] = []
        for key in keys:
            labels.extend(parse_predictions(self._text(s3, bucket, key), f"s3://{bucket}/{key}"))
        return labels

    def labels(self, s3: Any) -> list[str]:
        bucket, keys = _object_keys(s3, self.labels_uri, "labels_uri", lambda k: k.endswith(".csv"))
        labels: list[str] = []
        for key in keys:
            reader = csv.reader(io.StringIO(self._text(s3, bucket, key)))
            header = [h.strip() for h in next(reader, [])]
            if self.label_column not in header:
                raise ValueError(
                    f"label_column: {self.label_column!r} is not a column of s3://{bucket}/{key} ({header[:5]}...)"
                )
            column = header.index(self.label_column)
            labels.extend(_label(row[column]) for row in reader if row)
        return labels

    def execute(self, context: Any) -> dict[str, Any]:
        s3 = self.hook.conn
        predicted = self.predictions(s3)
        actual = self.labels(s3)
        if len(predicted) != len(actual) or not actual:
            raise ValueError(
                f"predictions_uri {self.predictions_uri} holds {len(predicted)} predictions but labels_uri "
                f"{self.labels_uri} holds {len(actual)} labels; they must be the same holdout, in the same order"
            )
        value = score(self.metric, predicted, actual)
        self.log.info("%s = %.4f over %d records of %s", self.metric, value, len(actual), self.labels_uri)
        return {
            "metric": self.metric,
            "value": value,
            "records": len(actual),
            "predictions_uri": self.predictions_uri,
            "labels_uri": self.labels_uri,
        }


class ChampionLookupOperator(PublishedOutputs, AwsBaseOperator[SageMakerJobHook]):
    """Find the champion: the newest ``Approved`` version of a model package group.

    :param model_package_group_name: the group. (templated)
    :return: ``{"found": bool, "model_package_arn", "model_package_version", "model_artifacts",
        "baseline_uri", "training_job_name", "metrics": {name: value}}``; the ARN, artifact and
        baseline URIs are those of the champion, ``training_job_name`` and ``metrics`` are what
        RegisterModelOperator recorded on it. With no approved version, ``found`` is False and every
        other value is None.
    """

    aws_hook_class = SageMakerJobHook
    template_fields: Sequence[str] = aws_template_fields("model_package_group_name")
    ui_color = "#e6f3e1"

    def __init__(self, *, model_package_group_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_package_group_name = model_package_group_name

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow_dl_provider.drift.profile import baseline_uri_for
        from airflow_dl_provider.validation.requests import validate_request

        request = {
            "ModelPackageGroupName": self.model_package_group_name,
            "ModelApprovalStatus": "Approved",
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": 1,
        }
        validate_request("ListModelPackages", request)
        try:
            summaries = self.hook.conn.list_model_packages(**request).get("ModelPackageSummaryList", [])
        except ClientError as err:
            # A pipeline's first run: the group is created by its register stage, later than this.
            if not is_not_found("ListModelPackages", err):
                raise
            summaries = []
        if not summaries:
            self.log.info("No approved model package in %s: no champion yet", self.model_package_group_name)
            return {"found": False, **dict.fromkeys(_CHAMPION_FIELDS)}
        arn = summaries[0]["ModelPackageArn"]
        described = self.hook.conn.describe_model_package(ModelPackageName=arn)
        containers = (described.get("InferenceSpecification") or {}).get("Containers") or [{}]
        artifacts = containers[0].get("ModelDataUrl")
        metadata = described.get("CustomerMetadataProperties") or {}
        metrics: dict[str, float] = {}
        for key, value in metadata.items():
            if key.startswith(_METRIC_PREFIX):
                try:
                    metrics[key.removeprefix(_METRIC_PREFIX)] = float(value)
                except ValueError:
                    self.log.warning("Ignoring %s=%r on %s: not a number", key, value, arn)
        self.log.info("Champion of %s: %s (%s)", self.model_package_group_name, arn, artifacts)
        return {
            "found": True,
            "model_package_arn": arn,
            "model_package_version": described.get("ModelPackageVersion"),
            "model_artifacts": artifacts,
            "baseline_uri": baseline_uri_for(artifacts) if artifacts else None,
            "training_job_name": metadata.get(_TRAINING_JOB_KEY),
            "metrics": metrics,
        }


def _score(value: Any, field: str) -> float | None:
    """A templated score as a float; None for a missing one (an XCom of None renders as "None")."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _MISSING):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{field}: {value!r} is not a number") from None
    if math.isnan(number):
        raise ValueError(f"{field}: is NaN; the evaluation produced no score")
    return number


def _arn(value: Any) -> str | None:
    return None if value is None or str(value).strip().lower() in _MISSING else str(value).strip()


def decide(
    challenger: float,
    champion: float | None,
    *,
    higher_is_better: bool = True,
    min_improvement: float = 0.0,
    metric: str = "score",
) -> tuple[bool, str]:
    """``(promote, reason)``: promote when there is no champion, or the challenger beats it by more
    than ``min_improvement`` in the metric's direction; the reason is one sentence with both scores."""
    if champion is None:
        return True, f"no approved champion to compare with; challenger {metric} {challenger:.4f}: promoted"
    gain = challenger - champion if higher_is_better else champion - challenger
    direction = "" if higher_is_better else ", lower is better"
    if gain > min_improvement:
        return True, (
            f"challenger {metric} {challenger:.4f} beats champion {champion:.4f} by {gain:.4f} "
            f"(> min_improvement {min_improvement:.4f}{direction}): promoted"
        )
    return False, (
        f"challenger {metric} {challenger:.4f} does not beat champion {champion:.4f} by more than "
        f"min_improvement {min_improvement:.4f} (improvement {gain:.4f}{direction}): kept champion"
    )


class ChampionChallengerOperator(PublishedOutputs, AwsBaseOperator[SageMakerJobHook]):
    """Approve the challenger if it beats the champion on the same holdout, reject it otherwise.

    The outcome is the challenger's ``ModelApprovalStatus`` (``Approved`` makes it the group's newest
    approved version: the champion that :class:`ChampionLookupOperator` and deployments find), and
    its ``ApprovalDescription`` says why in one sentence with both scores. The champion's own status
    is left alone, so rolling back is approving nothing new. A retry repeats the same update.

    :param challenger_package_arn: the newly registered version. (templated)
    :param challenger_score: its score on the holdout; a rendered string is converted. (templated)
    :param champion_score: the champion's score on the same holdout; None, ``"None"`` or ``""`` when
        there is no champion, and the challenger is promoted. (templated)
    :param champion_package_arn: the champion's version ARN, for the record. (templated)
    :param higher_is_better: the metric's direction (False for a loss or an error rate).
    :param min_improvement: the margin the challenger must beat the champion by, strictly. (templated)
    :param decision_prefix: when set, the decision record goes to
        ``<decision_prefix>/<run id>/decision.json``. (templated)
    :param metric: the metric's name, for the reason and the record.
    :param update_package: set the challenger's status; False when an approval gate follows and
        records the decision itself (``approval`` in a pipeline config).
    :return: ``{"decision": "promoted" | "kept_champion", "reason": sentence, "challenger_package_arn",
        "champion_package_arn", "challenger_score": float, "champion_score": float | None,
        "decision_uri": uri | None}``
    """

    aws_hook_class = SageMakerJobHook
    template_fields: Sequence[str] = aws_template_fields(
        "challenger_package_arn",
        "challenger_score",
        "champion_score",
        "champion_package_arn",
        "min_improvement",
        "decision_prefix",
    )
    ui_color = "#e6f3e1"

    def __init__(
        self,
        *,
        challenger_package_arn: str,
        challenger_score: float | str,
        champion_score: float | str | None,
        champion_package_arn: str | None = None,
        higher_is_better: bool = True,
        min_improvement: float = 0.0,
        decision_prefix: str | None = None,
        metric: str = "score",
        update_package: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.update_package = update_package
        if not isinstance(higher_is_better, bool):
            raise ValueError(
                f"{self.task_id}: higher_is_better: must be True or False, got {higher_is_better!r}"
            )
        if isinstance(min_improvement, (int, float)) and min_improvement < 0:
            raise ValueError(f"{self.task_id}: min_improvement: must be >= 0, got {min_improvement}")
        if decision_prefix and "{{" not in decision_prefix and not decision_prefix.startswith("s3://"):
            raise ValueError(f"{self.task_id}: decision_prefix: {decision_prefix!r} is not an s3:// URI")
        self.challenger_package_arn = challenger_package_arn
        self.challenger_score = challenger_score
        self.champion_score = champion_score
        self.champion_package_arn = champion_package_arn
        self.higher_is_better = higher_is_better
        self.min_improvement = min_improvement
        self.decision_prefix = decision_prefix
        self.metric = metric

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow_dl_provider.validation.requests import validate_request

        challenger_arn = _arn(self.challenger_package_arn)
        if challenger_arn is None:
            raise ValueError("challenger_package_arn: is empty; did the register task return an ARN?")
        champion_arn = _arn(self.champion_package_arn)
        challenger = _score(self.challenger_score, "challenger_score")
        if challenger is None:
            raise ValueError("challenger_score: is missing; did the evaluation task run?")
        champion = _score(self.champion_score, "champion_score")
        margin = _score(self.min_improvement, "min_improvement") or 0.0
        if margin < 0:
            raise ValueError(f"min_improvement: must be >= 0, got {margin}")
        if champion_arn is not None and champion_arn == challenger_arn:
            # A cleared lookup that ran after the promotion finds the challenger itself: keep it approved.
            promote = True
            reason = f"challenger {self.metric} {challenger:.4f} is already the approved champion: promoted"
        else:
            promote, reason = decide(
                challenger,
                champion,
                higher_is_better=self.higher_is_better,
                min_improvement=margin,
                metric=self.metric,
            )
        status = "Approved" if promote else "Rejected"
        request = {
            "ModelPackageArn": challenger_arn,
            "ModelApprovalStatus": status,
            "ApprovalDescription": reason[:_MAX_DESCRIPTION],
        }
        validate_request("UpdateModelPackage", request)
        if self.update_package:
            self.hook.conn.update_model_package(**request)
        self.log.info("%s %s: %s", status, challenger_arn, reason)
        result = {
            "decision": "promoted" if promote else "kept_champion",
            "reason": reason,
            "challenger_package_arn": challenger_arn,
            "champion_package_arn": champion_arn,
            "challenger_score": challenger,
            "champion_score": champion,
            "decision_uri": None,
        }
        if self.decision_prefix:
            record = {
                **result,
                "metric": self.metric,
                "higher_is_better": self.higher_is_better,
                "min_improvement": margin,
                "approval_status": status,
                "run_id": str(context.get("run_id", "manual")),
                "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            }
            result["decision_uri"] = self._write_record(record)
        return result

    def _write_record(self, record: Mapping[str, Any]) -> str:
        from airflow_dl_provider.validation.preflight import split_s3_uri

        run = re.sub(r"[^A-Za-z0-9_.=-]", "-", str(record["run_id"]))
        uri = f"{str(self.decision_prefix).rstrip('/')}/{run}/decision.json"
        bucket, key = split_s3_uri(uri, "decision_prefix")
        record = {**record, "decision_uri": uri}
        # One PUT is atomic: a reader sees the whole record or none; a retry overwrites it.
        self.hook.s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(record, indent=2, sort_keys=True).encode(),
            ContentType="application/json",
        )
        self.log.info("Decision record: %s", uri)
        return uri
