"""``airflow-dl stack render|validate|package|deploy|status`` and ``airflow-dl trigger``.

:func:`register` adds both commands to the ``airflow-dl`` parser. Every bad input ends the command
with one line on stderr naming the option and the fix, and exit status 1.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_dl_provider.stacks.render import MWAA_VERSIONS, StackError, StackOptions

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable


def _guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except StackError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1

    return run


def _cidrs(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _log_levels(pairs: list[str]) -> dict[str, str]:
    levels = {}
    for pair in pairs:
        log_type, sep, level = pair.partition("=")
        if not sep:
            raise StackError(f"--log-level: {pair!r} is not TYPE=LEVEL, e.g. task=DEBUG")
        levels[log_type.strip().replace("-", "_")] = level.strip().upper()
    return levels


def options_from(args: argparse.Namespace) -> StackOptions:
    return StackOptions(
        environment_name=args.environment_name,
        airflow_version=args.airflow_version,
        bucket_name=args.bucket_name,
        vpc_cidr=args.vpc_cidr,
        public_subnet_cidrs=_cidrs(args.public_subnets),
        private_subnet_cidrs=_cidrs(args.private_subnets),
        vpc_id=args.vpc_id,
        subnet_ids=_cidrs(args.subnet_ids),
        nat_gateways=args.nat_gateways,
        log_levels=_log_levels(args.log_level),
        worker_replacement=args.worker_replacement,
        environment_class=args.environment_class,
        max_workers=args.max_workers,
        webserver_access_mode=args.webserver_access_mode,
        enable_fsx=args.fsx,
        enable_workteam=args.workteam,
        workteam_name=args.workteam_name,
        workteam_domain_prefix=args.workteam_domain_prefix,
        enable_label_studio=args.label_studio,
        enable_arrival=args.enable_arrival,
        arrival_prefix=args.arrival_prefix,
    ).validate()


def _add_options(p: argparse.ArgumentParser) -> None:
    d = StackOptions()
    g = p.add_argument_group("stack options")
    g.add_argument("--environment-name", default=d.environment_name)
    # No argparse choices: the one-line error names the versions MWAA offers.
    g.add_argument("--airflow-version", default=d.airflow_version, help=f"one of {', '.join(MWAA_VERSIONS)}")
    g.add_argument("--bucket-name", default="", help="default: CloudFormation names it")
    g.add_argument("--vpc-cidr", default=d.vpc_cidr)
    g.add_argument(
        "--public-subnets", default=",".join(d.public_subnet_cidrs), help="two CIDRs, comma-separated"
    )
    g.add_argument(
        "--private-subnets", default=",".join(d.private_subnet_cidrs), help="two CIDRs, comma-separated"
    )
    g.add_argument(
        "--vpc-id", default="", help="use this existing VPC (with --subnet-ids) instead of a new one"
    )
    g.add_argument("--subnet-ids", default="", help="with --vpc-id: two private subnet IDs, comma-separated")
    g.add_argument(
        "--nat-gateways",
        type=int,
        default=d.nat_gateways,
        help="new VPC: 0 (private routing, VPC endpoints only), 1, or 2 (one per AZ)",
    )
    g.add_argument(
        "--log-level",
        action="append",
        default=[],
        metavar="TYPE=LEVEL",
        help="Airflow log level per type (dag_processing, scheduler, task, webserver, worker); default INFO",
    )
    g.add_argument(
        "--worker-replacement",
        default=d.worker_replacement,
        help="GRACEFUL (running tasks finish before an update replaces workers) or FORCED",
    )
    g.add_argument("--environment-class", default=d.environment_class)
    g.add_argument("--max-workers", type=int, default=d.max_workers)
    g.add_argument(
        "--webserver-access-mode", default=d.webserver_access_mode, choices=["PRIVATE_ONLY", "PUBLIC_ONLY"]
    )
    g.add_argument("--fsx", action="store_true", help="add FSx for Lustre linked to the bucket")
    g.add_argument("--workteam", action="store_true", help="add a private Ground Truth workteam (Cognito)")
    g.add_argument(
        "--label-studio", action="store_true", help="add a private Label Studio service (ECS Fargate, RDS)"
    )
    g.add_argument(
        "--enable-arrival", action="store_true", help="add the SQS queue the bucket notifies of uploads"
    )
    g.add_argument("--arrival-prefix", default=d.arrival_prefix, help="key prefix the notifications cover")
    g.add_argument("--workteam-name", default=d.workteam_name)
    g.add_argument(
        "--workteam-domain-prefix",
        default="",
        help="labeling portal's Cognito domain prefix (default: from the environment name)",
    )


def _session(args: argparse.Namespace) -> Any:
    import boto3

    return boto3.session.Session(region_name=args.region, profile_name=args.profile)


@_guarded
def render_command(args: argparse.Namespace) -> int:
    from airflow_dl_provider.stacks.render import write

    for path in write(options_from(args), Path(args.out), args.templates_url):
        print(path)
    return 0


@_guarded
def validate_command(args: argparse.Namespace) -> int:
    from airflow_dl_provider.stacks.lint import validate
    from airflow_dl_provider.stacks.render import variants, write

    with tempfile.TemporaryDirectory(prefix="airflow-dl-stacks-") as tmp:
        if args.dir:
            folder = Path(args.dir)
        else:
            # One folder per variant under one root: checkov runs once for all of them.
            folder = Path(tmp)
            for label, options in variants(options_from(args)):
                write(options, folder / label)
        findings, ran = validate(folder, require_checkov=args.require_checkov)
    print(f"{ran}: {len(findings)} problem(s)")
    for finding in findings:
        print(f"  {finding}")
    return 1 if findings else 0


@_guarded
def package_command(args: argparse.Namespace) -> int:
    from airflow_dl_provider.stacks.package import package

    result = package(
        Path(args.out),
        airflow_version=args.airflow_version,
        mwaa_constraints=Path(args.mwaa_constraints) if args.mwaa_constraints else None,
        project_dir=Path(args.project_dir),
        dags_dir=Path(args.dags_folder) if args.dags_folder else None,
        plugins_dir=Path(args.plugins_folder) if args.plugins_folder else None,
        python=args.python,
    )
    print(f"wheel:            {result.wheel}")
    print(
        f"plugins.zip:      {result.plugins_zip} (wheels/: the provider + {len(result.wheelhouse)} "
        "wheels MWAA's image lacks; constraints.txt)"
    )
    print(f"requirements.txt: {result.requirements}")
    if result.dags:
        code = f" (with {', '.join(result.training_code)})" if result.training_code else ""
        print(f"dags:             {result.dags}{code}")
    return 0


@_guarded
def deploy_command(args: argparse.Namespace) -> int:
    from airflow_dl_provider.stacks.deploy import deploy

    outputs = deploy(
        _session(args),
        options_from(args),
        stack_name=args.stack_name,
        package_dir=Path(args.package_dir),
        templates_bucket=args.templates_bucket,
        allow_replace=args.allow_replace,
    )
    print(json.dumps(outputs, indent=2, sort_keys=True))
    return 0


@_guarded
def status_command(args: argparse.Namespace) -> int:
    from airflow_dl_provider.stacks.deploy import status

    print("\n".join(status(_session(args), args.stack_name)))
    return 0


@_guarded
def trigger_command(args: argparse.Namespace) -> int:
    """Exit 0 (run succeeded), 1 (failed, or a bad input), 2 (timed out), 3 (unreachable or refused access)."""
    from botocore.exceptions import BotoCoreError

    from airflow_dl_provider.stacks import trigger

    try:
        conf = json.loads(args.conf)
    except json.JSONDecodeError as err:
        raise StackError(f"--conf: not JSON ({err.msg}); pass an object like '{{\"key\": 1}}'") from None
    poll = trigger.Poll(
        interval=args.poll_interval, timeout=args.timeout, retry=trigger.Retry(attempts=args.retries + 1)
    )
    run_id = args.run_id or trigger.default_run_id()
    try:
        runner: Any
        if args.url:
            token = args.token or os.environ.get("AIRFLOW_API_TOKEN")
            password = args.password or os.environ.get("AIRFLOW_API_PASSWORD", "")
            runner = trigger.AirflowRestApi(
                args.url, token=token, username=args.username, password=password, poll=poll
            )
        elif args.mwaa_env:
            mwaa = _session(args).client("mwaa")
            kind = trigger.MwaaCli if args.via == "cli" else trigger.MwaaRestApi
            runner = kind(mwaa, args.mwaa_env, poll=poll)
        else:
            raise StackError(
                "trigger: give --mwaa-env NAME (Amazon MWAA) or --url URL (an Airflow 3 REST API)"
            )
        state = runner.run(args.dag_id, run_id, conf, unpause=args.unpause, poll=poll)
    except trigger.Unreachable as err:
        print(f"error: {err}", file=sys.stderr)
        return trigger.EXIT_UNREACHABLE
    except BotoCoreError as err:  # no credentials, an unknown profile or region
        print(f"error: AWS: {' '.join(str(err).split())}", file=sys.stderr)
        return trigger.EXIT_UNREACHABLE
    print(f"{args.dag_id} {run_id}: {state}")
    return trigger.EXIT_CODES[state]


def register(subparsers: Any) -> None:
    """Add ``stack`` and ``trigger`` to the ``airflow-dl`` command's subparsers."""
    stack = subparsers.add_parser(
        "stack", help="CloudFormation stacks for MWAA: render, validate, package, deploy"
    )
    actions = stack.add_subparsers(dest="stack_command", required=True)

    p = actions.add_parser("render", help="write the templates, parameter defaults set from the options")
    _add_options(p)
    p.add_argument("--out", default="build/stacks")
    p.add_argument("--templates-url", default=None, help="HTTPS S3 folder the nested templates will live in")
    p.set_defaults(func=render_command)

    p = actions.add_parser("validate", help="cfn-lint (and checkov where installed) on every variant")
    _add_options(p)
    p.add_argument("--dir", default=None, help="lint this folder instead of rendering every variant")
    p.add_argument("--require-checkov", action="store_true", help="fail when checkov is not installed")
    p.set_defaults(func=validate_command)

    p = actions.add_parser("package", help="provider wheel, plugins.zip and requirements.txt for MWAA")
    p.add_argument(
        "--airflow-version", default=StackOptions().airflow_version, help=f"one of {', '.join(MWAA_VERSIONS)}"
    )
    p.add_argument(
        "--mwaa-constraints",
        default=None,
        help="folder of MWAA's constraint files and package lists (default: <project-dir>/constraints/mwaa)",
    )
    p.add_argument("--out", default="build/mwaa")
    p.add_argument("--project-dir", default=".")
    p.add_argument("--dags-folder", default="dags")
    p.add_argument("--plugins-folder", default=None)
    p.add_argument(
        "--python",
        default=None,
        help="Python 3.12 (MWAA's) whose pip resolves and downloads; default: pyenv's or PATH's python3.12",
    )
    p.set_defaults(func=package_command)

    for name, func, text in (
        ("deploy", deploy_command, "upload the package and create or update the root stack"),
        ("status", status_command, "the stack, its nested stacks and the MWAA environment"),
    ):
        p = actions.add_parser(name, help=text)
        p.add_argument("--stack-name", default="airflow-dl")
        p.add_argument("--region", default=None)
        p.add_argument("--profile", default=None)
        if name == "deploy":
            _add_options(p)
            p.add_argument("--package-dir", default="build/mwaa")
            p.add_argument("--templates-bucket", required=True, help="an existing bucket for the templates")
            p.add_argument(
                "--allow-replace", action="store_true", help="allow replacing the MWAA environment"
            )
        p.set_defaults(func=func)

    p = subparsers.add_parser(
        "trigger",
        help="start a DAG run on MWAA or an Airflow 3 API and wait for it; "
        "exit 0 succeeded, 1 failed, 2 timed out, 3 unreachable or refused access",
    )
    p.add_argument("dag_id")
    p.add_argument("--mwaa-env", default=None, help="Amazon MWAA environment name")
    p.add_argument(
        "--via", choices=["rest", "cli"], default="rest", help="MWAA: InvokeRestApi or the CLI token"
    )
    p.add_argument("--url", default=None, help="Airflow 3 base URL, e.g. http://localhost:8080")
    p.add_argument("--token", default=None, help="default: $AIRFLOW_API_TOKEN")
    p.add_argument("--username", default="")
    p.add_argument("--password", default="", help="default: $AIRFLOW_API_PASSWORD")
    p.add_argument("--run-id", default=None)
    p.add_argument("--conf", default="{}", help="JSON object")
    p.add_argument("--unpause", action="store_true")
    p.add_argument("--timeout", type=float, default=6 * 3600)
    p.add_argument("--poll-interval", type=float, default=15.0)
    p.add_argument(
        "--retries",
        type=int,
        default=5,
        help="retries of a call that failed transiently (5xx, dropped connection), backing off 2s to 30s",
    )
    p.add_argument("--region", default=None)
    p.add_argument("--profile", default=None)
    p.set_defaults(func=trigger_command)
