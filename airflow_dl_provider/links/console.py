"""Console links: the fragment after ``#/`` comes from the kind's table row (``JobKind.console_path``).

One class per kind of page, so the button says what it opens; they differ in name and key only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_dl_provider.jobs.kinds import JobKind

_SAGEMAKER_PAGE = BASE_AWS_CONSOLE_LINK + "/sagemaker/home?region={region_name}#/{console_fragment}"


class SageMakerJobLink(BaseAwsLink):
    """The job's page in the SageMaker console (training, tuning, labeling, compilation, ...)."""

    name = "SageMaker Job"
    key = "sagemaker_dl_job"
    format_str = _SAGEMAKER_PAGE


class SageMakerEndpointLink(BaseAwsLink):
    """The endpoint's page in the SageMaker console."""

    name = "SageMaker Endpoint"
    key = "sagemaker_dl_endpoint"
    format_str = _SAGEMAKER_PAGE


class SageMakerModelPackageLink(BaseAwsLink):
    """The model registry page of the package's group, where its versions and approval are."""

    name = "SageMaker Model Registry"
    key = "sagemaker_dl_model_package"
    format_str = _SAGEMAKER_PAGE


def persist_console_link(
    link: type[BaseAwsLink],
    context: Any,
    operator: Any,
    kind: JobKind,
    name: str,
    description: Mapping[str, Any] | None = None,
) -> None:
    """Store ``link``'s XCom for the page of ``name`` (a job or resource of ``kind``)."""
    link.persist(
        context=context,
        operator=operator,
        region_name=operator.hook.region,
        aws_partition=operator.hook.partition,
        console_fragment=kind.console_path(name, description),
    )
