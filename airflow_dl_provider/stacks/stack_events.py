"""Why a stack operation failed, read from stack events, nested stacks included.

A failure in a nested stack shows in the root's events only as ``Embedded stack ... was not
successfully updated``; the cause is in the nested stack's own events (DescribeStackEvents on its
stack ID, the failed resource's PhysicalResourceId). Cancellations are consequences of another
failure, so they are reported only when nothing else failed.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

NESTED_STACK_TYPE = "AWS::CloudFormation::Stack"
# The statuses a stack operation starts with (the stack's own event).
_OPERATION_STARTS = frozenset(
    {"CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS", "IMPORT_IN_PROGRESS"}
)
_CONSEQUENCES = ("Resource creation cancelled", "Resource update cancelled", "Resource deletion cancelled")
_MAX_REASONS = 3
_MAX_PAGES = 10


def _last_operation(cfn: Any, stack_id: str) -> list[dict[str, Any]]:
    """The events of the stack's last operation, newest first."""
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"StackName": stack_id}
    for _ in range(_MAX_PAGES):
        page = cfn.describe_stack_events(**kwargs)
        for event in page.get("StackEvents", []):
            events.append(event)
            own = event.get("PhysicalResourceId") == event.get("StackId")
            if own and event.get("ResourceStatus") in _OPERATION_STARTS:
                return events
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    return events


def failure_reasons(cfn: Any, stack_id: str) -> list[str]:
    """``"<NestedStack>/<Resource>: <reason>"`` for each resource that failed in the stack's last
    operation, oldest first, at most three, descending into failed nested stacks.
    """
    causes, cancelled = _failures(cfn, stack_id, "", depth=3)
    return (causes or cancelled)[:_MAX_REASONS]


def _failures(cfn: Any, stack_id: str, path: str, depth: int) -> tuple[list[str], list[str]]:
    """(causes, cancellations) of one stack's last operation."""
    causes: list[str] = []
    cancelled: list[str] = []
    for event in reversed(_last_operation(cfn, stack_id)):
        if not str(event.get("ResourceStatus", "")).endswith("_FAILED"):
            continue
        if event.get("PhysicalResourceId") == event.get("StackId"):
            continue  # the stack's own summary ("The following resource(s) failed to ...")
        where = f"{path}{event['LogicalResourceId']}"
        nested_id = str(event.get("PhysicalResourceId") or "")
        if event.get("ResourceType") == NESTED_STACK_TYPE and nested_id.startswith("arn:") and depth > 0:
            try:
                inner_causes, inner_cancelled = _failures(cfn, nested_id, f"{where}/", depth - 1)
            except ClientError:  # not allowed to read it: the parent's own reason will do
                inner_causes, inner_cancelled = [], []
            if inner_causes or inner_cancelled:
                causes += [c for c in inner_causes if c not in causes]
                cancelled += [c for c in inner_cancelled if c not in cancelled]
                continue
        reason = str(event.get("ResourceStatusReason") or "")
        line = f"{where}: {reason or event['ResourceStatus']}"
        (cancelled if reason.startswith(_CONSEQUENCES) else causes).append(line)
    return causes, cancelled
