"""HyperparameterTuningOperator end to end on the local backend: every trial is a real local training job.

The trial script scores its hyperparameters with a known function and prints the score, so what each
strategy must find is checkable exactly; each trial takes about a second.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import os
import statistics
import textwrap
import time
from typing import TYPE_CHECKING, Any

import pytest

from airflow_dl_provider.backends.local import warm_pool
from airflow_dl_provider.backends.local.search import Observation, Searcher, SearchSpace
from airflow_dl_provider.exceptions import SageMakerJobError
from airflow_dl_provider.operators.tuning import HyperparameterTuningOperator, parameter_ranges_request
from tests.conftest import ROLE_ARN

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

SCRIPT = """\
import json, os, pathlib, time
hps = json.loads(os.environ["SM_HPS"])
go = os.environ.get("GO_FILE")
deadline = time.time() + 60
while go and not pathlib.Path(go).exists() and time.time() < deadline:
    time.sleep(0.05)
lr, width, optimizer = float(hps["lr"]), int(hps.get("width", 2)), hps.get("optimizer", "adam")
score = 1 - 4 * (lr - 0.3) ** 2 + width / 100 + (0.05 if optimizer == "adam" else 0.0)
pathlib.Path(os.environ["SM_MODEL_DIR"], "model.txt").write_text(str(score))
print(f"validation_accuracy={score:.6f}", flush=True)
"""
LR_RANGE = {"lr": {"type": "continuous", "min": 0.0, "max": 1.0}}


def score(hps: dict[str, Any]) -> float:
    lr, width, optimizer = float(hps["lr"]), int(hps.get("width", 2)), hps.get("optimizer", "adam")
    return 1 - 4 * (lr - 0.3) ** 2 + width / 100 + (0.05 if optimizer == "adam" else 0.0)


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    (root / "train.py").write_text(textwrap.dedent(SCRIPT))
    return root


@pytest.fixture
def train_data(local_backend: Any) -> str:
    return local_backend.upload("data/train/part-0000.csv", "label,p0\n1,2\n")


def _operator(local_backend: Any, source_dir: Path, **kwargs: Any) -> HyperparameterTuningOperator:
    args: dict[str, Any] = {
        "task_id": "tune",
        "role_arn": ROLE_ARN,
        "output_path": local_backend.uri("output"),
        "channels": {"train": local_backend.uri("data/train/")},
        "entry_point": "train.py",
        "source_dir": str(source_dir),
        "instance_type": "ml.m5.large",
        "hyperparameters": {"lr": 0.01, "epochs": 1},
        "metric_definitions": {"validation_accuracy": r"validation_accuracy=([0-9.\-]+)"},
        "max_runtime_seconds": 120,
        "objective_metric": "validation_accuracy",
        "parameter_ranges": LR_RANGE,
        "strategy": "Random",
        "max_jobs": 3,
        "max_parallel_jobs": 3,
        "poll_interval": 1,
    }
    args.update(kwargs)
    return HyperparameterTuningOperator(**args)


def _trials(op: HyperparameterTuningOperator, name: str) -> list[dict[str, Any]]:
    listed = op.hook.conn.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, MaxResults=100
    )
    return listed["TrainingJobSummaries"]


def _decoded(hps: dict[str, str]) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in hps.items()}


def _max_overlap(trials: list[dict[str, Any]]) -> int:
    events = []
    for t in trials:
        events += [(t["CreationTime"], 1), (t["TrainingEndTime"], -1)]
    running = peak = 0
    for _when, step in sorted(events, key=lambda e: (e[0], e[1])):
        running += step
        peak = max(peak, running)
    return peak


def _runner_log(local_backend: Any, name: str) -> str:
    return (local_backend.home / "jobs" / "tuning" / name / "runner.log").read_text()


def test_grid_runs_exactly_the_grid_and_returns_the_best(
    local_backend: Any, source_dir: Path, train_data: str, task_context: Any
) -> None:
    ranges = {
        "optimizer": {"type": "categorical", "values": ["sgd", "adam"]},
        "width": {"type": "categorical", "values": [1, 2, 3]},
    }
    op = _operator(
        local_backend,
        source_dir,
        strategy="Grid",
        max_jobs=None,
        max_parallel_jobs=2,
        parameter_ranges=ranges,
    )
    result = op.execute(task_context("manual__grid", task_id="tune"))
    json.dumps(result)

    trials = _trials(op, result["job_name"])
    visited = sorted(
        (t["TunedHyperParameters"]["optimizer"], t["TunedHyperParameters"]["width"]) for t in trials
    )
    assert visited == sorted(itertools.product(['"sgd"', '"adam"'], ["1", "2", "3"]))
    assert {t["TrainingJobStatus"] for t in trials} == {"Completed"}
    assert _max_overlap(trials) <= 2

    best = max(trials, key=lambda t: t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
    assert result["best_training_job"] == best["TrainingJobName"]
    assert result["best_hyperparameters"] == {"optimizer": "adam", "width": 3}
    assert result["objective_value"] == pytest.approx(score({"lr": 0.01, "width": 3, "optimizer": "adam"}))
    assert result["training_job_counts"]["Completed"] == 6
    assert result["model_artifacts"] == local_backend.uri(
        f"output/{best['TrainingJobName']}/output/model.tar.gz"
    )
    assert result["leaderboard"][0]["training_job"] == best["TrainingJobName"]
    assert len(result["leaderboard"]) == 5
    values = [e["objective_value"] for e in result["leaderboard"]]
    assert values == sorted(values, reverse=True)

    described = op.hook.conn.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=result["job_name"]
    )
    assert described["ObjectiveStatusCounters"] == {"Succeeded": 6, "Pending": 0, "Failed": 0}
    assert isinstance(described["HyperParameterTuningEndTime"], dt.datetime)
    trial = op.hook.conn.describe_training_job(TrainingJobName=best["TrainingJobName"])
    assert trial["TuningJobArn"] == described["HyperParameterTuningJobArn"]
    assert json.loads(trial["HyperParameters"]["epochs"]) == 1  # static hyperparameters reach every trial

    # Trials reuse each other's hosts (SageMaker reuses clusters between a tuning job's trials): at most
    # two pools for two trials at a time, each trial's pool Reused by a later trial or ended with the
    # tuning job, and no pool process left once it has ended.
    pools = warm_pool.pools(local_backend.home)
    assert 1 <= len(pools) <= 2
    assert sum(len(p.record()["jobs"]) for p in pools) == 6
    assert not any(p.alive() for p in pools)
    statuses = [
        op.hook.conn.describe_training_job(TrainingJobName=t["TrainingJobName"])["WarmPoolStatus"]["Status"]
        for t in trials
    ]
    assert sorted(statuses) == sorted(["Reused"] * (6 - len(pools)) + ["Terminated"] * len(pools))


def test_random_with_a_seed_is_reproducible_and_warm_starts_bayesian(
    local_backend: Any, source_dir: Path, train_data: str, task_context: Any
) -> None:
    runs = [
        _operator(local_backend, source_dir, random_seed=5).execute(
            task_context(f"manual__r{i}", task_id="tune")
        )
        for i in (1, 2)
    ]
    first, second = (_trials(_operator(local_backend, source_dir), r["job_name"]) for r in runs)
    assert [t["TunedHyperParameters"] for t in first] == [t["TunedHyperParameters"] for t in second]
    assert len({t["TunedHyperParameters"]["lr"] for t in first}) == 3

    child = _operator(
        local_backend,
        source_dir,
        strategy="Bayesian",
        max_jobs=1,
        max_parallel_jobs=1,
        warm_start_parents=[runs[0]["job_name"]],
    )
    result = child.execute(task_context("manual__child", task_id="tune"))
    log = _runner_log(local_backend, result["job_name"])
    assert "Gaussian-process" in log
    assert "3 warm-start observation(s)" in log
    assert "(bayesian, EI=" in log  # the first trial already came from the model, not at random
    described = child.hook.conn.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=result["job_name"]
    )
    overall = described["OverallBestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    assert overall == max(runs[0]["objective_value"], result["objective_value"])


def test_bayesian_beats_the_median_random_trial_with_the_same_budget(
    local_backend: Any, source_dir: Path, train_data: str, task_context: Any
) -> None:
    budget, seed = 7, 3
    op = _operator(
        local_backend, source_dir, strategy="Bayesian", max_jobs=budget, max_parallel_jobs=2, random_seed=seed
    )
    result = op.execute(task_context("manual__bayes", task_id="tune"))
    trials = _trials(op, result["job_name"])
    assert len(trials) == budget
    assert _max_overlap(trials) <= 2
    values = [t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in trials]
    assert result["objective_value"] == max(values)

    space = SearchSpace.from_ranges(parameter_ranges_request("tune", LR_RANGE))
    random_search = Searcher(space, "Random", seed=seed)
    observed: list[Observation] = []
    for _ in range(budget):
        proposal = random_search.propose(observed, [])
        assert proposal is not None
        observed.append(Observation(proposal.hyperparameters, score({"lr": proposal.hyperparameters["lr"]})))
    assert result["objective_value"] >= statistics.median(o.value for o in observed)
    assert result["objective_value"] > 0.9  # the optimum is 1.07 at lr=0.3 (adam, width 2 are static)
    assert math.isclose(json.loads(json.dumps(result["best_hyperparameters"]))["lr"], 0.3, abs_tol=0.21)


def test_target_objective_ends_the_search_early(
    local_backend: Any, source_dir: Path, train_data: str, task_context: Any
) -> None:
    op = _operator(
        local_backend,
        source_dir,
        max_jobs=6,
        max_parallel_jobs=1,
        completion_criteria={"target_objective_value": -10.0},
    )
    result = op.execute(task_context("manual__target", task_id="tune"))
    assert len(_trials(op, result["job_name"])) == 1
    assert "TargetObjectiveMetricValue -10.0 reached" in _runner_log(local_backend, result["job_name"])


def test_stop_stops_the_running_trials(
    local_backend: Any, source_dir: Path, train_data: str, task_context: Any, tmp_path: Path
) -> None:
    op = _operator(
        local_backend,
        source_dir,
        max_jobs=4,
        max_parallel_jobs=2,
        environment={"GO_FILE": str(tmp_path / "never")},
        wait_for_completion=False,
    )
    started = op.execute(task_context("manual__stop", task_id="tune"))
    name = started["job_name"]
    conn = op.hook.conn
    deadline = time.monotonic() + 60
    while len(_trials(op, name)) < 2 or any(
        conn.describe_training_job(TrainingJobName=t["TrainingJobName"]).get("SecondaryStatus") != "Training"
        for t in _trials(op, name)
    ):
        assert time.monotonic() < deadline, "trials did not start"
        time.sleep(0.2)
    op.on_kill()  # what a killed task does: stop the job
    with pytest.raises(SageMakerJobError, match="Stopped"):
        op.engine().wait(name, poll_interval=0.5, max_wait=90)
    trials = _trials(op, name)
    assert len(trials) == 2  # nothing new was launched after the stop
    assert {t["TrainingJobStatus"] for t in trials} == {"Stopped"}
    described = conn.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert described["TrainingJobStatusCounters"]["Stopped"] == 2


def test_trials_run_through_the_services_client_with_no_environment(
    local_backend: Any, source_dir: Path, train_data: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tuning runner starts its trials from the job's own record: no endpoint, region or key in env."""
    from airflow_dl_provider.backends.local.client import LocalSageMakerClient
    from airflow_dl_provider.operators.training import source_archive

    data, digest = source_archive(source_dir)
    submit = local_backend.upload(f"code/{digest}/sourcedir.tar.gz", data)
    # Every process from here on (the tuning runner, its trials' runners, their hosts) inherits this.
    for variable in list(os.environ):
        if variable not in ("PATH", "HOME", "LANG", "TMPDIR"):
            monkeypatch.delenv(variable)
    client = LocalSageMakerClient(
        home=local_backend.home, endpoint_url=local_backend.endpoint, region="us-east-1", runner_env={}
    )
    name = "scrubbed-env-tuning"
    client.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={
            "Strategy": "Random",
            "RandomSeed": 1,
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation_accuracy"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {
                "ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0", "MaxValue": "1"}]
            },
        },
        TrainingJobDefinition={
            "AlgorithmSpecification": {
                "TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311",
                "TrainingInputMode": "File",
                "MetricDefinitions": [
                    {"Name": "validation_accuracy", "Regex": r"validation_accuracy=([0-9.\-]+)"}
                ],
            },
            "RoleArn": ROLE_ARN,
            "StaticHyperParameters": {"sagemaker_program": "train.py", "sagemaker_submit_directory": submit},
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "DataSource": {
                        "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": local_backend.uri("data/train/")}
                    },
                }
            ],
            "OutputDataConfig": {"S3OutputPath": local_backend.uri("output")},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 120},
        },
    )
    deadline = time.monotonic() + 180
    while (described := client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name))[
        "HyperParameterTuningJobStatus"
    ] == "InProgress":
        assert time.monotonic() < deadline, _runner_log(local_backend, name)
        time.sleep(0.5)

    assert described["HyperParameterTuningJobStatus"] == "Completed", described.get("FailureReason")
    assert described["TrainingJobStatusCounters"]["Completed"] == 2
    tuning = client.store.get("tuning", name)
    assert tuning is not None
    origin = {k: tuning.state()[k] for k in ("_home", "_endpoint_url", "_region", "_s3_generation")}
    assert origin["_home"] == str(local_backend.home)
    assert origin["_endpoint_url"] == local_backend.endpoint
    listed = client.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    for summary in listed["TrainingJobSummaries"]:
        trial = client.store.get("training", summary["TrainingJobName"])
        assert trial is not None
        # Created by the services' client: same home, same server, same region as the tuning job.
        assert {k: trial.state()[k] for k in origin} == origin
        assert trial.state()["TuningJobArn"] == described["HyperParameterTuningJobArn"]
        assert summary["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(
            score(_decoded(summary["TunedHyperParameters"])), abs=1e-6
        )
