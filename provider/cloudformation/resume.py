"""The resumable state: what a scheduled invocation needs to continue, kept in its polling input.

It travels as `CrHelperData._Resume` (the key crhelper's polling used, so that runs made by earlier versions
still resume). EventBridge's target Input holds at most 8192 characters (schedule.polling_input checks it):
shares travel in their compact form (`<account>:<f|-><b|->`, appstream/properties.Share.compact), so 100 of
them fit beside the event. The AppStream side's values are kept as they are given (strings), never read here.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..contract import DEFAULT_IN_USE, DEFAULT_SHARED_ON_DELETE

RESUME = "_Resume"  # its key in the polling input's CrHelperData


class Phase(enum.StrEnum):
    """What a scheduled invocation resumes."""

    START = "start"  # the copy or update is not started yet (waiting for a slot): needs the full properties
    SETTLE = "settle"  # waiting for AVAILABLE, then sharing
    DELETE = "delete"  # waiting until the image is gone
    DISCARD = "discard"  # a rollback Update removes the image a failed replacement made
    SIGNAL = "signal"  # the work is done; its signal to the wait condition could not be delivered yet


@dataclass(frozen=True)
class Resume:
    """What a scheduled invocation needs to continue, kept in the polling input (at most 8192 characters)."""

    deadline: float
    image: str
    phase: Phase = Phase.SETTLE
    wait: bool = True
    in_use: str = DEFAULT_IN_USE
    shares: tuple[str, ...] = ()  # the sharing to apply once AVAILABLE (compact form)
    made: bool = False  # this request made the image: a failure deletes it (Update) or names it (Create)
    revoked: tuple[str, ...] = ()  # Delete: sharing revoked for a DeleteImage that has not gone ahead yet
    shared_on_delete: str = DEFAULT_SHARED_ON_DELETE
    discard: str = ""  # an image a failed replacement made, removed once it settles (a rollback Update)
    answered: bool = False  # CloudFormation has its answer: this polling finishes the work after it
    signal: str = field(default="", repr=False)  # the wait condition handle to signal once done (a credential)
    not_gone_before: float = 0.0  # Delete: an absent image counts as gone only from then (a stopped poller's run)
    export_task: str = ""  # Export: the export task this request follows (appstream/exports.follow)
    outcome: str = ""  # Phase.SIGNAL: the undelivered signal's status (SUCCESS or FAILURE) and its reason
    reason: str = ""
    # Delete with Keep: retired images still to delete after `image` (each waited for), and whether `image` is one.
    then_delete: tuple[str, ...] = ()
    retired: bool = False

    @property
    def needs_properties(self) -> bool:
        """A request still waiting to start its copy or update starts it from its full properties."""
        return self.phase == Phase.START

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "deadline": self.deadline,
            "image": self.image,
            "phase": Phase(self.phase).value,
            "wait": self.wait,
            "in_use": self.in_use,
            "shares": list(self.shares),
            "made": self.made,
            "revoked": list(self.revoked),
            "shared_on_delete": self.shared_on_delete,
            "discard": self.discard,
        }
        if self.answered:
            data["answered"] = True
        if self.signal:
            data["signal"] = self.signal
        if self.not_gone_before:
            data["not_gone_before"] = self.not_gone_before
        if self.export_task:
            data["export_task"] = self.export_task
        if self.outcome:
            data["outcome"], data["reason"] = self.outcome, self.reason
        if self.then_delete:
            data["then_delete"] = list(self.then_delete)
        if self.retired:
            data["retired"] = True
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Resume:
        return cls(
            deadline=float(data["deadline"]),
            image=str(data["image"]),
            phase=Phase(data.get("phase", Phase.SETTLE.value)),
            wait=bool(data.get("wait", True)),
            in_use=str(data.get("in_use", DEFAULT_IN_USE)),
            shares=tuple(str(s) for s in data.get("shares", ())),
            made=bool(data.get("made")),
            revoked=tuple(str(s) for s in data.get("revoked", ())),
            shared_on_delete=str(data.get("shared_on_delete", DEFAULT_SHARED_ON_DELETE)),
            discard=str(data.get("discard", "")),
            answered=bool(data.get("answered")),
            signal=str(data.get("signal", "")),
            not_gone_before=float(data.get("not_gone_before", 0.0)),
            export_task=str(data.get("export_task", "")),
            outcome=str(data.get("outcome", "")),
            reason=str(data.get("reason", "")),
            then_delete=tuple(str(s) for s in data.get("then_delete", ())),
            retired=bool(data.get("retired")),
        )


def resume_of(event: Mapping[str, Any]) -> Resume | None:
    """The Resume a scheduled invocation carries (None on a first delivery)."""
    data = event.get("CrHelperData")
    if not event.get("CrHelperPoll") or not isinstance(data, Mapping) or RESUME not in data:
        return None
    return Resume.from_data(data[RESUME])


def polling_data(state: Resume) -> dict[str, Any]:
    """The polling input's CrHelperData for `state`."""
    return {RESUME: state.to_data()}
