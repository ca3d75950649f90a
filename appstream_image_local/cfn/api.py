"""A local CloudFormation API (the AWS Query protocol, XML) in front of the driver, for the real CDK CLI.

It answers the calls the pinned CDK CLI makes and the fields it reads (measured against it), and those of
the AWS CLI's `cloudformation` commands (deploy, package, describe-stack-events, wait, delete-stack: listed in
summary.py, which also answers GetTemplateSummary). Change sets, stack statuses, events and exports are kept
here; the driver (`Cloud`) creates, updates and deletes the resources, one operation at a time, in a worker
thread (the CLI polls meanwhile). Functions the driver runs reach it too (`Cloud.serve_api`): a request signed
with a function's key is checked against its role's policies, as IAM would; other keys (the CLI's, the kit's)
are served unchecked. `requests` logs which actions each key asked for.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from datetime import timedelta
from typing import Any

from appstream_image_local.cfn.change_sets import NOT_UPDATABLE, ChangeSets
from appstream_image_local.cfn.driver import Cloud, StackFailed
from appstream_image_local.cfn.model import ACCOUNT, Stack
from appstream_image_local.cfn.query import ApiError, answer, members
from appstream_image_local.cfn.records import Event, Record, now
from appstream_image_local.cfn.template import Template, TemplateError
from appstream_image_local.iam import Context, action_definition, denial_message

log = logging.getLogger(__name__)
PAGE = 100  # events per DescribeStackEvents page
REQUESTS_KEPT = 10_000


class CloudFormationApi(ChangeSets):  # ChangeSets brings TemplateSummaries
    """The Query API's actions over one driver; `handle(form)` answers one request's form fields."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.records: dict[str, Record] = {}  # by stack id, deleted ones included (DescribeStacks by id)
        self._lock = threading.RLock()
        self._work = threading.Lock()  # the driver runs one stack operation at a time
        self._threads: list[threading.Thread] = []
        # (access key, action) of the latest requests, answered or not: which calls a client makes (summary.py).
        self.requests: deque[tuple[str, str]] = deque(maxlen=REQUESTS_KEPT)
        cloud.listeners.append(self._on_event)

    # -- helpers --------------------------------------------------------------------------------------

    def _find(self, name_or_id: str) -> Record | None:
        """The stack by name (not deleted) or by id (deleted ones too), or None."""
        with self._lock:
            if name_or_id.startswith("arn:"):
                return self.records.get(name_or_id)
            live = [r for r in self.records.values() if r.name == name_or_id and not r.deleted]
            return live[-1] if live else None

    def _record(self, name_or_id: str) -> Record:
        """The stack, or CloudFormation's ValidationError for a missing one."""
        record = self._find(name_or_id)
        if record is None:
            raise ApiError("ValidationError", f"Stack with id {name_or_id} does not exist")
        return record

    def _on_event(self, stack: Stack, status: str, kind: str, logical_id: str, reason: str) -> None:
        with self._lock:
            record = self.records.get(stack.stack_id)
            if record is None and kind == "AWS::CloudFormation::Stack":
                # A stack deployed with the driver itself, not through this API: described from its first event on.
                record = self.records[stack.stack_id] = Record(stack.name, stack.stack_id, now())
            if record is None:
                return
            stack_level = kind == "AWS::CloudFormation::Stack"
            live = stack.resources.get(logical_id)
            physical = stack.stack_id if stack_level else (live.physical_id if live else "")
            current = now()
            moment = current.replace(microsecond=current.microsecond // 1000 * 1000)  # the wire has milliseconds
            if record.events and moment <= record.events[-1].timestamp:  # one order, also at millisecond resolution
                moment = record.events[-1].timestamp + timedelta(milliseconds=1)
            event = Event(f"{logical_id}-{uuid.uuid4()}", logical_id, physical, kind, status, reason, moment)
            record.events.append(event)
            if stack_level:
                record.status, record.reason = status, reason

    def _parameters(self, form: dict[str, str], template: Template, record: Record | None, name: str) -> dict[str, str]:
        """Every parameter's value as given (defaults filled in, SSM names kept), checked with the Rules."""
        given: dict[str, str] = {}
        for member in members(form, "Parameters"):
            key = member.get("ParameterKey", "")
            if member.get("UsePreviousValue") == "true":
                if record is None or key not in record.parameters:
                    raise ApiError(
                        "ValidationError",
                        f"Invalid input for parameter key {key}. Cannot specify "
                        "usePreviousValue as true for a parameter key not in the previous template",
                    )
                given[key] = record.parameters[key]
            else:
                given[key] = member.get("ParameterValue", "")
        try:  # checked now, as CloudFormation does; resolved again when run
            resolved = self.cloud.parameters(template, given)
            self.cloud.check_rules(name, template, resolved)
        except TemplateError as error:
            raise ApiError("ValidationError", str(error)) from error
        return {key: given.get(key, str(spec.get("Default", ""))) for key, spec in template.parameters.items()}

    def _run(self, record: Record, operation: str, work: Any) -> None:
        """Run `work()` (a driver call) in a worker thread, after the stack shows `operation` in progress."""
        record.status, record.reason, record.updated = f"{operation}_IN_PROGRESS", "", now()

        def run() -> None:
            with self._work:
                try:
                    work()
                except StackFailed as failure:
                    log.info("%s: %s", record.name, failure)
                    with self._lock:
                        if record.busy:  # failed before its first event: as CloudFormation would end it
                            record.status = {"CREATE": "ROLLBACK_COMPLETE", "UPDATE": "UPDATE_ROLLBACK_COMPLETE"}.get(
                                operation, f"{operation}_FAILED"
                            )
                            record.reason = str(failure)
                except Exception as error:  # the stack shows it; the server keeps serving
                    log.exception("%s failed", operation)
                    with self._lock:
                        record.status = f"{operation}_FAILED"
                        record.reason = f"{type(error).__name__}: {error}"

        thread = threading.Thread(target=run, name=f"cfn-{operation.lower()}-{record.name}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def wait_idle(self, timeout: float = 600) -> None:
        """Until every started stack operation has finished (tests and the demo's clean shutdown)."""
        for thread in list(self._threads):
            thread.join(timeout)

    # -- actions --------------------------------------------------------------------------------------

    def handle(self, form: dict[str, str], access_key: str = "") -> str:
        """One request's answer; `access_key` is the key it was signed with (a function's is checked by IAM)."""
        action = form.get("Action", "")
        self.requests.append((access_key, action))
        method = getattr(self, f"action_{action}", None)
        if method is None:
            log.warning("CloudFormation action %s is not implemented offline", action)
            raise ApiError("InvalidAction", f"The action {action} is not valid for this web service.")
        self._authorize(action, form, access_key)
        return answer(action, method(form))

    def _authorize(self, action: str, form: dict[str, str], access_key: str) -> None:
        """IAM's decision for a function's role, before the stack is looked for, on the stack's ARN.

        Service Authorization Reference: DescribeStacks (as most stack actions) takes a stack ARN and
        aws:ResourceTag; by a name no live stack has, AWS's denial names `stack/NAME/*`.
        """
        principal = self.cloud.functions.iam.principal(access_key)
        if principal is None:
            return
        try:
            resource_level, keys = action_definition("cloudformation", action)
        except KeyError:
            resource_level, keys = False, frozenset()
        name = form.get("StackName", "")
        record = self._find(name) if name else None
        resource = "*"
        if resource_level:
            wildcard = f"arn:aws:cloudformation:{self.cloud.region}:{ACCOUNT}:stack/{name or '*'}/*"
            resource = record.stack_id if record is not None else (name if name.startswith("arn:") else wildcard)
        context: Context = {}
        if record is not None and "aws:ResourceTag/${TagKey}" in keys:
            context = {f"aws:ResourceTag/{t['Key']}": [t["Value"]] for t in record.tags}
        decision = principal.decide(f"cloudformation:{action}", resource, context)
        if not decision.allowed:
            self.cloud.functions.iam.record(decision)
            raise ApiError("AccessDenied", denial_message(principal, decision), 403)

    def _describe(self, record: Record) -> dict[str, Any]:
        stack = self.cloud.stacks.get(record.name)
        if stack is not None and stack.stack_id != record.stack_id:
            stack = None  # a newer stack of the same name
        outputs = (
            [{"OutputKey": k, "OutputValue": v, "ExportName": stack.exports.get(k)} for k, v in stack.outputs.items()]
            if stack is not None
            else []
        )
        return {
            "StackId": record.stack_id,
            "StackName": record.name,
            "ChangeSetId": None,
            "CreationTime": record.created,
            "LastUpdatedTime": record.updated,
            "StackStatus": record.status,
            "StackStatusReason": record.reason or None,
            "DisableRollback": False,
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in record.parameters.items()],
            "Outputs": outputs,
            "Capabilities": record.capabilities,
            "Tags": record.tags,
            "EnableTerminationProtection": False,
        }

    def action_DescribeStacks(self, form: dict[str, str]) -> dict[str, Any]:  # noqa: N802 - AWS's action names
        name = form.get("StackName")
        with self._lock:
            if name:
                record = self._record(name)
                return {"Stacks": [self._describe(record)]}
            return {"Stacks": [self._describe(r) for r in self.records.values() if not r.deleted]}

    def action_CreateStack(self, form: dict[str, str]) -> dict[str, Any]:  # noqa: N802
        name = form.get("StackName", "")
        with self._lock:
            existing = self._find(name)
            if existing is not None:
                raise ApiError("AlreadyExistsException", f"Stack [{name}] already exists")
            change = self._submission(form, None, "CREATE")
            stack_id = f"arn:aws:cloudformation:{self.cloud.region}:{ACCOUNT}:stack/{name}/{uuid.uuid4()}"
            record = Record(name, stack_id, now())
            self.records[stack_id] = record
            self._execute(record, change)
            return {"StackId": stack_id}

    def action_UpdateStack(self, form: dict[str, str]) -> dict[str, Any]:  # noqa: N802
        with self._lock:
            record = self._record(form.get("StackName", ""))
            if record.busy or record.status in NOT_UPDATABLE:
                raise ApiError(
                    "ValidationError", f"Stack:{record.stack_id} is in {record.status} state and can not be updated."
                )
            change = self._submission(form, record, "UPDATE")
            if (
                Template.parse(record.template_body).body == change.template.body
                and change.parameters == record.parameters
            ):
                raise ApiError("ValidationError", "No updates are to be performed.")
            self._execute(record, change)
            return {"StackId": record.stack_id}

    def action_DeleteStack(self, form: dict[str, str]) -> dict[str, Any]:  # noqa: N802
        retain = tuple(m["value"] for m in members(form, "RetainResources"))
        with self._lock:
            record = self._find(form.get("StackName", ""))
            if record is None or record.status.startswith("DELETE_IN_PROGRESS"):
                return {}  # deleting a stack that is not there succeeds
            if record.busy:
                raise ApiError(
                    "ValidationError", f"Stack [{record.name}] cannot be deleted while in status {record.status}"
                )
            if retain and record.status != "DELETE_FAILED":  # API reference, DeleteStack: RetainResources
                raise ApiError(
                    "ValidationError",
                    "Invalid operation on stack. RetainResources can only be specified when the stack is in "
                    "DELETE_FAILED state.",
                )
            in_driver = record.name in self.cloud.stacks and self.cloud.stacks[record.name].stack_id == record.stack_id

            def work() -> None:
                if in_driver:
                    self.cloud.destroy(record.name, retain)
                else:  # never created, or rolled back: nothing left to delete
                    record.status = "DELETE_COMPLETE"

            self._run(record, "DELETE", work)
            return {}

    def action_ContinueUpdateRollback(self, form: dict[str, str]) -> dict[str, Any]:  # noqa: N802
        """Only from UPDATE_ROLLBACK_FAILED; ResourcesToSkip must name resources whose rollback failed."""
        skip = tuple(m["value"] for m in members(form, "ResourcesToSkip"))
        with self._lock:
            record = self._record(form.get("StackName", ""))
            if record.status != "UPDATE_ROLLBACK_FAILED":
                raise ApiError(
                    "ValidationError",
                    f"Stack:{record.stack_id} is in {record.status} state and can not continue update rollback.",
                )
            stack = self.cloud.stacks[record.name]
            failed = {p.logical_id for p in stack.pending}
            unknown = [lid for lid in skip if lid not in failed]
            if unknown:
                raise ApiError(
                    "ValidationError",
                    f"Resources {unknown} cannot be skipped: only resources in UPDATE_FAILED state can be "
                    f"skipped ({sorted(failed)})",
                )
            self._run(record, "UPDATE_ROLLBACK", lambda: self.cloud.continue_update_rollback(record.name, skip))
        return {}

    def action_DescribeStackEvents(self, form: dict[str, str]) -> dict[str, Any]:  # noqa: N802
        record = self._record(form.get("StackName", ""))
        with self._lock:
            events = list(reversed(record.events))
        start = 0
        if form.get("NextToken"):  # the last event of the previous page: newer events do not shift the pages
            ids = [e.event_id for e in events]
            if form["NextToken"] not in ids:
                raise ApiError("ValidationError", "Invalid NextToken")  # (the wording is not measured)
            start = ids.index(form["NextToken"]) + 1
        page = events[start : start + PAGE]  # API reference, DescribeStackEvents: pages of up to 100 events
        members = [
            {
                "StackId": record.stack_id,
                "EventId": e.event_id,
                "StackName": record.name,
                "LogicalResourceId": e.logical_id,
                "PhysicalResourceId": e.physical_id or None,
                "ResourceType": e.resource_type,
                "Timestamp": e.timestamp,
                "ResourceStatus": e.status,
                "ResourceStatusReason": e.reason or None,
            }
            for e in page
        ]
        more = page[-1].event_id if start + PAGE < len(events) else None
        return {"StackEvents": members, "NextToken": more}

    def _resources(self, record: Record) -> list[dict[str, Any]]:
        stack = self.cloud.stacks.get(record.name)
        latest: dict[str, Event] = {}
        with self._lock:
            for event in record.events:
                if event.resource_type != "AWS::CloudFormation::Stack":
                    latest[event.logical_id] = event
        found = []
        for logical_id, event in latest.items():
            live = stack.resources.get(logical_id) if stack is not None else None
            found.append(
                {
                    "LogicalResourceId": logical_id,
                    "PhysicalResourceId": live.physical_id if live else None,
                    "ResourceType": event.resource_type,
                    "Timestamp": event.timestamp,
                    "ResourceStatus": event.status,
                    "ResourceStatusReason": event.reason or None,
                }
            )
        return found

    def action_DescribeStackResources(self, form: dict[str, str]) -> dict[str, Any]:  # noqa: N802
        record = self._record(form.get("StackName", ""))
        wanted = form.get("LogicalResourceId")
        members = [
            {"StackName": record.name, "StackId": record.stack_id, **r}
            for r in self._resources(record)
            if wanted in (None, r["LogicalResourceId"])
        ]
        return {"StackResources": members}

    def action_ListStackResources(self, form: dict[str, str]) -> dict[str, Any]:  # noqa: N802
        record = self._record(form.get("StackName", ""))
        members = [{**r, "LastUpdatedTimestamp": r.pop("Timestamp")} for r in self._resources(record)]
        return {"StackResourceSummaries": members}

    def action_GetTemplate(self, form: dict[str, str]) -> dict[str, Any]:  # noqa: N802
        if form.get("ChangeSetName"):
            _, change_set = self._change_set(form)
            return {"TemplateBody": change_set.template_body, "StagesAvailable": ["Original", "Processed"]}
        record = self._record(form.get("StackName", ""))
        return {"TemplateBody": record.template_body, "StagesAvailable": ["Original", "Processed"]}

    def action_ListExports(self, form: dict[str, str]) -> dict[str, Any]:  # noqa: N802
        with self._lock:
            owners = {
                export: stack.stack_id for stack in self.cloud.stacks.values() for export in stack.exports.values()
            }
            exports = [
                {"ExportingStackId": owners.get(k, ""), "Name": k, "Value": v} for k, v in self.cloud.exports.items()
            ]
        return {"Exports": exports}
