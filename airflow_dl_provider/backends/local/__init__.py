"""The local backend: a drop-in SageMaker client that does the work on this machine.

Jobs are directories under the backend's home; each runs in a detached runner process, so any
process (a task, a retry, the triggerer, ``airflow-dl``) sees the same jobs. S3 and CloudWatch Logs
are served by an embedded S3-compatible server on 127.0.0.1. What it cannot do for real it simulates,
and says so in the job's log.
"""
