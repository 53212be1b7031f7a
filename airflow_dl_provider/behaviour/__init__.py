"""What AWS services really do, by area, as rows of data citing their sources.

:mod:`airflow_dl_provider.service_behaviour` is the one place the engine, the local backend and the
contract suite read them from: it holds the SageMaker job rows and re-exports these modules' names.
Pure: no Airflow, no boto3.
"""
