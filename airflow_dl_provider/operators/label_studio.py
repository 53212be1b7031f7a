"""Label with Label Studio behind the labeling contract: same inputs and output as Ground Truth.

Amazon Mechanical Turk closed on 2026-09-30 and SageMaker Ground Truth is closed to new AWS
customers; a Label Studio server (your own, the stack's ECS service, or the local one) labels instead,
and the stage's output is still a Ground Truth output manifest in S3.
"""

from __future__ import annotations

import hashlib
import json
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from airflow_dl_provider.exceptions import PreflightError, SageMakerJobError
from airflow_dl_provider.jobs.naming import deterministic_job_name
from airflow_dl_provider.label_studio.api import is_labeled
from airflow_dl_provider.label_studio.behaviour import PROJECT_TITLE_MAX_LENGTH, SAMPLING_UNCERTAINTY
from airflow_dl_provider.label_studio.configs import OBJECT_META, object_key, task_for
from airflow_dl_provider.operators.base import S3Objects
from airflow_dl_provider.operators.labeling_contract import TEMPLATE_FIELDS, LabelingOperator
from airflow_dl_provider.validation.preflight import split_s3_uri

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_dl_provider.label_studio.api import LabelStudioClient
    from airflow_dl_provider.label_studio.export import Label
    from airflow_dl_provider.label_studio.rounds import Decision

ROUND_META = "airflow-dl-round"
KEY_LINE = "airflow-dl:task-instance"
AUTO_LABELING_TYPES = ("image_classification", "text_classification")


class LabelStudioLabelingOperator(LabelingOperator):
    """Label a data set in a Label Studio project; write a Ground Truth output manifest to S3.

    One project per task instance, titled with the deterministic job name (dag, task, run, map
    index), so a retried or resumed task finds its project instead of creating another. The objects
    are read from S3 (prefix, text file or manifest), an S3 source storage is connected so that Label
    Studio shows each image through a presigned URL, the tasks not yet in the project are imported,
    and the task waits (deferrable) until people have labeled them. With ``auto_labeling`` the labels
    come in rounds (:mod:`airflow_dl_provider.label_studio.rounds`). Then the project is exported and converted
    (:mod:`airflow_dl_provider.label_studio.export`) to ``<output_path>/<name>/manifests/output/
    output.manifest``, one S3 PUT (atomic: a reader sees the old object or the whole new one).

    :param task_type: ``image_classification``, ``image_multilabel_classification``,
        ``text_classification`` or ``text_multilabel_classification``.
    :param labels: the label names; their order is the class index. (templated)
    :param output_path: ``s3://`` prefix of the output. (templated)
    :param input_manifest_uri: an existing input manifest. (templated)
    :param input_prefix: ``s3://`` prefix of the images to label. (templated)
    :param input_text_uri: ``s3://`` text file, one object per non-blank line. (templated)
    :param label_attribute_name: the label's key in the output manifest (default ``label``). (templated)
    :param label_studio_conn_id: a ``label_studio`` connection (URL and API token).
    :param workers_per_object: annotations per task (the project's ``maximum_annotations``), 1-9.
    :param max_human_labeled_objects: send at most this many objects to people.
    :param auto_labeling: machine-label in rounds (single-label classification only).
    :param task_title: the project's header above each object. (templated)
    :param instructions: the project's instructions for annotators. (templated)
    :param tags: written into the project description as ``key=value`` lines (Label Studio projects
        have no tags); the local backend's simulated workforce is declared there. (templated)
    :param job_name_prefix: readable start of the project title (at most 50 characters in all).
    :param deferrable: wait in the triggerer; defaults to ``[operators] default_deferrable``.
    :param poll_interval: seconds between checks of the labeled count.
    :param max_wait: give up after this many seconds of waiting for people; None: no limit.
    """

    template_fields: Sequence[str] = aws_template_fields(*TEMPLATE_FIELDS, "job_name_prefix")
    template_fields_renderers = {"tags": "json"}
    ui_color = "#ffe6e0"

    @classmethod
    def data_key(cls, task_type: str) -> str:
        return task_for(task_type).manifest_key

    def __init__(
        self,
        *,
        label_studio_conn_id: str = "label_studio_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        task_type = self.labeling_task_type
        if self.auto_labeling and task_type not in AUTO_LABELING_TYPES:
            raise ValueError(
                f"{self.task_id}: auto_labeling: {task_type} has no automated labeling; use it with "
                f"{' or '.join(AUTO_LABELING_TYPES)}, or turn it off"
            )
        self.label_studio_conn_id = label_studio_conn_id
        self.project_id = 0
        self._features: Any = None

    @cached_property
    def client(self) -> LabelStudioClient:
        from airflow_dl_provider.hooks.label_studio import LabelStudioHook

        return LabelStudioHook(self.label_studio_conn_id).client

    # -- inputs -------------------------------------------------------------------------------------

    def _read(self, uri: str, field: str) -> bytes:
        try:
            return S3Objects(self.hook.s3).read(uri)
        except PreflightError as err:
            raise PreflightError(f"{field}: {err}") from None

    @cached_property
    def lines(self) -> list[dict[str, Any]]:
        """The input manifest's lines: built from the prefix or text file, or read."""
        source = self.manifest_source()
        if source is None:
            raw = self._read(str(self.input_manifest_uri), "input_manifest_uri").decode().splitlines()
        else:
            try:
                raw = source.build(S3Objects(self.hook.s3))
            except PreflightError as err:
                raise PreflightError(f"{source.argument}: {err}") from None
        lines = [json.loads(line) for line in raw if line.strip()]
        key = task_for(self.labeling_task_type).manifest_key
        if not lines:
            field = self.input_argument
            raise PreflightError(
                f"{field}: no data objects to label in {getattr(self, field)}; check the S3 path"
            )
        missing = [i + 1 for i, line in enumerate(lines) if key not in line]
        if missing:
            raise PreflightError(
                f"input_manifest_uri: line {missing[0]} has no {key!r}; a {self.labeling_task_type} manifest needs one per line"
            )
        return lines

    def keys(self) -> list[str]:
        key = task_for(self.labeling_task_type).manifest_key
        return [str(line[key]) for line in self.lines]

    # -- the project --------------------------------------------------------------------------------

    def _description(self, context: Any) -> str:
        ti = context["ti"]
        lines = [
            "Labeling project of airflow_dl_provider (one per task instance; the output is a Ground Truth manifest).",
            f"{KEY_LINE}={ti.dag_id}/{ti.task_id}/{context['run_id']}/{getattr(ti, 'map_index', -1)}",
        ]
        lines += [f"{k}={v}" for k, v in sorted(self.tags.items())]
        return "\n".join(lines)

    def ensure_project(self, context: Any) -> dict[str, Any]:
        """The task instance's project: found by its deterministic title, else created."""
        from airflow_dl_provider.label_studio.configs import label_config

        name = str(self.job_name)
        found = self.client.projects(title=name)
        if found:
            if len(found) > 1:
                self.log.warning(
                    "%d Label Studio projects are titled %s; using the oldest (id %s)",
                    len(found),
                    name,
                    found[0]["id"],
                )
            self.log.info("Label Studio project %s (id %s) already exists: resuming it", name, found[0]["id"])
            return found[0]
        fields: dict[str, Any] = {
            "title": name,
            "description": self._description(context),
            "label_config": label_config(
                self.labeling_task_type, [str(x) for x in self.labels], header=self.task_title
            ),
            "maximum_annotations": int(self.workers_per_object),
            "overlap_cohort_percentage": 100,
            "sampling": SAMPLING_UNCERTAINTY if self.auto_labeling else "Sequential sampling",
            "show_skip_button": True,
        }
        if self.instructions:
            fields.update(expert_instruction=str(self.instructions), show_instruction=True)
        project = self.client.create_project(fields)
        self.log.info("Created Label Studio project %s (id %s)", name, project["id"])
        return project

    def ensure_storage(self, project_id: int) -> None:
        """An S3 source storage per bucket of the objects, so Label Studio presigns their URLs."""
        if task_for(self.labeling_task_type).manifest_key != "source-ref":
            return
        buckets = sorted({split_s3_uri(k, "source-ref")[0] for k in self.keys()})
        connected = {s.get("bucket") for s in self.client.s3_import_storages(project_id)}
        for bucket in buckets:
            if bucket in connected:
                continue
            fields: dict[str, Any] = {
                "project": project_id,
                "title": f"airflow-dl {bucket}",
                "bucket": bucket,
                "presign": True,
                "presign_ttl": 60,
                "use_blob_urls": True,
                "region_name": self.hook.region,
            }
            if self.hook.backend == "local":
                # Label Studio reads the embedded S3 server on loopback with the local placeholder keys.
                key, secret = self.hook._local_credentials()
                fields.update(
                    s3_endpoint=self.hook._local_endpoint(),
                    aws_access_key_id=key,
                    aws_secret_access_key=secret,
                )
            self.client.create_s3_import_storage(fields)
            self.log.info("Connected S3 bucket %s as the project's source storage (presigned URLs)", bucket)

    # -- rounds ---------------------------------------------------------------------------------------

    def _root(self) -> str:
        return f"{self.output_path.rstrip('/')}/{self.job_name}"

    def _decision_uri(self, number: int) -> str:
        return f"{self._root()}/activelearning/iteration-{number}/decision.json"

    def _load_decision(self, number: int) -> Decision | None:
        from airflow_dl_provider.label_studio.rounds import Decision

        bucket, key = split_s3_uri(self._decision_uri(number), "output_path")
        try:
            body = self.hook.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception:
            return None
        return Decision.from_json(json.loads(body))

    def machine_labels(self, rounds: int) -> dict[str, Label]:
        found: dict[str, Label] = {}
        for number in range(2, rounds + 1):
            decision = self._load_decision(number)
            if decision:
                found.update(decision.machine)
        return found

    def _seed(self) -> int:
        return int(hashlib.sha256(str(self.job_name).encode()).hexdigest()[:8], 16)

    def decide(self, number: int, pending: list[str], sent: int, machine: int) -> Decision:
        """The next round: read back when an earlier try decided it, else decided and written first."""
        from airflow_dl_provider.label_studio.rounds import Decision, first_round, model_round

        earlier = self._load_decision(number)
        if earlier is not None:
            self.log.info("Round %d was decided by an earlier try: reusing it", number)
            return earlier
        keys = self.keys()
        if not self.auto_labeling:
            decision = Decision(number, None, send=list(pending))
        elif number == 1:
            decision = first_round(keys, pending, seed=self._seed())
        else:
            from airflow_dl_provider.label_studio.export import human_labels
            from airflow_dl_provider.label_studio.rounds import features_of

            human = human_labels(
                self.client.export(self.project_id), self.labeling_task_type, [str(x) for x in self.labels]
            )
            if self._features is None:
                self.log.info(
                    "auto-labeling: reading %d object(s) for the model (scikit-learn, in this task)",
                    len(keys),
                )
                self._features = features_of(
                    self.labeling_task_type, keys, lambda uri: self._read(uri, "source-ref")
                )
            decision = model_round(
                number,
                self._features,
                {k: i for i, k in enumerate(keys)},
                human,
                pending,
                total=len(keys),
                seed=self._seed(),
                machine_room=len(keys) - sent - machine,
            )
            shown = (
                "none (too few accurate predictions)"
                if decision.threshold is None
                else f"{decision.threshold:.3f}"
            )
            self.log.info(
                "round %d: model trained on %d human label(s), confidence threshold %s; machine-labeled %d",
                number,
                len(human),
                shown,
                len(decision.machine),
            )
        if self.max_human_labeled_objects is not None:
            decision.send = decision.send[: max(0, int(self.max_human_labeled_objects) - sent)]
        bucket, key = split_s3_uri(self._decision_uri(number), "output_path")
        self.hook.s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(decision.to_json()).encode())
        return decision

    def send(self, decision: Decision) -> None:
        """Import the round's objects as tasks (with the model's predictions as pre-annotations)."""
        from airflow_dl_provider.label_studio.configs import choices_result, task_data

        by_key = dict(zip(self.keys(), self.lines, strict=True))
        labels = [str(x) for x in self.labels]
        tasks = []
        for key in decision.send:
            task: dict[str, Any] = {
                "data": task_data(self.labeling_task_type, by_key[key]),
                "meta": {ROUND_META: decision.round, OBJECT_META: key},
            }
            if key in decision.predictions:
                index, score = decision.predictions[key]
                task["predictions"] = [
                    {
                        "model_version": f"airflow-dl-round-{decision.round}",
                        "score": score,
                        "result": choices_result(self.labeling_task_type, [labels[index]]),
                    }
                ]
            tasks.append(task)
        for start in range(0, len(tasks), 500):
            self.client.import_tasks(self.project_id, tasks[start : start + 500])
        self.log.info("round %d: sent %d object(s) to people (imported as tasks)", decision.round, len(tasks))

    # -- the runner -----------------------------------------------------------------------------------

    def execute(self, context: Any) -> dict[str, Any]:
        """Label everything, round by round; wait (or defer) while people label.

        :return: ``job_name`` (the project title), ``project_id``, ``project_url``, ``status``
            (``Completed``), ``output_manifest`` (S3 URI), ``label_counters`` (``TotalLabeled``,
            ``HumanLabeled``, ``MachineLabeled``, ``FailedNonRetryableError``, ``Unlabeled``),
            ``label_attribute_name``, ``task_type``.
        """
        self.check_rendered_labeling_input()
        ti = context["ti"]
        self.job_name = deterministic_job_name(
            ti.dag_id,
            ti.task_id,
            context["run_id"],
            -1 if getattr(ti, "map_index", None) is None else int(ti.map_index),
            max_length=PROJECT_TITLE_MAX_LENGTH,
            prefix=self.job_name_prefix,
        )
        if "airflow-dl:simulated-truth" in self.tags:
            self.log.info(
                "tags declare a SIMULATED workforce (airflow-dl:simulated-truth=%s): on the local Label Studio "
                "server, simulated annotators answer from that hidden truth; no person labels",
                self.tags["airflow-dl:simulated-truth"],
            )
        self.log.info(
            "Labeling %d object(s) (%s) in Label Studio at %s",
            len(self.lines),
            self.labeling_task_type,
            self.client.url,
        )
        project = self.ensure_project(context)
        self.project_id = int(project["id"])
        self.ensure_storage(self.project_id)
        return self.advance(context, deadline=None if self.max_wait is None else time.time() + self.max_wait)

    def advance(self, context: Any, deadline: float | None) -> dict[str, Any]:
        """From what the project and the round files say: wait, send the next round, or finish."""
        while True:
            tasks = list(self.client.tasks(self.project_id))
            sent = {object_key(self.labeling_task_type, t) for t in tasks}
            labeled = sum(1 for t in tasks if is_labeled(t))
            rounds = max([int((t.get("meta") or {}).get(ROUND_META, 1)) for t in tasks], default=0)
            if labeled < len(tasks):
                self.wait(context, target=len(tasks), deadline=deadline)
                continue
            machine = self.machine_labels(rounds + 1)
            pending = [k for k in self.keys() if k not in sent and k not in machine]
            human_room = (
                None
                if self.max_human_labeled_objects is None
                else int(self.max_human_labeled_objects) - len(sent)
            )
            if (
                not pending
                or rounds >= 10
                or (human_room is not None and human_room <= 0 and not self.auto_labeling)
            ):
                return self.finish(machine)
            decision = self.decide(rounds + 1, pending, len(sent), len(machine))
            if not decision.send:
                return self.finish({**machine, **decision.machine})
            self.send(decision)

    def wait(self, context: Any, *, target: int, deadline: float | None) -> None:
        if self.deferrable:
            from airflow_dl_provider.triggers.label_studio import LabelStudioAnnotationTrigger

            self.defer(
                trigger=LabelStudioAnnotationTrigger(
                    project_id=self.project_id,
                    target=target,
                    job_name=str(self.job_name),
                    label_studio_conn_id=self.label_studio_conn_id,
                    poll_interval=self.poll_interval,
                    deadline=deadline,
                ),
                method_name="execute_complete",
                kwargs={"deadline": deadline},
            )
        while True:
            labeled, _total = self.client.labeled(self.project_id)
            if labeled >= target:
                return
            if deadline is not None and time.time() >= deadline:
                raise SageMakerJobError(
                    f"Label Studio project {self.job_name}: {labeled} of {target} task(s) labeled after max_wait",
                    job_name=str(self.job_name),
                )
            self.log.info("Label Studio project %s: %d of %d task(s) labeled", self.job_name, labeled, target)
            time.sleep(self.poll_interval)

    def execute_complete(
        self, context: Any, event: Mapping[str, Any] | None = None, deadline: float | None = None
    ) -> dict[str, Any]:
        """Resume after the trigger: the next round, another wait, or the manifest."""
        if not event:
            raise SageMakerJobError("resumed without a trigger event")
        self.job_name = str(event["job_name"])
        if event["status"] != "success":
            raise SageMakerJobError(
                f"Label Studio project {self.job_name}: {event['message']}", job_name=self.job_name
            )
        found = self.client.projects(title=self.job_name)
        if not found:
            raise SageMakerJobError(
                f"Label Studio project {self.job_name} does not exist", job_name=self.job_name
            )
        self.project_id = int(found[0]["id"])
        return self.advance(context, deadline)

    def finish(self, machine: Mapping[str, Label]) -> dict[str, Any]:
        """Export, convert, write the output manifest."""
        from airflow_dl_provider.label_studio.export import human_labels, output_manifest

        labels = [str(x) for x in self.labels]
        human = human_labels(self.client.export(self.project_id), self.labeling_task_type, labels)
        body, counters = output_manifest(
            self.lines,
            {**machine, **human},
            task_type=self.labeling_task_type,
            labels=labels,
            attribute=self.label_attribute_name,
            job_name=f"label-studio-project/{self.job_name}",
        )
        uri = f"{self._root()}/manifests/output/output.manifest"
        bucket, key = split_s3_uri(uri, "output_path")
        self.hook.s3.put_object(Bucket=bucket, Key=key, Body=body)
        self.log.info("Output manifest %s; label counters %s", uri, json.dumps(counters))
        return {
            "job_name": self.job_name,
            "project_id": self.project_id,
            "project_url": f"{self.client.url}/projects/{self.project_id}/data",
            "status": "Completed",
            "output_manifest": uri,
            "label_counters": counters,
            "label_attribute_name": self.label_attribute_name,
            "task_type": self.labeling_task_type,
        }
