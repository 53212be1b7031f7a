"""Job families build a plan with no I/O; ``overrides`` apply to the whole plan, before anything runs.

What the uploads and prerequisites point at follows the final request: an overridden ``ModelName`` is
the Model created, an overridden source location is where the code is uploaded, an overridden
manifest is the one pre-flight counts. Staging is content-addressed, so a retry uploads nothing new.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import TYPE_CHECKING, Any

import pytest
from botocore.stub import Stubber

from airflow_dl_provider.exceptions import PreflightError
from airflow_dl_provider.jobs.plan import Derived
from airflow_dl_provider.specs.model import ModelSource
from airflow_dl_provider.specs.training import Cluster, ScriptMode, TrainingDefinition
from tests.conftest import ROLE_ARN
from tests.unit.operators.stubs import NOW, not_found, sagemaker_client, use

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

WORKTEAM = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/pets"
METRIC = r"validation_accuracy=([0-9.]+)"


class NoCalls:
    """A client that fails on any call: what build() is handed to prove it does no I/O."""

    def __init__(self, meta: Any) -> None:
        self.meta = meta  # region and partition only, read by the hook without a call

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"build() called {name}")


def _source(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir(exist_ok=True)
    (root / "train.py").write_text("print('validation_accuracy=0.9')\n")
    return root


def _definition(backend: Any, tmp_path: Path) -> TrainingDefinition:
    return TrainingDefinition(
        role_arn=ROLE_ARN,
        output_path=backend.uri("output"),
        channels={"train": backend.uri("data/train/")},
        cluster=Cluster(instance_type="ml.m5.large"),
        script=ScriptMode(entry_point="train.py", source_dir=str(_source(tmp_path))),
        metric_definitions={"validation_accuracy": METRIC},
        max_runtime_seconds=600,
    )


def _training(backend: Any, tmp_path: Path, isolated: bool = False, **kwargs: Any) -> Any:
    from airflow_dl_provider.operators.training import DistributedTrainingOperator

    definition = dataclasses.replace(_definition(backend, tmp_path), enable_network_isolation=isolated)
    return DistributedTrainingOperator(task_id="train", training=definition, **kwargs)


def _tuning(backend: Any, tmp_path: Path, **kwargs: Any) -> Any:
    from airflow_dl_provider.operators.tuning import HyperparameterTuningOperator

    return HyperparameterTuningOperator(
        task_id="tune",
        training=_definition(backend, tmp_path),
        objective_metric="validation_accuracy",
        parameter_ranges={"lr": {"type": "continuous", "min": 1e-3, "max": 0.5}},
        strategy="Random",
        max_jobs=2,
        **kwargs,
    )


def _labeling(backend: Any, tmp_path: Path, **kwargs: Any) -> Any:
    from airflow_dl_provider.operators.labeling import GroundTruthLabelingOperator

    args: dict[str, Any] = {
        "task_id": "label",
        "task_type": "image_classification",
        "labels": ["cat", "dog"],
        "input_prefix": backend.uri("pets/"),
        "output_path": backend.uri("labels"),
        "role_arn": ROLE_ARN,
        "workteam_arn": WORKTEAM,
    }
    return GroundTruthLabelingOperator(**{**args, **kwargs})


def _transform(backend: Any, tmp_path: Path, **kwargs: Any) -> Any:
    from airflow_dl_provider.operators.transform import BatchTransformOperator

    return BatchTransformOperator(
        task_id="transform",
        input_s3_uri=backend.uri("batch/in/"),
        output_path=backend.uri("batch/out"),
        model=ModelSource(model_artifacts=backend.uri("models/model.tar.gz"), role_arn=ROLE_ARN),
        **kwargs,
    )


def _compilation(backend: Any, tmp_path: Path, **kwargs: Any) -> Any:
    from airflow_dl_provider.operators.compilation import NeoCompilationOperator

    return NeoCompilationOperator(
        task_id="compile",
        role_arn=ROLE_ARN,
        model=ModelSource(model_artifacts=backend.uri("models/model.tar.gz")),
        output_path=backend.uri("compiled"),
        framework_version="1.13",
        data_input_config={"input0": [1, 64]},
        target_device="ml_c5",
        **kwargs,
    )


FAMILIES: dict[str, Callable[..., Any]] = {
    "training": _training,
    "tuning": _tuning,
    "labeling": _labeling,
    "transform": _transform,
    "compilation": _compilation,
}


@pytest.fixture
def backend(local_backend: Any) -> Any:
    for key, body in (
        ("data/train/part-0.csv", "label,p0\n1,2\n"),
        ("pets/a.png", b"\x89PNG"),
        ("pets/b.png", b"\x89PNG"),
        ("models/model.tar.gz", b"model"),
        ("batch/in/part-0.csv", "1,2\n"),
    ):
        local_backend.upload(key, body)
    return local_backend


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_build_does_no_io(backend: Any, tmp_path: Path, task_context: Any, family: str) -> None:
    op = FAMILIES[family](backend, tmp_path)
    real = op.hook.s3
    op.hook.__dict__.update(conn=NoCalls(real.meta), s3=NoCalls(real.meta), logs=NoCalls(real.meta))
    plan = op.build(task_context(task_id=op.task_id))
    assert plan.request
    # What needs reading (a built manifest, a source archive) is made later, at pre-flight.
    assert all(upload.body is not None for upload in plan.uploads)
    assert not hasattr(op, "_uploads") and not hasattr(op, "_source") and not hasattr(op, "_model_request")


def test_a_model_name_override_names_the_model_created(
    backend: Any, tmp_path: Path, task_context: Any
) -> None:
    client = sagemaker_client()
    op = _transform(backend, tmp_path, overrides={"ModelName": "digits-v4"}, wait_for_completion=False)
    use(op, client)
    context = task_context(task_id="transform")
    name = op.first_job_name(context)
    model_arn = "arn:aws:sagemaker:us-east-1:123456789012:model/digits-v4"
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:transform-job/{name}"
    with Stubber(client) as stub:
        not_found(stub, "describe_model", f'Could not find model "{model_arn}".', ModelName="digits-v4")
        stub.add_response(
            "create_model",
            {"ModelArn": model_arn},
            {
                "ModelName": "digits-v4",
                "PrimaryContainer": op.render_plan(context).prerequisites[0].request["PrimaryContainer"],
                "ExecutionRoleArn": ROLE_ARN,
            },
        )
        not_found(
            stub,
            "describe_transform_job",
            f"Could not find requested job with name {name}",
            TransformJobName=name,
        )
        stub.add_response("create_transform_job", {"TransformJobArn": arn})
        stub.add_response(
            "describe_transform_job",
            {
                "TransformJobName": name,
                "TransformJobArn": arn,
                "TransformJobStatus": "InProgress",
                "ModelName": "digits-v4",
                "TransformInput": {
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/x"}}
                },
                "TransformOutput": {"S3OutputPath": "s3://b/y"},
                "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
                "CreationTime": NOW,
            },
        )
        op.execute(context)
        stub.assert_no_pending_responses()


def test_an_overridden_source_location_is_where_the_code_is_uploaded(
    backend: Any, tmp_path: Path, task_context: Any
) -> None:
    elsewhere = backend.uri("elsewhere/code/sourcedir.tar.gz")
    op = _training(
        backend,
        tmp_path,
        overrides={"HyperParameters": {"sagemaker_submit_directory": json.dumps(elsewhere)}},
    )
    context = task_context()
    plan = op.render_plan(context)
    assert [upload.uri for upload in plan.uploads] == [elsewhere]
    op.preflight(plan, context)
    op.stage(plan)
    listed = backend.s3.list_objects_v2(Bucket=backend.bucket, Prefix="")
    keys = [item["Key"] for item in listed.get("Contents", [])]
    assert "elsewhere/code/sourcedir.tar.gz" in keys
    assert not [key for key in keys if key.startswith("output/source/")]  # nothing where build put it


def test_an_override_that_drops_the_code_channel_fails_before_anything(
    backend: Any, tmp_path: Path, task_context: Any
) -> None:
    op = _training(
        backend,
        tmp_path,
        isolated=True,
        overrides={"InputDataConfig": [{"ChannelName": "train", "DataSource": {}}]},
    )
    with pytest.raises(PreflightError, match=r"^overrides: InputDataConfig\[ChannelName=code\]"):
        op.render_plan(task_context())


def test_labeling_preflight_counts_an_overridden_manifest(
    backend: Any, tmp_path: Path, task_context: Any, task_log: Any
) -> None:
    lines = "".join(json.dumps({"source-ref": backend.uri(f"pets/{i}.png")}) + "\n" for i in range(1300))
    manifest = backend.upload("mine/dataset.manifest", lines)
    path = {"InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": manifest}}}}
    op = _labeling(backend, tmp_path, overrides=path, auto_labeling=True)
    context = task_context(task_id="label")
    plan = op.render_plan(context)
    # The manifest built from input_prefix is not uploaded: the override names another.
    assert not [u for u in plan.uploads if u.uri.endswith("dataset.manifest")]
    op.preflight(plan, context)  # 1,300 objects: auto_labeling's minimum holds for *that* manifest
    assert "Labeling 1300 object(s)" in task_log.text
    # Without the override, the 2 objects under input_prefix are too few for automated labeling.
    with pytest.raises(PreflightError, match="this data set has 2"):
        own = _labeling(backend, tmp_path, auto_labeling=True)
        own.preflight(own.render_plan(context), context)


def test_a_derived_input_is_made_at_preflight_through_the_reader(
    backend: Any, tmp_path: Path, task_context: Any
) -> None:
    op = _labeling(backend, tmp_path)
    context = task_context(task_id="label")
    built = op.build(context)
    (manifest,) = [u for u in built.uploads if isinstance(u.body, Derived)]
    assert "{digest}" in manifest.uri
    plan = op.render_plan(context)
    (made,) = [u for u in plan.uploads if u.argument == "input_prefix"]
    assert made.data().decode().splitlines() == [
        json.dumps({"source-ref": backend.uri(f"pets/{n}.png")}) for n in "ab"
    ]
    assert plan.request["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"] == made.uri


@pytest.mark.parametrize("family", ["training", "tuning", "labeling"])
def test_a_retry_uploads_nothing_new(
    backend: Any, tmp_path: Path, task_context: Any, task_log: Any, family: str
) -> None:
    context = task_context(task_id="job")
    for _ in range(2):
        op = FAMILIES[family](backend, tmp_path)
        op.stage(op.render_plan(context))
    uploaded = [line for line in task_log.text.splitlines() if line.startswith("Uploaded ")]
    reused = [line for line in task_log.text.splitlines() if line.endswith("already uploaded")]
    assert uploaded and len(uploaded) == len(reused)


# -- specs: composed, templated, and the flat arguments of earlier releases ------------------------------


def test_nested_specs_render_in_place_each_operator_its_own(backend: Any, tmp_path: Path) -> None:
    from airflow_dl_provider.operators.training import DistributedTrainingOperator

    definition = dataclasses.replace(
        _definition(backend, tmp_path),
        cluster=Cluster(instance_type="{{ params.instance_type }}", instance_count="{{ params.count }}"),
        channels={"train": "{{ params.data }}"},
    )
    first = DistributedTrainingOperator(task_id="first", training=definition)
    second = DistributedTrainingOperator(task_id="second", training=definition)
    first.render_template_fields(
        {"params": {"instance_type": "ml.m5.large", "count": "2", "data": backend.uri("data/train/")}}
    )
    assert first.training.cluster.instance_type == "ml.m5.large"
    assert first.training.channels == {"train": backend.uri("data/train/")}
    assert second.training.cluster.instance_type == "{{ params.instance_type }}"  # not shared
    request, _ = first.training.parts("us-east-1")
    assert request["ResourceConfig"]["InstanceCount"] == 2  # a rendered string, converted once


def test_a_rendered_spec_is_checked_again_before_anything(
    backend: Any, tmp_path: Path, task_context: Any
) -> None:
    from airflow_dl_provider.operators.training import DistributedTrainingOperator

    definition = dataclasses.replace(
        _definition(backend, tmp_path), cluster=Cluster(instance_count="{{ params.count }}")
    )
    op = DistributedTrainingOperator(task_id="train", training=definition)
    op.render_template_fields({"params": {"count": "0"}})
    with pytest.raises(PreflightError, match=r"^cluster.instance_count must be >= 1, got 0$"):
        op.render_plan(task_context())


def test_flat_training_arguments_warn_and_map_onto_the_specs(backend: Any, tmp_path: Path) -> None:
    from airflow_dl_provider.operators.training import DistributedTrainingOperator

    with pytest.warns(
        DeprecationWarning,
        match=r"^train: entry_point, instance_count, instance_type, .*: flat training arguments are deprecated",
    ):
        op = DistributedTrainingOperator(
            task_id="train",
            role_arn=ROLE_ARN,
            output_path=backend.uri("output"),
            source_dir=str(_source(tmp_path)),
            entry_point="train.py",
            instance_type="ml.m5.large",
            instance_count=2,
            use_spot=True,
            spot_max_wait_seconds=7200,
            subnets=["subnet-1"],
            security_group_ids=["sg-1"],
        )
    training = op.training
    assert training.cluster == Cluster(instance_type="ml.m5.large", instance_count=2)
    assert training.script == ScriptMode(entry_point="train.py", source_dir=str(_source(tmp_path)))
    assert training.spot is not None and training.spot.max_wait_seconds == 7200
    assert training.vpc is not None and training.vpc.subnets == ["subnet-1"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"instance_type": "ml.m5.large"},
            r"^train: cluster: give instance_type inside cluster=, not beside it$",
        ),
        ({"role_arn": ROLE_ARN}, r"^train: training: role_arn go inside training=TrainingDefinition"),
    ],
)
def test_a_spec_and_its_flat_arguments_together_fail_in_one_line(
    backend: Any, tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    from airflow_dl_provider.operators.training import DistributedTrainingOperator

    spec = (
        {"cluster": Cluster()} if "instance_type" in kwargs else {"training": _definition(backend, tmp_path)}
    )
    base = (
        {}
        if "training" in spec
        else {"role_arn": ROLE_ARN, "output_path": backend.uri("o"), "image_uri": "i"}
    )
    with pytest.raises(ValueError, match=message):
        DistributedTrainingOperator(task_id="train", **{**base, **spec, **kwargs})


def test_tuning_composes_a_training_definition_instead_of_inheriting(backend: Any, tmp_path: Path) -> None:
    from airflow_dl_provider.operators.training import DistributedTrainingOperator
    from airflow_dl_provider.operators.tuning import HyperparameterTuningOperator

    assert not issubclass(HyperparameterTuningOperator, DistributedTrainingOperator)
    op = _tuning(backend, tmp_path)
    assert op.training == _definition(backend, tmp_path)
    with pytest.warns(DeprecationWarning, match="training arguments beside the search are deprecated"):
        flat = HyperparameterTuningOperator(
            task_id="tune",
            role_arn=ROLE_ARN,
            output_path=backend.uri("output"),
            channels={"train": backend.uri("data/train/")},
            entry_point="train.py",
            source_dir=str(_source(tmp_path)),
            instance_type="ml.m5.large",
            metric_definitions={"validation_accuracy": METRIC},
            max_runtime_seconds=600,
            objective_metric="validation_accuracy",
            parameter_ranges={"lr": {"type": "continuous", "min": 1e-3, "max": 0.5}},
            strategy="Random",
            max_jobs=2,
        )
    assert flat.training == op.training
    with pytest.raises(ValueError, match=r"^tune: training: give the job each trial runs"):
        HyperparameterTuningOperator(task_id="tune", objective_metric="m", parameter_ranges={"lr": {}})


def test_flat_model_arguments_warn_and_build_a_model_source(backend: Any) -> None:
    from airflow_dl_provider.operators.transform import BatchTransformOperator

    artifacts = backend.uri("models/model.tar.gz")
    with pytest.warns(DeprecationWarning, match="model_artifacts, role_arn: flat model arguments"):
        op = BatchTransformOperator(
            task_id="transform",
            input_s3_uri=backend.uri("batch/in/"),
            output_path=backend.uri("batch/out"),
            model_artifacts=artifacts,
            role_arn=ROLE_ARN,
        )
    assert op.model == ModelSource(model_artifacts=artifacts, role_arn=ROLE_ARN)
    with pytest.raises(
        ValueError, match=r"^transform: role_arn: creating a Model from model_artifacts needs"
    ):
        BatchTransformOperator(
            task_id="transform",
            input_s3_uri=backend.uri("batch/in/"),
            output_path=backend.uri("batch/out"),
            model=ModelSource(model_artifacts=artifacts),
        )


def test_a_prerequisite_created_meanwhile_by_another_try_is_used() -> None:
    from airflow_dl_provider.jobs.plan import Prerequisite
    from airflow_dl_provider.operators.base import ensure_prerequisite

    client = sagemaker_client()
    model = Prerequisite(
        "Model", "CreateModel", "ModelName", {"ModelName": "m", "ExecutionRoleArn": ROLE_ARN}
    )
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model/m"
    log = logging.getLogger("test")
    with Stubber(client) as stub:
        not_found(stub, "describe_model", f'Could not find model "{arn}".', ModelName="m")
        # The service's answer when the name was taken between Describe and Create.
        stub.add_client_error(
            "create_model", "ValidationException", f'Cannot create already existing model "{arn}".'
        )
        assert ensure_prerequisite(client, model, log) == "m"
        not_found(stub, "describe_model", f'Could not find model "{arn}".', ModelName="m")
        stub.add_client_error(
            "create_model", "ValidationException", "Could not access model data at s3://b/x"
        )
        with pytest.raises(Exception, match="Could not access model data"):
            ensure_prerequisite(client, model, log)
