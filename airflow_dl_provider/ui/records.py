"""The pipelines' runs as Airflow's metadata database holds them: DAGs, runs, task instances, XComs.

Read with the web server's own session (Airflow 3's api-server, Airflow 2.11's webserver); the
models are imported inside the methods, so importing this module costs nothing at DAG parse time.
"""

from __future__ import annotations

from typing import Any

from airflow_dl_provider.ui.overview import DAG_PREFIXES


def _xcom_model() -> Any:
    try:  # Airflow 3
        from airflow.models.xcom import XComModel

        return XComModel
    except ImportError:  # Airflow 2.x
        from airflow.models.xcom import XCom

        return XCom


class AirflowRunRecords:
    """:class:`~airflow_dl_provider.ui.overview.RunRecords` from a SQLAlchemy session on Airflow's database."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def dag_ids(self) -> list[str]:
        from airflow.models.dag import DagModel
        from sqlalchemy import or_, select

        query = select(DagModel.dag_id).where(
            or_(*(DagModel.dag_id.startswith(prefix) for prefix in DAG_PREFIXES.values()))
        )
        # Airflow 3 marks a DAG whose file is gone as stale; 2.x as inactive.
        if hasattr(DagModel, "is_stale"):
            query = query.where(DagModel.is_stale.is_(False))
        elif hasattr(DagModel, "is_active"):
            query = query.where(DagModel.is_active.is_(True))
        return sorted(self.session.scalars(query))

    def runs(self, dag_id: str, limit: int) -> list[dict[str, Any]]:
        from airflow.models.dagrun import DagRun
        from sqlalchemy import select

        order = DagRun.run_after if hasattr(DagRun, "run_after") else DagRun.execution_date
        rows = self.session.scalars(
            select(DagRun)
            .where(DagRun.dag_id == dag_id)
            .order_by(order.desc(), DagRun.id.desc())
            .limit(limit)
        )
        return [
            {
                "run_id": run.run_id,
                "state": str(run.state or ""),
                "start": run.start_date,
                "end": run.end_date,
            }
            for run in rows
        ]

    def tasks(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        from airflow.models.taskinstance import TaskInstance
        from sqlalchemy import select

        xcom = _xcom_model()
        tasks: dict[str, dict[str, Any]] = {}
        for ti in self.session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        ):
            tasks[ti.task_id] = {
                "state": str(ti.state or ""),
                "start": ti.start_date,
                "end": ti.end_date,
                "result": None,
                "xcom": {},
            }
        for row in self.session.scalars(select(xcom).where(xcom.dag_id == dag_id, xcom.run_id == run_id)):
            task = tasks.get(row.task_id)
            if task is None:
                continue
            try:
                value = xcom.deserialize_value(row)
            except Exception:  # a value this reader cannot decode (a custom XCom backend's reference)
                continue
            if row.key == "return_value":
                task["result"] = value
            else:
                task["xcom"][row.key] = value
        return tasks
