"""Champion lookup and champion/challenger: the exact registry requests, and the decision table."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from airflow_dl_provider.operators.evaluation import (
    ChampionChallengerOperator,
    ChampionLookupOperator,
    ModelEvaluationOperator,
    decide,
    parse_predictions,
    score,
)
from airflow_dl_provider.validation.requests import validate_request
from tests.unit.operators.stubs import IMAGE, NOW, use

GROUP = "digits"
CHAMPION = "arn:aws:sagemaker:us-east-1:123456789012:model-package/digits/3"
CHALLENGER = "arn:aws:sagemaker:us-east-1:123456789012:model-package/digits/4"
ARTIFACTS = "s3://ml/models/job-3/output/model.tar.gz"
CONTEXT = {"run_id": "asset_triggered__2024-01-01T00:00:00+00:00"}


def _lookup_request() -> dict[str, Any]:
    request = {
        "ModelPackageGroupName": GROUP,
        "ModelApprovalStatus": "Approved",
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        "MaxResults": 1,
    }
    validate_request("ListModelPackages", request)
    return request


def test_lookup_returns_newest_approved_version(sagemaker: Any) -> None:
    client, stub = sagemaker
    op = ChampionLookupOperator(task_id="champion", model_package_group_name=GROUP, region_name="us-east-1")
    use(op, client)
    summary = {"ModelPackageArn": CHAMPION, "CreationTime": NOW, "ModelPackageStatus": "Completed"}
    stub.add_response("list_model_packages", {"ModelPackageSummaryList": [summary]}, _lookup_request())
    described = {
        "ModelPackageName": GROUP,
        "ModelPackageVersion": 3,
        "ModelPackageArn": CHAMPION,
        "CreationTime": NOW,
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "ModelApprovalStatus": "Approved",
        "InferenceSpecification": {
            "Containers": [{"Image": IMAGE, "ModelDataUrl": ARTIFACTS}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        "CustomerMetadataProperties": {
            "airflow:task-instance": "ti-abc",
            "training-job": "job-3",
            "metric:test_accuracy": "0.97",
            "data:train": "s3://ml/data/train/",
        },
    }
    stub.add_response("describe_model_package", described, {"ModelPackageName": CHAMPION})

    result = op.execute(CONTEXT)

    json.dumps(result)
    assert result == {
        "found": True,
        "model_package_arn": CHAMPION,
        "model_package_version": 3,
        "model_artifacts": ARTIFACTS,
        "baseline_uri": "s3://ml/models/job-3/output/drift-baseline.json",
        "training_job_name": "job-3",
        "metrics": {"test_accuracy": 0.97},
    }


def test_lookup_without_approved_version_finds_nothing(sagemaker: Any) -> None:
    client, stub = sagemaker
    op = ChampionLookupOperator(task_id="champion", model_package_group_name=GROUP, region_name="us-east-1")
    use(op, client)
    stub.add_response("list_model_packages", {"ModelPackageSummaryList": []}, _lookup_request())

    result = op.execute(CONTEXT)

    assert result["found"] is False
    assert {k: v for k, v in result.items() if k != "found"} == {
        "model_package_arn": None,
        "model_package_version": None,
        "model_artifacts": None,
        "baseline_uri": None,
        "training_job_name": None,
        "metrics": None,
    }


def test_lookup_before_the_group_exists_finds_nothing(sagemaker: Any) -> None:
    """The first run of a pipeline looks up a champion before its register stage made the group."""
    from airflow_dl_provider.service_behaviour import not_found_error

    client, stub = sagemaker
    op = ChampionLookupOperator(task_id="champion", model_package_group_name=GROUP, region_name="us-east-1")
    use(op, client)
    error = not_found_error("ListModelPackages", GROUP)
    stub.add_client_error(
        "list_model_packages",
        service_error_code=error["Code"],
        service_message=error["Message"],
        expected_params=_lookup_request(),
    )

    assert op.execute(CONTEXT)["found"] is False


def _challenge(client: Any, **kwargs: Any) -> ChampionChallengerOperator:
    args: dict[str, Any] = {
        "task_id": "decide",
        "challenger_package_arn": CHALLENGER,
        "champion_package_arn": CHAMPION,
        "metric": "accuracy",
        "region_name": "us-east-1",
    }
    args.update(kwargs)
    op = ChampionChallengerOperator(**args)
    use(op, client)
    return op


def _expect_update(stub: Stubber, status: str, reason: str) -> None:
    request = {"ModelPackageArn": CHALLENGER, "ModelApprovalStatus": status, "ApprovalDescription": reason}
    validate_request("UpdateModelPackage", request)
    stub.add_response("update_model_package", {"ModelPackageArn": CHALLENGER}, request)


@pytest.mark.parametrize(
    ("challenger", "champion", "options", "decision", "reason"),
    [
        (
            "0.942",
            "0.881",
            {},
            "promoted",
            "challenger accuracy 0.9420 beats champion 0.8810 by 0.0610 (> min_improvement 0.0000): promoted",
        ),
        (
            "0.9",
            "None",
            {"champion_package_arn": "None"},
            "promoted",
            "no approved champion to compare with; challenger accuracy 0.9000: promoted",
        ),
        (
            0.9,
            None,
            {"champion_package_arn": None},
            "promoted",
            "no approved champion to compare with; challenger accuracy 0.9000: promoted",
        ),
        (
            "0.9",
            "0.9",
            {},
            "kept_champion",
            "challenger accuracy 0.9000 does not beat champion 0.9000 by more than min_improvement 0.0000 "
            "(improvement 0.0000): kept champion",
        ),
        (
            "0.85",
            "0.9",
            {},
            "kept_champion",
            "challenger accuracy 0.8500 does not beat champion 0.9000 by more than min_improvement 0.0000 "
            "(improvement -0.0500): kept champion",
        ),
        (
            "0.91",
            "0.90",
            {"min_improvement": "0.02"},
            "kept_champion",
            "challenger accuracy 0.9100 does not beat champion 0.9000 by more than min_improvement 0.0200 "
            "(improvement 0.0100): kept champion",
        ),
        (
            "0.95",
            "0.90",
            {"min_improvement": 0.02},
            "promoted",
            "challenger accuracy 0.9500 beats champion 0.9000 by 0.0500 (> min_improvement 0.0200): promoted",
        ),
        (
            "0.10",
            "0.20",
            {"higher_is_better": False, "metric": "loss"},
            "promoted",
            "challenger loss 0.1000 beats champion 0.2000 by 0.1000 (> min_improvement 0.0000, lower is better): "
            "promoted",
        ),
        (
            "0.30",
            "0.20",
            {"higher_is_better": False, "metric": "loss"},
            "kept_champion",
            "challenger loss 0.3000 does not beat champion 0.2000 by more than min_improvement 0.0000 "
            "(improvement -0.1000, lower is better): kept champion",
        ),
    ],
)
def test_decision_table(
    sagemaker: Any, challenger: Any, champion: Any, options: dict[str, Any], decision: str, reason: str
) -> None:
    client, stub = sagemaker
    op = _challenge(client, challenger_score=challenger, champion_score=champion, **options)
    _expect_update(stub, "Approved" if decision == "promoted" else "Rejected", reason)

    result = op.execute(CONTEXT)

    json.dumps(result)
    assert result["decision"] == decision
    assert result["reason"] == reason
    assert result["challenger_score"] == float(challenger)
    assert result["champion_score"] == (None if champion in (None, "None") else float(champion))
    assert result["challenger_package_arn"] == CHALLENGER
    assert result["champion_package_arn"] == (CHAMPION if "champion_package_arn" not in options else None)
    assert result["decision_uri"] is None


def test_retry_repeats_the_same_update(sagemaker: Any) -> None:
    client, stub = sagemaker
    reason = "challenger accuracy 0.9500 beats champion 0.9000 by 0.0500 (> min_improvement 0.0000): promoted"
    for _ in range(2):
        _expect_update(stub, "Approved", reason)
        result = _challenge(client, challenger_score="0.95", champion_score="0.9").execute(CONTEXT)
        assert result["decision"] == "promoted"


def test_challenger_that_is_already_champion_stays_approved(sagemaker: Any) -> None:
    client, stub = sagemaker
    _expect_update(stub, "Approved", "challenger accuracy 0.9500 is already the approved champion: promoted")
    op = _challenge(client, challenger_score="0.95", champion_score="0.95", champion_package_arn=CHALLENGER)
    assert op.execute(CONTEXT)["decision"] == "promoted"


def test_decision_record_is_one_put(sagemaker: Any) -> None:
    client, stub = sagemaker
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    op = _challenge(
        client, challenger_score="0.8", champion_score="0.9", decision_prefix="s3://ml/decisions/digits/"
    )
    op.hook.__dict__["s3"] = s3
    key = "decisions/digits/asset_triggered__2024-01-01T00-00-00-00-00/decision.json"
    reason = (
        "challenger accuracy 0.8000 does not beat champion 0.9000 by more than min_improvement 0.0000 "
        "(improvement -0.1000): kept champion"
    )
    _expect_update(stub, "Rejected", reason)
    with Stubber(s3) as s3_stub:
        s3_stub.add_response(
            "put_object",
            {},
            {"Bucket": "ml", "Key": key, "Body": ANY, "ContentType": "application/json"},
        )
        result = op.execute(CONTEXT)
        s3_stub.assert_no_pending_responses()
    assert result["decision"] == "kept_champion"
    assert result["decision_uri"] == f"s3://ml/{key}"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"higher_is_better": "yes"}, "higher_is_better: must be True or False"),
        ({"min_improvement": -0.1}, "min_improvement: must be >= 0"),
        ({"decision_prefix": "/tmp/decisions"}, "decision_prefix: '/tmp/decisions' is not an s3:// URI"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs: dict[str, Any], message: str) -> None:
    args = {"challenger_package_arn": CHALLENGER, "challenger_score": 0.9, "champion_score": None}
    with pytest.raises(ValueError, match=message):
        ChampionChallengerOperator(task_id="decide", **args, **kwargs)


@pytest.mark.parametrize(
    ("challenger", "message"),
    [("abc", "challenger_score: 'abc' is not a number"), ("None", "challenger_score: is missing")],
)
def test_bad_scores_fail_before_any_update(sagemaker: Any, challenger: str, message: str) -> None:
    client, _ = sagemaker
    with pytest.raises(ValueError, match=message):
        _challenge(client, challenger_score=challenger, champion_score="0.9").execute(CONTEXT)


def test_decide_is_strict() -> None:
    assert decide(0.9, 0.9)[0] is False
    assert decide(0.9 + 1e-9, 0.9)[0] is True
    assert decide(0.9, 0.8, min_improvement=0.1)[0] is False  # 0.1 is not more than 0.1
    assert decide(0.1, 0.1, higher_is_better=False)[0] is False


def test_predictions_and_metrics() -> None:
    assert parse_predictions("1\n2\n\n3.0\n", "x") == ["1", "2", "3"]
    assert parse_predictions('{"predictions": [{"label": 4, "probability": 0.9}, {"label": 5}]}', "x") == [
        "4",
        "5",
    ]
    assert score("accuracy", ["1", "2", "3", "3"], ["1", "2", "2", "3"]) == 0.75
    # Class 1: F1 1; class 2: tp 1, fn 1 -> 2/3; class 3: tp 1, fp 1 -> 2/3.
    assert score("macro_f1", ["1", "2", "3", "3"], ["1", "2", "2", "3"]) == pytest.approx(
        (1 + 2 / 3 + 2 / 3) / 3
    )


def test_evaluation_rejects_unknown_metric() -> None:
    with pytest.raises(ValueError, match="metric: 'auc' is not one of accuracy, macro_f1"):
        ModelEvaluationOperator(
            task_id="evaluate", predictions_uri="s3://a/p/", labels_uri="s3://a/l/", metric="auc"
        )
