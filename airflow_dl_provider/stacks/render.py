"""The stack's options, checked before CloudFormation sees them, and the templates they render.

The templates under ``templates/`` are plain CloudFormation YAML written with long-form intrinsic
functions (``Fn::Sub:``, never ``!Sub``), so they load and dump with PyYAML unchanged. Rendering
sets the root template's parameter defaults from :class:`StackOptions`: the rendered folder then
describes exactly the stack that ``deploy`` will create, and the same parameters go to CloudFormation.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path

MWAA_VERSIONS = ("2.11.0", "3.0.6")
ENVIRONMENT_CLASSES = ("mw1.micro", "mw1.small", "mw1.medium", "mw1.large", "mw1.xlarge", "mw1.2xlarge")
ROOT_TEMPLATE = "root.yaml"
NESTED_TEMPLATES = (
    "network.yaml",
    "storage.yaml",
    "iam.yaml",
    "mwaa.yaml",
    "fsx.yaml",
    "workteam.yaml",
    "label_studio.yaml",
    "arrival.yaml",
)
TEMPLATES = (ROOT_TEMPLATE, *NESTED_TEMPLATES)

LOG_TYPES = ("dag_processing", "scheduler", "task", "webserver", "worker")
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
WORKER_REPLACEMENT = ("GRACEFUL", "FORCED")
NAT_GATEWAYS = (0, 1, 2)

_ENV_NAME = re.compile(r"^[a-zA-Z][0-9a-zA-Z_-]{0,79}$")
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
# workteam.yaml appends "-<12-digit account>" to the prefix; Cognito allows 63 characters in all.
_DOMAIN_PREFIX = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$")
# "You can't use the text aws, amazon, or cognito in the domain prefix" (Cognito developer guide,
# cognito-user-pools-assign-domain-prefix).
_DOMAIN_RESERVED = ("aws", "amazon", "cognito")
_BUCKET_CHARS = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
# S3 reserves these for its own features (access points, Object Lambda, directory buckets).
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


class StackError(ValueError):
    """A stack input or state that cannot work; the message is one line naming the input and the fix."""


def _bucket_problem(name: str) -> str | None:
    """Why S3 would refuse ``name`` as a bucket name, or None."""
    if not 3 <= len(name) <= 63:
        return f"is {len(name)} characters; S3 allows 3 to 63"
    if not _BUCKET_CHARS.match(name):
        return "may hold only lowercase letters, digits, '.' and '-', and must start and end with a letter or digit"
    if ".." in name or ".-" in name or "-." in name:
        return "may not have '..', '.-' or '-.'"
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name):
        return "may not look like an IP address"
    for prefix in _BUCKET_PREFIXES:
        if name.startswith(prefix):
            return f"may not start with {prefix!r} (reserved by S3)"
    for suffix in _BUCKET_SUFFIXES:
        if name.endswith(suffix):
            return f"may not end with {suffix!r} (reserved by S3)"
    return None


def _networks(option: str, cidrs: tuple[str, ...]) -> list[ipaddress.IPv4Network]:
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.IPv4Network(cidr, strict=True))
        except ValueError as err:
            raise StackError(f"{option}: {cidr!r} is not an IPv4 CIDR block ({err})") from None
    return networks


@dataclass(frozen=True)
class StackOptions:
    """Everything the root stack is parametrized by.

    :param environment_name: the MWAA environment's name, and the prefix of every other name.
    :param airflow_version: one of the Airflow versions MWAA offers that this provider supports.
    :param bucket_name: the pipeline bucket; empty lets CloudFormation choose one.
    :param private_subnet_cidrs: exactly two, one per Availability Zone (MWAA requires two).
    :param public_subnet_cidrs: exactly two; they hold only the NAT gateways.
    :param vpc_id: an existing VPC to use instead of creating one (with ``subnet_ids``).
    :param subnet_ids: with ``vpc_id``, two private subnets of it in two Availability Zones.
    :param nat_gateways: 0 (private routing through VPC endpoints), 1, or 2 (one per AZ).
    :param log_levels: Airflow log level per log type (:data:`LOG_TYPES`); unnamed types log INFO.
    :param worker_replacement: ``GRACEFUL`` (running tasks finish before an update replaces the
        workers) or ``FORCED``.
    :param enable_fsx: add FSx for Lustre linked to the bucket's ``data/`` prefix.
    :param enable_workteam: add a private Ground Truth workteam backed by Cognito.
    :param workteam_domain_prefix: the labeling portal's Cognito domain prefix; empty derives it from
        ``environment_name`` (the stack appends the account ID: a prefix is global per region).
    :param enable_label_studio: add a private Label Studio service (ECS Fargate, RDS PostgreSQL).
    :param enable_arrival: add the data-arrival queue the bucket notifies of uploads under
        ``arrival_prefix`` (needs ``bucket_name``: the queue policy names the bucket before it exists).
    :param arrival_prefix: the key prefix the pipelines' ``arrival.prefix`` values live under.
    """

    environment_name: str = "airflow-dl"
    airflow_version: str = "3.0.6"
    bucket_name: str = ""
    vpc_cidr: str = "10.192.0.0/16"
    public_subnet_cidrs: tuple[str, ...] = ("10.192.10.0/24", "10.192.11.0/24")
    private_subnet_cidrs: tuple[str, ...] = ("10.192.20.0/24", "10.192.21.0/24")
    vpc_id: str = ""
    subnet_ids: tuple[str, ...] = ()
    nat_gateways: int = 1
    log_levels: Mapping[str, str] = field(default_factory=dict)
    worker_replacement: str = "GRACEFUL"
    environment_class: str = "mw1.small"
    max_workers: int = 5
    webserver_access_mode: str = "PRIVATE_ONLY"
    enable_fsx: bool = False
    fsx_storage_capacity: int = 1200
    enable_workteam: bool = False
    workteam_name: str = "labelers"
    workteam_domain_prefix: str = ""
    enable_label_studio: bool = False
    enable_arrival: bool = False
    arrival_prefix: str = "incoming/"
    extra: Mapping[str, str] = field(default_factory=dict)

    def validate(self) -> StackOptions:
        """Return self, or raise :class:`StackError` naming the first bad option and its fix."""
        if not _ENV_NAME.match(self.environment_name):
            raise StackError(
                f"environment_name: {self.environment_name!r} must start with a letter and hold only "
                "letters, digits, '-' and '_' (at most 80)"
            )
        if self.airflow_version not in MWAA_VERSIONS:
            raise StackError(
                f"airflow_version: MWAA does not offer {self.airflow_version!r} for this provider; "
                f"use one of {', '.join(MWAA_VERSIONS)}"
            )
        if self.bucket_name and (problem := _bucket_problem(self.bucket_name)):
            raise StackError(f"bucket_name: S3 refuses {self.bucket_name!r}: it {problem}")
        if self.environment_class not in ENVIRONMENT_CLASSES:
            raise StackError(
                f"environment_class: {self.environment_class!r} is not one of {', '.join(ENVIRONMENT_CLASSES)}"
            )
        if not 1 <= self.max_workers <= 25:
            raise StackError(f"max_workers: {self.max_workers} is outside MWAA's 1..25")
        if self.fsx_storage_capacity != 1200 and self.fsx_storage_capacity % 2400:
            raise StackError(
                f"fsx_storage_capacity: {self.fsx_storage_capacity} GiB; FSx for Lustre takes 1200 or a multiple of 2400"
            )
        self._validate_logging_and_updates()
        if self.enable_workteam:
            self.domain_prefix()
        if self.enable_arrival:
            self._validate_arrival()
        if self.vpc_id or self.subnet_ids:
            self._validate_existing_vpc()
        else:
            self._validate_network()
        return self

    def _validate_logging_and_updates(self) -> None:
        if self.worker_replacement not in WORKER_REPLACEMENT:
            raise StackError(
                f"worker_replacement: {self.worker_replacement!r} is not one of {', '.join(WORKER_REPLACEMENT)}"
            )
        for log_type, level in self.log_levels.items():
            if log_type not in LOG_TYPES:
                raise StackError(
                    f"log_levels: {log_type!r} is not a log type; use one of {', '.join(LOG_TYPES)}"
                )
            if level not in LOG_LEVELS:
                raise StackError(f"log_levels: {log_type}={level!r}; use one of {', '.join(LOG_LEVELS)}")

    def domain_prefix(self) -> str:
        """The labeling portal's Cognito domain prefix: given, or derived from the environment name."""
        given = bool(self.workteam_domain_prefix)
        slug = re.sub(r"[^a-z0-9]+", "-", self.environment_name.lower()).strip("-")
        prefix = self.workteam_domain_prefix or f"{slug}-labeling"[:50].rstrip("-")
        source = "" if given else " (derived from environment_name)"
        if not _DOMAIN_PREFIX.match(prefix):
            raise StackError(
                f"workteam_domain_prefix: {prefix!r}{source} must be 1-50 lowercase letters, digits and "
                "'-', starting and ending with a letter or digit"
            )
        for word in _DOMAIN_RESERVED:
            if word in prefix:
                raise StackError(
                    f"workteam_domain_prefix: {prefix!r}{source} holds {word!r}, which Cognito refuses in a "
                    "domain prefix; pass --workteam-domain-prefix without it"
                )
        return prefix

    def _validate_arrival(self) -> None:
        if not self.bucket_name:
            raise StackError(
                "bucket_name: the data-arrival queue's policy names the bucket before it exists; "
                "give --bucket-name with --enable-arrival"
            )
        if len(self.environment_name) > 63:
            raise StackError(
                f"environment_name: at most 63 characters with --enable-arrival (SQS names, 80 at most, "
                f"add '-data-arrival-dlq'); got {len(self.environment_name)}"
            )
        if self.arrival_prefix.startswith("/") or not self.arrival_prefix.endswith("/"):
            raise StackError(
                f"arrival_prefix: {self.arrival_prefix!r} must be a key prefix ending in / (e.g. incoming/)"
            )

    def _validate_existing_vpc(self) -> None:
        if not _VPC_ID.match(self.vpc_id):
            raise StackError(
                f"vpc_id: {self.vpc_id!r} is not a VPC ID (vpc-0123456789abcdef0); "
                "give --vpc-id with --subnet-ids, or neither to create a VPC"
            )
        if len(self.subnet_ids) != 2 or len(set(self.subnet_ids)) != 2:
            raise StackError(
                f"subnet_ids: got {', '.join(self.subnet_ids) or 'none'}; MWAA needs two private subnets of "
                f"{self.vpc_id} in two AZs: give exactly two subnet IDs"
            )
        for subnet in self.subnet_ids:
            if not _SUBNET_ID.match(subnet):
                raise StackError(f"subnet_ids: {subnet!r} is not a subnet ID (subnet-0123456789abcdef0)")

    def _validate_network(self) -> None:
        if self.nat_gateways not in NAT_GATEWAYS:
            raise StackError(
                f"nat_gateways: {self.nat_gateways}; use 0 (private routing through VPC endpoints), 1 or 2"
            )
        (vpc,) = _networks("vpc_cidr", (self.vpc_cidr,))
        layouts = [
            ("private_subnet_cidrs", self.private_subnet_cidrs, "MWAA needs two private subnets in two AZs")
        ]
        if self.nat_gateways:
            layouts.append(
                ("public_subnet_cidrs", self.public_subnet_cidrs, "the NAT layout takes one per AZ")
            )
        for option, cidrs, why in layouts:
            if len(cidrs) != 2:
                raise StackError(
                    f"{option}: got {len(cidrs)} subnet(s) ({', '.join(cidrs) or 'none'}); {why}: give exactly two CIDRs"
                )
        subnets = _networks("private_subnet_cidrs", self.private_subnet_cidrs)
        if self.nat_gateways:
            subnets += _networks("public_subnet_cidrs", self.public_subnet_cidrs)
        for subnet in subnets:
            if not subnet.subnet_of(vpc):
                raise StackError(f"subnet {subnet} is outside vpc_cidr {vpc}; pick CIDRs inside it")
        for a, b in itertools.combinations(subnets, 2):
            if a.overlaps(b):
                raise StackError(f"subnets {a} and {b} overlap; give each subnet its own CIDR")

    def parameters(self, templates_url: str, *, create_environment: bool = True) -> dict[str, str]:
        """The root stack's CloudFormation parameters (the artifacts' keys and versions are deploy's)."""
        levels = {log_type: self.log_levels.get(log_type, "INFO") for log_type in LOG_TYPES}
        return {
            "TemplatesUrl": templates_url.rstrip("/"),
            "EnvironmentName": self.environment_name,
            "AirflowVersion": self.airflow_version,
            "BucketName": self.bucket_name,
            "VpcCidr": self.vpc_cidr,
            "PublicSubnetCidrs": ",".join(self.public_subnet_cidrs),
            "PrivateSubnetCidrs": ",".join(self.private_subnet_cidrs),
            "VpcId": self.vpc_id,
            "ExistingSubnetIds": ",".join(self.subnet_ids),
            "NatGateways": str(self.nat_gateways),
            "CreateEnvironment": str(create_environment).lower(),
            "EnvironmentClass": self.environment_class,
            "MaxWorkers": str(self.max_workers),
            "WebserverAccessMode": self.webserver_access_mode,
            "WorkerReplacementStrategy": self.worker_replacement,
            "DagProcessingLogLevel": levels["dag_processing"],
            "SchedulerLogLevel": levels["scheduler"],
            "TaskLogLevel": levels["task"],
            "WebserverLogLevel": levels["webserver"],
            "WorkerLogLevel": levels["worker"],
            "EnableFsx": str(self.enable_fsx).lower(),
            "FsxStorageCapacity": str(self.fsx_storage_capacity),
            "EnableWorkteam": str(self.enable_workteam).lower(),
            "WorkteamName": self.workteam_name,
            "WorkteamDomainPrefix": self.domain_prefix() if self.enable_workteam else "airflow-dl-labeling",
            "EnableLabelStudio": str(self.enable_label_studio).lower(),
            "EnableArrival": str(self.enable_arrival).lower(),
            "ArrivalPrefix": self.arrival_prefix,
            **self.extra,
        }


def template_text(name: str) -> str:
    """The shipped template ``name`` (package data, so it is in the wheel)."""
    if name not in TEMPLATES:
        raise StackError(f"template: {name!r} is not one of {', '.join(TEMPLATES)}")
    return resources.files("airflow_dl_provider.stacks").joinpath("templates", name).read_text()


def load_template(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load(template_text(name)))


def render(
    options: StackOptions, templates_url: str = "https://example-bucket.s3.amazonaws.com/stacks"
) -> dict[str, str]:
    """Every template as text; the root's parameter defaults are ``options``'.

    :return: file name -> YAML text, for :data:`TEMPLATES`.
    """
    options.validate()
    root = load_template(ROOT_TEMPLATE)
    for key, value in options.parameters(templates_url).items():
        if key in root["Parameters"]:
            root["Parameters"][key]["Default"] = value
    rendered = {ROOT_TEMPLATE: yaml.safe_dump(root, sort_keys=False, width=120)}
    rendered.update({name: template_text(name) for name in NESTED_TEMPLATES})
    return rendered


def write(options: StackOptions, out_dir: Path, templates_url: str | None = None) -> list[Path]:
    """Render into ``out_dir``; return the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    args = (templates_url,) if templates_url else ()
    for name, text in render(options, *args).items():
        path = out_dir / name
        path.write_text(text)
        written.append(path)
    return written


def variants(base: StackOptions | None = None) -> Iterator[tuple[str, StackOptions]]:
    """What the templates must lint clean for: each MWAA version with FSx and workteam on/off, then
    each other network layout (private routing, two NAT gateways, an existing VPC) with everything on.
    """
    base = base or StackOptions()
    for version, fsx, workteam in itertools.product(MWAA_VERSIONS, (False, True), (False, True)):
        # Both labeling services' stacks come and go together here: one more axis would double the runs.
        label = f"airflow-{version}{'-fsx' if fsx else ''}{'-workteam-label-studio' if workteam else ''}"
        yield (
            label,
            replace(
                base,
                airflow_version=version,
                enable_fsx=fsx,
                enable_workteam=workteam,
                enable_label_studio=workteam,
            ),
        )
    # The data-arrival queue needs a bucket name; any valid one lints the same.
    full = replace(
        base,
        enable_fsx=True,
        enable_workteam=True,
        enable_label_studio=True,
        enable_arrival=True,
        bucket_name=base.bucket_name or "airflow-dl-example-data",
    )
    yield "nat-0", replace(full, vpc_id="", subnet_ids=(), nat_gateways=0)
    yield "nat-2", replace(full, vpc_id="", subnet_ids=(), nat_gateways=2)
    if not base.vpc_id:
        full = replace(
            full, vpc_id="vpc-0123456789abcdef0", subnet_ids=("subnet-0a1b2c3d", "subnet-4e5f6a7b")
        )
    yield "existing-vpc", full
