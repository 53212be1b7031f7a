"""The multi-region pattern's last task: the regional models side by side (``pipelines.regions``).

Apart from the config schema, which must import without Airflow (``pipelines.config`` reads it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_dl_provider.pipelines.regions import compare_models

try:  # Airflow 3
    from airflow.sdk import BaseOperator
except ImportError:  # Airflow 2.x
    from airflow.models import BaseOperator  # type: ignore[no-redef,attr-defined]

if TYPE_CHECKING:
    from collections.abc import Mapping


class RegionalModelComparisonOperator(BaseOperator):
    """Lay the regional models side by side from each region's ``train`` XCom.

    :param train_tasks: region -> the task id of its training task.
    :param metric: the metric the best region is picked by (highest wins); None: no pick.
    :return: :func:`compare_models`'s table, JSON-safe.
    """

    ui_color = "#eef2f7"

    def __init__(self, *, train_tasks: Mapping[str, str], metric: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.train_tasks = dict(train_tasks)
        self.metric = metric

    def execute(self, context: Any) -> dict[str, Any]:
        ti = context["ti"]
        results = {region: ti.xcom_pull(task_ids=task_id) for region, task_id in self.train_tasks.items()}
        table = compare_models(results, self.metric)
        for row in table["regions"]:
            self.log.info("%s: %s %s", row["region"], row["job_name"], row["metrics"])
        self.log.info("best by %s: %s", self.metric, table["best_region"])
        return table
