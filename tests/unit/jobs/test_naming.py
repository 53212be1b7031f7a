"""Deterministic job names: stable per task instance, distinct across them, always valid for the API."""

from __future__ import annotations

import re

import pytest

from airflow_dl_provider.jobs.naming import deterministic_job_name
from airflow_dl_provider.validation.requests import request_errors

API_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"

AWKWARD_IDS = [
    ("dl_pipeline", "train", "manual__2024-01-01T00:00:00+00:00"),
    ("a" * 200, "b" * 200, "scheduled__2024-01-01T00:00:00+00:00"),
    ("___", "...", "run"),  # nothing usable in the slug at all
    ("dag", "group.train_model", "backfill__2024-06-01T00:00:00+00:00"),
    ("dag-", "-task", "r"),
    ("ünïcode_dag", "tâsk", "manual__ü"),
    ("x" * 52, "y", "run"),  # a slug cut right before a dash
]


def _training_request(name: str) -> dict[str, object]:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": "img:1", "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }


def _tuning_request(name: str) -> dict[str, object]:
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Random",
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
        },
    }


def test_same_task_instance_same_name() -> None:
    first = deterministic_job_name("dag", "train", "manual__1", 3)
    assert first == deterministic_job_name("dag", "train", "manual__1", 3)
    assert first.startswith("dag-train-")


@pytest.mark.parametrize(
    "other",
    [
        ("dag", "train", "manual__2", -1),
        ("dag", "train", "manual__1", 0),
        ("dag", "evaluate", "manual__1", -1),
        ("dag2", "train", "manual__1", -1),
    ],
)
def test_any_identifier_changes_the_name(other: tuple[str, str, str, int]) -> None:
    assert deterministic_job_name("dag", "train", "manual__1", -1) != deterministic_job_name(*other)


def test_map_indexes_differ_even_when_the_slug_is_cut() -> None:
    names = {deterministic_job_name("d" * 80, "t" * 80, "manual__1", i) for i in range(-1, 50)}
    assert len(names) == 51
    assert all(len(n) == 63 for n in names)


def test_identifier_boundaries_are_not_ambiguous() -> None:
    # "a-b" + "c" and "a" + "b-c" give the same slug; the hash must still tell them apart.
    left = deterministic_job_name("a-b", "c", "run")
    right = deterministic_job_name("a", "b-c", "run")
    assert left.rsplit("-", 1)[0] == right.rsplit("-", 1)[0]
    assert left != right


@pytest.mark.parametrize(("dag_id", "task_id", "run_id"), AWKWARD_IDS)
@pytest.mark.parametrize("attempt", [1, 2, 17])
def test_names_fit_the_api_pattern_and_length(dag_id: str, task_id: str, run_id: str, attempt: int) -> None:
    name = deterministic_job_name(dag_id, task_id, run_id, attempt=attempt)
    assert len(name) <= 63
    assert API_NAME.fullmatch(name), name
    assert request_errors("CreateTrainingJob", _training_request(name)) == []

    short = deterministic_job_name(dag_id, task_id, run_id, max_length=32, attempt=attempt)
    assert len(short) <= 32
    assert API_NAME.fullmatch(short), short
    assert request_errors("CreateHyperParameterTuningJob", _tuning_request(short)) == []


def test_prefix_replaces_the_readable_part_not_the_hash() -> None:
    plain = deterministic_job_name("dag", "train", "run")
    prefixed = deterministic_job_name("dag", "train", "run", prefix="bert_finetune v2")
    assert prefixed.startswith("bert-finetune-v2-")
    assert prefixed.rsplit("-", 1)[1] == plain.rsplit("-", 1)[1]
    assert deterministic_job_name("dag", "train", "run2", prefix="bert") != deterministic_job_name(
        "dag", "train", "run", prefix="bert"
    )


def test_attempt_suffix() -> None:
    first = deterministic_job_name("dag", "train", "run")
    second = deterministic_job_name("dag", "train", "run", attempt=2)
    assert not re.search(r"-r\d+$", first)
    assert second == f"{first}-r2"
    assert deterministic_job_name("dag", "train", "run", attempt=12).endswith("-r12")


def test_attempt_suffix_survives_truncation() -> None:
    long = ("d" * 100, "t" * 100, "run")
    first = deterministic_job_name(*long)
    tenth = deterministic_job_name(*long, attempt=10)
    assert len(first) == len(tenth) == 63
    assert tenth.endswith("-r10")
    assert tenth.rsplit("-", 2)[1] == first.rsplit("-", 1)[1]  # same task-instance hash
    tuning = deterministic_job_name(*long, max_length=32, attempt=3)
    assert len(tuning) == 32 and tuning.endswith("-r3")


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempt_must_be_positive(attempt: int) -> None:
    with pytest.raises(ValueError, match="attempt"):
        deterministic_job_name("dag", "train", "run", attempt=attempt)


def test_job_names_are_the_attempt_names_in_order_computed_from_the_ids_once() -> None:
    from airflow_dl_provider.jobs.naming import MAX_ATTEMPTS, JobNames

    names = JobNames("dl", "tune", "manual__1", 3, max_length=32, prefix="nightly")
    listed = list(names)
    assert len(listed) == MAX_ATTEMPTS
    assert (
        listed[0]
        == names.first
        == deterministic_job_name("dl", "tune", "manual__1", 3, max_length=32, prefix="nightly")
    )
    assert listed[1] == deterministic_job_name(
        "dl", "tune", "manual__1", 3, max_length=32, prefix="nightly", attempt=2
    )
    assert len(set(listed)) == MAX_ATTEMPTS and all(len(n) <= 32 for n in listed)
