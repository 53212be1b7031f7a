"""Parse time per DAG: each file of dags/ against a baseline DAG built on the Amazon provider's operators.

Every measurement is a fresh interpreter that first imports what the DAG processor already has
loaded (Airflow, the DAG class, the Amazon provider's base hook and operator), then times only the
DAG file's import and execution. The baseline, written to a temp directory in the same run, trains
and batch-transforms with ``SageMakerTrainingOperator`` and ``SageMakerTransformOperator`` and
request dicts of the same size as ours. Goal: ours no slower (ratio <= 1.0). Exits 0 either way.

    python benchmarks/parse_time.py [--repeat 5]        (``make bench``)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
GOAL = 1.0

PROBE = """
import importlib.util, json, sys, time

import airflow
try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.x
    from airflow.models.dag import DAG
import airflow.providers.amazon.aws.hooks.base_aws
import airflow.providers.amazon.aws.operators.base_aws

spec = importlib.util.spec_from_file_location("unusual_prefix_parse_time", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
started = time.perf_counter()
spec.loader.exec_module(module)
seconds = time.perf_counter() - started
dags = [v for v in vars(module).values() if isinstance(v, DAG)]
print(json.dumps({"seconds": seconds, "dags": len(dags), "airflow": airflow.__version__}))
"""

BASELINE_DAG = '''
"""Baseline: the same pipeline's training and batch transform with the Amazon provider's operators."""
from __future__ import annotations

import pendulum

from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerTrainingOperator,
    SageMakerTransformOperator,
)

try:
    from airflow.sdk import DAG
except ImportError:
    from airflow import DAG

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
BUCKET = "airflow-dl-demo"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-gpu-py311-cu124-ubuntu22.04-sagemaker"

TRAINING = {
    "TrainingJobName": "digits-train-{{ ts_nodash }}",
    "AlgorithmSpecification": {
        "TrainingImage": IMAGE,
        "TrainingInputMode": "File",
        "MetricDefinitions": [
            {"Name": "train_loss", "Regex": "train_loss=([0-9.]+)"},
            {"Name": "validation_accuracy", "Regex": "validation_accuracy=([0-9.]+)"},
            {"Name": "test_accuracy", "Regex": "test_accuracy=([0-9.]+)"},
        ],
    },
    "RoleArn": ROLE,
    "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/digits/models"},
    "ResourceConfig": {"InstanceType": "ml.p3dn.24xlarge", "InstanceCount": 2, "VolumeSizeInGB": 100},
    "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    "HyperParameters": {
        "epochs": "30",
        "lr": "0.1",
        "sagemaker_program": '"train.py"',
        "sagemaker_submit_directory": f'"s3://{BUCKET}/digits/source/sourcedir.tar.gz"',
        "sagemaker_region": '"us-east-1"',
        "sagemaker_torch_distributed_enabled": "true",
    },
    "InputDataConfig": [
        {
            "ChannelName": channel,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": f"s3://{BUCKET}/digits/datasets/{{{{ run_id }}}}/{channel}/",
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
            "ContentType": "text/csv",
        }
        for channel in ("train", "validation", "test")
    ],
    "Tags": [{"Key": "pipeline", "Value": "digits"}],
}

TRANSFORM = {
    "Model": {
        "ModelName": "digits-{{ ts_nodash }}",
        "ExecutionRoleArn": ROLE,
        "PrimaryContainer": {
            "Image": IMAGE.replace("pytorch-training", "pytorch-inference").replace("-sagemaker", "-sagemaker"),
            "ModelDataUrl": "{{ ti.xcom_pull(task_ids='train')['Training']['ModelArtifacts']['S3ModelArtifacts'] }}",
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_REGION": "us-east-1"},
        },
    },
    "Transform": {
        "TransformJobName": "digits-transform-{{ ts_nodash }}",
        "ModelName": "digits-{{ ts_nodash }}",
        "TransformInput": {
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/digits/batch/input/"}
            },
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/digits/batch/output/", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 1},
        "MaxPayloadInMB": 6,
        "BatchStrategy": "MultiRecord",
    },
}

with DAG(
    dag_id="baseline_amazon_sagemaker",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["deep-learning", "baseline"],
    default_args={"aws_conn_id": "aws_default", "retries": 1},
):
    train = SageMakerTrainingOperator(task_id="train", config=TRAINING, check_interval=10)
    transform = SageMakerTransformOperator(task_id="transform", config=TRANSFORM, check_interval=10)
    train >> transform
'''


def measure(dag_file: Path, env: dict[str, str]) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(dag_file)],
        capture_output=True,
        text=True,
        env=env,
        cwd=dag_file.parent,
        timeout=120,
    )
    if proc.returncode:
        raise SystemExit(f"{dag_file}: import failed:\n{proc.stderr[-3000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5, help="fresh interpreters per file (median)")
    args = parser.parse_args()

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="airflow-dl-bench-") as tmp:
        home, baseline_dir = Path(tmp) / "airflow", Path(tmp) / "baseline"
        home.mkdir()
        baseline_dir.mkdir()
        baseline = baseline_dir / "baseline_amazon_sagemaker.py"
        baseline.write_text(BASELINE_DAG)
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PYTHONWARNINGS": "ignore",
            # A deployed provider is byte-compiled (pip compiles wheels on install), so measure with
            # bytecode: cached in the temp dir, which also keeps __pycache__ out of the repository.
            "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache"),
        }
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        ours = sorted(DAGS.glob("*.py"))
        files = [*ours, baseline]
        # One unmeasured run each: writes airflow.cfg and the bytecode, which a DAG processor has.
        info = {f: measure(f, env) for f in files}
        samples: dict[Path, list[float]] = {f: [] for f in files}
        for _ in range(args.repeat):  # interleaved, so drift in machine load hits every file alike
            for f in files:
                samples[f].append(measure(f, env)["seconds"])

    rows = []
    for f in files:
        dags = max(1, int(info[f]["dags"]))
        median = statistics.median(samples[f])
        label = "baseline (amazon SageMakerTraining+Transform)" if f == baseline else str(f.relative_to(REPO))
        rows.append((f, label, dags, median, median / dags, min(samples[f]), max(samples[f])))

    print(
        f"Parse time per DAG, median of {args.repeat} fresh interpreters (Airflow {info[baseline]['airflow']}, "
        "Amazon provider base modules preloaded; DAG file import+exec only)"
    )
    header = f"{'file':<48} {'DAGs':>4} {'file ms':>9} {'per-DAG ms':>11} {'min ms':>8} {'max ms':>8}"
    print(header)
    print("-" * len(header))
    for _f, label, dags, median, per_dag, low, high in rows:
        print(
            f"{label:<48} {dags:>4} {median * 1e3:>9.1f} {per_dag * 1e3:>11.1f} {low * 1e3:>8.1f} {high * 1e3:>8.1f}"
        )

    ours_per_dag = max(per_dag for f, _l, _d, _m, per_dag, _lo, _hi in rows if f != baseline)
    baseline_per_dag = rows[-1][4]
    ratio = ours_per_dag / baseline_per_dag
    verdict = "PASS" if ratio <= GOAL else "MISS"
    print(
        f"\nratio ours/baseline (slowest of ours, per DAG): {ratio:.2f}  goal <= {GOAL:.2f} (no slower)  {verdict}"
    )
    print(f"total benchmark time: {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
