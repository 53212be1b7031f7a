"""The page on Airflow 2.11: a Flask AppBuilder view with the same data and HTML as Airflow 3's.

Imported by the plugin only on Airflow 2, where the webserver is Flask AppBuilder's.
"""

from __future__ import annotations

from typing import Any

from airflow.security import permissions
from airflow.www.auth import has_access_dag
from flask import abort
from flask_appbuilder import BaseView, expose

ROUTE = "/deep-learning"


def _links() -> Any:
    from urllib.parse import quote

    from airflow_dl_provider.ui.page import Links

    return Links(
        ROUTE,
        run_url=lambda dag_id, run_id: f"/dags/{quote(dag_id)}/grid?dag_run_id={quote(run_id, safe='')}",
        dag_url=lambda dag_id: f"/dags/{quote(dag_id)}/grid",
    )


class DeepLearningView(BaseView):
    """``/deep-learning/`` and ``/deep-learning/pipelines/<name>``, for users who may read DAG runs."""

    route_base = ROUTE
    default_view = "index"

    @expose("/")
    @has_access_dag("GET", permissions.RESOURCE_DAG_RUN)
    def index(self) -> str:
        from airflow.utils.session import create_session

        from airflow_dl_provider.ui.app import overviews
        from airflow_dl_provider.ui.page import index_page

        with create_session() as session:
            return index_page(overviews(session), _links())

    @expose("/pipelines/<string:pipeline>")
    @has_access_dag("GET", permissions.RESOURCE_DAG_RUN)
    def pipeline(self, pipeline: str) -> str:
        from airflow.utils.session import create_session

        from airflow_dl_provider.ui.app import overviews
        from airflow_dl_provider.ui.page import pipeline_page

        with create_session() as session:
            found = overviews(session, only=pipeline)
            if not found:
                abort(404)
            return pipeline_page(found[0], _links())

    @expose("/dags/<string:dag_id>")
    @has_access_dag("GET", permissions.RESOURCE_DAG_RUN)
    def dag(self, dag_id: str) -> Any:
        """As on Airflow 3: a DAG's page of the pipeline it belongs to (where the extra links point)."""
        from flask import redirect

        from airflow_dl_provider.ui.overview import pipelines

        names = list(pipelines([dag_id]))
        if not names:
            abort(404)
        return redirect(_links().pipeline(names[0]))
