"""The SageMaker hook: one connection gives the job client and every other client the task needs.

The backend is chosen by the connection's extra, never by operator code:

* ``{"backend": "aws"}`` (the default): boto3's SageMaker client.
* ``{"backend": "local", "endpoint_url": "http://127.0.0.1:<port>"}``: the local backend's drop-in
  client, which runs the jobs on this machine against the embedded S3-compatible server.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

BACKENDS = ("aws", "local")


class SageMakerJobHook(AwsBaseHook):
    """Interact with SageMaker jobs through the backend the connection names.

    Additional arguments (``aws_conn_id``, ``region_name``, ``verify``, ``config``) are passed to
    :class:`~airflow.providers.amazon.aws.hooks.base_aws.AwsBaseHook`.
    """

    hook_name = "Amazon SageMaker (deep learning)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "sagemaker"
        super().__init__(*args, **kwargs)

    @cached_property
    def backend(self) -> str:
        """``aws`` or ``local``, from the connection extra ``backend``."""
        extra = self.conn_config.extra_config if self.aws_conn_id else {}
        backend = str(extra.get("backend", "aws"))
        if backend not in BACKENDS:
            raise ValueError(
                f"connection {self.aws_conn_id!r} extra 'backend' is {backend!r}; use one of {', '.join(BACKENDS)}"
            )
        return backend

    @cached_property
    def conn(self) -> Any:  # type: ignore[override]
        """The SageMaker client: boto3's, or the local backend's drop-in one."""
        if self.backend == "local":
            from airflow_dl_provider.backends.local.client import LocalSageMakerClient

            return LocalSageMakerClient.from_hook(self)
        return self.get_client_type(region_name=self.region_name)

    def get_conn(self) -> Any:
        return self.conn

    def client_for(self, service: str) -> Any:
        """A boto3 client for ``service`` built from this hook's connection, region, verify and config."""
        return AwsBaseHook(
            aws_conn_id=self.aws_conn_id,
            region_name=self._region_name,
            verify=self._verify,
            config=self._config,
            client_type=service,
        ).conn

    @cached_property
    def s3(self) -> Any:
        return self.client_for("s3")

    @cached_property
    def logs(self) -> Any:
        return self.client_for("logs")

    @cached_property
    def runtime(self) -> Any:
        """The ``sagemaker-runtime`` client (``invoke_endpoint``): boto3's, or the local backend's."""
        if self.backend == "local":
            from airflow_dl_provider.backends.local.endpoint import LocalRuntimeClient

            return LocalRuntimeClient(self.conn.store.home)
        return self.client_for("sagemaker-runtime")

    @property
    def region(self) -> str:
        """The region jobs run in: the hook's, else the connection's, else boto3's default."""
        return self.region_name or self.s3.meta.region_name

    @property
    def partition(self) -> str:
        return self.s3.meta.partition
