"""Extra links: the page of what a task made, on AWS or on the local backend.

On AWS each link opens the console: the job's or resource's SageMaker page (the fragment after ``#/``
comes from the kind's table row, ``JobKind.console_path``) or the S3 object's page. On the local backend
there is no console: a job or resource link opens the provider's own page of the pipeline (the row of
the job), an S3 link the object itself on the embedded S3 server (a presigned URL: it checks
signatures as S3 does). Which one is decided when the link is
persisted, from the task's connection, and the XCom then holds the finished ``url``.

One class per kind of page, so the button says what it opens. S3 links declare the result fields they
show (``result_keys``); :func:`persist_result_links` stores every one an operator declares from its
result, so an operator only lists its links.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_dl_provider.jobs.kinds import JobKind

_SAGEMAKER_PAGE = BASE_AWS_CONSOLE_LINK + "/sagemaker/home?region={region_name}#/{console_fragment}"
_S3_PAGE = BASE_AWS_CONSOLE_LINK + "/s3/{page}/{bucket}?region={region_name}&prefix={key}"
# The provider's page (ui.app.URL_PREFIX, ui.flask_view.ROUTE): /dags/<dag_id> opens the DAG's pipeline.
PROVIDER_PAGE = "/deep-learning"


class ProviderLink(BaseAwsLink):
    """A console link whose XCom may instead hold the finished ``url`` of a local page."""

    local_section: ClassVar[str] = "runs"

    def format_link(self, **kwargs: Any) -> str:
        url = kwargs.get("url")
        return str(url) if url else super().format_link(**kwargs)

    @classmethod
    def persist(  # type: ignore[override]
        cls, context: Any, operator: Any, region_name: str, aws_partition: str, **kwargs: Any
    ) -> None:
        """The console fields, or on the local backend the provider page's ``url``.

        :param local_name: the job or resource the local page points at; default the operator's
            ``job_name``.
        """
        name = str(kwargs.pop("local_name", None) or getattr(operator, "job_name", None) or "")
        if local_s3_endpoint(operator) is not None:
            # The console fields stay beside it: what the page is of, whichever backend ran it.
            kwargs["url"] = cls.local_url(operator, name)
        super().persist(
            context=context, operator=operator, region_name=region_name, aws_partition=aws_partition, **kwargs
        )

    @classmethod
    def local_url(cls, operator: Any, name: str) -> str:
        """The provider's page of the operator's pipeline, at the row of ``name`` (a job's)."""
        anchor = f"job-{name}" if cls.local_section == "runs" else cls.local_section
        return f"{PROVIDER_PAGE}/dags/{quote(str(operator.dag_id))}#{quote(anchor)}"


class SageMakerJobLink(ProviderLink):
    """The job's page in the SageMaker console (training, tuning, labeling, compilation, ...)."""

    name = "SageMaker Job"
    key = "sagemaker_dl_job"
    format_str = _SAGEMAKER_PAGE


class SageMakerEndpointLink(ProviderLink):
    """The endpoint's page in the SageMaker console."""

    name = "SageMaker Endpoint"
    key = "sagemaker_dl_endpoint"
    format_str = _SAGEMAKER_PAGE
    local_section = "registry"  # the page shows which version serves, beside the registry


class SageMakerModelPackageLink(ProviderLink):
    """The model registry page of the package's group, where its versions and approval are."""

    name = "SageMaker Model Registry"
    key = "sagemaker_dl_model_package"
    format_str = _SAGEMAKER_PAGE
    local_section = "registry"


class S3ObjectLink(ProviderLink):
    """An S3 object (or prefix) the task wrote, named by one of ``result_keys`` in its result."""

    result_keys: ClassVar[tuple[str, ...]] = ()
    format_str = _S3_PAGE


class ModelArtifactsLink(S3ObjectLink):
    """The model artifacts a training job (or a compilation job, compiled) wrote."""

    name = "Model Artifacts"
    key = "dl_model_artifacts"
    result_keys = ("model_artifacts", "compiled_artifacts")


class JobOutputLink(S3ObjectLink):
    """What a job wrote besides a model: a labeling job's output manifest, a transform's predictions."""

    name = "Job Output"
    key = "dl_job_output"
    result_keys = ("output_manifest", "output_path")


class DataDocsLink(S3ObjectLink):
    """The Great Expectations Data Docs page of a validation."""

    name = "Data Docs"
    key = "dl_data_docs"
    result_keys = ("data_docs",)


class DriftReportLink(S3ObjectLink):
    """The drift report's HTML page."""

    name = "Drift Report"
    key = "dl_drift_report"
    result_keys = ("report_html",)


def local_s3_endpoint(operator: Any) -> str | None:
    """The embedded S3 server's URL when the task's connection is the local backend's, else None.

    Read from the connection extra (``backend``, ``endpoint_url``), which both the SageMaker hook and
    the plain S3 hook of :class:`~airflow_dl_provider.operators.base.S3Operator` take theirs from.
    """
    hook = operator.hook
    extra = getattr(getattr(hook, "conn_config", None), "extra_config", None)
    extra = extra if isinstance(extra, dict) else {}
    backend = getattr(hook, "backend", None)
    if (backend if isinstance(backend, str) else extra.get("backend", "aws")) != "local":
        return None
    return str(extra.get("endpoint_url") or "").rstrip("/") or None


def _region_and_partition(operator: Any) -> tuple[str, str]:
    hook = operator.hook
    # The SageMaker hook resolves the region a job runs in; the plain S3 hook has only its own.
    return str(getattr(hook, "region", None) or hook.region_name), str(
        getattr(hook, "partition", None) or hook.conn_partition
    )


def persist_console_link(
    link: type[ProviderLink],
    context: Any,
    operator: Any,
    kind: JobKind,
    name: str,
    description: Mapping[str, Any] | None = None,
) -> None:
    """Store ``link``'s XCom for the page of ``name`` (a job or resource of ``kind``)."""
    region, partition = _region_and_partition(operator)
    link.persist(
        context=context,
        operator=operator,
        region_name=region,
        aws_partition=partition,
        console_fragment=kind.console_path(name, description),
        local_name=name,
    )


# The embedded server checks signatures as S3 does, so a browser needs a presigned URL; SigV4 presigned
# URLs last at most 7 days (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html).
PRESIGNED_SECONDS = 7 * 24 * 3600


def _presigned(endpoint: str, bucket: str, key: str) -> str:
    """A GET of the object (a listing, for a prefix) on the embedded server that a browser can open.

    Signed with the local backend's placeholder keys, which the server accepts, never the connection's
    own: a link is stored in XCom, where no key or token of a connection may appear.
    """
    from airflow_dl_provider.backends.local.server import s3_client

    s3 = s3_client(endpoint)
    if key and not key.endswith("/"):
        params, method = {"Bucket": bucket, "Key": key}, "get_object"
    else:
        params, method = {"Bucket": bucket, "Prefix": key}, "list_objects_v2"
    return str(s3.generate_presigned_url(method, Params=params, ExpiresIn=PRESIGNED_SECONDS))


def s3_page_url(link: type[S3ObjectLink], operator: Any, uri: str) -> dict[str, Any]:
    """The XCom value of an S3 link to ``uri``: its console page, or on the local backend a presigned
    URL of the object on the embedded server (valid :data:`PRESIGNED_SECONDS`)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    endpoint = local_s3_endpoint(operator)
    if endpoint is not None:
        return {"url": _presigned(endpoint, bucket, key)}
    region, partition = _region_and_partition(operator)
    return {
        "region_name": region,
        "aws_domain": link.get_aws_domain(partition),
        "page": "buckets" if not key or key.endswith("/") else "object",
        "bucket": bucket,
        "key": quote(key, safe=""),
    }


def persist_result_links(operator: Any, context: Any, result: Mapping[str, Any] | None) -> None:
    """Store the XCom of every S3 link the operator lists whose result field holds an ``s3://`` URI."""
    if not isinstance(result, dict) or not operator.do_xcom_push:
        return
    for link in getattr(operator, "operator_extra_links", ()):
        if not isinstance(link, S3ObjectLink):
            continue
        uri = next(
            (result[k] for k in link.result_keys if str(result.get(k) or "").startswith("s3://")), None
        )
        if uri:
            context["ti"].xcom_push(key=link.key, value=s3_page_url(type(link), operator, str(uri)))
