"""What every DAG a config generates shares: Jinja templates between stages and the DAG arguments.

Apart from the loader (:mod:`.loader`) and the DAG builders (:mod:`.factory`, :mod:`.monitoring`), which
all import from here, so nothing imports back up: no cycle.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pendulum

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.x
    from airflow import DAG  # type: ignore[no-redef,attr-defined]

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_dl_provider.pipelines.config import PipelineConfig

__all__ = ["DAG", "RUN_FOLDER", "dag_arguments", "xcom"]

# A run's own S3 folder: run ids carry ':' and '+', which are legal in keys but awkward in paths.
RUN_FOLDER = "{{ run_id | replace(':', '-') | replace('+', '-') }}"


def xcom(task_id: str, key: str) -> str:
    """A template that renders one field of a task's returned dict."""
    return "{{ ti.xcom_pull(task_ids='" + task_id + "')['" + key + "'] }}"


def dag_arguments(config: PipelineConfig, config_path: Path) -> dict[str, Any]:
    """What every DAG of one config shares: start, tags, retries, connection."""
    return {
        "start_date": pendulum.instance(datetime.fromisoformat(config.start_date), tz="UTC"),
        "catchup": False,
        "tags": ["deep-learning", *config.tags],
        "default_args": {
            "aws_conn_id": config.aws_conn_id,
            "retries": config.retries,
            "retry_delay": timedelta(seconds=config.retry_delay_seconds),
        },
        "doc_md": f"Generated from `{config_path.name}` by airflow_dl_provider.",
    }
