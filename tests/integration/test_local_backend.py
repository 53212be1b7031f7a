"""The local backend's SageMaker client, called directly as boto3's would be.

Requests go in the shape of the real API and responses must come back in it too; jobs run as detached
processes that can be stopped, time out, crash, and shard their input as SageMaker does.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from airflow_dl_provider.backends.local.processes import process_alive
from airflow_dl_provider.hooks.sagemaker import SageMakerJobHook
from airflow_dl_provider.operators.training import source_archive
from airflow_dl_provider.validation.requests import validate_response

if TYPE_CHECKING:
    from pathlib import Path

# Not imported from tests.conftest: importing conftest.py a second time, as a module of that name,
# would run its module code again and point AIRFLOW_HOME at a new, unmigrated directory.
ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerExecution"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311-ubuntu22.04-sagemaker"
TERMINAL = {"Completed", "Failed", "Stopped"}


@pytest.fixture
def client(local_backend: Any) -> Any:
    return SageMakerJobHook(aws_conn_id="aws_default").conn


def _upload_script(local_backend: Any, tmp_path: Path, body: str) -> str:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "train.py").write_text(textwrap.dedent(body))
    data, digest = source_archive(src)
    return local_backend.upload(f"code/{digest}/sourcedir.tar.gz", data)


def _request(
    local_backend: Any,
    name: str,
    submit: str | None,
    *,
    count: int = 1,
    max_runtime: int = 120,
    channels: dict[str, tuple[str, str]] | None = None,
    metrics: dict[str, str] | None = None,
    environment: dict[str, str] | None = None,
) -> dict[str, Any]:
    hyperparameters = {"epochs": "2"}
    if submit:
        hyperparameters.update(sagemaker_program='"train.py"', sagemaker_submit_directory=json.dumps(submit))
    algorithm: dict[str, Any] = {"TrainingImage": IMAGE, "TrainingInputMode": "File"}
    if metrics:
        algorithm["MetricDefinitions"] = [{"Name": k, "Regex": v} for k, v in metrics.items()]
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": algorithm,
        "RoleArn": ROLE_ARN,
        "OutputDataConfig": {"S3OutputPath": local_backend.uri("output")},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": count, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
        "HyperParameters": hyperparameters,
    }
    if channels:
        request["InputDataConfig"] = [
            {
                "ChannelName": channel,
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": mode}
                },
            }
            for channel, (uri, mode) in channels.items()
        ]
    if environment:
        request["Environment"] = environment
    return request


def _wait(client: Any, name: str, *, timeout: float = 60, until: set[str] = TERMINAL) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = client.describe_training_job(TrainingJobName=name)
        if described["TrainingJobStatus"] in until or time.monotonic() > deadline:
            return described
        time.sleep(0.2)


def _wait_for_file(path: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.1)
    raise AssertionError(f"{path} never appeared")


def _wait_gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.1)
    return False


# -- the API's shape ----------------------------------------------------------------------------------


def test_describe_responses_have_the_service_shape(local_backend: Any, client: Any, tmp_path: Path) -> None:
    submit = _upload_script(local_backend, tmp_path, "import time; time.sleep(1); print('acc=0.5')\n")
    created = client.create_training_job(
        **_request(local_backend, "shape-job", submit, metrics={"acc": r"acc=(\S+)"})
    )
    assert created == {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/shape-job"}

    running = client.describe_training_job(TrainingJobName="shape-job")
    assert running["TrainingJobStatus"] == "InProgress"
    validate_response("DescribeTrainingJob", running)

    done = _wait(client, "shape-job")
    validate_response("DescribeTrainingJob", done)
    assert done["TrainingJobStatus"] == "Completed"
    assert done["SecondaryStatus"] == "Completed"
    assert done["ModelArtifacts"]["S3ModelArtifacts"] == local_backend.uri(
        "output/shape-job/output/model.tar.gz"
    )
    assert done["HyperParameters"]["epochs"] == "2"
    assert done["TrainingEndTime"] >= done["TrainingStartTime"] >= done["CreationTime"]
    assert [t["Status"] for t in done["SecondaryStatusTransitions"]] == [
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert all("EndTime" in t for t in done["SecondaryStatusTransitions"][:-1])
    assert not any(k.startswith("_") for k in done)

    listed = client.list_training_jobs()
    validate_response("ListTrainingJobs", listed)
    assert [s["TrainingJobName"] for s in listed["TrainingJobSummaries"]] == ["shape-job"]
    assert client.list_training_jobs(StatusEquals="Failed")["TrainingJobSummaries"] == []


def test_describe_of_a_missing_job_is_a_validation_exception(client: Any) -> None:
    with pytest.raises(ClientError) as caught:
        client.describe_training_job(TrainingJobName="never-created")
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"] == "Requested resource not found."
    assert caught.value.operation_name == "DescribeTrainingJob"


def test_stop_of_a_missing_job_is_a_validation_exception(client: Any) -> None:
    with pytest.raises(ClientError) as caught:
        client.stop_training_job(TrainingJobName="never-created")
    assert caught.value.response["Error"]["Code"] == "ValidationException"


def test_invalid_request_is_refused_before_a_job_exists(
    local_backend: Any, client: Any, tmp_path: Path
) -> None:
    from airflow_dl_provider.exceptions import RequestValidationError

    submit = _upload_script(local_backend, tmp_path, "print('hi')\n")
    request = _request(local_backend, "bad_name", submit)
    with pytest.raises(RequestValidationError, match="TrainingJobName: 'bad_name' does not fully match"):
        client.create_training_job(**request)
    assert not (local_backend.home / "jobs" / "training" / "bad_name").exists()


def test_duplicate_create_is_refused(local_backend: Any, client: Any, tmp_path: Path) -> None:
    submit = _upload_script(local_backend, tmp_path, "print('once')\n")
    request = _request(local_backend, "dup-job", submit)
    client.create_training_job(**request)
    with pytest.raises(ClientError) as caught:
        client.create_training_job(**request)
    # As SageMaker answers a taken name (ResourceInUse, not a validation error).
    assert caught.value.response["Error"] == {
        "Code": "ResourceInUse",
        "Message": "Training job names must be unique within an AWS account and region, and a training job "
        "with this name already exists (arn:aws:sagemaker:us-east-1:123456789012:training-job/dup-job)",
    }
    assert _wait(client, "dup-job")["TrainingJobStatus"] == "Completed"
    assert len(client.list_training_jobs()["TrainingJobSummaries"]) == 1


# -- jobs that do not end well ------------------------------------------------------------------------


def test_killed_runner_is_reported_as_an_internal_error(
    local_backend: Any, client: Any, tmp_path: Path
) -> None:
    pid_file = tmp_path / "script.pid"
    submit = _upload_script(
        local_backend,
        tmp_path,
        """
        import os, time
        open(os.environ["PID_FILE"], "w").write(f"{os.getpid()} {os.getppid()}")
        time.sleep(60)
        """,
    )
    client.create_training_job(
        **_request(local_backend, "crash-job", submit, environment={"PID_FILE": str(pid_file)})
    )
    script_pid, runner_pid = map(int, _wait_for_file(pid_file).split())
    assert client.describe_training_job(TrainingJobName="crash-job")["TrainingJobStatus"] == "InProgress"

    os.kill(runner_pid, signal.SIGKILL)
    assert _wait_gone(runner_pid)
    # Like SageMaker tearing down the instances of a failed job, before anyone asks: the kernel ends
    # the hosts of a killed runner; no Describe (nor anything else) signals them.
    assert _wait_gone(script_pid), "the training script outlived its crashed runner"
    # A killed process's leader shows as a zombie while its other threads still hold its descriptors
    # (the runner lock among them); the lock goes a moment later, and Describe reports Failed then.
    deadline = time.monotonic() + 15
    described = client.describe_training_job(TrainingJobName="crash-job")
    while described["TrainingJobStatus"] == "InProgress" and time.monotonic() < deadline:
        time.sleep(0.1)
        described = client.describe_training_job(TrainingJobName="crash-job")
    assert described["TrainingJobStatus"] == "Failed"
    assert described["FailureReason"].startswith(
        "InternalServerError: the local runner process exited before the job ended"
    )
    validate_response("DescribeTrainingJob", described)
    # And it stays Failed: nothing reports it InProgress again.
    assert client.describe_training_job(TrainingJobName="crash-job")["TrainingJobStatus"] == "Failed"


def test_runner_that_ended_the_job_and_exited_is_not_reported_failed(
    local_backend: Any, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner records Completed and exits between Describe's read of the state and its liveness check."""
    from airflow_dl_provider.backends.local.state import LocalJob, now_iso

    request = _request(local_backend, "race-job", local_backend.uri("code/sourcedir.tar.gz"))
    state = {
        "TrainingJobName": "race-job",
        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/race-job",
        "TrainingJobStatus": "InProgress",
        "SecondaryStatus": "Training",
        "CreationTime": now_iso(),
        "LastModifiedTime": now_iso(),
        "ModelArtifacts": {"S3ModelArtifacts": local_backend.uri("output/race-job/output/model.tar.gz")},
        "_s3_generation": None,
    }
    with client.store.creating("training", "race-job", request, state) as created:
        job = created.job  # no runner is started: its lock goes when this block ends

    def runner_finishes_then_exits(self: LocalJob) -> bool:
        job.transition("Completed", "Training job completed", TrainingJobStatus="Completed")
        return False

    monkeypatch.setattr(LocalJob, "runner_alive", runner_finishes_then_exits)
    described = client.describe_training_job(TrainingJobName="race-job")
    assert described["TrainingJobStatus"] == "Completed"
    assert "FailureReason" not in described


def test_max_runtime_exceeded_stops_the_job(local_backend: Any, client: Any, tmp_path: Path) -> None:
    pid_file = tmp_path / "script.pid"
    submit = _upload_script(
        local_backend,
        tmp_path,
        """
        import os, time
        open(os.environ["PID_FILE"], "w").write(str(os.getpid()))
        print("started", flush=True)
        time.sleep(60)
        """,
    )
    request = _request(
        local_backend, "slow-job", submit, max_runtime=2, environment={"PID_FILE": str(pid_file)}
    )
    started = time.monotonic()
    client.create_training_job(**request)
    described = _wait(client, "slow-job", timeout=30)
    assert time.monotonic() - started < 20
    assert described["TrainingJobStatus"] == "Stopped"
    assert described["SecondaryStatus"] == "MaxRuntimeExceeded"
    assert described["SecondaryStatusTransitions"][-1]["Status"] == "MaxRuntimeExceeded"
    assert 2 <= described["TrainingTimeInSeconds"] <= 10
    validate_response("DescribeTrainingJob", described)
    assert _wait_gone(int(_wait_for_file(pid_file)))


def test_stop_request_stops_the_job_and_its_processes(
    local_backend: Any, client: Any, tmp_path: Path
) -> None:
    pid_file = tmp_path / "script.pid"
    submit = _upload_script(
        local_backend,
        tmp_path,
        """
        import os, time
        open(os.environ["PID_FILE"], "w").write(str(os.getpid()))
        time.sleep(60)
        """,
    )
    client.create_training_job(
        **_request(local_backend, "stop-job", submit, environment={"PID_FILE": str(pid_file)})
    )
    script_pid = int(_wait_for_file(pid_file))
    assert client.stop_training_job(TrainingJobName="stop-job") == {}
    assert client.describe_training_job(TrainingJobName="stop-job")["TrainingJobStatus"] in (
        "Stopping",
        "Stopped",
    )
    described = _wait(client, "stop-job", timeout=15)
    assert described["TrainingJobStatus"] == "Stopped"
    assert described["SecondaryStatus"] == "Stopped"
    assert _wait_gone(script_pid)
    with pytest.raises(ClientError, match="in status Stopped"):
        client.stop_training_job(TrainingJobName="stop-job")


def test_stop_right_after_create_ends_stopped(local_backend: Any, client: Any, tmp_path: Path) -> None:
    # The runner may not have installed its SIGTERM handler yet: the job was still asked to stop.
    submit = _upload_script(local_backend, tmp_path, "import time\ntime.sleep(60)\n")
    client.create_training_job(**_request(local_backend, "early-stop-job", submit))
    client.stop_training_job(TrainingJobName="early-stop-job")
    described = _wait(client, "early-stop-job", timeout=20)
    assert described["TrainingJobStatus"] == "Stopped"
    assert "FailureReason" not in described
    validate_response("DescribeTrainingJob", described)


def test_image_only_job_fails_with_a_clear_reason(local_backend: Any, client: Any) -> None:
    client.create_training_job(**_request(local_backend, "image-job", None))
    described = _wait(client, "image-job")
    assert described["TrainingJobStatus"] == "Failed"
    reason = described["FailureReason"]
    assert reason.startswith("ClientError: the local backend runs script mode only")
    assert IMAGE in reason


# -- data and metrics ---------------------------------------------------------------------------------


LIST_CHANNELS = """
import os, pathlib
host = os.environ["SM_CURRENT_HOST"]
for channel in ("train", "labels"):
    root = pathlib.Path(os.environ["SM_CHANNEL_" + channel.upper()])
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    print(f"{host} {channel} {','.join(files)}", flush=True)
"""


def test_sharded_channel_gives_each_host_a_different_subset(
    local_backend: Any, client: Any, tmp_path: Path
) -> None:
    shards = [f"part-{i:04d}.csv" for i in range(5)]
    for shard in shards:
        local_backend.upload(f"sharded/train/{shard}", "1,2\n")
    local_backend.upload("sharded/labels/labels.csv", "a\n")
    submit = _upload_script(local_backend, tmp_path, LIST_CHANNELS)
    channels = {
        "train": (local_backend.uri("sharded/train/"), "ShardedByS3Key"),
        "labels": (local_backend.uri("sharded/labels/"), "FullyReplicated"),
    }
    client.create_training_job(**_request(local_backend, "shard-job", submit, count=2, channels=channels))
    assert _wait(client, "shard-job")["TrainingJobStatus"] == "Completed"

    work = local_backend.home / "jobs" / "training" / "shard-job" / "work"
    seen = {
        host: sorted(p.name for p in (work / host / "input" / "data" / "train").iterdir())
        for host in ("algo-1", "algo-2")
    }
    assert seen["algo-1"] and seen["algo-2"]
    assert not set(seen["algo-1"]) & set(seen["algo-2"])
    assert sorted(seen["algo-1"] + seen["algo-2"]) == shards
    assert abs(len(seen["algo-1"]) - len(seen["algo-2"])) <= 1
    for host in ("algo-1", "algo-2"):
        assert [p.name for p in (work / host / "input" / "data" / "labels").iterdir()] == ["labels.csv"]

    # What each script saw, as printed to its own CloudWatch stream.
    streams = local_backend.logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix="shard-job/"
    )["logStreams"]
    printed = []
    for stream in streams:
        events = local_backend.logs.get_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs",
            logStreamName=stream["logStreamName"],
            startFromHead=True,
        )["events"]
        printed += [e["message"] for e in events if " train " in e["message"]]
    assert sorted(printed) == sorted(f"{h} train {','.join(seen[h])}" for h in ("algo-1", "algo-2"))


def test_final_metrics_come_from_metric_definitions(local_backend: Any, client: Any, tmp_path: Path) -> None:
    submit = _upload_script(
        local_backend,
        tmp_path,
        """
        for epoch, loss in enumerate([0.9, 0.5, 0.25], 1):
            print(f"epoch={epoch} loss={loss}", flush=True)
        print("test_accuracy=0.9650", flush=True)
        print("loss=not-a-number", flush=True)
        """,
    )
    metrics = {
        "loss": r"loss=([0-9.]+)",
        "test_accuracy": r"^test_accuracy=([0-9.]+)$",
        "f1": r"f1=([0-9.]+)",  # never printed: no value, not a zero
    }
    client.create_training_job(**_request(local_backend, "metric-job", submit, metrics=metrics))
    described = _wait(client, "metric-job")
    assert described["TrainingJobStatus"] == "Completed"
    final = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
    assert final == {"loss": 0.25, "test_accuracy": 0.965}
    validate_response("DescribeTrainingJob", described)
