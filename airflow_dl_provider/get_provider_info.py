"""Provider metadata for Airflow's ProvidersManager (the ``apache_airflow_provider`` entry point)."""

from __future__ import annotations

from typing import Any

# Where `make docs` is published; pyproject.toml's Project-URL "Documentation" says the same (Airflow
# 3.3 reads that one), and a test checks they agree.
DOCUMENTATION_URL = "https://airflow-dl-provider.readthedocs.io/"
HOOK = "airflow_dl_provider.hooks.sagemaker.SageMakerJobHook"
# The UI page (airflow_dl_provider.ui.plugin) is not listed under "plugins": Airflow loads provider-info
# plugins only with [core] lazy_discover_providers = False, so it comes from the "airflow.plugins"
# entry point in pyproject.toml, and listing it here too would load it twice (an import error).


def get_provider_info() -> dict[str, Any]:
    from airflow_dl_provider import __version__
    from airflow_dl_provider.connection_type import provider_connection_type
    from airflow_dl_provider.label_studio import connection as label_studio

    return {
        "package-name": "airflow-dl-provider",
        "name": "Deep Learning on AWS",
        "description": "The deep-learning lifecycle on AWS: label, validate, train, tune, compile, serve, retrain.",
        "versions": [__version__],
        "documentation-url": DOCUMENTATION_URL,
        "integrations": [
            {
                "integration-name": "Amazon SageMaker (deep learning)",
                "external-doc-url": "https://aws.amazon.com/sagemaker/",
                "tags": ["aws"],
            },
            {
                "integration-name": "Label Studio",
                "external-doc-url": "https://labelstud.io/guide/",
                "tags": ["software"],
            },
        ],
        "operators": [
            {
                "integration-name": "Amazon SageMaker (deep learning)",
                "python-modules": [
                    "airflow_dl_provider.operators.datasets",
                    "airflow_dl_provider.operators.drift",
                    "airflow_dl_provider.operators.labeling",
                    # The base both labeling services share (Ground Truth here, Label Studio below).
                    "airflow_dl_provider.operators.labeling_contract",
                    "airflow_dl_provider.operators.validation",
                    "airflow_dl_provider.operators.training",
                    "airflow_dl_provider.operators.tuning",
                    "airflow_dl_provider.operators.compilation",
                    "airflow_dl_provider.operators.transform",
                    "airflow_dl_provider.operators.processing",
                    "airflow_dl_provider.operators.endpoints",
                    "airflow_dl_provider.operators.registry",
                    "airflow_dl_provider.operators.evaluation",
                    "airflow_dl_provider.operators.approval",
                    "airflow_dl_provider.operators.regions",
                    # Airflow 3.1+ only (human-in-the-loop); operators.approval picks it where it exists.
                    "airflow_dl_provider.operators.human_approval",
                ],
            },
            {
                "integration-name": "Label Studio",
                "python-modules": ["airflow_dl_provider.operators.label_studio"],
            },
        ],
        "sensors": [
            {
                "integration-name": "Amazon SageMaker (deep learning)",
                "python-modules": [
                    "airflow_dl_provider.sensors.job",
                    "airflow_dl_provider.sensors.arrival",
                    "airflow_dl_provider.sensors.approval",
                ],
            }
        ],
        "hooks": [
            {
                "integration-name": "Amazon SageMaker (deep learning)",
                "python-modules": ["airflow_dl_provider.hooks.sagemaker"],
            },
            {
                "integration-name": "Label Studio",
                "python-modules": ["airflow_dl_provider.hooks.label_studio"],
            },
        ],
        "connection-types": [provider_connection_type(HOOK), label_studio.provider_connection_type()],
        "triggers": [
            {
                "integration-name": "Amazon SageMaker (deep learning)",
                "python-modules": [
                    "airflow_dl_provider.triggers.job",
                    "airflow_dl_provider.triggers.arrival",
                    "airflow_dl_provider.triggers.approval",
                ],
            },
            {
                "integration-name": "Label Studio",
                "python-modules": ["airflow_dl_provider.triggers.label_studio"],
            },
        ],
        "extra-links": [
            "airflow_dl_provider.links.console.SageMakerJobLink",
            "airflow_dl_provider.links.console.SageMakerEndpointLink",
            "airflow_dl_provider.links.console.SageMakerModelPackageLink",
            "airflow_dl_provider.links.console.ModelArtifactsLink",
            "airflow_dl_provider.links.console.JobOutputLink",
            "airflow_dl_provider.links.console.DataDocsLink",
            "airflow_dl_provider.links.console.DriftReportLink",
        ],
    }
