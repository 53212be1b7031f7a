"""Pipeline configs on disk -> ``{dag_id: DAG}`` for a DAG file's ``globals()``.

The loader reads the configs and asks the builders for DAGs; the builders never import it. A bad
config does not hide the others: its one-line error becomes the DAG file's import error while every
good config's DAGs are still listed (see :class:`ConfigErrors`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_dl_provider.exceptions import PipelineConfigError
from airflow_dl_provider.pipelines.config import load_config
from airflow_dl_provider.pipelines.factory import build_dag
from airflow_dl_provider.pipelines.templates import DAG, dag_docs, default_deferrable

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_dl_provider.pipelines.config import PipelineConfig

CONFIG_ERRORS_DAG_ID = "dl_pipeline_config_errors"


class ConfigErrors(DAG):  # type: ignore[misc,valid-type]
    """Stands in for the pipelines whose configs are invalid; it never becomes a DAG.

    Airflow records import errors per Python file, and an exception raised while the DAG file runs
    would drop the good pipelines with the bad. Instead the DagBag's own per-DAG validation raises
    here, which every supported Airflow version records as the file's import error and which leaves
    the other DAGs of the file bagged: one line per bad config, each naming the file, field and fix.
    """

    def __init__(self, errors: list[str]) -> None:
        super().__init__(dag_id=CONFIG_ERRORS_DAG_ID, schedule=None)
        self.config_errors = list(errors)

    def validate(self) -> None:
        raise PipelineConfigError("\n".join(self.config_errors))


def dags_from_directory(directory: str | Path, pattern: str = "*.yaml") -> dict[str, Any]:
    """Every config in ``directory`` as ``{dag_id: DAG}``, for a DAG file's ``globals()``."""
    return dags_from_files(sorted(Path(directory).glob(pattern)))


def dags_from_files(paths: Iterable[Path]) -> dict[str, Any]:
    """The pipeline DAG of each config, and its drift monitor and retrain DAGs where it asks for them.

    :return: ``{dag_id: DAG}``; when some configs are invalid, also a :class:`ConfigErrors` under
        ``dl_pipeline_config_errors`` that the DagBag reports as this file's import error.
    """
    dags: dict[str, Any] = {}
    errors: list[str] = []
    for path in paths:
        try:
            dags.update(_config_dags(Path(path)))
        except (PipelineConfigError, ValueError, TypeError) as err:
            # Operator arguments are checked at construction too: name the config for those as well.
            message = " ".join(str(err).split())
            errors.append(message if message.startswith(str(path)) else f"{path}: {message}")
    if errors:
        dags[CONFIG_ERRORS_DAG_ID] = ConfigErrors(errors)
    return dags


def _config_dags(path: Path) -> dict[str, Any]:
    config = _with_deployment_defaults(load_config(path))
    dags = {config.dag_id: build_dag(config, path)}
    if config.drift or config.retraining:
        # Only then: the monitoring module imports the drift and evaluation operators.
        from airflow_dl_provider.pipelines.monitoring import monitoring_dags

        dags.update(monitoring_dags(config, path))
    if config.arrival:
        from airflow_dl_provider.pipelines.arrival import arrival_dags

        dags.update(arrival_dags(config, path))  # Airflow 2.x only: the sensor DAG
    for dag in dags.values():
        dag.doc_md = dag_docs(dag, path)
    return dags


def _with_deployment_defaults(config: PipelineConfig) -> PipelineConfig:
    """Settings the config leaves unset follow the Airflow deployment, as operators' defaults do."""
    if "deferrable" in config.model_fields_set:
        return config
    return config.model_copy(update={"deferrable": default_deferrable()})
