"""Checks of SageMaker requests and responses against the botocore service model, with no Airflow import."""
