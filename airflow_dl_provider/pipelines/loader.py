"""Pipeline configs on disk -> ``{dag_id: DAG}`` for a DAG file's ``globals()``.

The loader reads the configs and asks the builders for DAGs; the builders never import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_dl_provider.pipelines.config import load_config
from airflow_dl_provider.pipelines.factory import build_dag

if TYPE_CHECKING:
    from collections.abc import Iterable


def dags_from_directory(directory: str | Path, pattern: str = "*.yaml") -> dict[str, Any]:
    """Every config in ``directory`` as ``{dag_id: DAG}``, for a DAG file's ``globals()``."""
    return dags_from_files(sorted(Path(directory).glob(pattern)))


def dags_from_files(paths: Iterable[Path]) -> dict[str, Any]:
    """The pipeline DAG of each config, and its drift monitor and retrain DAGs where it asks for them."""
    dags: dict[str, Any] = {}
    for path in paths:
        config = load_config(path)
        dags[config.dag_id] = build_dag(config, path)
        if config.drift or config.retraining:
            # Only then: the monitoring module imports the drift and evaluation operators.
            from airflow_dl_provider.pipelines.monitoring import monitoring_dags

            dags.update(monitoring_dags(config, path))
    return dags
