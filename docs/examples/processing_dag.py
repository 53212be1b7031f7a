"""A SageMaker Processing job: a script reads raw CSVs and writes the cleaned ones, all in S3.

``docs/operators/processing.rst`` includes it; on the local backend the same DAG runs the script as a
process with ``/opt/ml/processing`` mapped to directories.
"""

from __future__ import annotations

from datetime import datetime

from airflow_dl_provider.operators.processing import (
    ProcessingInput,
    ProcessingOperator,
    ProcessingOutput,
    ProcessingScript,
)
from airflow_dl_provider.specs.training import Cluster

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.x
    from airflow import DAG  # type: ignore[no-redef,attr-defined]

BUCKET = "my-bucket"

# [START processing_dag]
with DAG(dag_id="my_processing", start_date=datetime(2026, 1, 1), schedule=None, catchup=False):
    clean = ProcessingOperator(
        task_id="clean",
        role_arn="arn:aws:iam::123456789012:role/SageMakerExecution",
        inputs=[ProcessingInput("raw", f"s3://{BUCKET}/raw/", "/opt/ml/processing/input/raw")],
        outputs=[ProcessingOutput("clean", f"s3://{BUCKET}/clean/", "/opt/ml/processing/output/clean")],
        # A local file is uploaded under code_location, content-addressed; this one is in S3 already.
        script=ProcessingScript(
            code=f"s3://{BUCKET}/code/clean.py",
            arguments=[
                "--input",
                "/opt/ml/processing/input/raw",
                "--output",
                "/opt/ml/processing/output/clean",
            ],
        ),
        cluster=Cluster(instance_type="ml.m5.xlarge", instance_count=1, volume_size_gb=30),
        max_runtime_seconds=3600,
        environment={"STAGE": "prod"},
    )
# [END processing_dag]
