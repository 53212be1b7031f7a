"""A DAG of your own on the local backend: split a CSV from the embedded S3, train on it.

``docs/own-dag.rst`` walks through running it; the DAG itself is the same on MWAA and SageMaker.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow_dl_provider.operators.datasets import SplitDatasetOperator
from airflow_dl_provider.operators.training import DistributedTrainingOperator
from airflow_dl_provider.specs.training import Cluster, ScriptMode

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.x
    from airflow import DAG  # type: ignore[no-redef,attr-defined]

BUCKET = "my-bucket"
# A local source_dir is read where the DAG runs: resolve it against this file, not the working directory.
TRAINING_CODE = str(Path(__file__).resolve().parents[2] / "docker" / "training")

# [START local_training_dag]
with DAG(dag_id="my_local_training", start_date=datetime(2026, 1, 1), schedule=None, catchup=False):
    split = SplitDatasetOperator(
        task_id="prepare_data",
        source=f"s3://{BUCKET}/raw/digits.csv",
        output_prefix=f"s3://{BUCKET}/datasets",
        label_column="label",
    )
    train = DistributedTrainingOperator(
        task_id="train",
        role_arn="arn:aws:iam::123456789012:role/SageMakerExecution",
        output_path=f"s3://{BUCKET}/models",
        channels={
            "train": "{{ ti.xcom_pull(task_ids='prepare_data')['train'] }}",
            "validation": "{{ ti.xcom_pull(task_ids='prepare_data')['validation'] }}",
            "test": "{{ ti.xcom_pull(task_ids='prepare_data')['test'] }}",
        },
        cluster=Cluster(instance_type="ml.m5.xlarge", instance_count=1),
        script=ScriptMode(entry_point="train.py", source_dir=TRAINING_CODE),
        hyperparameters={"epochs": 5},
        metric_definitions={"test_accuracy": "test_accuracy=([0-9.]+)"},
        max_runtime_seconds=1800,
    )
    split >> train
# [END local_training_dag]
