"""ModelSource: one spec for where a Model comes from; checked at construction, content-addressed names."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_dl_provider.specs.model import ModelSource
from airflow_dl_provider.validation.requests import validate_request

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
ARTIFACTS = "s3://bucket/models/job/output/model.tar.gz"
PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/digits/3"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "set exactly one; got none"),
        ({"model_name": "m", "model_artifacts": ARTIFACTS, "role_arn": ROLE}, "set exactly one"),
        ({"model_artifacts": "bucket/model.tar.gz", "role_arn": ROLE}, "model_artifacts: 'bucket/model"),
        ({"model_artifacts": ARTIFACTS, "role_arn": ROLE, "framework_version": "0.1"}, "framework_version"),
    ],
)
def test_bad_sources_fail_at_construction_in_one_line(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        ModelSource(**kwargs)
    assert "\n" not in str(caught.value)


def test_templated_artifacts_are_checked_once_rendered() -> None:
    source = ModelSource(model_artifacts="{{ ti.xcom_pull('train')['model_artifacts'] }}", role_arn=ROLE)
    source.model_artifacts = "not-a-uri"  # what Airflow's rendering does: setattr on the template field
    with pytest.raises(ValueError, match="model_artifacts: 'not-a-uri' is not an s3:// URI"):
        source.check(rendered=True)


def test_an_existing_model_creates_nothing() -> None:
    source = ModelSource(model_name="digits-v3")
    assert source.model_request(prefix="p", region="us-east-1", instance_type="ml.m5.xlarge") is None
    assert source.name(prefix="p", region="us-east-1", instance_type="ml.m5.xlarge") == "digits-v3"


def test_artifacts_make_a_valid_content_addressed_create_model() -> None:
    source = ModelSource(model_artifacts=ARTIFACTS, role_arn=ROLE, environment={"WORKERS": 2})
    request = source.model_request(prefix="dag-task", region="us-east-1", instance_type="ml.m5.xlarge")
    assert request is not None
    validate_request("CreateModel", request)
    container = request["PrimaryContainer"]
    assert container["Image"].endswith("/pytorch-inference:2.5.1-cpu-py311-ubuntu22.04-sagemaker")
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["Environment"]["WORKERS"] == "2"
    assert request["ModelName"].startswith("dag-task-model-")
    same = ModelSource(model_artifacts=ARTIFACTS, role_arn=ROLE, environment={"WORKERS": 2})
    other = ModelSource(model_artifacts=ARTIFACTS.replace("job", "job2"), role_arn=ROLE)
    names = {
        s.name(prefix="dag-task", region="us-east-1", instance_type="ml.m5.xlarge") for s in (same, other)
    }
    assert request["ModelName"] in names and len(names) == 2


def test_a_model_package_needs_no_image() -> None:
    source = ModelSource(model_package_arn=PACKAGE, role_arn=ROLE)
    request = source.model_request(prefix="p", region="us-east-1", instance_type="ml.m5.xlarge")
    assert request is not None
    assert request["PrimaryContainer"] == {"ModelPackageName": PACKAGE}
    validate_request("CreateModel", request)


@pytest.mark.parametrize(
    ("source", "field"), [("model_artifacts", ARTIFACTS), ("model_package_arn", PACKAGE)]
)
def test_creating_a_model_needs_its_role(source: str, field: str) -> None:
    spec = ModelSource(**{source: field})  # compilation and the registry need no Model role
    with pytest.raises(
        ValueError, match=f"role_arn: creating a Model from {source} needs its execution role"
    ):
        spec.require_role()
    ModelSource(model_name="existing").require_role()
