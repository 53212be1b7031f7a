"""JobPlan: overrides merged into the whole plan; derived bodies and content addresses filled in."""

from __future__ import annotations

import json

import pytest

from airflow_dl_provider.exceptions import PreflightError
from airflow_dl_provider.jobs.plan import (
    DIGEST,
    Derived,
    JobPlan,
    Prerequisite,
    Upload,
    content_address,
    deep_merge,
)

CHANNEL = ("InputDataConfig", ("ChannelName", "code"), "DataSource", "S3DataSource", "S3Uri")


class Reader:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.reads: list[str] = []

    def keys(self, uri: str) -> list[str]:
        self.reads.append(uri)
        return sorted(k for k in self.objects if k.startswith(uri))

    def read(self, uri: str) -> bytes:
        self.reads.append(uri)
        if uri not in self.objects:
            raise PreflightError(f"cannot read {uri} (NoSuchKey)")
        return self.objects[uri]


def _plan() -> JobPlan:
    request = {
        "ModelName": "m-1",
        "HyperParameters": {"sagemaker_submit_directory": json.dumps(f"s3://b/src/{DIGEST}/code.tar.gz")},
        "InputDataConfig": [
            {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "s3://b/train/"}}},
            {"ChannelName": "code", "DataSource": {"S3DataSource": {"S3Uri": "s3://b/code.tar.gz"}}},
        ],
    }
    return JobPlan(
        request,
        uploads=(
            Upload(
                f"s3://b/src/{DIGEST}/code.tar.gz",
                b"archive",
                ("HyperParameters", "sagemaker_submit_directory"),
                json_encoded=True,
                argument="source_dir",
            ),
            Upload("s3://b/code.tar.gz", b"code", CHANNEL, on_override="replace", argument="code"),
        ),
        prerequisites=(
            Prerequisite("Model", "CreateModel", "ModelName", {"ModelName": "m-1"}, ("ModelName",)),
        ),
    )


def test_deep_merge_merges_dicts_and_replaces_the_rest() -> None:
    base = {"a": {"b": 1, "c": [1]}, "d": 1}
    assert deep_merge(base, {"a": {"c": [2]}, "e": 3}) == {"a": {"b": 1, "c": [2]}, "d": 1, "e": 3}
    assert base == {"a": {"b": 1, "c": [1]}, "d": 1}


def test_no_overrides_is_the_same_plan() -> None:
    plan = _plan()
    assert plan.with_overrides({}) is plan


def test_an_override_renames_the_prerequisite_it_names() -> None:
    plan = _plan().with_overrides({"ModelName": "mine"})
    assert plan.prerequisites[0].request == {"ModelName": "mine"}
    assert _plan().prerequisites[0].name == "m-1"  # the built plan is untouched


def test_follow_moves_the_upload_and_replace_drops_it() -> None:
    moved = json.dumps("s3://b/other/code.tar.gz")
    channels = [
        {"ChannelName": "code", "DataSource": {"S3DataSource": {"S3Uri": "s3://b/my-own.tar.gz"}}},
        {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "s3://b/train/"}}},
    ]
    plan = _plan().with_overrides(
        {"HyperParameters": {"sagemaker_submit_directory": moved}, "InputDataConfig": channels}
    )
    assert [(u.uri, u.body) for u in plan.uploads] == [("s3://b/other/code.tar.gz", b"archive")]


def test_an_override_that_removes_an_uploads_field_fails_in_one_line() -> None:
    with pytest.raises(PreflightError) as caught:
        _plan().with_overrides({"InputDataConfig": []})
    assert str(caught.value) == (
        "overrides: InputDataConfig[ChannelName=code].DataSource.S3DataSource.S3Uri is gone, but it names "
        "where the job finds its code (s3://b/code.tar.gz); keep it"
    )


def test_resolved_makes_derived_bodies_and_fills_content_addresses_in_the_request() -> None:
    reader = Reader({"s3://b/in/a": b"", "s3://b/in/b": b""})
    plan = JobPlan(
        {"Manifest": f"s3://b/m/{DIGEST}/x.manifest"},
        uploads=(
            Upload(
                f"s3://b/m/{DIGEST}/x.manifest",
                Derived("listing", lambda r: "\n".join(r.keys("s3://b/in/")).encode()),
                ("Manifest",),
            ),
        ),
    )
    resolved = plan.resolved(reader)
    body = b"s3://b/in/a\ns3://b/in/b"
    assert resolved.uploads[0].body == body
    assert resolved.request["Manifest"] == f"s3://b/m/{content_address(body)}/x.manifest"
    assert resolved.uploads[0].uri == resolved.request["Manifest"]
    assert plan.request["Manifest"].count(DIGEST) == 1  # pure: the built plan is unchanged
    assert reader.reads == ["s3://b/in/"]


def test_a_failed_read_names_the_argument() -> None:
    plan = JobPlan(
        {"Manifest": f"s3://b/{DIGEST}"},
        uploads=(
            Upload(
                f"s3://b/{DIGEST}",
                Derived("text", lambda r: r.read("s3://b/t.txt")),
                ("Manifest",),
                argument="input_text_uri",
            ),
        ),
    )
    with pytest.raises(PreflightError, match=r"^input_text_uri: cannot read s3://b/t.txt \(NoSuchKey\)$"):
        plan.resolved(Reader({}))
