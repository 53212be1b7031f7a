"""Extra links open the AWS console on AWS and local pages on the local backend."""

from __future__ import annotations

import types
from typing import Any

from airflow_dl_provider.backends.local.server import LOCAL_CREDENTIALS
from airflow_dl_provider.jobs.kinds import JOB_KINDS
from airflow_dl_provider.links.console import (
    DataDocsLink,
    DriftReportLink,
    JobOutputLink,
    ModelArtifactsLink,
    SageMakerJobLink,
    SageMakerModelPackageLink,
    persist_console_link,
    persist_result_links,
)
from airflow_dl_provider.links.published import PublishedOutputs

ENDPOINT = "http://127.0.0.1:5123"
CONN_KEY = "AKIACONNECTIONOWNKEY"


def _operator(backend: str, links: tuple[Any, ...] = ()) -> Any:
    extra = {"backend": backend, "endpoint_url": ENDPOINT} if backend == "local" else {}
    hook = types.SimpleNamespace(
        conn_config=types.SimpleNamespace(extra_config=extra, aws_access_key_id=CONN_KEY),
        region_name="eu-west-1",
        conn_partition="aws",
    )
    return types.SimpleNamespace(
        hook=hook,
        dag_id="dl_pipeline_digits",
        do_xcom_push=True,
        operator_extra_links=links,
        job_name=None,
        # The Amazon provider 9.8.0 (Airflow 2.11) pushes through the operator, later ones through the ti.
        xcom_push=lambda context, key, value: context["ti"].xcom_push(key=key, value=value),
    )


def _context() -> dict[str, Any]:
    pushed: dict[str, Any] = {}
    return {
        "ti": types.SimpleNamespace(
            xcom_push=lambda key, value: pushed.__setitem__(key, value), pushed=pushed
        )
    }


def _url(link: Any, context: dict[str, Any]) -> str:
    return link.format_link(**context["ti"].pushed[link.key])


RESULT = {
    "model_artifacts": "s3://b/models/run 1/model.tar.gz",
    "output_path": "s3://b/predictions/run-1/",
    "data_docs": "s3://b/validation/data_docs/index.html",
    "report_html": "s3://b/drift/report.html",
    "drifted": True,
}
S3_LINKS = (ModelArtifactsLink(), JobOutputLink(), DataDocsLink(), DriftReportLink())


def test_s3_links_open_the_console_on_aws() -> None:
    context = _context()
    persist_result_links(_operator("aws", S3_LINKS), context, RESULT)

    assert _url(ModelArtifactsLink(), context) == (
        "https://console.aws.amazon.com/s3/object/b?region=eu-west-1&prefix=models%2Frun%201%2Fmodel.tar.gz"
    )
    # A prefix opens the bucket's listing there.
    assert _url(JobOutputLink(), context) == (
        "https://console.aws.amazon.com/s3/buckets/b?region=eu-west-1&prefix=predictions%2Frun-1%2F"
    )


def test_s3_links_open_the_embedded_server_on_the_local_backend() -> None:
    context = _context()
    persist_result_links(_operator("local", S3_LINKS), context, RESULT)

    # Presigned: the embedded server checks signatures as S3 does, and a browser sends none of its own.
    for link, path in (
        (DataDocsLink(), "/b/validation/data_docs/index.html?"),
        (DriftReportLink(), "/b/drift/report.html?"),
        (ModelArtifactsLink(), "/b/models/run%201/model.tar.gz?"),
    ):
        url = _url(link, context)
        assert url.startswith(ENDPOINT + path) and "Signature" in url, url
        # Signed with the local placeholder keys: no key of the connection is stored in XCom.
        assert LOCAL_CREDENTIALS["login"] in url and CONN_KEY not in url
    # A prefix is its listing.
    assert _url(JobOutputLink(), context).startswith(
        f"{ENDPOINT}/b?list-type=2&prefix=predictions%2Frun-1%2F"
    )


def test_only_the_links_an_operator_lists_and_only_s3_values_are_stored() -> None:
    context = _context()
    persist_result_links(_operator("aws", (DriftReportLink(),)), context, {**RESULT, "report_html": None})
    assert context["ti"].pushed == {}

    persist_result_links(_operator("aws", (DataDocsLink(),)), context, RESULT)
    assert set(context["ti"].pushed) == {DataDocsLink.key}


def test_job_and_registry_links_open_the_provider_page_on_the_local_backend() -> None:
    context = _context()
    persist_console_link(
        SageMakerJobLink, context, _operator("local"), JOB_KINDS["training"], "digits-train-1"
    )
    persist_console_link(
        SageMakerModelPackageLink,
        context,
        _operator("local"),
        JOB_KINDS["training"],
        "digits-train-1",
    )

    assert _url(SageMakerJobLink(), context) == "/deep-learning/dags/dl_pipeline_digits#job-digits-train-1"
    assert _url(SageMakerModelPackageLink(), context) == "/deep-learning/dags/dl_pipeline_digits#registry"
    # What the page is of stays recorded beside the local URL.
    assert context["ti"].pushed[SageMakerJobLink.key]["console_fragment"] == "jobs/digits-train-1"

    aws = _context()
    persist_console_link(SageMakerJobLink, aws, _operator("aws"), JOB_KINDS["training"], "digits-train-1")
    assert _url(SageMakerJobLink(), aws) == (
        "https://console.aws.amazon.com/sagemaker/home?region=eu-west-1#/jobs/digits-train-1"
    )


def test_the_provider_page_prefix_is_the_ui_apps() -> None:
    from airflow_dl_provider.links.console import PROVIDER_PAGE
    from airflow_dl_provider.ui.app import URL_PREFIX

    # Airflow 2.11's Flask view (ui.flask_view.ROUTE) serves the same paths; it imports only there.
    assert PROVIDER_PAGE == URL_PREFIX


class _Validates(PublishedOutputs):
    operator_extra_links = (DataDocsLink(),)
    do_xcom_push = True
    dag_id = "dl_pipeline_digits"

    def __init__(self, backend: str) -> None:
        self.hook = _operator(backend).hook

    def execute(self, context: Any) -> dict[str, Any]:
        return {"data_uri": "s3://b/in.csv", "data_docs": "s3://b/docs/index.html"}

    def execute_complete(self, context: Any, event: Any = None) -> dict[str, Any]:
        return {"data_docs": "s3://b/docs/resumed.html"}


def test_the_mixin_publishes_whatever_execute_or_execute_complete_returns() -> None:
    op = _Validates("local")
    context = _context()

    assert op.execute(context) == {"data_uri": "s3://b/in.csv", "data_docs": "s3://b/docs/index.html"}
    assert _url(DataDocsLink(), context).startswith(f"{ENDPOINT}/b/docs/index.html?")

    op.execute_complete(context, event={"status": "success"})
    assert _url(DataDocsLink(), context).startswith(f"{ENDPOINT}/b/docs/resumed.html?")
    assert op.published_result == {"data_docs": "s3://b/docs/resumed.html"}


def test_every_link_is_registered_in_the_provider_info() -> None:
    # Airflow 3 resolves a serialized task's extra links only through registered classes.
    import inspect

    from airflow_dl_provider.get_provider_info import get_provider_info
    from airflow_dl_provider.links import console

    links = {
        f"{console.__name__}.{name}"
        for name, cls in inspect.getmembers(console, inspect.isclass)
        if issubclass(cls, console.ProviderLink) and "key" in vars(cls)
    }

    assert len(links) == 7
    assert links == set(get_provider_info()["extra-links"])
