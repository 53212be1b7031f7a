"""``stack deploy`` and ``stack status``: change sets, stack states, and the MWAA artifacts.

Every create or update goes through a change set, so what CloudFormation will do is known before it
does it. A change set that would replace or remove the MWAA environment (a new name, new subnets, the
environment switched off) is refused unless the caller said ``--allow-replace``: replacing it drops
the metadata database, so the DAG run history and connections stored there are gone. A change set
that would update the environment while MWAA is itself busy is refused too: CloudFormation's update
would fail, and so would its rollback.

Order, so that nothing live changes before the guard and the change set pass: the stack's state is
checked (one line saying what to do when it cannot be deployed, with the failure reasons of nested
stacks); ``requirements.txt`` and ``plugins.zip`` are staged under content-addressed keys beside the
live ones (:mod:`~airflow_dl_provider.stacks.artifacts`: identical bytes are not uploaded, so MWAA
is not restarted); the change set that points MWAA at them is created, shown, guarded and executed;
only then are the DAG files synced. The first deploy creates the stack with ``CreateEnvironment=false``
first: the bucket must exist and hold the artifacts before MWAA can start.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from airflow_dl_provider.service_behaviour import (
    MWAA_BUSY_STATUSES,
    MWAA_NO_GRACEFUL_REGIONS,
    STACK_STATES,
)
from airflow_dl_provider.stacks import artifacts
from airflow_dl_provider.stacks.pacing import Poll
from airflow_dl_provider.stacks.render import StackError, StackOptions, render
from airflow_dl_provider.stacks.stack_events import failure_reasons

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from pathlib import Path

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
ENVIRONMENT_TYPE = "AWS::MWAA::Environment"
MWAA_STACK = "MwaaStack"  # root.yaml's nested stack holding the environment
_GOOD_STATES = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}


def default_waiter() -> Poll:
    """CloudFormation every 5 s, for up to 3 hours: creating an MWAA environment alone takes 20-30 minutes."""
    return Poll(interval=5.0, timeout=3 * 3600)


def describe_stack(cfn: Any, stack_name: str) -> dict[str, Any] | None:
    """The stack as DescribeStacks shows it, or None when CloudFormation has no stack of that name."""
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as err:
        # "Stack with id <name> does not exist" (ValidationError): the one not-found answer.
        if "does not exist" in str(err.response.get("Error", {}).get("Message", "")):
            return None
        raise
    return dict(stacks[0]) if stacks else None


def state_line(cfn: Any, stack: Mapping[str, Any]) -> str:
    """One line: the stack's status, the failure reasons (nested stacks included), what to do."""
    status = str(stack["StackStatus"])
    name = str(stack["StackName"])
    todo = STACK_STATES.get(status, ("blocked", "an unknown status; see the CloudFormation console"))[1]
    failed = "FAILED" in status or "ROLLBACK" in status
    reasons = failure_reasons(cfn, str(stack.get("StackId") or name)) if failed else []
    because = f" ({'; '.join(reasons)})" if reasons else ""
    return f"stack deploy: {name} is {status}{because}: {todo.format(stack=name)}"


def deployable_stack(cfn: Any, stack_name: str, waiter: Poll) -> dict[str, Any] | None:
    """The stack to update, or None to create one; raise one line when it cannot be deployed now.

    A stack whose first create rolled back (``ROLLBACK_COMPLETE``) holds nothing and CloudFormation
    accepts no update to it, so it is deleted here and None returned, as the CDK does.
    """
    stack = describe_stack(cfn, stack_name)
    if stack is None:
        return None
    action, todo = STACK_STATES.get(str(stack["StackStatus"]), ("blocked", ""))
    if action == "update":
        if todo:
            waiter.say(f"{stack_name}: {stack['StackStatus']}: {todo}")
        return stack
    if action == "create":
        return None
    if action == "recreate":
        waiter.say(state_line(cfn, stack).removeprefix("stack deploy: ") + "; deleting it to create it again")
        cfn.delete_stack(StackName=stack["StackId"])
        final = watch_stack(cfn, str(stack["StackId"]), waiter)
        if final != "DELETE_COMPLETE":
            raise StackError(state_line(cfn, describe_stack(cfn, str(stack["StackId"])) or stack))
        return None
    raise StackError(state_line(cfn, stack))


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


def updates_environment(changes: list[dict[str, Any]]) -> bool:
    """Does the change set touch the MWAA environment itself (an update restarts it)?"""
    return any(c.get("ResourceType") == ENVIRONMENT_TYPE for c in changes)


def _environment_change(changes: list[dict[str, Any]]) -> str:
    """``created`` (the MWAA stack is added), ``updated``, or ``""``."""
    if any(c.get("LogicalResourceId") == MWAA_STACK and c.get("Action") == "Add" for c in changes):
        return "created"
    return "updated" if updates_environment(changes) else ""


def wait_for_change_set(cfn: Any, stack_name: str, change_set_id: str, waiter: Poll) -> dict[str, Any] | None:
    """The change set once created; None when it holds no changes (nothing to do)."""
    deadline = waiter.clock() + waiter.timeout
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
        waiter.sleep(waiter.interval)


def _event_line(event: Mapping[str, Any]) -> str:
    reason = f" {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
    stamp = event["Timestamp"]
    stamp = stamp.strftime("%H:%M:%S") if hasattr(stamp, "strftime") else str(stamp)
    return f"  {stamp} {event['ResourceStatus']:<28} {event['ResourceType']:<32} {event['LogicalResourceId']}{reason}"


def watch_stack(cfn: Any, stack_name: str, waiter: Poll, since_event_id: str | None = None) -> str:
    """Print new stack events until the stack settles; return its final status."""
    seen: set[str] = set()
    deadline = waiter.clock() + waiter.timeout
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
        stack = describe_stack(cfn, stack_name)
        if stack is None:  # a delete by name ends with the stack gone from DescribeStacks
            return "DELETE_COMPLETE"
        status = str(stack["StackStatus"])
        if STACK_STATES.get(status, ("",))[0] != "busy":
            return status
        if waiter.clock() > deadline:
            raise StackError(
                f"stack deploy: {stack_name} still {status}; watch it with 'airflow-dl stack status'"
            )
        waiter.sleep(waiter.interval)


@dataclass(frozen=True)
class Applied:
    """What one change set did: the stack's final status (``NO_CHANGES`` if none), and what it did to
    the MWAA environment: ``created``, ``updated`` or ``""``."""

    status: str
    environment: str

    @property
    def environment_updated(self) -> bool:
        return self.environment == "updated"


def apply_change_set(
    cfn: Any,
    stack_name: str,
    template_url: str,
    parameters: Mapping[str, str],
    *,
    allow_replace: bool = False,
    waiter: Poll | None = None,
    environment_busy: Callable[[], str | None] = lambda: None,
) -> Applied:
    """Create a change set, show it, refuse to lose the environment, execute it, watch the events.

    :param environment_busy: the MWAA environment's status when it takes no update now, else None;
        asked only when the change set would update the environment.
    :raises StackError: the change set would replace or remove the MWAA environment and
        ``allow_replace`` is False, would update an environment MWAA is busy with, or the stack did not
        reach a ``*_COMPLETE`` state (the line names the failure reasons, nested stacks included).
    """
    waiter = waiter or default_waiter()
    stack = describe_stack(cfn, stack_name)
    exists = stack is not None and stack["StackStatus"] != "REVIEW_IN_PROGRESS"
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
        return Applied("NO_CHANGES", "")
    changes = list(_resource_changes(cfn, change_set_id))
    for change in changes:
        replacement = f" (replacement: {change['Replacement']})" if change.get("Replacement") else ""
        waiter.say(
            f"  {change.get('Action', '?'):<7} {change.get('ResourceType', '?'):<32} {change.get('LogicalResourceId')}{replacement}"
        )
    refusal = None
    threats = environment_threats(changes)
    if threats and not allow_replace:
        refusal = (
            f"stack deploy: the MWAA environment {'; '.join(threats)}, losing its metadata database; "
            "re-run with --allow-replace if that is intended"
        )
    elif exists and updates_environment(changes) and (busy := environment_busy()):
        refusal = (
            f"stack deploy: the MWAA environment is {busy} and takes no update now (CloudFormation's update "
            "and its rollback would both fail); deploy again once it is AVAILABLE"
        )
    if refusal:
        cfn.delete_change_set(ChangeSetName=change_set_id, StackName=stack_name)
        raise StackError(refusal)
    cfn.execute_change_set(ChangeSetName=change_set_id, StackName=stack_name)
    status = watch_stack(cfn, stack_name, waiter, last_event)
    if status not in _GOOD_STATES:
        final = describe_stack(cfn, stack_name) or {"StackName": stack_name, "StackStatus": status}
        raise StackError(state_line(cfn, final))
    return Applied(status, _environment_change(changes))


def upload_templates(
    s3: Any, bucket: str, prefix: str, templates: Mapping[str, str]
) -> tuple[str, list[str]]:
    """Put the rendered templates under ``s3://bucket/prefix/``, skipping those already there.

    :return: their HTTPS folder URL, and the names uploaded.
    """
    prefix = prefix.strip("/")
    uploaded = [
        name
        for name, text in templates.items()
        if artifacts.put_if_changed(s3, bucket, f"{prefix}/{name}", text.encode())[1]
    ]
    return f"https://{bucket}.s3.{s3.meta.region_name}.amazonaws.com/{prefix}", uploaded


def mwaa_status(session: Any, environment_name: str) -> str | None:
    """The environment's status when MWAA would refuse an update now, else None (also when absent)."""
    try:
        status = str(session.client("mwaa").get_environment(Name=environment_name)["Environment"]["Status"])
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    return status if status in MWAA_BUSY_STATUSES else None


def deploy(
    session: Any,
    options: StackOptions,
    *,
    stack_name: str,
    package_dir: Path,
    templates_bucket: str,
    templates_prefix: str = "airflow-dl/stacks",
    allow_replace: bool = False,
    waiter: Poll | None = None,
) -> dict[str, str]:
    """Deploy the root stack and the MWAA artifacts; return the stack's outputs.

    Nothing the environment reads changes unless the change set passed the guard and completed:
    new artifacts wait under new keys, and ``dags/`` is synced last.
    """
    options.validate()
    waiter = waiter or default_waiter()
    cfn, s3 = session.client("cloudformation"), session.client("s3")
    region = s3.meta.region_name
    if options.worker_replacement == "GRACEFUL" and region in MWAA_NO_GRACEFUL_REGIONS:
        raise StackError(
            f"worker_replacement: MWAA has no graceful updates in {region}; pass --worker-replacement FORCED"
        )
    contents = artifacts.read_package(package_dir)
    stack = deployable_stack(cfn, stack_name, waiter)
    url, uploaded = upload_templates(s3, templates_bucket, templates_prefix, render(options))
    waiter.say(f"templates: {url} ({', '.join(uploaded) or 'all'} {'uploaded' if uploaded else 'unchanged'})")
    if stack is None:
        waiter.say(f"{stack_name}: creating network, storage and IAM first (the bucket must exist for MWAA)")
        apply_change_set(
            cfn,
            stack_name,
            f"{url}/root.yaml",
            options.parameters(url, create_environment=False),
            waiter=waiter,
        )
    bucket = stack_outputs(cfn, stack_name).get("BucketName")
    if not bucket:
        raise StackError(
            f"--stack-name: {stack_name} has no BucketName output, so it is not an airflow-dl stack; "
            "pick another --stack-name"
        )
    staged = artifacts.stage(s3, bucket, contents)
    for item in staged.values():
        what = "staged" if item.uploaded else "unchanged"
        waiter.say(f"{item.name}: {what} s3://{bucket}/{item.key} (version {item.version or '-'})")
    applied = apply_change_set(
        cfn,
        stack_name,
        f"{url}/root.yaml",
        {**options.parameters(url), **artifacts.stack_parameters(staged)},
        allow_replace=allow_replace,
        waiter=waiter,
        environment_busy=lambda: mwaa_status(session, options.environment_name),
    )
    done = {
        "created": "created",
        "updated": f"updated ({options.worker_replacement} worker replacement)",
        "": "not updated (nothing it runs changed)",
    }
    waiter.say(f"MWAA {options.environment_name}: {done[applied.environment]}")
    if (package_dir / "dags").is_dir():
        artifacts.sync_dags(s3, bucket, package_dir / "dags", say=waiter.say)
    return stack_outputs(cfn, stack_name)


def status(session: Any, stack_name: str) -> list[str]:
    """Lines describing the stack, its nested stacks and the MWAA environment."""
    cfn = session.client("cloudformation")
    stack = describe_stack(cfn, stack_name)
    if stack is None:
        raise StackError(f"--stack-name: no stack {stack_name!r} in this region; deploy it first")
    lines = [f"{stack_name}: {stack['StackStatus']}"]
    if STACK_STATES.get(str(stack["StackStatus"]), ("blocked",))[0] != "update":
        lines.append("  " + state_line(cfn, stack).removeprefix("stack deploy: "))
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
