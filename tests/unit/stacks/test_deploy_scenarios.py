"""Whole ``stack deploy`` runs: moto's S3 (versioned buckets, object versions), the CloudFormation fake.

What must hold: unchanged artifacts -> no new S3 versions and no environment update; new artifacts wait
under new keys until the change set passed the guard; a refused or failed deploy changes nothing live;
every stack state that cannot be deployed gives one line saying what to do, with the nested cause.
"""

from __future__ import annotations

import boto3
import botocore.session
import pytest
from moto import mock_aws

from airflow_dl_provider.service_behaviour import STACK_STATES
from airflow_dl_provider.stacks import artifacts
from airflow_dl_provider.stacks.deploy import deploy
from airflow_dl_provider.stacks.pacing import Poll
from airflow_dl_provider.stacks.render import StackError, StackOptions
from tests.unit.stacks.cloudformation_fake import FakeCloudFormation, FakeMwaa, Session, Stack

REGION = "us-east-1"
BUCKET = "team-dl-data"
TEMPLATES = "team-cfn-templates"
STACK = "airflow-dl"
OPTIONS = StackOptions(bucket_name=BUCKET)


@pytest.fixture
def aws(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (BUCKET, TEMPLATES):
            s3.create_bucket(Bucket=bucket)
            # storage.yaml's bucket is versioned; MWAA pins requirements.txt and plugins.zip by version.
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        cfn, mwaa = FakeCloudFormation(), FakeMwaa()
        yield Session(cfn, s3, mwaa)


@pytest.fixture
def package(tmp_path):
    out = tmp_path / "mwaa"
    (out / "dags" / "configs").mkdir(parents=True)
    (out / "requirements.txt").write_text("--no-index\nairflow-dl-provider==0.1.0\n")
    (out / "plugins.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    (out / "dags" / "pipelines.py").write_text("# loads the configs\n")
    (out / "dags" / "configs" / "digits.yaml").write_text("pipeline: digits\n")
    return out


def _deploy(session, package, options=OPTIONS, lines=None, **kwargs):
    waiter = Poll(interval=0, sleep=lambda _s: None, say=(lines if lines is not None else []).append)
    return deploy(
        session,
        options,
        stack_name=STACK,
        package_dir=package,
        templates_bucket=TEMPLATES,
        waiter=waiter,
        **kwargs,
    )


def _versions(s3, bucket=BUCKET) -> list[tuple[str, str]]:
    listed = s3.list_object_versions(Bucket=bucket).get("Versions", [])
    return sorted((v["Key"], v["VersionId"]) for v in listed)


def _live(cfn) -> dict[str, str]:
    return cfn.stacks[STACK].parameters


def test_first_deploy_creates_the_stack_then_the_environment_on_staged_artifacts(aws, package):
    lines: list[str] = []
    outputs = _deploy(aws, package, lines=lines)
    cfn, s3 = aws.clients["cloudformation"], aws.clients["s3"]
    assert [cs.kind for cs in cfn.executed] == ["CREATE", "UPDATE"]
    assert cfn.executed[0].parameters["CreateEnvironment"] == "false"
    live = _live(cfn)
    requirements = (package / "requirements.txt").read_bytes()
    assert live["RequirementsS3Path"] == artifacts.staged_key("requirements.txt", requirements)
    head = s3.head_object(Bucket=BUCKET, Key=live["RequirementsS3Path"])
    assert live["RequirementsObjectVersion"] == head["VersionId"]
    assert head["Metadata"] == {"sha256": artifacts.sha256(requirements)}
    assert outputs["EnvironmentArn"].endswith(":environment/airflow-dl")
    keys = {k for k, _ in _versions(s3)}
    assert {"dags/pipelines.py", "dags/configs/digits.yaml"} <= keys
    assert "MWAA airflow-dl: created" in lines
    assert any(line.startswith("dags: ") and "2 uploaded" in line for line in lines)


def test_an_unchanged_package_uploads_nothing_and_does_not_touch_the_environment(aws, package):
    _deploy(aws, package)
    cfn, s3 = aws.clients["cloudformation"], aws.clients["s3"]
    before, executed = _versions(s3), len(cfn.executed)
    templates_before = _versions(s3, TEMPLATES)
    lines: list[str] = []
    _deploy(aws, package, lines=lines)
    assert _versions(s3) == before, "identical bytes got new S3 versions"
    assert _versions(s3, TEMPLATES) == templates_before
    assert len(cfn.executed) == executed and cfn.environment_updates == 0
    assert f"{STACK}: no changes" in lines
    assert "MWAA airflow-dl: not updated (nothing it runs changed)" in lines
    assert "requirements.txt: unchanged" in " ".join(lines)
    assert any("0 uploaded, 0 deleted, 2 unchanged" in line for line in lines)


def test_new_requirements_go_live_only_through_the_change_set(aws, package):
    _deploy(aws, package)
    cfn, s3 = aws.clients["cloudformation"], aws.clients["s3"]
    old = dict(_live(cfn))
    (package / "requirements.txt").write_text("--no-index\nairflow-dl-provider==0.2.0\n")
    lines: list[str] = []
    _deploy(aws, package, lines=lines)
    assert cfn.environment_updates == 1
    assert _live(cfn)["RequirementsS3Path"] != old["RequirementsS3Path"]
    assert _live(cfn)["PluginsS3Path"] == old["PluginsS3Path"], "plugins.zip unchanged: same key"
    # The old key is still there, byte for byte: what the environment ran until the switch.
    old_body = s3.get_object(Bucket=BUCKET, Key=old["RequirementsS3Path"])["Body"].read()
    assert b"0.1.0" in old_body
    assert "MWAA airflow-dl: updated (GRACEFUL worker replacement)" in lines


def test_a_refused_replacement_leaves_everything_live_as_it_was(aws, package):
    _deploy(aws, package)
    cfn, s3 = aws.clients["cloudformation"], aws.clients["s3"]
    live, executed = dict(_live(cfn)), len(cfn.executed)
    (package / "requirements.txt").write_text("--no-index\nairflow-dl-provider==0.2.0\n")
    (package / "dags" / "pipelines.py").write_text("# a new DAG file\n")
    moved = StackOptions(bucket_name=BUCKET, private_subnet_cidrs=("10.192.30.0/24", "10.192.31.0/24"))
    with pytest.raises(StackError) as err:
        _deploy(aws, package, moved)
    assert "\n" not in str(err.value) and "would be replaced" in str(err.value)
    assert "--allow-replace" in str(err.value)
    assert _live(cfn) == live and len(cfn.executed) == executed
    assert cfn.environment_updates == cfn.environment_replacements == 0
    assert cfn.change_sets == {} or all(
        cs.stack.status != "UPDATE_IN_PROGRESS" for cs in cfn.change_sets.values()
    )
    body = s3.get_object(Bucket=BUCKET, Key="dags/pipelines.py")["Body"].read()
    assert body == b"# loads the configs\n", "DAGs synced although the deploy was refused"


def test_an_environment_busy_updating_is_not_updated_again(aws, package):
    _deploy(aws, package)
    cfn = aws.clients["cloudformation"]
    aws.clients["mwaa"].status = "UPDATING"
    live = dict(_live(cfn))
    (package / "plugins.zip").write_bytes(b"PK\x05\x06" + b"\1" * 18)
    with pytest.raises(StackError) as err:
        _deploy(aws, package)
    assert str(err.value) == (
        "stack deploy: the MWAA environment is UPDATING and takes no update now (CloudFormation's update "
        "and its rollback would both fail); deploy again once it is AVAILABLE"
    )
    assert _live(cfn) == live


def test_a_failed_update_names_the_nested_cause_and_leaves_dags_alone(aws, package):
    _deploy(aws, package)
    cfn, s3 = aws.clients["cloudformation"], aws.clients["s3"]
    live = dict(_live(cfn))
    cfn.fail_next = {"MwaaStack/Environment": "Invalid request provided: requirements.txt failed to install"}
    (package / "requirements.txt").write_text("broken==0\n")
    (package / "dags" / "pipelines.py").write_text("# needs the new requirements\n")
    with pytest.raises(StackError) as err:
        _deploy(aws, package)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"stack deploy: {STACK} is UPDATE_ROLLBACK_COMPLETE (")
    assert "MwaaStack/Environment: Invalid request provided: requirements.txt failed to install" in message
    assert "Embedded stack" not in message, "the root's summary instead of the nested cause"
    assert "the last update was rolled back" in message
    assert _live(cfn) == live
    assert s3.get_object(Bucket=BUCKET, Key="dags/pipelines.py")["Body"].read() == b"# loads the configs\n"


def test_a_rerun_after_a_failed_first_create_deletes_the_empty_stack_and_creates_it(aws, package):
    cfn = aws.clients["cloudformation"]
    cfn.fail_next = {"StorageStack/Bucket": "team-dl-data already exists in stack arn:aws:cloudformation:..."}
    with pytest.raises(StackError) as err:
        _deploy(aws, package)
    assert "\n" not in str(err.value)
    assert "is ROLLBACK_COMPLETE (StorageStack/Bucket: team-dl-data already exists" in str(err.value)
    assert "Resource creation cancelled" not in str(err.value), "a consequence shown instead of the cause"
    first = cfn.stacks[STACK]
    lines: list[str] = []
    outputs = _deploy(aws, package, lines=lines)  # not KeyError: 'BucketName'
    assert outputs["BucketName"] == BUCKET
    assert first.status == "DELETE_COMPLETE" and cfn.stacks[STACK].status == "UPDATE_COMPLETE"
    assert any("deleting it to create it again" in line for line in lines)


def test_a_stack_that_is_not_airflow_dls_is_one_line(aws, package):
    cfn = aws.clients["cloudformation"]
    cfn.stacks[STACK] = Stack(STACK, "CREATE_COMPLETE", outputs={"QueueUrl": "https://sqs/x"})
    with pytest.raises(StackError, match=r"^--stack-name: airflow-dl has no BucketName output"):
        _deploy(aws, package)


def test_every_stack_status_cloudformation_has_is_known():
    statuses = (
        botocore.session.get_session().get_service_model("cloudformation").shape_for("StackStatus").enum
    )
    assert set(STACK_STATES) == set(statuses)
    assert {action for action, _ in STACK_STATES.values()} == {
        "create",
        "update",
        "recreate",
        "busy",
        "blocked",
    }


UNDEPLOYABLE = sorted(status for status, (action, _) in STACK_STATES.items() if action in ("busy", "blocked"))


@pytest.mark.parametrize("status", UNDEPLOYABLE)
def test_each_undeployable_state_is_one_line_and_touches_nothing(aws, package, status):
    cfn, s3 = aws.clients["cloudformation"], aws.clients["s3"]
    stack = Stack(STACK, status, outputs={"BucketName": BUCKET})
    nested = Stack(f"{STACK}-MwaaStack-X", "UPDATE_FAILED")
    nested.event(nested.name, "UPDATE_IN_PROGRESS", "User Initiated")
    nested.event(
        "Environment",
        "UPDATE_FAILED",
        "Resource handler returned message: env busy",
        "AWS::MWAA::Environment",
    )
    stack.nested["MwaaStack"] = nested
    stack.event(STACK, "UPDATE_IN_PROGRESS", "User Initiated")
    stack.event(
        "MwaaStack", "UPDATE_FAILED", "Embedded stack failed", "AWS::CloudFormation::Stack", nested.stack_id
    )
    stack.event(STACK, status)
    cfn.stacks[STACK] = stack
    with pytest.raises(StackError) as err:
        _deploy(aws, package)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"stack deploy: {STACK} is {status}")
    assert STACK_STATES[status][1].format(stack=STACK) in message
    if "FAILED" in status or "ROLLBACK" in status:
        assert "(MwaaStack/Environment: Resource handler returned message: env busy)" in message
    assert cfn.executed == [] and cfn.change_sets == {}
    assert _versions(s3) == [] and _versions(s3, TEMPLATES) == [], "uploaded before the state check"


def test_a_stack_left_in_review_is_created(aws, package):
    cfn = aws.clients["cloudformation"]
    cfn.stacks[STACK] = Stack(STACK, "REVIEW_IN_PROGRESS")
    _deploy(aws, package)
    assert [cs.kind for cs in cfn.executed] == ["CREATE", "UPDATE"]


def test_graceful_updates_are_refused_where_mwaa_has_none(aws, package, monkeypatch):
    aws.clients["s3"] = boto3.client("s3", region_name="ca-west-1")
    with pytest.raises(StackError, match=r"^worker_replacement: MWAA has no graceful updates in ca-west-1"):
        _deploy(aws, package)
    assert aws.clients["cloudformation"].stacks == {}


def test_a_missing_package_is_one_line_before_anything_happens(aws, tmp_path):
    with pytest.raises(
        StackError, match=r"^--package-dir: .*requirements.txt is missing; run 'airflow-dl stack package'"
    ):
        _deploy(aws, tmp_path)
    assert aws.clients["cloudformation"].stacks == {}


def test_dags_the_package_dropped_are_deleted(aws, package):
    _deploy(aws, package)
    (package / "dags" / "configs" / "digits.yaml").unlink()
    lines: list[str] = []
    _deploy(aws, package, lines=lines)
    listed = aws.clients["s3"].list_objects_v2(Bucket=BUCKET, Prefix="dags/")["Contents"]
    assert [o["Key"] for o in listed] == ["dags/pipelines.py"]
    assert any("0 uploaded, 1 deleted, 1 unchanged" in line for line in lines)
