"""Ground Truth labeling: typed arguments -> one CreateLabelingJob request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_dl_provider.exceptions import PreflightError
from airflow_dl_provider.jobs.kinds import JOB_KINDS
from airflow_dl_provider.jobs.plan import DIGEST, Derived, JobPlan, Upload, get_path, path_text
from airflow_dl_provider.manifests.input import (
    count_manifest_objects,
    manifest_bytes,
    write_label_category_config,
)
from airflow_dl_provider.operators.base import S3Objects, SageMakerJobOperator
from airflow_dl_provider.operators.labeling_contract import TEMPLATE_FIELDS, LabelingOperator
from airflow_dl_provider.presets.labeling import (
    AUTO_LABELING_MIN_OBJECTS,
    DEFAULT_ENTITY_INSTRUCTIONS,
    PUBLIC_WORKFORCE_CLOSED,
    ResolvedTask,
    check_workteam,
    resolve,
    task_preset,
)
from airflow_dl_provider.presets.labeling_ui import ui_template
from airflow_dl_provider.specs.fields import is_templated

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_dl_provider.jobs.plan import RequestPath

# The request fields that name the plan's uploads.
MANIFEST_AT: RequestPath = ("InputConfig", "DataSource", "S3DataSource", "ManifestS3Uri")
CONFIG_AT: RequestPath = ("LabelCategoryConfigS3Uri",)
TEMPLATE_AT: RequestPath = ("HumanTaskConfig", "UiConfig", "UiTemplateS3Uri")


class GroundTruthLabelingOperator(SageMakerJobOperator, LabelingOperator):
    """Label a data set with SageMaker Ground Truth, with a built-in task type.

    Amazon Mechanical Turk closed on 2026-09-30, so there is no public workforce: a private or vendor
    work team labels (``workteam_arn``); the public workforce is refused at DAG import. SageMaker Ground
    Truth is no longer open to new AWS customers (existing customers keep using it); without it, label
    with :class:`~airflow_dl_provider.operators.label_studio.LabelStudioLabelingOperator`.

    The input is an existing manifest, a manifest built from the images under an S3 prefix, or one
    built from a text file (one object per line), listed or read at pre-flight. The built manifest, the
    label category config and (for types without a task UI ARN) the worker template are uploaded to
    ``<output_path>/labeling-inputs/<sha256 of the file>/<name>``: identical inputs have one address, so
    a retry uploads nothing new. An ``overrides`` of ``InputConfig.DataSource.S3DataSource.ManifestS3Uri``
    names your own manifest instead (pre-flight counts its objects); one of the config's or the
    template's URI is where that file is uploaded.

    :param task_type: one of ``image_classification``, ``image_multilabel_classification``,
        ``bounding_box``, ``semantic_segmentation``, ``text_classification``,
        ``text_multilabel_classification``, ``named_entity_recognition``.
    :param labels: the label names; their order is the class index. (templated)
    :param output_path: ``s3://`` prefix; the output manifest lands at
        ``<output_path>/<job>/manifests/output/output.manifest``. (templated)
    :param role_arn: the execution role Ground Truth assumes. (templated)
    :param input_manifest_uri: an existing input manifest. (templated)
    :param input_prefix: ``s3://`` prefix of the objects to label (images); one ``source-ref`` line
        each. (templated)
    :param input_text_uri: ``s3://`` URI of a text file; one ``source`` line per non-blank line. (templated)
    :param label_attribute_name: the label's key in the output manifest; ``label`` (``label-ref`` for
        semantic segmentation). (templated)
    :param workteam_arn: a private or vendor work team; the public workforce
        (``.../workteam/public-crowd/default``) is refused. (templated)
    :param task_price_usd: the public workforce's price per task: refused, Mechanical Turk closed on
        2026-09-30 (kept so that old DAGs fail with that reason rather than an unknown argument).
    :param workers_per_object: ``NumberOfHumanWorkersPerDataObject`` (1-9).
    :param task_time_limit_seconds: how long a worker has for one task.
    :param task_availability_lifetime_seconds: how long a task waits for a worker.
    :param max_concurrent_tasks: ``MaxConcurrentTaskCount`` (batch size).
    :param max_human_labeled_objects: stop after this many human-labeled objects.
    :param max_percentage_objects_labeled: stop after this share of the data set is labeled.
    :param auto_labeling: automated data labeling (active learning); needs at least 1,250 objects
        and a type that has it (image and text classification, bounding box, semantic segmentation).
    :param task_title: shown to workers. (templated)
    :param task_description: shown to workers, and the question above each object in the built-in
        worker template (its ``header``). (templated)
    :param task_keywords: up to 5, to find the task by.
    :param instructions: worker instructions (plain text): written into the built-in template, or for
        named entity recognition into the label category config, which requires them. (templated)
    :param ui_template: your own Liquid worker template (its text), for types without a task UI
        ARN; defaults to AWS's template for the type (:mod:`airflow_dl_provider.presets.labeling_ui`).
        (templated)
    :param content_classifiers: ``FreeOfPersonallyIdentifiableInformation``, ``FreeOfAdultContent``.
    :param output_kms_key_id: KMS key for the output. (templated)
    :param volume_kms_key_id: KMS key for the automated labeling instances' volumes. (templated)
    :param tags: job tags; the local backend's simulated workforce is declared here. (templated)
    """

    job_kind = JOB_KINDS["labeling"]
    template_fields: Sequence[str] = (
        *SageMakerJobOperator.template_fields,
        *TEMPLATE_FIELDS,
        "role_arn",
        "workteam_arn",
        "task_description",
        "ui_template",
        "output_kms_key_id",
        "volume_kms_key_id",
    )
    template_fields_renderers = {**SageMakerJobOperator.template_fields_renderers, "tags": "json"}

    @classmethod
    def data_key(cls, task_type: str) -> str:
        return task_preset(task_type).data_key

    def __init__(
        self,
        *,
        role_arn: str,
        workteam_arn: str | None = None,
        task_price_usd: float | None = None,
        workers_per_object: int = 3,
        task_time_limit_seconds: int = 300,
        task_availability_lifetime_seconds: int | None = None,
        max_concurrent_tasks: int | None = None,
        max_percentage_objects_labeled: int | None = None,
        task_description: str | None = None,
        task_keywords: Sequence[str] | None = None,
        ui_template: str | None = None,
        content_classifiers: Sequence[str] | None = None,
        output_kms_key_id: str | None = None,
        volume_kms_key_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(workers_per_object=workers_per_object, **kwargs)
        task_type = self.labeling_task_type
        preset = task_preset(task_type)
        try:
            if self.auto_labeling and preset.algorithm is None:
                resolve(task_type, "us-east-1", auto_labeling=True)  # raises the one-line error
            if task_price_usd is not None:
                raise PreflightError(f"task_price_usd: {PUBLIC_WORKFORCE_CLOSED}")
            if workteam_arn is None:
                raise PreflightError("workteam_arn: give a private or vendor work team")
            if not is_templated(workteam_arn):
                check_workteam(workteam_arn)
        except ValueError as err:
            raise ValueError(f"{self.task_id}: {err}") from None
        spoken = task_type.replace("_", " ")
        self.task_title = self.task_title or f"Label {spoken}"
        self.preset = preset
        self.role_arn = role_arn
        self.workteam_arn = workteam_arn
        self.task_time_limit_seconds = task_time_limit_seconds
        self.task_availability_lifetime_seconds = task_availability_lifetime_seconds
        self.max_concurrent_tasks = max_concurrent_tasks
        self.max_percentage_objects_labeled = max_percentage_objects_labeled
        self.task_description = task_description or f"Choose the right label ({spoken})"
        self.task_keywords = list(task_keywords or [])
        self.ui_template = ui_template
        self.content_classifiers = list(content_classifiers or [])
        self.output_kms_key_id = output_kms_key_id
        self.volume_kms_key_id = volume_kms_key_id

    # -- inputs -------------------------------------------------------------------------------------------

    def _inputs_uri(self, name: str) -> str:
        """Content-addressed: identical inputs have one key, so a retry uploads nothing new."""
        return f"{self.output_path.rstrip('/')}/labeling-inputs/{DIGEST}/{name}"

    def _manifest_upload(self) -> Upload | None:
        """The manifest built from ``input_prefix`` or ``input_text_uri`` at pre-flight; None for an existing one."""
        source = self.manifest_source()
        if source is None:
            return None
        body = Derived(source.what, lambda reader: manifest_bytes(source.build(reader)))
        # An override of the manifest's URI names your own manifest: the built one is not uploaded.
        return Upload(
            self._inputs_uri("dataset.manifest"),
            body,
            MANIFEST_AT,
            on_override="replace",
            argument=source.argument,
        )

    def _human_task_config(self, resolved: ResolvedTask, ui: dict[str, str]) -> dict[str, Any]:
        human: dict[str, Any] = {
            "WorkteamArn": str(self.workteam_arn),
            "UiConfig": ui,
            "PreHumanTaskLambdaArn": resolved.pre_lambda_arn,
            "TaskTitle": self.task_title,
            "TaskDescription": self.task_description,
            "NumberOfHumanWorkersPerDataObject": int(self.workers_per_object),
            "TaskTimeLimitInSeconds": int(self.task_time_limit_seconds),
            "AnnotationConsolidationConfig": {
                "AnnotationConsolidationLambdaArn": resolved.consolidation_lambda_arn
            },
        }
        if self.task_keywords:
            human["TaskKeywords"] = [str(k) for k in self.task_keywords]
        if self.task_availability_lifetime_seconds is not None:
            human["TaskAvailabilityLifetimeInSeconds"] = int(self.task_availability_lifetime_seconds)
        if self.max_concurrent_tasks is not None:
            human["MaxConcurrentTaskCount"] = int(self.max_concurrent_tasks)
        return human

    def build(self, context: Any) -> JobPlan:
        self.check_rendered_labeling_input()
        resolved = resolve(
            self.labeling_task_type,
            self.hook.region,
            partition=self.hook.partition,
            auto_labeling=self.auto_labeling,
        )
        check_workteam(str(self.workteam_arn))
        config = write_label_category_config(
            [str(label) for label in self.labels],
            instructions=(
                (self.instructions or DEFAULT_ENTITY_INSTRUCTIONS) if resolved.human_task_ui_arn else None
            ),
        )
        uploads = [Upload(self._inputs_uri("label-categories.json"), config, CONFIG_AT, argument="labels")]
        manifest = self._manifest_upload()
        if manifest is not None:
            uploads.append(manifest)
        manifest_uri = manifest.uri if manifest is not None else str(self.input_manifest_uri)
        ui: dict[str, str]
        if resolved.human_task_ui_arn is None:
            template = (
                self.ui_template
                or ui_template(
                    self.labeling_task_type, header=self.task_description, instructions=self.instructions
                )
            ).encode()
            ui = {"UiTemplateS3Uri": self._inputs_uri("template.liquid.html")}
            uploads.append(Upload(ui["UiTemplateS3Uri"], template, TEMPLATE_AT, argument="ui_template"))
        else:
            ui = {"HumanTaskUiArn": str(resolved.human_task_ui_arn)}
        config_uri = uploads[0].uri
        human = self._human_task_config(resolved, ui)
        input_config: dict[str, Any] = {"DataSource": {"S3DataSource": {"ManifestS3Uri": manifest_uri}}}
        if self.content_classifiers:
            input_config["DataAttributes"] = {"ContentClassifiers": list(self.content_classifiers)}
        request: dict[str, Any] = {
            "LabelAttributeName": self.label_attribute_name,
            "InputConfig": input_config,
            "OutputConfig": {"S3OutputPath": self.output_path},
            "RoleArn": self.role_arn,
            "LabelCategoryConfigS3Uri": config_uri,
            "HumanTaskConfig": human,
        }
        if self.output_kms_key_id:
            request["OutputConfig"]["KmsKeyId"] = self.output_kms_key_id
        stopping = {
            "MaxHumanLabeledObjectCount": self.max_human_labeled_objects,
            "MaxPercentageOfInputDatasetLabeled": self.max_percentage_objects_labeled,
        }
        if any(v is not None for v in stopping.values()):
            request["StoppingConditions"] = {k: int(v) for k, v in stopping.items() if v is not None}
        if resolved.algorithm_arn:
            algorithms: dict[str, Any] = {"LabelingJobAlgorithmSpecificationArn": resolved.algorithm_arn}
            if self.volume_kms_key_id:
                algorithms["LabelingJobResourceConfig"] = {"VolumeKmsKeyId": self.volume_kms_key_id}
            request["LabelingJobAlgorithmsConfig"] = algorithms
        if self.tags:
            request["Tags"] = [{"Key": str(k), "Value": str(v)} for k, v in self.tags.items()]
        return JobPlan(request, tuple(uploads))

    # -- before and after the job ---------------------------------------------------------------------------

    def _manifest_objects(self, plan: JobPlan) -> tuple[int, str, str]:
        """How many objects the final request's manifest lists, and the field and URI that name it.

        The plan's own manifest is counted from its bytes; any other (``input_manifest_uri``, or one an
        override names) is read from S3.
        """
        built = plan.upload_at(MANIFEST_AT)
        if built is not None:
            return count_manifest_objects(built.data()), built.argument, str(getattr(self, built.argument))
        uri = str(get_path(plan.request, MANIFEST_AT))
        field = (
            "input_manifest_uri" if uri == self.input_manifest_uri else f"overrides: {path_text(MANIFEST_AT)}"
        )
        try:
            body = S3Objects(self.hook.s3).read(uri)
        except PreflightError as err:
            raise PreflightError(f"{field}: {err}") from None
        return count_manifest_objects(body), field, uri

    def preflight(self, plan: JobPlan, context: Any) -> None:
        request = plan.request
        human = request["HumanTaskConfig"]
        # overrides may have put the public workforce back in.
        check_workteam(str(human["WorkteamArn"]), "HumanTaskConfig.WorkteamArn")
        if "PublicWorkforceTaskPrice" in human:
            raise PreflightError(f"HumanTaskConfig.PublicWorkforceTaskPrice: {PUBLIC_WORKFORCE_CLOSED}")
        count, field, source = self._manifest_objects(plan)
        if count == 0:
            raise PreflightError(f"{field}: no data objects to label in {source}; check the S3 path")
        if request.get("LabelingJobAlgorithmsConfig") and count < AUTO_LABELING_MIN_OBJECTS:
            raise PreflightError(
                f"auto_labeling: Ground Truth needs at least {AUTO_LABELING_MIN_OBJECTS} objects for automated "
                f"data labeling; this data set has {count}; label it without auto_labeling"
            )
        limit = (request.get("StoppingConditions") or {}).get("MaxHumanLabeledObjectCount")
        if limit is not None and not request.get("LabelingJobAlgorithmsConfig") and limit < count:
            self.log.info(
                "max_human_labeled_objects=%d < %d objects: %d will stay unlabeled",
                limit,
                count,
                count - limit,
            )
        workers = int(request["HumanTaskConfig"]["NumberOfHumanWorkersPerDataObject"])
        self.log.info(
            "Labeling %d object(s) (%s), %d worker(s) each%s",
            count,
            self.labeling_task_type,
            workers,
            ", automated labeling on" if request.get("LabelingJobAlgorithmsConfig") else "",
        )

    def result(self, engine: Any, description: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """The engine's fields plus the label attribute and the task type.

        :return: ``job_name``, ``job_arn``, ``status``, ``output_manifest`` (S3 URI),
            ``label_counters`` (``TotalLabeled``, ``HumanLabeled``, ``MachineLabeled``,
            ``FailedNonRetryableError``, ``Unlabeled``), ``label_attribute_name``, ``task_type``.
        """
        return {
            **engine.result(description),
            "label_attribute_name": self.label_attribute_name,
            "task_type": self.labeling_task_type,
        }
