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
        (StackOptions(nat_gateways=3), ["nat_gateways", "0 (private routing"]),
        (StackOptions(vpc_id="vpc-12"), ["vpc_id", "vpc-0123456789abcdef0"]),
        (StackOptions(vpc_id="vpc-0123456789abcdef0"), ["subnet_ids", "exactly two"]),
        (StackOptions(subnet_ids=("subnet-0a1b2c3d", "subnet-4e5f6a7b")), ["vpc_id", "--subnet-ids"]),
        (
            StackOptions(vpc_id="vpc-0123456789abcdef0", subnet_ids=("subnet-0a1b2c3d", "subnet-0a1b2c3d")),
            ["subnet_ids", "two AZs"],
        ),
        (
            StackOptions(vpc_id="vpc-0123456789abcdef0", subnet_ids=("subnet-0a1b2c3d", "sn-1")),
            ["subnet_ids", "'sn-1'"],
        ),
        (StackOptions(log_levels={"tasks": "INFO"}), ["log_levels", "'tasks'", "dag_processing"]),
        (StackOptions(log_levels={"task": "VERBOSE"}), ["log_levels", "task='VERBOSE'", "DEBUG"]),
        (StackOptions(worker_replacement="LATER"), ["worker_replacement", "GRACEFUL"]),
        (StackOptions(environment_name="aws-dl", enable_workteam=True), ["workteam_domain_prefix", "'aws'"]),
        (StackOptions(enable_workteam=True, workteam_domain_prefix="Team_1"), ["workteam_domain_prefix"]),
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


def test_public_subnets_are_not_needed_without_nat():
    StackOptions(nat_gateways=0, public_subnet_cidrs=()).validate()
    with pytest.raises(StackError, match="public_subnet_cidrs"):
        StackOptions(nat_gateways=2, public_subnet_cidrs=()).validate()


def test_an_existing_vpc_needs_no_cidrs():
    options = StackOptions(
        vpc_id="vpc-0123456789abcdef0", subnet_ids=("subnet-0a1b2c3d", "subnet-4e5f6a7b"), vpc_cidr="bad"
    ).validate()
    params = options.parameters("https://b.s3.amazonaws.com/t")
    assert params["VpcId"] == "vpc-0123456789abcdef0"
    assert params["ExistingSubnetIds"] == "subnet-0a1b2c3d,subnet-4e5f6a7b"


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("airflow-dl", "airflow-dl-labeling"),
        ("Team_Vision", "team-vision-labeling"),
        ("x" * 80, "x" * 50),
        ("a" * 45 + "-b", "a" * 45 + "-b-la"),
    ],
)
def test_cognito_domain_prefix_is_derived_from_the_environment_name(name, prefix):
    options = StackOptions(environment_name=name, enable_workteam=True).validate()
    assert options.domain_prefix() == prefix
    assert options.parameters("https://b.s3.amazonaws.com/t")["WorkteamDomainPrefix"] == prefix


def test_cognito_domain_is_made_unique_by_the_account():
    """A prefix is global per region: two accounts with the same environment name must not collide."""
    domain = load_template("workteam.yaml")["Resources"]["UserPoolDomain"]["Properties"]["Domain"]
    assert domain == {"Fn::Sub": "${DomainPrefix}-${AWS::AccountId}"}
    # 50 + "-" + 12 digits = Cognito's 63.
    assert "{0,48}" in load_template("workteam.yaml")["Parameters"]["DomainPrefix"]["AllowedPattern"]


def test_log_levels_are_per_log_type():
    params = StackOptions(log_levels={"task": "DEBUG", "webserver": "ERROR"}).parameters("https://b/t")
    assert params["TaskLogLevel"] == "DEBUG" and params["WebserverLogLevel"] == "ERROR"
    assert (
        params["SchedulerLogLevel"] == params["WorkerLogLevel"] == params["DagProcessingLogLevel"] == "INFO"
    )
    logging = load_template("mwaa.yaml")["Resources"]["Environment"]["Properties"]["LoggingConfiguration"]
    assert {cfg["LogLevel"]["Ref"] for cfg in logging.values()} == {
        "DagProcessingLogLevel",
        "SchedulerLogLevel",
        "TaskLogLevel",
        "WebserverLogLevel",
        "WorkerLogLevel",
    }


def test_running_tasks_finish_when_an_update_replaces_the_workers():
    props = load_template("mwaa.yaml")["Resources"]["Environment"]["Properties"]
    assert props["WorkerReplacementStrategy"] == {"Ref": "WorkerReplacementStrategy"}
    assert load_template("mwaa.yaml")["Parameters"]["WorkerReplacementStrategy"]["Default"] == "GRACEFUL"
    assert StackOptions().parameters("https://b/t")["WorkerReplacementStrategy"] == "GRACEFUL"


def test_every_root_parameter_is_set_from_the_options_or_by_deploy():
    """A root parameter nobody sets is a setting no user can reach."""
    by_deploy = {"RequirementsS3Path", "RequirementsObjectVersion", "PluginsS3Path", "PluginsObjectVersion"}
    params = set(StackOptions(enable_workteam=True).parameters("https://b/t"))
    assert set(load_template(ROOT_TEMPLATE)["Parameters"]) == params | by_deploy


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


def test_variants_cover_each_version_option_and_network_layout():
    assert len(VARIANTS) == 11
    assert {o.airflow_version for _, o in VARIANTS} == set(MWAA_VERSIONS)
    assert {o.nat_gateways for _, o in VARIANTS} == {0, 1, 2}
    assert any(o.vpc_id for _, o in VARIANTS)
    assert {(o.enable_fsx, o.enable_workteam) for _, o in VARIANTS} == {
        (False, False),
        (False, True),
        (True, False),
        (True, True),
    }


@pytest.fixture(scope="module")
def rendered_variants(tmp_path_factory):
    """Every variant in its own subfolder of one folder, as ``stack validate`` renders them."""
    root = tmp_path_factory.mktemp("variants")
    for label, options in VARIANTS:
        write(options, root / label)
    return root


@pytest.mark.parametrize("label", [label for label, _ in VARIANTS])
def test_cfn_lint_root_is_clean_informational_included(rendered_variants, label):
    findings = cfn_lint(rendered_variants / label / ROOT_TEMPLATE)
    assert findings == [], "\n".join(map(str, findings))


@pytest.mark.parametrize("name", NESTED_TEMPLATES)
def test_cfn_lint_nested_is_clean_informational_included(rendered_variants, name):
    """Rendering changes only root.yaml's defaults, so each nested template is linted once; cfn-lint
    checks every combination of its conditions (each network layout) itself."""
    texts = {(rendered_variants / label / name).read_text() for label, _ in VARIANTS}
    assert len(texts) == 1
    findings = cfn_lint(rendered_variants / VARIANTS[0][0] / name)
    assert findings == [], "\n".join(map(str, findings))


def test_informational_findings_count_as_problems(tmp_path):
    """The I-rules are on: a stateful resource without explicit deletion policies is reported."""
    (tmp_path / "t.yaml").write_text(
        yaml.safe_dump({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}, sort_keys=False)
    )
    assert {f.rule for f in cfn_lint(tmp_path / "t.yaml")} >= {"I3011"}


def test_checkov_has_no_unwaived_failures_on_any_variant(rendered_variants):
    """One checkov run over every variant's folder: its start-up dominates, so this costs about one run."""
    program = find_checkov()
    if program is None:
        if os.environ.get("CI"):
            pytest.fail("checkov not installed; 'make tools' builds .venv-tools with it")
        pytest.skip("checkov not installed: run 'make tools' (or set AIRFLOW_DL_CHECKOV)")
    findings = checkov(rendered_variants, program)
    assert findings == [], "\n".join(map(str, findings))


def test_every_checkov_waiver_has_a_reason():
    for name in TEMPLATES:
        for resource in load_template(name).get("Resources", {}).values():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert len(skip.get("comment", "")) > 20, (name, skip)


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_parameter_has_a_description_a_label_and_a_group(name):
    template = load_template(name)
    params = template["Parameters"]
    interface = template["Metadata"]["AWS::CloudFormation::Interface"]
    assert [p for p, spec in params.items() if len(spec.get("Description", "")) < 10] == []
    assert set(interface["ParameterLabels"]) == set(params)
    grouped = [p for group in interface["ParameterGroups"] for p in group["Parameters"]]
    assert sorted(grouped) == sorted(params), "every parameter in exactly one group"


def test_render_text_matches_shipped_nested_templates():
    out = render(StackOptions())
    assert out["iam.yaml"] == template_text("iam.yaml")


def _condition(template: dict, value, params: dict) -> bool:
    """Just enough of CloudFormation's condition functions for the network template."""
    if "Condition" in value:
        return _condition(template, template["Conditions"][value["Condition"]], params)
    if "Fn::Equals" in value:
        a, b = (params[v["Ref"]] if isinstance(v, dict) else v for v in value["Fn::Equals"])
        return bool(a == b)
    if "Fn::Not" in value:
        return not _condition(template, value["Fn::Not"][0], params)
    if "Fn::And" in value:
        return all(_condition(template, v, params) for v in value["Fn::And"])
    raise AssertionError(f"unhandled condition {value}")


def _network(options: StackOptions) -> dict[str, dict]:
    """network.yaml's resources that exist for ``options``, as the root stack passes them."""
    template = load_template("network.yaml")
    root = options.parameters("https://b/t")
    params = {name: root.get(name, spec.get("Default")) for name, spec in template["Parameters"].items()}
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if "Condition" not in resource or _condition(template, {"Condition": resource["Condition"]}, params)
    }


def _interface_services(resources: dict[str, dict]) -> set[str]:
    return {
        r["Properties"]["ServiceName"]["Fn::Sub"].removeprefix("com.amazonaws.${AWS::Region}.")
        for r in resources.values()
        if r["Type"] == "AWS::EC2::VPCEndpoint" and r["Properties"]["VpcEndpointType"] == "Interface"
    }


# MWAA's "Creating the required VPC service endpoints in an Amazon VPC with private routing"
# (https://docs.aws.amazon.com/mwaa/latest/userguide/vpc-vpe-create-access.html), S3 being the gateway;
# STS for boto3 in tasks, SageMaker for the operators.
PRIVATE_ROUTING = {
    "monitoring",
    "ecr.dkr",
    "ecr.api",
    "logs",
    "sqs",
    "kms",
    "airflow.api",
    "airflow.env",
    "airflow.ops",
    "sts",
    "sagemaker.api",
    "sagemaker.runtime",
}


def test_private_routing_has_every_endpoint_mwaa_needs_and_no_internet():
    resources = _network(StackOptions(nat_gateways=0))
    assert _interface_services(resources) == PRIVATE_ROUTING
    types = {r["Type"] for r in resources.values()}
    assert "AWS::EC2::NatGateway" not in types and "AWS::EC2::InternetGateway" not in types
    gateway = resources["S3Endpoint"]["Properties"]
    assert gateway["VpcEndpointType"] == "Gateway"
    assert gateway["RouteTableIds"] == [{"Ref": "PrivateRouteTable1"}, {"Ref": "PrivateRouteTable2"}]


def test_one_nat_serves_both_private_subnets_and_keeps_only_sagemaker_endpoints():
    resources = _network(StackOptions(nat_gateways=1))
    assert [n for n, r in resources.items() if r["Type"] == "AWS::EC2::NatGateway"] == ["NatGateway1"]
    route2 = resources["DefaultPrivateRoute2"]["Properties"]["NatGatewayId"]
    assert route2 == {"Fn::If": ["TwoNats", {"Ref": "NatGateway2"}, {"Ref": "NatGateway1"}]}
    assert _interface_services(resources) == {"sagemaker.api", "sagemaker.runtime"}


def test_two_nats_put_one_in_each_availability_zone():
    resources = _network(StackOptions(nat_gateways=2))
    nats = {
        n: r["Properties"]["SubnetId"]["Ref"]
        for n, r in resources.items()
        if r["Type"] == "AWS::EC2::NatGateway"
    }
    assert nats == {"NatGateway1": "PublicSubnet1", "NatGateway2": "PublicSubnet2"}
    assert resources["DefaultPrivateRoute1"]["Properties"]["NatGatewayId"] == {"Ref": "NatGateway1"}
    for n in (1, 2):
        assert resources[f"PrivateSubnet{n}RouteTableAssociation"]["Properties"]["RouteTableId"] == {
            "Ref": f"PrivateRouteTable{n}"
        }


def test_an_existing_vpc_gets_only_the_security_groups():
    resources = _network(
        StackOptions(vpc_id="vpc-0123456789abcdef0", subnet_ids=("subnet-0a1b2c3d", "subnet-4e5f6a7b"))
    )
    assert {r["Type"] for r in resources.values()} == {
        "AWS::EC2::SecurityGroup",
        "AWS::EC2::SecurityGroupIngress",
        "AWS::EC2::SecurityGroupEgress",
    }
    for group in ("MwaaSecurityGroup", "EfaSecurityGroup"):
        assert resources[group]["Properties"]["VpcId"] == {
            "Fn::If": ["CreateVpc", {"Ref": "Vpc"}, {"Ref": "VpcId"}]
        }
    outputs = load_template("network.yaml")["Outputs"]
    assert outputs["PrivateSubnetIds"]["Value"]["Fn::If"][2] == {"Ref": "ExistingSubnetIds"}


def test_interface_endpoints_answer_only_mwaa_and_the_jobs():
    ingress = load_template("network.yaml")["Resources"]["EndpointSecurityGroup"]["Properties"][
        "SecurityGroupIngress"
    ]
    assert [(r["FromPort"], r["SourceSecurityGroupId"]["Ref"]) for r in ingress] == [
        (443, "MwaaSecurityGroup"),
        (443, "EfaSecurityGroup"),
    ]


def test_fsx_service_linked_role_may_use_the_bucket_key_through_s3_only():
    template = load_template("storage.yaml")
    statements = template["Resources"]["Key"]["Properties"]["KeyPolicy"]["Statement"]
    (conditional,) = [s for s in statements if "Fn::If" in s]
    condition, statement, otherwise = conditional["Fn::If"]
    assert condition == "WithFsx" and otherwise == {"Ref": "AWS::NoValue"}
    assert template["Conditions"]["WithFsx"] == {"Fn::Equals": [{"Ref": "EnableFsx"}, "true"]}
    assert statement["Condition"]["ArnLike"]["aws:PrincipalArn"]["Fn::Sub"].endswith(
        ":role/aws-service-role/s3.data-source.lustre.fsx.amazonaws.com/AWSServiceRoleForFSxS3Access_fs-*"
    )
    assert statement["Condition"]["StringEquals"]["kms:ViaService"] == {
        "Fn::Sub": "s3.${AWS::Region}.amazonaws.com"
    }
    assert statement["Condition"]["StringEquals"]["kms:CallerAccount"] == {"Ref": "AWS::AccountId"}
    assert "kms:CreateGrant" not in statement["Action"] and not any("*" in a for a in statement["Action"])
    root = load_template(ROOT_TEMPLATE)["Resources"]["StorageStack"]["Properties"]["Parameters"]
    assert root["EnableFsx"] == {"Ref": "EnableFsx"}
