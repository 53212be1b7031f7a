"""OpenLineage datasets from a job's description and a task's result; nothing breaks without the provider."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from airflow_dl_provider.lineage import lineage_datasets, operator_lineage
from tests.conftest import REPO

ARN = "arn:aws:sagemaker:us-east-1:123456789012"
TRAINING = {
    "TrainingJobName": "digits-train-1",
    "TrainingJobArn": f"{ARN}:training-job/digits-train-1",
    "InputDataConfig": [
        {
            "ChannelName": "train",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/datasets/train.csv"}},
        },
        {
            "ChannelName": "validation",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/datasets/val.csv"}},
        },
    ],
    "OutputDataConfig": {"S3OutputPath": "s3://b/models/"},
    "ModelArtifacts": {"S3ModelArtifacts": "s3://b/models/digits-train-1/output/model.tar.gz"},
    # Not the job's data: its code, checkpoints and debugger output.
    "HyperParameters": {"sagemaker_submit_directory": '"s3://b/code/source.tar.gz"'},
    "CheckpointConfig": {"S3Uri": "s3://b/checkpoints/"},
    "DebugHookConfig": {"S3OutputPath": "s3://b/debug/"},
}


def test_training_reads_its_channels_and_writes_its_model() -> None:
    result = {"job_name": "digits-train-1", "job_arn": TRAINING["TrainingJobArn"]}

    ids = lineage_datasets(result, TRAINING)

    assert ids["inputs"] == [("s3://b", "datasets/train.csv"), ("s3://b", "datasets/val.csv")]
    assert ids["outputs"] == [("s3://b", "models"), ("s3://b", "models/digits-train-1/output/model.tar.gz")]


def test_transform_and_labeling_descriptions() -> None:
    transform = {
        "TransformInput": {"DataSource": {"S3DataSource": {"S3Uri": "s3://b/test/features.csv"}}},
        "TransformOutput": {"S3OutputPath": "s3://b/predictions/run-1/"},
    }
    labeling = {
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": "s3://b/in/manifest.json"}}},
        "OutputConfig": {"S3OutputPath": "s3://b/labels/"},
        "LabelingJobOutput": {"OutputDatasetS3Uri": "s3://b/labels/job/manifests/output/output.manifest"},
        "HumanTaskConfig": {"UiConfig": {"UiTemplateS3Uri": "s3://b/ui/template.liquid"}},
    }

    assert lineage_datasets(None, transform) == {
        "inputs": [("s3://b", "test/features.csv")],
        "outputs": [("s3://b", "predictions/run-1")],
    }
    assert lineage_datasets(None, labeling) == {
        "inputs": [("s3://b", "in/manifest.json")],
        "outputs": [("s3://b", "labels"), ("s3://b", "labels/job/manifests/output/output.manifest")],
    }


def test_registration_reads_the_artifacts_and_makes_the_model_package() -> None:
    result = {
        "model_package_arn": f"{ARN}:model-package/digits/3",
        "model_artifacts": "s3://b/models/model.tar.gz",
        "metrics_s3_uri": "s3://b/models/model-metrics.json",
    }

    ids = lineage_datasets(result, inputs=frozenset({"model_artifacts"}))

    assert ids["inputs"] == [("s3://b", "models/model.tar.gz")]
    assert ids["outputs"] == [("s3://b", "models/model-metrics.json"), (ARN, "model-package/digits/3")]


def test_s3_tasks_results_name_what_they_read_and_wrote() -> None:
    result = {
        "data_uri": "s3://b/incoming/",
        "baseline_uri": "s3://b/baseline.json",
        "report_json": "s3://b/drift/r1/drift-report.json",
        "report_html": "s3://b/drift/r1/drift-report.html",
        "drifted": True,
        "outputs": {"evaluation": "s3://b/eval/"},
    }

    ids = lineage_datasets(result)

    assert ids["inputs"] == [("s3://b", "incoming"), ("s3://b", "baseline.json")]
    assert ids["outputs"] == [
        ("s3://b", "drift/r1/drift-report.json"),
        ("s3://b", "drift/r1/drift-report.html"),
        ("s3://b", "eval"),
    ]


def test_without_the_openlineage_provider_nothing_breaks() -> None:
    if importlib.util.find_spec("airflow.providers.openlineage") is not None:
        pytest.skip("the OpenLineage provider is installed in this venv")

    assert operator_lineage({"job_arn": f"{ARN}:training-job/x"}, TRAINING) is None


# Run where the OpenLineage provider is importable: its extractor asks the operator, as the listener does.
_WITH_PROVIDER = textwrap.dedent(
    """
    import json, types
    from airflow.providers.openlineage.extractors.base import DefaultExtractor
    from airflow_dl_provider.links.published import PublishedOutputs
    from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    class Reporter(PublishedOutputs, AwsBaseOperator[AwsBaseHook]):
        aws_hook_class = AwsBaseHook

        def execute(self, context):
            return {
                "data_uri": "s3://b/incoming/",
                "report_html": "s3://b/drift/report.html",
                "job_arn": "arn:aws:sagemaker:us-east-1:123456789012:processing-job/p-1",
                "model_package_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/digits/3",
            }

    op = Reporter(task_id="report")
    ti = types.SimpleNamespace(task_id="report", xcom_push=lambda key, value: None)
    op.execute({"ti": ti})
    lineage = DefaultExtractor(op).extract_on_complete(ti)
    print(json.dumps({
        "inputs": [[d.namespace, d.name] for d in lineage.inputs],
        "outputs": [[d.namespace, d.name] for d in lineage.outputs],
        "run": {k: [v.externalQueryId, v.source] for k, v in lineage.run_facets.items()},
    }))
    """
)
OPENLINEAGE = REPO / ".venv-openlineage"


@pytest.mark.skipif(
    not OPENLINEAGE.is_dir(), reason="make .venv-openlineage (the OpenLineage provider, pinned)"
)
def test_with_the_openlineage_provider_the_extractor_gets_datasets_and_the_arn() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(OPENLINEAGE), str(REPO)])}
    proc = subprocess.run(
        [sys.executable, "-c", _WITH_PROVIDER], capture_output=True, text=True, env=env, cwd=REPO, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["inputs"] == [["s3://b", "incoming"]]
    assert got["outputs"] == [
        ["s3://b", "drift/report.html"],
        ["arn:aws:sagemaker:us-east-1:123456789012", "model-package/digits/3"],
    ]
    assert got["run"] == {
        "externalQuery": ["arn:aws:sagemaker:us-east-1:123456789012:processing-job/p-1", "sagemaker"]
    }


def test_a_job_operator_reads_its_datasets_from_the_jobs_description(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    from botocore.stub import Stubber

    from airflow_dl_provider.operators.training import DistributedTrainingOperator
    from tests.unit.operators.stubs import sagemaker_client, use

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    (tmp_path / "train.py").write_text("print('training')\n")
    op = DistributedTrainingOperator(
        task_id="train",
        region_name="us-east-1",
        role_arn="arn:aws:iam::123456789012:role/SageMakerExecution",
        output_path="s3://b/models/",
        channels={"train": "s3://b/datasets/train.csv"},
        entry_point="train.py",
        source_dir=str(tmp_path),
    )
    client = sagemaker_client()
    use(op, client)
    described = {
        **{k: v for k, v in TRAINING.items() if k != "HyperParameters"},
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "AlgorithmSpecification": {"TrainingInputMode": "File", "TrainingImage": "image"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "CreationTime": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    }
    with Stubber(client) as stub:
        stub.add_response("describe_training_job", described, {"TrainingJobName": "digits-train-1"})
        op.publish({"ti": _NoXCom()}, {"job_name": "digits-train-1", "job_arn": TRAINING["TrainingJobArn"]})

        description = op.lineage_description()

    assert description is not None
    assert lineage_datasets(op.published_result, description) == lineage_datasets(None, TRAINING)


class _NoXCom:
    def xcom_push(self, key: str, value: Any) -> None:
        raise AssertionError(f"no link of a result without S3 URIs is pushed, got {key}")
