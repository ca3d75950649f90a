"""Rollbacks as CloudFormation does them: a failed update or create undone, and the failed states; and the
cleanup that ends an update that did not fail.

(CloudFormation user guide, "Continue rolling back an update".) A resource that fails while an update rolls
back leaves the stack UPDATE_ROLLBACK_FAILED until ContinueUpdateRollback (with ResourcesToSkip);
a delete that fails while a failed create rolls back leaves ROLLBACK_FAILED. The engine (driver.Cloud)
mixes this in.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from appstream_image_local.cfn.graph import first_resource_failure, in_parallel
from appstream_image_local.cfn.model import Live, Pending, ResourceFailed, Stack, StackFailed
from appstream_image_local.cfn.template import Template


class Rollbacks:
    """The rollback half of the engine; the resource operations and events come from driver.Cloud."""

    stacks: dict[str, Stack]
    _attempts: dict[str, dict[str, Any]]

    def _emit(self, stack: Stack, status: str, kind: str, logical_id: str, reason: str = "") -> None:
        raise NotImplementedError  # driver.Cloud

    def _delete_resource(self, stack: Stack, live: Live) -> None:
        raise NotImplementedError  # driver.Cloud

    def _update_live(self, stack: Stack, live: Live, props: dict[str, Any]) -> None:
        raise NotImplementedError  # driver.Cloud

    def _roll_back_update(
        self,
        stack: Stack,
        *,
        old_template: Template,
        old_parameters: dict[str, str],
        created: list[str],
        changed: dict[str, Live],
        old_resources: dict[str, Live],
    ) -> None:
        """Undo a failed update as CloudFormation does; a step that fails is kept in `stack.pending`."""
        stack.pending = []
        failed_new = [lid for lid, live in stack.resources.items() if lid not in old_resources and lid not in created]
        for logical_id in reversed([*created, *failed_new]):
            live = stack.resources.pop(logical_id, None)
            if live is not None:
                self._roll_back_step(stack, Pending(logical_id, "delete", live))
        for logical_id, attempted in self._attempts.items():
            # A resource whose update failed gets an Update back to its old properties too.
            old = old_resources.get(logical_id)
            if old is not None and attempted != old.properties and logical_id not in changed:
                stack.resources[logical_id] = old
                self._roll_back_step(stack, Pending(logical_id, "update", replace(old, properties=attempted), old))
        for logical_id, old in reversed(list(changed.items())):
            current = stack.resources[logical_id]
            stack.resources[logical_id] = old
            if current.physical_id != old.physical_id:  # replaced: delete the new one, keep the old
                self._roll_back_step(stack, Pending(logical_id, "delete", current))
            elif current.properties != old.properties:
                self._roll_back_step(stack, Pending(logical_id, "update", current, old))
        stack.template, stack.parameters = old_template, old_parameters

    def _roll_back_step(self, stack: Stack, step: Pending) -> bool:
        """One rollback action; a failure goes to `stack.pending` (the stack then ends UPDATE_ROLLBACK_FAILED)."""
        try:
            if step.action == "delete":
                self._delete_resource(stack, step.live)
            else:
                assert step.target is not None
                self._emit(stack, "UPDATE_IN_PROGRESS", step.live.type, step.logical_id)
                self._update_live(stack, step.live, step.target.properties)
                self._emit(stack, "UPDATE_COMPLETE", step.live.type, step.logical_id)
        except ResourceFailed as failure:
            if step.action == "update":
                self._emit(stack, "UPDATE_FAILED", step.live.type, step.logical_id, failure.reason)
                stack.resources[step.logical_id] = step.live  # CloudFormation keeps what the failed update left
            stack.pending.append(step)
            return False
        return True

    def _rolled_back(self, stack: Stack) -> None:
        """UPDATE_ROLLBACK_COMPLETE, or UPDATE_ROLLBACK_FAILED while a rollback step is left (user guide)."""
        if stack.pending:
            stack.status = "UPDATE_ROLLBACK_FAILED"
            names = ", ".join(p.logical_id for p in stack.pending)
            self._emit(stack, "UPDATE_ROLLBACK_FAILED", "AWS::CloudFormation::Stack", stack.name,
                       f"The following resource(s) failed to update: [{names}].")  # fmt: skip
            return
        stack.status = "UPDATE_ROLLBACK_COMPLETE"
        self._emit(stack, "UPDATE_ROLLBACK_COMPLETE", "AWS::CloudFormation::Stack", stack.name)

    def continue_update_rollback(self, name: str, skip: tuple[str, ...] = ()) -> None:
        """ContinueUpdateRollback: retry the failed rollback steps; `skip` are marked rolled back, not called."""
        stack = self.stacks[name]
        self._emit(stack, "UPDATE_ROLLBACK_IN_PROGRESS", "AWS::CloudFormation::Stack", name)
        pending, stack.pending = stack.pending, []
        for step in pending:
            if step.logical_id in skip:
                if step.target is not None:
                    stack.resources[step.logical_id] = step.target
                self._emit(stack, "UPDATE_COMPLETE", step.live.type, step.logical_id, "skipped (ResourcesToSkip)")
                continue
            self._roll_back_step(stack, step)
        self._rolled_back(stack)
        if stack.pending:
            raise StackFailed(f"{name}: the rollback failed again for {', '.join(p.logical_id for p in stack.pending)}")

    def _try_delete(self, stack: Stack, live: Live) -> bool:
        try:
            self._delete_resource(stack, live)
        except ResourceFailed:
            return False
        return True

    def _delete_all(self, stack: Stack, template: Template, *, rollback: bool) -> list[str]:
        """Delete every resource, each after what references it, independent ones at once; a rollback goes on
        past failures and returns the logical ids it could not delete (a stack deletion raises the first)."""
        left: list[str] = []

        def delete(logical_id: str) -> None:
            live = stack.resources.get(logical_id)
            if live is None:
                return
            if not rollback and live.deletion_policy == "Retain":
                self._emit(stack, "DELETE_SKIPPED", live.type, logical_id, f"{live.physical_id} retained")
                del stack.resources[logical_id]
                return
            if rollback and not self._try_delete(stack, live):
                left.append(logical_id)
                return
            if not rollback:
                self._delete_resource(stack, live)
            stack.resources.pop(logical_id, None)

        names = [lid for lid in template.order() if lid in stack.resources]
        _, failed = in_parallel(names, template.dependents, delete)
        failure = first_resource_failure(failed)
        if failure is not None:
            raise failure
        return left

    def _clean_up(self, stack: Stack, template: Template, old_template: Template, old: dict[str, Live]) -> None:
        """UPDATE_COMPLETE_CLEANUP_IN_PROGRESS: delete what was removed or replaced, each after what needed it;
        a delete that fails is reported and the resource left behind (the update stays complete)."""
        self._emit(stack, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "AWS::CloudFormation::Stack", stack.name)
        gone = []
        for logical_id, live in old.items():
            current = stack.resources.get(logical_id)
            if logical_id not in template.resources or (
                current is not None and current.physical_id != live.physical_id
            ):
                gone.append(logical_id)

        def clean_up(logical_id: str) -> None:
            live, removed = old[logical_id], logical_id not in template.resources
            policy = live.deletion_policy if removed else live.update_replace_policy
            if policy == "Retain":
                self._emit(stack, "DELETE_SKIPPED", live.type, logical_id, f"{live.physical_id} retained")
            else:
                try:
                    self._delete_resource(stack, live)
                except ResourceFailed as failure:  # CloudFormation reports it and leaves the resource behind
                    self._emit(stack, "DELETE_FAILED", live.type, logical_id, f"{failure.reason} (abandoned)")
            if removed:  # no longer the stack's, whichever way it went
                stack.resources.pop(logical_id, None)

        in_parallel(gone, old_template.dependents, clean_up)
