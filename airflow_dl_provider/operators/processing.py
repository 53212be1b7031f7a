"""SageMaker Processing: inputs, a script (or an image) and outputs -> one CreateProcessingJob plan.

The job's data are :class:`~airflow_dl_provider.specs.processing.ProcessingInput` and
:class:`~airflow_dl_provider.specs.processing.ProcessingOutput` specs; where it runs is the training
:class:`~airflow_dl_provider.specs.training.Cluster` and :class:`~airflow_dl_provider.specs.training.Vpc`.
A local script is uploaded content-addressed, as training's ``source_dir`` is, and reaches the
container as the SageMaker SDK's ``ScriptProcessor`` sends it (the ``code`` input).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from airflow_dl_provider import service_behaviour
from airflow_dl_provider.exceptions import PreflightError
from airflow_dl_provider.jobs.kinds import JOB_KINDS
from airflow_dl_provider.jobs.plan import JobPlan
from airflow_dl_provider.operators.base import SageMakerJobOperator
from airflow_dl_provider.specs.fields import as_int, string_map, tag_list
from airflow_dl_provider.specs.processing import (
    CODE_INPUT,
    ProcessingInput,
    ProcessingOutput,
    ProcessingScript,
)
from airflow_dl_provider.specs.training import Cluster, Vpc
from airflow_dl_provider.validation.preflight import check_region, check_s3_prefix

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["ProcessingInput", "ProcessingOperator", "ProcessingOutput", "ProcessingScript"]

MAX_RUNTIME_SECONDS = service_behaviour.PROCESSING.max_runtime_seconds
DEFAULT_CLUSTER = Cluster(instance_type="ml.m5.xlarge", volume_size_gb=30)


def _unique(where: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{where}: the name {name!r} is used twice; each must be unique in the job")
        seen.add(name)


class ProcessingOperator(SageMakerJobOperator):
    """Run a SageMaker Processing job: download the inputs, run the script, upload the outputs.

    :param role_arn: the SageMaker execution role. (templated)
    :param inputs: what the job reads, each to its ``local_path`` under ``/opt/ml/processing/``
        (:class:`~airflow_dl_provider.specs.processing.ProcessingInput`). (templated)
    :param outputs: what it writes, uploaded from each ``local_path`` to its ``s3_uri``
        (:class:`~airflow_dl_provider.specs.processing.ProcessingOutput`). (templated)
    :param script: the script and its command line
        (:class:`~airflow_dl_provider.specs.processing.ProcessingScript`); or None to run
        ``image_uri`` as it is (with ``entrypoint`` and ``arguments``). (templated)
    :param image_uri: the container; defaults to the AWS PyTorch training container of
        ``framework_version`` on the cluster's accelerator in the job's region. (templated)
    :param framework_version: that container's PyTorch version.
    :param entrypoint: ``ContainerEntrypoint`` without ``script``.
    :param arguments: ``ContainerArguments`` without ``script``. (templated)
    :param cluster: instance type, count, volume and its KMS key
        (:class:`~airflow_dl_provider.specs.training.Cluster`; default one ``ml.m5.xlarge``, 30 GB).
    :param vpc: subnets and security groups (:class:`~airflow_dl_provider.specs.training.Vpc`).
    :param max_runtime_seconds: ``StoppingCondition.MaxRuntimeInSeconds`` (default one day, at most 9 days).
    :param environment: the container's environment variables. (templated)
    :param output_kms_key_id: KMS key of the outputs. (templated)
    :param enable_network_isolation: no network in the container.
    :param encrypt_inter_container_traffic: encrypt traffic between the job's instances.
    :param tags: the job's tags. (templated)
    """

    job_kind = JOB_KINDS["processing"]
    template_fields: Sequence[str] = (
        *SageMakerJobOperator.template_fields,
        "role_arn",
        "inputs",
        "outputs",
        "script",
        "image_uri",
        "arguments",
        "environment",
        "output_kms_key_id",
        "tags",
        "cluster",
        "vpc",
    )

    def __init__(
        self,
        *,
        role_arn: str,
        inputs: Sequence[ProcessingInput] = (),
        outputs: Sequence[ProcessingOutput] = (),
        script: ProcessingScript | None = None,
        image_uri: str | None = None,
        framework_version: str = "2.5.1",
        entrypoint: Sequence[str] | None = None,
        arguments: Sequence[str] | None = None,
        cluster: Cluster | None = None,
        vpc: Vpc | None = None,
        max_runtime_seconds: int = 86400,
        environment: Mapping[str, str] | None = None,
        output_kms_key_id: str | None = None,
        enable_network_isolation: bool = False,
        encrypt_inter_container_traffic: bool = False,
        tags: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        task = self.task_id
        try:
            for where, specs, kind in (
                ("inputs", inputs, ProcessingInput),
                ("outputs", outputs, ProcessingOutput),
            ):
                for spec in specs:
                    if not isinstance(spec, kind):
                        raise ValueError(
                            f"{where}: expected {kind.__name__} items, got {type(spec).__name__}"
                        )
            if script is not None and not isinstance(script, ProcessingScript):
                raise ValueError(f"script: expected a ProcessingScript, got {type(script).__name__}")
            if script is not None and (entrypoint or arguments):
                raise ValueError(
                    "entrypoint, arguments: give them inside script=ProcessingScript(...), not beside it"
                )
            if script is None and not image_uri:
                raise ValueError("script: give a ProcessingScript (code to run), or pass image_uri")
            names = [i.name for i in inputs]
            _unique("inputs", [*names, CODE_INPUT] if script else names)
            _unique("outputs", [o.name for o in outputs])
            cluster = copy.deepcopy(cluster) if cluster is not None else copy.deepcopy(DEFAULT_CLUSTER)
            if cluster.keep_alive_seconds is not None:
                raise ValueError("cluster.keep_alive_seconds: processing jobs have no warm pools; drop it")
            runtime = as_int("max_runtime_seconds", max_runtime_seconds, minimum=1)
            if runtime > MAX_RUNTIME_SECONDS:
                raise ValueError(
                    f"max_runtime_seconds: at most {MAX_RUNTIME_SECONDS} (9 days), got {runtime}"
                )
        except ValueError as err:
            raise ValueError(f"{task}: {err}") from None
        self.role_arn = role_arn
        # Airflow renders nested specs in place: each operator renders its own copies.
        self.inputs = [copy.deepcopy(i) for i in inputs]
        self.outputs = [copy.deepcopy(o) for o in outputs]
        self.script = copy.deepcopy(script)
        self.image_uri = image_uri
        self.framework_version = framework_version
        self.entrypoint = list(entrypoint or [])
        self.arguments = list(arguments or [])
        self.cluster = cluster
        self.vpc = copy.deepcopy(vpc)
        self.max_runtime_seconds = runtime
        self.environment = dict(environment or {})
        self.output_kms_key_id = output_kms_key_id
        self.enable_network_isolation = enable_network_isolation
        self.encrypt_inter_container_traffic = encrypt_inter_container_traffic
        self.tags = dict(tags or {})

    def _image(self, region: str) -> str:
        if self.image_uri:
            return str(self.image_uri)
        from airflow_dl_provider.presets.containers import pytorch_image

        return pytorch_image("training", region, self.framework_version, None, self.cluster.instance_type)

    def _app(self, region: str) -> dict[str, Any]:
        app: dict[str, Any] = {"ImageUri": self._image(region)}
        entrypoint = self.script.entrypoint() if self.script else self.entrypoint
        arguments = self.script.arguments if self.script else self.arguments
        if entrypoint:
            app["ContainerEntrypoint"] = [str(a) for a in entrypoint]
        if arguments:
            app["ContainerArguments"] = [str(a) for a in arguments]
        return app

    def _network(self) -> dict[str, Any]:
        network: dict[str, Any] = {"VpcConfig": self.vpc.to_request()} if self.vpc is not None else {}
        if self.enable_network_isolation:
            network["EnableNetworkIsolation"] = True
        if self.encrypt_inter_container_traffic:
            network["EnableInterContainerTrafficEncryption"] = True
        return network

    def build(self, context: Any) -> JobPlan:
        region = self.hook.region
        check_region(region)
        try:
            for spec in (*self.inputs, *self.outputs, self.script, self.cluster):
                if spec is not None:
                    spec.check(rendered=True)
        except ValueError as err:
            raise PreflightError(str(err)) from None
        resources = {k: v for k, v in self.cluster.to_request().items() if k != "KeepAlivePeriodInSeconds"}
        inputs = [i.to_request() for i in self.inputs]
        if self.script is not None:
            inputs.append(self.script.code_input())
        request: dict[str, Any] = {
            "RoleArn": self.role_arn,
            "AppSpecification": self._app(region),
            "ProcessingResources": {"ClusterConfig": resources},
            "StoppingCondition": {"MaxRuntimeInSeconds": int(self.max_runtime_seconds)},
        }
        outputs: dict[str, Any] = {"Outputs": [o.to_request() for o in self.outputs]} if self.outputs else {}
        if outputs and self.output_kms_key_id:
            outputs["KmsKeyId"] = self.output_kms_key_id
        # The optional members, each only when it has something: the API refuses empty lists.
        for member, value in (
            ("ProcessingInputs", inputs),
            ("ProcessingOutputConfig", outputs),
            ("NetworkConfig", self._network()),
            ("Environment", string_map(self.environment)),
            ("Tags", tag_list(self.tags)),
        ):
            if value:
                request[member] = value
        upload = self.script.upload() if self.script else None
        return JobPlan(request, (upload,) if upload else ())

    def preflight(self, plan: JobPlan, context: Any) -> None:
        staged = {upload.uri for upload in plan.uploads}
        for item in plan.request.get("ProcessingInputs") or []:
            source = item.get("S3Input")
            # The code the plan uploads is staged after these checks.
            if source and source["S3Uri"] not in staged:
                check_s3_prefix(self.hook.s3, source["S3Uri"], f"inputs[{item['InputName']!r}].s3_uri")

    def execute(self, context: Any) -> dict[str, Any]:
        """Run the processing job.

        :return: ``job_name``, ``job_arn``, ``status`` and ``outputs`` (output name -> ``s3://`` URI),
            JSON-safe.
        """
        return super().execute(context)
