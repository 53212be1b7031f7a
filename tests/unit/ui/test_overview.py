"""The page's data: runs and jobs from the records, the rest from SageMaker and S3 (fakes of their answers)."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from airflow_dl_provider.drift.severity import severity
from airflow_dl_provider.jobs.kinds import JOB_KINDS
from airflow_dl_provider.ui.overview import (
    ModelVersion,
    OverviewBuilder,
    job_cost,
    job_kind_of,
    mark_champion,
    pipelines,
    ranked_features,
    trials_cost,
)

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
ARN = "arn:aws:sagemaker:us-east-1:123456789012"


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_pipelines_group_the_three_dags_of_a_config() -> None:
    found = pipelines(
        ["dl_pipeline_digits", "dl_drift_monitor_digits", "dl_retrain_digits", "other", "dl_pipeline_"]
    )

    assert found == {
        "digits": {
            "pipeline": "dl_pipeline_digits",
            "drift": "dl_drift_monitor_digits",
            "retrain": "dl_retrain_digits",
        }
    }


@pytest.mark.parametrize(
    ("arn", "kind"),
    [
        (f"{ARN}:training-job/digits-train-1", "training"),
        (f"{ARN}:hyper-parameter-tuning-job/digits-tune-1", "tuning"),
        (f"{ARN}:transform-job/t", "transform"),
        (f"{ARN}:compilation-job/c", "compilation"),
        (f"{ARN}:labeling-job/l", "labeling"),
        (f"{ARN}:model-package/digits/1", None),
        ("not-an-arn", None),
    ],
)
def test_job_kind_of_an_arn(arn: str, kind: str | None) -> None:
    found = job_kind_of(arn)

    assert (found.key if found else None) == kind


def test_training_cost_is_billable_time_at_the_list_price() -> None:
    description = {
        "TrainingJobStatus": "Completed",
        "ResourceConfig": {"InstanceType": "ml.p3dn.24xlarge", "InstanceCount": 2},
        "TrainingStartTime": at(0),
        "TrainingEndTime": at(7200),
        "BillableTimeInSeconds": 1800,
    }
    from airflow_dl_provider.presets.instances import INSTANCES

    cost = job_cost(JOB_KINDS["training"], description, "us-east-1")

    assert cost.usd == pytest.approx(INSTANCES["ml.p3dn.24xlarge"].price_per_hour * 2 * 0.5)
    assert "2 x ml.p3dn.24xlarge x 1800 s" in cost.basis


def test_cost_outside_the_price_region_is_not_invented() -> None:
    description = {
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
        "BillableTimeInSeconds": 60,
    }

    cost = job_cost(JOB_KINDS["training"], description, "eu-west-1")

    assert cost.usd is None and "eu-west-1" in cost.basis


def test_transform_cost_uses_its_run_time_and_labeling_has_none() -> None:
    transform = {
        "TransformJobStatus": "Completed",
        "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
        "TransformStartTime": at(0),
        "TransformEndTime": at(3600),
    }

    assert job_cost(JOB_KINDS["transform"], transform, "us-east-1").usd == pytest.approx(0.23)
    assert job_cost(JOB_KINDS["labeling"], {}, "us-east-1").usd is None


def test_tuning_cost_sums_its_trials() -> None:
    definition = {
        "TrainingJobDefinition": {"ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2}}
    }
    trials = [
        {"TrainingStartTime": at(0), "TrainingEndTime": at(1800)},
        {"TrainingStartTime": at(0), "TrainingEndTime": at(3600)},
        {"TrainingStartTime": at(0)},  # still running: not counted yet
    ]

    cost = trials_cost(trials, definition, "us-east-1")

    assert cost.usd == pytest.approx(0.23 * 2 * 1.5)
    assert cost.basis.startswith("2 finished trial(s)")


def test_features_rank_drifted_first_by_severity_then_naturally() -> None:
    thresholds = {
        "psi": 0.2,
        "ks_statistic": 0.05,
        "wasserstein_normed": 0.1,
        "js_distance": 0.05,
        "missing_rate": 0.05,
    }
    report = {
        "thresholds": thresholds,
        "features": {
            "p10": {"status": "stable", "drifted": False, "scores": {"psi": 0.01}},
            "p2": {"status": "stable", "drifted": False, "scores": {"psi": 0.01}},
            "p3": {"status": "drifted", "drifted": True, "scores": {"psi": 0.4, "ks_statistic": 0.1}},
            "p1": {"status": "drifted", "drifted": True, "scores": {"wasserstein_normed": 0.9}},
            "p4": {"status": "drifted", "drifted": True, "scores": {"missing_rate_change": -0.5}},
        },
    }

    ranked = ranked_features(report)

    assert [f.name for f in ranked] == ["p4", "p1", "p3", "p2", "p10"]
    assert ranked[0].severity == pytest.approx(10.0)
    assert severity({"drifted": True, "scores": {}}, thresholds) == float("inf")


def test_the_champion_is_the_newest_approved_version() -> None:
    def version(number: int, approval: str) -> ModelVersion:
        return ModelVersion(
            number, f"{ARN}:model-package/g/{number}", "Completed", approval, None, "", "", {}
        )

    versions = mark_champion([version(3, "Rejected"), version(2, "Approved"), version(1, "Approved")])

    assert [v.version for v in versions if v.champion] == [2]
    assert not any(v.champion for v in mark_champion([version(1, "PendingManualApproval")]))


class FakeRecords:
    def __init__(
        self, runs: dict[str, list[dict[str, Any]]], tasks: dict[tuple[str, str], dict[str, Any]]
    ) -> None:
        self._runs, self._tasks = runs, tasks

    def dag_ids(self) -> list[str]:
        return list(self._runs)

    def runs(self, dag_id: str, limit: int) -> list[dict[str, Any]]:
        return self._runs.get(dag_id, [])[:limit]

    def tasks(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        return self._tasks.get((dag_id, run_id), {})


class FakeSageMaker:
    """Answers as SageMaker does for the calls the page makes; ``down`` makes every call fail."""

    def __init__(self, down: bool = False) -> None:
        self.down = down

    def _check(self) -> None:
        if self.down:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "Describe"
            )

    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:
        self._check()
        return {
            "TrainingJobName": TrainingJobName,
            "TrainingJobStatus": "Completed",
            "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
            "TrainingStartTime": at(0),
            "TrainingEndTime": at(600),
            "BillableTimeInSeconds": 600,
        }

    def describe_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> dict[str, Any]:
        self._check()
        return {
            "HyperParameterTuningJobName": HyperParameterTuningJobName,
            "HyperParameterTuningJobStatus": "Completed",
            "CreationTime": at(0),
            "HyperParameterTuningEndTime": at(900),
            "HyperParameterTuningJobConfig": {
                "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation_accuracy"}
            },
            "TrainingJobDefinition": {"ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}},
        }

    def list_training_jobs_for_hyper_parameter_tuning_job(self, **params: Any) -> dict[str, Any]:
        self._check()
        trials = [
            {
                "TrainingJobName": "tune-001",
                "TrainingJobStatus": "Completed",
                "TrainingStartTime": at(0),
                "TrainingEndTime": at(300),
                "TunedHyperParameters": {"lr": "0.1"},
                "FinalHyperParameterTuningJobObjectiveMetric": {
                    "MetricName": "validation_accuracy",
                    "Value": 0.9,
                },
            },
            {
                "TrainingJobName": "tune-002",
                "TrainingJobStatus": "Completed",
                "TrainingStartTime": at(0),
                "TrainingEndTime": at(300),
                "TunedHyperParameters": {"lr": "0.2"},
                "FinalHyperParameterTuningJobObjectiveMetric": {
                    "MetricName": "validation_accuracy",
                    "Value": 0.95,
                },
            },
        ]
        if params.get("SortBy") == "FinalObjectiveMetricValue":
            trials.sort(
                key=lambda t: t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"],
                reverse=params["SortOrder"] == "Descending",
            )
        return {"TrainingJobSummaries": trials}

    def list_model_packages(self, **params: Any) -> dict[str, Any]:
        self._check()
        assert params["ModelPackageGroupName"] == "digits"
        return {
            "ModelPackageSummaryList": [
                {"ModelPackageArn": f"{ARN}:model-package/digits/{v}"} for v in (2, 1)
            ]
        }

    def describe_model_package(self, ModelPackageName: str) -> dict[str, Any]:
        self._check()
        version = int(ModelPackageName.rsplit("/", 1)[1])
        return {
            "ModelPackageVersion": version,
            "ModelPackageStatus": "Completed",
            "ModelApprovalStatus": "Approved" if version == 1 else "Rejected",
            "ApprovalDescription": "kept the champion: 0.90 < 0.95" if version == 2 else "",
            "CreationTime": at(version),
        }


class FakeS3:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        return {"Body": io.BytesIO(self.objects[f"s3://{Bucket}/{Key}"])}


def _records() -> FakeRecords:
    train = {"job_name": "train-1", "job_arn": f"{ARN}:training-job/train-1", "status": "Completed"}
    tune = {"job_name": "tune", "job_arn": f"{ARN}:hyper-parameter-tuning-job/tune", "status": "Completed"}
    register = {"model_package_arn": f"{ARN}:model-package/digits/1"}
    drift = {"report_json": "s3://b/drift/r1/drift-report.json", "drifted": True}
    decide = {"decision": "kept_champion", "reason": "0.90 < 0.95"}
    return FakeRecords(
        runs={
            "dl_pipeline_digits": [
                {"run_id": "manual__1", "state": "success", "start": at(0), "end": at(1200)}
            ],
            "dl_drift_monitor_digits": [
                {"run_id": "manual__2", "state": "success", "start": at(2000), "end": at(2100)}
            ],
            "dl_retrain_digits": [
                {"run_id": "asset__3", "state": "success", "start": at(3000), "end": at(3100)}
            ],
        },
        tasks={
            ("dl_pipeline_digits", "manual__1"): {
                "prepare_data": {"state": "success", "start": at(0), "result": {"train": "s3://b/train.csv"}},
                "train": {"state": "success", "start": at(10), "result": train},
                "tune": {"state": "success", "start": at(700), "result": tune},
                "register": {"state": "success", "start": at(1100), "result": register},
            },
            ("dl_drift_monitor_digits", "manual__2"): {
                "check_drift": {"state": "success", "start": at(2010), "result": drift},
            },
            ("dl_retrain_digits", "asset__3"): {
                "decide": {"state": "success", "start": at(3050), "result": decide}
            },
        },
    )


REPORT = {
    "drifted": True,
    "rows": 1797,
    "model_version": "1",
    "thresholds": {"psi": 0.2},
    "features": {
        "p1": {"status": "stable", "drifted": False, "scores": {"psi": 0.01}},
        "p9": {"status": "drifted", "drifted": True, "scores": {"psi": 0.9}, "reasons": ["psi 0.9 >= 0.2"]},
    },
}


def test_overview_of_a_pipeline_from_records_and_services() -> None:
    s3 = FakeS3({"s3://b/drift/r1/drift-report.json": json.dumps(REPORT).encode()})
    builder = OverviewBuilder(_records(), FakeSageMaker(), s3)

    overview = builder.build("digits", pipelines(_records().dag_ids())["digits"])

    assert overview.errors == {}
    assert [r.run_id for r in overview.runs] == ["asset__3", "manual__2", "manual__1"]
    pipeline_run = overview.runs[-1]
    assert [(j.task_id, j.kind, j.status) for j in pipeline_run.jobs] == [
        ("train", "training", "Completed"),
        ("tune", "tuning", "Completed"),
    ]
    assert pipeline_run.jobs[0].seconds == 600
    assert pipeline_run.jobs[0].cost.usd == pytest.approx(0.23 / 6)
    assert pipeline_run.jobs[1].cost.usd == pytest.approx(0.23 * 600 / 3600)
    assert [t.name for t in overview.leaderboard.trials] == ["tune-002", "tune-001"]
    assert overview.drift is not None and [f.name for f in overview.drift.features] == ["p9", "p1"]
    assert overview.registry is not None and overview.registry.champion.version == 1
    assert overview.registry.versions[0].approval_description == "kept the champion: 0.90 < 0.95"
    assert overview.registry.decisions == [
        {"run_id": "asset__3", **_records().tasks("dl_retrain_digits", "asset__3")["decide"]["result"]}
    ]


def test_one_unreachable_service_leaves_the_other_sections() -> None:
    s3 = FakeS3({"s3://b/drift/r1/drift-report.json": json.dumps(REPORT).encode()})
    builder = OverviewBuilder(_records(), FakeSageMaker(down=True), s3)

    overview = builder.build("digits", pipelines(_records().dag_ids())["digits"])

    assert overview.errors["leaderboard"].startswith("ThrottlingException: ")
    assert overview.errors["registry"].startswith("ThrottlingException: ")
    # The runs still list their jobs (status unknown), and the drift report comes from S3 alone.
    assert [j.status for j in overview.runs[-1].jobs] == ["unknown", "unknown"]
    assert overview.drift is not None and overview.drift.drifted


class _OneTrainingJob(FakeSageMaker):
    def __init__(self, **description: Any) -> None:
        super().__init__()
        self.description = description

    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:
        return {"TrainingJobName": TrainingJobName, "CreationTime": at(0), **self.description}


def _train_row(sagemaker: FakeSageMaker) -> Any:
    builder = OverviewBuilder(_records(), sagemaker, FakeS3({}))
    overview = builder.build("digits", {"pipeline": "dl_pipeline_digits"})
    return next(job for job in overview.runs[0].jobs if job.task_id == "train")


def test_job_rows_follow_the_one_outcome_decision() -> None:
    # Stopped is an end: the row has a duration (to its last change) and the reason it failed.
    stopped = _train_row(
        _OneTrainingJob(
            TrainingJobStatus="Stopped",
            LastModifiedTime=at(90),
            FailureReason="stopped by the task's on_kill",
        )
    )
    assert (stopped.status, stopped.seconds, stopped.failure) == (
        "Stopped",
        90,
        "stopped by the task's on_kill",
    )

    # Still running: no end yet, and a reason field left from the service's retry is no failure.
    running = _train_row(
        _OneTrainingJob(
            TrainingJobStatus="InProgress", LastModifiedTime=at(90), FailureReason="ClientError: retrying"
        )
    )
    assert (running.status, running.seconds, running.failure) == ("InProgress", None, "")
