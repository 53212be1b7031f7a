"""The SageMaker hook: one connection gives the job client and every other client the task needs.

The backend is chosen by the connection's extra, never by operator code:

* ``{"backend": "aws"}`` (the default): boto3's SageMaker client.
* ``{"backend": "local", "endpoint_url": "http://127.0.0.1:<port>"}``: the local backend's drop-in
  client, which runs the jobs on this machine against the embedded S3-compatible server.

The connection type ``dl_sagemaker`` ("Deep Learning on SageMaker") puts those fields in the
connection form, and its Test Connection works for both backends; an ``aws`` connection with the
same extra works the same (:mod:`airflow_dl_provider.connection_type`).
"""

from __future__ import annotations

import os
import warnings
from functools import cached_property
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from airflow_dl_provider.connection_type import BACKENDS, CONN_TYPE, FIELDS, HOOK_NAME, UI_FIELD_BEHAVIOUR


class SageMakerJobHook(AwsBaseHook):
    """Interact with SageMaker jobs through the backend the connection names.

    Additional arguments (``aws_conn_id``, ``region_name``, ``verify``, ``config``) are passed to
    :class:`~airflow.providers.amazon.aws.hooks.base_aws.AwsBaseHook`.
    """

    # Its own connection type (backend, local endpoint and home in the form, Test Connection for both
    # backends); an ordinary ``aws`` connection with the same extra works too.
    conn_type = CONN_TYPE
    hook_name = HOOK_NAME

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "sagemaker"
        super().__init__(*args, **kwargs)

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The form's own fields on Airflow 2.11 to 3.1 (3.2+ reads ``conn-fields`` of the provider info)."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import StringField
        from wtforms.validators import Optional, any_of

        return {
            f.name: StringField(
                lazy_gettext(f.label),
                widget=BS3TextFieldWidget(),
                description=f.description,
                validators=[Optional(), any_of(list(f.choices))] if f.choices else [],
                default=f.default,
            )
            for f in FIELDS
        }

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden, relabelled and placeholder fields (Airflow 3.2+ reads ``ui-field-behaviour``)."""
        return {
            key: dict(value) if isinstance(value, dict) else list(value)
            for key, value in UI_FIELD_BEHAVIOUR.items()
        }

    @cached_property
    def conn_config(self) -> Any:
        """The Amazon provider's connection wrapper, which this connection type is built for.

        The wrapper warns that a connection not of type ``aws`` "might not work correctly"; this
        type carries the same login, password and extra, so that warning is wrong for it.
        """
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=f".*expected connection type 'aws', got '{CONN_TYPE}'", category=UserWarning
            )
            return super().conn_config

    def test_connection(self) -> tuple[bool, str]:
        """Test Connection: AWS asks STS who the credentials are; local checks the embedded server answers.

        The local backend never calls STS (no AWS account, no network): it lists the embedded S3
        server's buckets with the connection's own clients, as every task does.
        """
        try:
            backend = self.backend
        except ValueError as err:
            return False, str(err)
        if backend == "aws":
            ok, message = super().test_connection()
            return ok, f"aws: {message}"
        try:
            endpoint = self._local_endpoint()
        except ValueError as err:  # not on loopback, or none: the local backend talks to nothing else
            return False, f"local: {err}"
        try:
            buckets = self.s3.list_buckets().get("Buckets", [])
        except Exception as err:
            return False, (
                f"local: the embedded S3 server does not answer ({type(err).__name__}: {err}); "
                "start it with `airflow-dl local up` and put the endpoint_url it prints in this connection"
            )
        return True, (
            f"local: the embedded S3 server on {endpoint} answers ({len(buckets)} bucket(s)); "
            f"jobs run under {self._local_home()}"
        )

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
            return self._local_client()
        return self.get_client_type(region_name=self.region_name)

    def get_conn(self) -> Any:
        return self.conn

    def _local_region(self) -> str:
        return self.region_name or "us-east-1"

    def _local_credentials(self) -> tuple[str, str]:
        """The connection's key pair, else the placeholders: never the AWS credential chain.

        The embedded server accepts any key; asking boto3's chain would fail without credentials,
        probe the instance metadata service, or hand real AWS keys to the local job processes.
        """
        from airflow_dl_provider.backends.local.server import LOCAL_CREDENTIALS

        config = self.conn_config
        if config.aws_access_key_id and config.aws_secret_access_key:
            return config.aws_access_key_id, config.aws_secret_access_key
        return LOCAL_CREDENTIALS["login"], LOCAL_CREDENTIALS["password"]

    def _local_endpoint(self) -> str:
        """The embedded server's URL from the connection extra; refused unless it is on loopback.

        Read from the connection, not from :attr:`conn`: the S3 and Logs clients must not depend on
        how the SageMaker client was built (tests swap it for a stubbed one).
        """
        from airflow_dl_provider.backends.local.client import loopback_endpoint

        return loopback_endpoint(str(self.conn_config.extra_config.get("endpoint_url") or ""))

    def _local_client(self) -> Any:
        """The local backend's SageMaker client, from the connection extra (``endpoint_url``, ``local_home``)."""
        from airflow_dl_provider.backends.local.client import LocalSageMakerClient

        extra = self.conn_config.extra_config
        endpoint = str(extra.get("endpoint_url") or "")
        key, secret = self._local_credentials()
        env = {
            "AIRFLOW_DL_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": self._local_region(),
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
        }
        return LocalSageMakerClient(
            home=self._local_home(), endpoint_url=endpoint, region=self._local_region(), runner_env=env
        )

    def _local_home(self) -> Path:
        """Where the local jobs live: the connection extra ``local_home``, else the default home."""
        from airflow_dl_provider.backends.local.client import DEFAULT_HOME

        extra = self.conn_config.extra_config
        return Path(extra.get("local_home") or os.environ.get("AIRFLOW_DL_LOCAL_HOME") or DEFAULT_HOME)

    def client_for(self, service: str) -> Any:
        """A boto3 client for ``service`` built from this hook's connection, region, verify and config.

        On the local backend: for the embedded server, with :meth:`_local_credentials`.
        """
        if self.backend == "local":
            import boto3

            key, secret = self._local_credentials()
            return boto3.session.Session(
                aws_access_key_id=key, aws_secret_access_key=secret, region_name=self._local_region()
            ).client(
                service,
                endpoint_url=self._local_endpoint(),
                config=self.config,
                verify=self.verify,
            )
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
