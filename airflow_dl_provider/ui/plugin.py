"""The Airflow plugin that adds the deep-learning page to the UI (the ``airflow.plugins`` entry point).

Airflow 3: the FastAPI app of :mod:`.app` under ``/deep-learning``, a "Deep learning" entry in the
Browse menu that shows it in Airflow's frame, and a tab on every DAG that opens its pipeline.
Airflow 2.11: the same page as a Flask AppBuilder view (:mod:`.flask_view`) under Browse.

Every Airflow process imports this module, DAG processors and workers included: it imports neither
FastAPI nor Flask AppBuilder on Airflow 3 (the app is built on its first request).
"""

from __future__ import annotations

from typing import Any

from airflow import __version__ as AIRFLOW_VERSION
from airflow.plugins_manager import AirflowPlugin

from airflow_dl_provider.ui.app import URL_PREFIX, LazyApp

AIRFLOW_3 = int(AIRFLOW_VERSION.split(".", 1)[0]) >= 3
NAME = "Deep learning"


def _airflow_2_views() -> list[dict[str, Any]]:
    from airflow_dl_provider.ui.flask_view import DeepLearningView

    return [{"name": NAME, "category": "Browse", "view": DeepLearningView()}]


class DeepLearningPlugin(AirflowPlugin):
    """Per pipeline: runs, jobs with status, duration and estimated cost, the tuning leaderboard, the
    last drift report and the model registry."""

    name = "deep_learning"
    if AIRFLOW_3:
        fastapi_apps = [{"app": LazyApp(), "url_prefix": URL_PREFIX, "name": NAME}]
        external_views = [
            {
                "name": NAME,
                "href": f"{URL_PREFIX}/",
                "url_route": "deep-learning",
                "destination": "nav",
                "category": "browse",
            },
            {
                "name": NAME,
                "href": URL_PREFIX + "/dags/{DAG_ID}",
                "url_route": "deep-learning-dag",
                "destination": "dag",
            },
        ]
    else:
        appbuilder_views = _airflow_2_views()
