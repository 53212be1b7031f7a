"""Provider metadata for Airflow's ProvidersManager (the ``apache_airflow_provider`` entry point)."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    from airflow_dl_provider import __version__

    return {
        "package-name": "airflow-dl-provider",
        "name": "Deep Learning on AWS",
        "description": "The deep-learning lifecycle on AWS: label, validate, train, tune, compile, serve, retrain.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Amazon SageMaker (deep learning)",
                "external-doc-url": "https://aws.amazon.com/sagemaker/",
                "tags": ["aws"],
            }
        ],
        "operators": [
            {
                "integration-name": "Amazon SageMaker (deep learning)",
                "python-modules": [
                    "airflow_dl_provider.operators.datasets",
                    "airflow_dl_provider.operators.drift",
                    "airflow_dl_provider.operators.labeling",
                    "airflow_dl_provider.operators.validation",
                    "airflow_dl_provider.operators.training",
                    "airflow_dl_provider.operators.tuning",
                    "airflow_dl_provider.operators.compilation",
                    "airflow_dl_provider.operators.transform",
                    "airflow_dl_provider.operators.endpoints",
                    "airflow_dl_provider.operators.registry",
                    "airflow_dl_provider.operators.evaluation",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Amazon SageMaker (deep learning)",
                "python-modules": ["airflow_dl_provider.sensors.job"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Amazon SageMaker (deep learning)",
                "python-modules": ["airflow_dl_provider.hooks.sagemaker"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Amazon SageMaker (deep learning)",
                "python-modules": ["airflow_dl_provider.triggers.job"],
            }
        ],
        "extra-links": [
            "airflow_dl_provider.links.console.SageMakerJobLink",
            "airflow_dl_provider.links.console.SageMakerEndpointLink",
            "airflow_dl_provider.links.console.SageMakerModelPackageLink",
        ],
    }
