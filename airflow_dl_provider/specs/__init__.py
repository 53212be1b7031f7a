"""Typed, templatable specs that operators compose into a request.

Each spec is a small dataclass checked at construction (one-line errors naming the field and the fix),
declares its own ``template_fields`` (Airflow renders nested objects that declare them) and turns into
its part of the SageMaker request. Pure: no Airflow import, so pipelines and tests use them alone.
"""
