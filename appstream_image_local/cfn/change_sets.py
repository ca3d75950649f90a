"""Change sets, as the CDK CLI and `aws cloudformation deploy` use them: Create, Describe, Delete and
Execute, the "didn't contain changes" failure, and the submission checks a change set shares with
CreateStack and UpdateStack. CloudFormationApi (api.py) mixes this in."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from appstream_image_local.cfn.driver import Cloud, StackFailed
from appstream_image_local.cfn.model import ACCOUNT
from appstream_image_local.cfn.query import ApiError, members
from appstream_image_local.cfn.records import ChangeSet, Record, check_capabilities, now, resource_changes
from appstream_image_local.cfn.summary import TemplateSummaries
from appstream_image_local.cfn.template import Template

# States from which CloudFormation refuses an update ("Stack:<id> is in <state> state and can not be updated.").
NOT_UPDATABLE = frozenset(
    {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_FAILED", "DELETE_FAILED", "REVIEW_IN_PROGRESS"}
)
NO_CHANGES = "The submitted information didn't contain changes. Submit different information to create a change set."


class ChangeSets(TemplateSummaries):
    cloud: Cloud
    records: dict[str, Record]
    _lock: threading.RLock

    def _parameters(self, form: dict[str, str], template: Template, record: Record | None, name: str) -> dict[str, str]:
        raise NotImplementedError  # api.CloudFormationApi

    def _run(self, record: Record, operation: str, work: Any) -> None:
        raise NotImplementedError  # api.CloudFormationApi

    def action_CreateChangeSet(self, form: dict[str, str]) -> dict[str, Any]:  # noqa: N802
        name, change_set_name = form.get("StackName", ""), form.get("ChangeSetName", "")
        kind = form.get("ChangeSetType", "UPDATE")
        with self._lock:
            record = self._find(name)
            if kind == "CREATE" and record is not None and record.status != "REVIEW_IN_PROGRESS":
                raise ApiError("AlreadyExistsException", f"Stack [{name}] already exists")
            if kind == "UPDATE" and (record is None or record.status == "REVIEW_IN_PROGRESS"):
                raise ApiError("ValidationError", f"Stack [{name}] does not exist")
            if record is not None and (record.busy or (kind == "UPDATE" and record.status in NOT_UPDATABLE)):
                raise ApiError(
                    "ValidationError", f"Stack:{record.stack_id} is in {record.status} state and can not be updated."
                )
            change_set = self._submission(form, record, kind, change_set_name)
            if record is None:
                stack_id = f"arn:aws:cloudformation:{self.cloud.region}:{ACCOUNT}:stack/{name}/{uuid.uuid4()}"
                record = Record(name, stack_id, now())
                self.records[stack_id] = record
            live = self.cloud.stacks.get(name)
            physical = {k: v.physical_id for k, v in live.resources.items()} if live else {}
            change_set.changes = resource_changes(change_set.template, record, physical)
            same = (
                kind == "UPDATE"
                and not change_set.changes
                and Template.parse(record.template_body).body == change_set.template.body
                and change_set.parameters == record.parameters
                and change_set.tags == record.tags
            )
            if same:
                change_set.status, change_set.reason = "FAILED", NO_CHANGES
            record.change_sets[change_set_name] = change_set
            return {"Id": change_set.change_set_id, "StackId": record.stack_id}

    def _change_set(self, form: dict[str, str]) -> tuple[Record, ChangeSet]:
        wanted = form.get("ChangeSetName", "")
        stack_name = form.get("StackName", "")
        with self._lock:
            for record in self.records.values():
                if stack_name and stack_name not in (record.name, record.stack_id):
                    continue
                for change_set in record.change_sets.values():
                    if wanted in (change_set.name, change_set.change_set_id):
                        return record, change_set
        raise ApiError("ChangeSetNotFound", f"ChangeSet [{wanted}] does not exist", 404)

    def action_DescribeChangeSet(self, form: dict[str, str]) -> dict[str, Any]:  # noqa: N802
        record, change_set = self._change_set(form)
        return {
            "ChangeSetName": change_set.name,
            "ChangeSetId": change_set.change_set_id,
            "StackId": record.stack_id,
            "StackName": record.name,
            "CreationTime": change_set.created,
            "ExecutionStatus": change_set.execution_status,
            "Status": change_set.status,
            "StatusReason": change_set.reason or None,
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in change_set.parameters.items()],
            "Capabilities": change_set.capabilities,
            "Tags": change_set.tags,
            "Changes": [
                {
                    "Type": "Resource",
                    "ResourceChange": {
                        **c,
                        "Replacement": "Conditional" if c["Action"] == "Modify" else None,
                        "Scope": [],
                        "Details": [],
                    },
                }
                for c in change_set.changes
            ],
            "IncludeNestedStacks": False,
        }

    def action_DeleteChangeSet(self, form: dict[str, str]) -> dict[str, Any]:  # noqa: N802
        try:
            record, change_set = self._change_set(form)
        except ApiError:
            return {}  # the CLI deletes `cdk-deploy-change-set` whether or not one is left over
        with self._lock:
            record.change_sets.pop(change_set.name, None)
        return {}

    def action_ExecuteChangeSet(self, form: dict[str, str]) -> dict[str, Any]:  # noqa: N802
        record, change_set = self._change_set(form)
        with self._lock:
            if change_set.execution_status != "AVAILABLE":
                raise ApiError(
                    "InvalidChangeSetStatus",
                    f"ChangeSet [{change_set.change_set_id}] cannot be executed "
                    f"in its current status of [{change_set.status}]",
                )
            record.change_sets.clear()
            self._execute(record, change_set)
        return {}

    def _execute(self, record: Record, change: ChangeSet) -> None:
        old = (record.template_body, record.parameters, record.tags, record.capabilities)
        record.template_body, record.parameters = change.template_body, change.parameters
        record.tags, record.capabilities = change.tags, change.capabilities

        def work() -> None:
            try:
                self.cloud.deploy_template(record.name, change.template, change.parameters, stack_id=record.stack_id)
            except StackFailed:
                if change.kind == "UPDATE":  # the stack keeps its old template and parameters
                    record.template_body, record.parameters, record.tags, record.capabilities = old
                raise

        self._run(record, change.kind, work)

    def _submission(self, form: dict[str, str], record: Record | None, kind: str, name: str = "") -> ChangeSet:
        """A template, its parameters, tags and capabilities from a request, checked as CloudFormation does."""
        body, template = self._template(form, record)
        capabilities = [m["value"] for m in members(form, "Capabilities")]
        check_capabilities(template, capabilities)
        parameters = self._parameters(form, template, record, form.get("StackName", ""))
        tags = [{"Key": m.get("Key", ""), "Value": m.get("Value", "")} for m in members(form, "Tags")]
        region = self.cloud.region
        change_set_id = f"arn:aws:cloudformation:{region}:{ACCOUNT}:changeSet/{name or 'direct'}/{uuid.uuid4()}"
        return ChangeSet(change_set_id, name, kind, body, template, parameters, tags, capabilities, [], now())
