"""The page on Airflow 3: a FastAPI app that the api-server mounts under :data:`URL_PREFIX`.

Every route needs a logged-in Airflow user allowed to read DAG runs (the api-server's own JWT
cookie, as the UI's frame sends it). The data is read per request on the server: the runs from
Airflow's database, the jobs, trials, registry and drift report from the connection named by
``[deep_learning] conn_id`` (default ``aws_default``, the pipelines' own).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_dl_provider.ui.overview import Overview

URL_PREFIX = "/deep-learning"
DEFAULT_CONN_ID = "aws_default"


def conn_id() -> str:
    from airflow.configuration import conf

    return str(conf.get("deep_learning", "conn_id", fallback=DEFAULT_CONN_ID))


def overviews(session: Any, only: str | None = None) -> list[Overview]:
    """Every pipeline's overview (or only the one named ``only``), read through the connection."""
    from airflow_dl_provider.hooks.sagemaker import SageMakerJobHook
    from airflow_dl_provider.ui.overview import OverviewBuilder, pipelines
    from airflow_dl_provider.ui.records import AirflowRunRecords

    records = AirflowRunRecords(session)
    found = pipelines(records.dag_ids())
    if only is not None:
        found = {only: found[only]} if only in found else {}
    if not found:
        return []
    hook = SageMakerJobHook(aws_conn_id=conn_id())
    builder = OverviewBuilder(records, hook.conn, hook.s3)
    return [builder.build(name, dags) for name, dags in found.items()]


def _links(prefix: str) -> Any:
    from urllib.parse import quote

    from airflow_dl_provider.ui.page import Links

    return Links(
        prefix,
        run_url=lambda dag_id, run_id: f"/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}",
        dag_url=lambda dag_id: f"/dags/{quote(dag_id)}",
    )


class LazyApp:
    """An ASGI app that builds the FastAPI app on its first request.

    The plugin module is imported by every Airflow process (scheduler, workers, DAG processor); only
    the api-server ever serves the page, so only it pays for importing FastAPI's routing and ours.
    """

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = create_app()
        await self._app(scope, receive, send)

    def __repr__(self) -> str:
        return f"{__name__}.LazyApp()"


def create_app() -> Any:
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.common.db.common import SessionDep
    from airflow.api_fastapi.core_api.security import requires_access_dag
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.responses import HTMLResponse, RedirectResponse

    from airflow_dl_provider.ui.page import index_page, pipeline_page

    app = FastAPI(title="Deep learning pipelines", docs_url=None, redoc_url=None, openapi_url=None)
    allowed = [Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.RUN))]
    # The api-server's own session dependency; taken out of its Annotated alias because these
    # routes' annotations are strings (PEP 563) that FastAPI resolves in this module's globals.
    database = SessionDep.__metadata__[0]  # type: ignore[attr-defined]
    links = _links(URL_PREFIX)

    @app.get("/", response_class=HTMLResponse, dependencies=allowed)
    def index(session: Any = database) -> Any:
        return HTMLResponse(index_page(overviews(session), links))

    @app.get("/pipelines/{pipeline}", response_class=HTMLResponse, dependencies=allowed)
    def pipeline(pipeline: str, session: Any = database) -> Any:
        found = overviews(session, only=pipeline)
        if not found:
            raise HTTPException(404, f"no pipeline {pipeline!r}: no dl_pipeline_{pipeline} DAG is loaded")
        return HTMLResponse(pipeline_page(found[0], links))

    @app.get("/dags/{dag_id}", dependencies=allowed)
    def dag(dag_id: str) -> Any:
        """From a DAG's own tab: the page of the pipeline the DAG belongs to."""
        from airflow_dl_provider.ui.overview import pipelines

        names = list(pipelines([dag_id]))
        if not names:
            raise HTTPException(404, f"{dag_id} is not a pipeline DAG")
        return RedirectResponse(links.pipeline(names[0]))

    return app
