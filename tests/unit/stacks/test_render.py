"""Stack options fail early with one line; every rendered variant lints clean (cfn-lint, checkov)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from airflow_dl_provider.stacks.lint import cfn_lint, checkov, find_checkov
from airflow_dl_provider.stacks.render import (
    MWAA_VERSIONS,
    NESTED_TEMPLATES,
    ROOT_TEMPLATE,
    TEMPLATES,
    StackError,
    StackOptions,
    load_template,
    render,
    template_text,
    variants,
    write,
)


@pytest.mark.parametrize(
    ("options", "names"),
    [
        (StackOptions(airflow_version="2.10.3"), ["airflow_version", "2.11.0, 3.0.6"]),
        (StackOptions(private_subnet_cidrs=("10.192.20.0/24",)), ["private_subnet_cidrs", "two"]),
        (StackOptions(bucket_name="My_Bucket"), ["bucket_name", "S3 refuses"]),
        (StackOptions(bucket_name="ab"), ["bucket_name", "3 to 63"]),
        (StackOptions(bucket_name="192.168.5.4"), ["bucket_name", "IP address"]),
        (StackOptions(bucket_name="data..bucket"), ["bucket_name", ".."]),
        (StackOptions(bucket_name="xn--bucket"), ["bucket_name", "reserved"]),
        (StackOptions(private_subnet_cidrs=("10.0.0.0/24", "10.192.21.0/24")), ["outside vpc_cidr"]),
        (StackOptions(private_subnet_cidrs=("10.192.20.0/24", "10.192.20.0/25")), ["overlap"]),
        (StackOptions(environment_name="1bad"), ["environment_name"]),
    ],
)
def test_bad_inputs_are_one_line_naming_the_option(options, names):
    with pytest.raises(StackError) as err:
        options.validate()
    message = str(err.value)
    assert "\n" not in message
    for name in names:
        assert name in message


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--airflow-version", "2.9.2"], "airflow_version: MWAA does not offer '2.9.2'"),
        (["--private-subnets", "10.192.20.0/24"], "private_subnet_cidrs: got 1 subnet(s)"),
        (["--bucket-name", "Bad_Bucket"], "bucket_name: S3 refuses 'Bad_Bucket'"),
    ],
)
def test_cli_prints_one_line_and_exits_1(tmp_path, argv, needle):
    proc = subprocess.run(
        [sys.executable, "-m", "airflow_dl_provider.cli", "stack", "render", "--out", str(tmp_path), *argv],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and needle in proc.stderr, proc.stderr


def test_allowed_versions_match_the_templates():
    for name in ("root.yaml", "mwaa.yaml"):
        assert tuple(load_template(name)["Parameters"]["AirflowVersion"]["AllowedValues"]) == MWAA_VERSIONS


def test_render_sets_root_defaults_and_keeps_nested_templates(tmp_path):
    options = StackOptions(airflow_version="2.11.0", bucket_name="team-dl-data", enable_fsx=True)
    files = write(options, tmp_path, "https://b.s3.us-east-1.amazonaws.com/stacks/")
    assert sorted(p.name for p in files) == sorted(TEMPLATES)
    root = yaml.safe_load((tmp_path / "root.yaml").read_text())
    params = root["Parameters"]
    assert params["AirflowVersion"]["Default"] == "2.11.0"
    assert params["BucketName"]["Default"] == "team-dl-data"
    assert params["EnableFsx"]["Default"] == "true"
    assert params["TemplatesUrl"]["Default"] == "https://b.s3.us-east-1.amazonaws.com/stacks"
    assert set(root["Outputs"]) >= {
        "MwaaExecutionRoleArn",
        "SageMakerExecutionRoleArn",
        "BucketName",
        "EfaSecurityGroupId",
        "PrivateSubnetIds",
    }


def test_efa_group_allows_all_traffic_to_and_from_itself():
    resources = load_template("network.yaml")["Resources"]
    for name in ("EfaSecurityGroupSelfIngress", "EfaSecurityGroupSelfEgress"):
        props = resources[name]["Properties"]
        assert props["IpProtocol"] == "-1"
        assert props["GroupId"] == {"Ref": "EfaSecurityGroup"}
    assert resources["EfaSecurityGroupSelfIngress"]["Properties"]["SourceSecurityGroupId"] == {
        "Ref": "EfaSecurityGroup"
    }
    assert resources["EfaSecurityGroupSelfEgress"]["Properties"]["DestinationSecurityGroupId"] == {
        "Ref": "EfaSecurityGroup"
    }


def test_bucket_is_versioned_encrypted_and_private():
    props = load_template("storage.yaml")["Resources"]["Bucket"]["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] == "aws:kms"
    assert all(props["PublicAccessBlockConfiguration"].values())


VARIANTS = list(variants())


def test_variants_cover_each_version_and_option():
    assert len(VARIANTS) == 8
    assert {o.airflow_version for _, o in VARIANTS} == set(MWAA_VERSIONS)


@pytest.fixture(scope="module")
def rendered_variants(tmp_path_factory):
    root = tmp_path_factory.mktemp("variants")
    folders = {}
    for label, options in VARIANTS:
        write(options, root / label)
        folders[label] = root / label
    return folders


@pytest.mark.parametrize("label", [label for label, _ in VARIANTS])
def test_cfn_lint_root_has_no_errors_or_warnings(rendered_variants, label):
    findings = cfn_lint(rendered_variants[label] / ROOT_TEMPLATE)
    assert findings == [], "\n".join(map(str, findings))


@pytest.mark.parametrize("name", NESTED_TEMPLATES)
def test_cfn_lint_nested_has_no_errors_or_warnings(rendered_variants, name):
    """Rendering changes only root.yaml's defaults, so each nested template is linted once."""
    texts = {(folder / name).read_text() for folder in rendered_variants.values()}
    assert len(texts) == 1
    findings = cfn_lint(next(iter(rendered_variants.values())) / name)
    assert findings == [], "\n".join(map(str, findings))


def test_checkov_has_no_unwaived_failures(rendered_variants):
    program = find_checkov()
    if program is None:
        if os.environ.get("CI"):
            pytest.fail("checkov not installed; 'make tools' builds .venv-tools with it")
        pytest.skip("checkov not installed: run 'make tools' (or set AIRFLOW_DL_CHECKOV)")
    # The nested templates are the same in every variant; only root.yaml's defaults differ.
    for label in ("airflow-2.11.0", "airflow-3.0.6-fsx-workteam"):
        findings = checkov(rendered_variants[label], program)
        assert findings == [], "\n".join(map(str, findings))


def test_every_checkov_waiver_has_a_reason():
    for name in TEMPLATES:
        for resource in load_template(name).get("Resources", {}).values():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert len(skip.get("comment", "")) > 20, (name, skip)


def test_render_text_matches_shipped_nested_templates():
    out = render(StackOptions())
    assert out["iam.yaml"] == template_text("iam.yaml")
