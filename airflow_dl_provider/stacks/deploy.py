"""``stack deploy`` and ``stack status``: change sets, stack events, and the MWAA artifacts.

Every create or update goes through a change set, so what CloudFormation will do is known before it
does it. A change set that would replace or remove the MWAA environment (a new name, new subnets, the
environment switched off) is refused unless the caller said ``--allow-replace``: replacing it drops
the metadata database, so the DAG run history and connections stored there are gone.

The first deploy runs in two steps: the bucket must exist and hold ``requirements.txt`` and
``plugins.zip`` before MWAA can start, so the root stack is created with ``CreateEnvironment=false``,
the artifacts are uploaded, and the environment is added by a second change set that names their S3
object versions (a new version is what makes MWAA reinstall).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from airflow_dl_provider.stacks.render import StackError, StackOptions, render

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from pathlib import Path

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
ENVIRONMENT_TYPE = "AWS::MWAA::Environment"
_TERMINAL_SUFFIXES = ("_COMPLETE", "_FAILED")
_GOOD_STATES = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}


def _say(message: str) -> None:
    print(message, flush=True)


@dataclass
class Waiter:
    """How deploy waits: injectable so tests do not sleep."""

    poll_seconds: float = 5.0
    timeout_seconds: float = 3 * 3600
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    say: Callable[[str], None] = field(default=_say)


def stack_exists(cfn: Any, stack_name: str) -> bool:
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as err:
        if "does not exist" in str(err.response.get("Error", {}).get("Message", "")):
            return False
        raise
    return bool(stacks) and stacks[0]["StackStatus"] != "REVIEW_IN_PROGRESS"


def stack_outputs(cfn: Any, stack_name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _resource_changes(cfn: Any, change_set_id: str) -> Iterator[dict[str, Any]]:
    """Every resource change, descending into nested stacks' change sets."""
    kwargs: dict[str, Any] = {"ChangeSetName": change_set_id}
    while True:
        page = cfn.describe_change_set(**kwargs)
        for change in page.get("Changes", []):
            resource = change.get("ResourceChange", {})
            yield resource
            if resource.get("ResourceType") == "AWS::CloudFormation::Stack" and resource.get("ChangeSetId"):
                yield from _resource_changes(cfn, resource["ChangeSetId"])
        if not page.get("NextToken"):
            return
        kwargs["NextToken"] = page["NextToken"]


def environment_threats(changes: list[dict[str, Any]]) -> list[str]:
    """The MWAA environment changes that lose it: replacement (even conditional) or removal."""
    threats = []
    for change in changes:
        if change.get("ResourceType") != ENVIRONMENT_TYPE:
            continue
        if change.get("Action") == "Remove":
            threats.append(f"{change.get('LogicalResourceId')} would be deleted")
        elif change.get("Replacement") in ("True", "Conditional"):
            why = sorted(
                {d.get("Target", {}).get("Name", "?") for d in change.get("Details", []) if d.get("Target")}
            )
            threats.append(
                f"{change.get('LogicalResourceId')} would be replaced"
                + (f" (changed: {', '.join(why)})" if why else "")
            )
    return threats


def wait_for_change_set(
    cfn: Any, stack_name: str, change_set_id: str, waiter: Waiter
) -> dict[str, Any] | None:
    """The change set once created; None when it holds no changes (nothing to do)."""
    deadline = waiter.clock() + waiter.timeout_seconds
    while True:
        described = cfn.describe_change_set(ChangeSetName=change_set_id, StackName=stack_name)
        status = described["Status"]
        if status == "CREATE_COMPLETE":
            return dict(described)
        if status == "FAILED":
            reason = described.get("StatusReason", "")
            if "didn't contain changes" in reason or "No updates are to be performed" in reason:
                cfn.delete_change_set(ChangeSetName=change_set_id, StackName=stack_name)
                return None
            raise StackError(f"stack deploy: change set for {stack_name} failed: {reason}")
        if waiter.clock() > deadline:
            raise StackError(f"stack deploy: change set for {stack_name} still {status}; try again later")
        waiter.sleep(waiter.poll_seconds)


def _event_line(event: Mapping[str, Any]) -> str:
    reason = f" {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
    stamp = event["Timestamp"]
    stamp = stamp.strftime("%H:%M:%S") if hasattr(stamp, "strftime") else str(stamp)
    return f"  {stamp} {event['ResourceStatus']:<28} {event['ResourceType']:<32} {event['LogicalResourceId']}{reason}"


def watch_stack(cfn: Any, stack_name: str, waiter: Waiter, since_event_id: str | None = None) -> str:
    """Print new stack events until the stack settles; return its final status."""
    seen: set[str] = set()
    deadline = waiter.clock() + waiter.timeout_seconds
    while True:
        events = cfn.describe_stack_events(StackName=stack_name)["StackEvents"]
        fresh = []
        for event in events:  # newest first
            if event["EventId"] == since_event_id:
                break
            if event["EventId"] not in seen:
                fresh.append(event)
        for event in reversed(fresh):
            seen.add(event["EventId"])
            waiter.say(_event_line(event))
        status = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"]
        if status.endswith(_TERMINAL_SUFFIXES) and not status.endswith("IN_PROGRESS"):
            return str(status)
        if waiter.clock() > deadline:
            raise StackError(
                f"stack deploy: {stack_name} still {status}; watch it with 'airflow-dl stack status'"
            )
        waiter.sleep(waiter.poll_seconds)


def apply_change_set(
    cfn: Any,
    stack_name: str,
    template_url: str,
    parameters: Mapping[str, str],
    *,
    allow_replace: bool = False,
    waiter: Waiter | None = None,
) -> str:
    """Create a change set, show it, refuse to lose the environment, execute it, watch the events.

    :return: the stack's final status, or ``NO_CHANGES``.
    :raises StackError: the change set would replace or remove the MWAA environment and
        ``allow_replace`` is False, or the stack did not reach a ``*_COMPLETE`` state.
    """
    waiter = waiter or Waiter()
    exists = stack_exists(cfn, stack_name)
    last_event = None
    if exists:
        last_event = cfn.describe_stack_events(StackName=stack_name)["StackEvents"][0]["EventId"]
    created = cfn.create_change_set(
        StackName=stack_name,
        ChangeSetName=f"airflow-dl-{int(time.time())}",
        ChangeSetType="UPDATE" if exists else "CREATE",
        TemplateURL=template_url,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=CAPABILITIES,
        IncludeNestedStacks=True,
    )
    change_set_id = created["Id"]
    if wait_for_change_set(cfn, stack_name, change_set_id, waiter) is None:
        waiter.say(f"{stack_name}: no changes")
        return "NO_CHANGES"
    changes = list(_resource_changes(cfn, change_set_id))
    for change in changes:
        replacement = f" (replacement: {change['Replacement']})" if change.get("Replacement") else ""
        waiter.say(
            f"  {change.get('Action', '?'):<7} {change.get('ResourceType', '?'):<32} {change.get('LogicalResourceId')}{replacement}"
        )
    threats = environment_threats(changes)
    if threats and not allow_replace:
        cfn.delete_change_set(ChangeSetName=change_set_id, StackName=stack_name)
        raise StackError(
            f"stack deploy: the MWAA environment {'; '.join(threats)}, losing its metadata database; "
            "re-run with --allow-replace if that is intended"
        )
    cfn.execute_change_set(ChangeSetName=change_set_id, StackName=stack_name)
    status = watch_stack(cfn, stack_name, waiter, last_event)
    if status not in _GOOD_STATES:
        raise StackError(f"stack deploy: {stack_name} ended {status}; see the events above")
    return status


def upload_templates(s3: Any, bucket: str, prefix: str, templates: Mapping[str, str]) -> str:
    """Put the rendered templates under ``s3://bucket/prefix/``; return their HTTPS folder URL."""
    prefix = prefix.strip("/")
    for name, text in templates.items():
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=text.encode())
    region = s3.meta.region_name
    return f"https://{bucket}.s3.{region}.amazonaws.com/{prefix}"


def upload_artifacts(s3: Any, bucket: str, package_dir: Path) -> dict[str, str]:
    """Upload ``requirements.txt``, ``plugins.zip`` and ``dags/``; return the S3 versions MWAA pins."""
    versions = {}
    for name, key in (
        ("requirements.txt", "RequirementsObjectVersion"),
        ("plugins.zip", "PluginsObjectVersion"),
    ):
        path = package_dir / name
        if not path.is_file():
            raise StackError(f"--package-dir: {path} is missing; run 'airflow-dl stack package' first")
        response = s3.put_object(Bucket=bucket, Key=name, Body=path.read_bytes())
        versions[key] = response.get("VersionId", "")
    dags = package_dir / "dags"
    for path in sorted(p for p in dags.rglob("*") if p.is_file()) if dags.is_dir() else []:
        s3.put_object(Bucket=bucket, Key=f"dags/{path.relative_to(dags).as_posix()}", Body=path.read_bytes())
    return versions


def deploy(
    session: Any,
    options: StackOptions,
    *,
    stack_name: str,
    package_dir: Path,
    templates_bucket: str,
    templates_prefix: str = "airflow-dl/stacks",
    allow_replace: bool = False,
    waiter: Waiter | None = None,
) -> dict[str, str]:
    """Deploy the root stack and the MWAA artifacts; return the stack's outputs."""
    options.validate()
    waiter = waiter or Waiter()
    cfn, s3 = session.client("cloudformation"), session.client("s3")
    url = upload_templates(s3, templates_bucket, templates_prefix, render(options))
    waiter.say(f"templates: {url}")
    if not stack_exists(cfn, stack_name):
        waiter.say(f"{stack_name}: creating network, storage and IAM first (the bucket must exist for MWAA)")
        apply_change_set(
            cfn,
            stack_name,
            f"{url}/root.yaml",
            options.parameters(url, create_environment=False),
            waiter=waiter,
        )
    bucket = stack_outputs(cfn, stack_name)["BucketName"]
    versions = upload_artifacts(s3, bucket, package_dir)
    waiter.say(f"artifacts: s3://{bucket}/ requirements.txt {versions['RequirementsObjectVersion'] or '-'}")
    parameters = {**options.parameters(url), **versions}
    apply_change_set(
        cfn, stack_name, f"{url}/root.yaml", parameters, allow_replace=allow_replace, waiter=waiter
    )
    return stack_outputs(cfn, stack_name)


def status(session: Any, stack_name: str) -> list[str]:
    """Lines describing the stack, its nested stacks and the MWAA environment."""
    cfn = session.client("cloudformation")
    try:
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as err:
        raise StackError(f"--stack-name: {err.response['Error']['Message']}") from None
    lines = [f"{stack_name}: {stack['StackStatus']}"]
    for resource in cfn.describe_stack_resources(StackName=stack_name)["StackResources"]:
        lines.append(f"  {resource['LogicalResourceId']:<16} {resource['ResourceStatus']}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    lines += [f"  output {key} = {value}" for key, value in sorted(outputs.items())]
    if "EnvironmentArn" in outputs:
        name = outputs["EnvironmentArn"].rsplit("/", 1)[-1]
        env = session.client("mwaa").get_environment(Name=name)["Environment"]
        update = env.get("LastUpdate", {})
        lines.append(
            f"  MWAA {name}: {env['Status']} (Airflow {env.get('AirflowVersion')}; last update {update.get('Status', '-')})"
        )
    return lines
