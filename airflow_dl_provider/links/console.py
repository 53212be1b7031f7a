"""One console link for every job kind: the fragment after ``#/`` comes from the kind's table row."""

from __future__ import annotations

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink


class SageMakerJobLink(BaseAwsLink):
    """The job's page in the SageMaker console (training, tuning, labeling, compilation, ...)."""

    name = "SageMaker Job"
    key = "sagemaker_dl_job"
    format_str = BASE_AWS_CONSOLE_LINK + "/sagemaker/home?region={region_name}#/{console_fragment}"
