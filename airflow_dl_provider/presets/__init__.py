"""Pure tables about the service: instance types, prices, Ground Truth regions. No Airflow import."""
