"""The polling state: what a scheduled invocation needs to continue, kept in the polling input.

EventBridge's target Input holds at most 8192 characters (schedule.polling_input checks it): shares travel
as `<account>:<f|-><b|->`, 28 characters each, so 100 of them fit beside the event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .contract import DEFAULT_IN_USE, DEFAULT_SHARED_ON_DELETE
from .properties import Share
from .states import Phase

RESUME = "_Resume"  # its key in crhelper's CrHelperData


def _encode_share(share: Share) -> str:
    """`<account>:<f|->` `<b|->`: compact, so that 100 of them fit the 8192-character polling input."""
    return f"{share.account_id}:{'f' if share.allow_fleet else '-'}{'b' if share.allow_image_builder else '-'}"


def _decode_share(text: str) -> Share:
    account, _, flags = str(text).partition(":")
    return Share(account, "f" in flags, "b" in flags)


@dataclass(frozen=True)
class Resume:
    """What a scheduled invocation needs to continue, kept in the polling input (at most 8192 characters)."""

    deadline: float
    image: str
    phase: Phase = Phase.SETTLE
    wait: bool = True
    in_use: str = DEFAULT_IN_USE
    shares: tuple[Share, ...] = ()  # the sharing to apply once AVAILABLE
    made: bool = False  # this request made the image: a failure deletes it (Update) or names it (Create)
    revoked: tuple[Share, ...] = ()  # Delete: sharing revoked for a DeleteImage that has not gone ahead yet
    shared_on_delete: str = DEFAULT_SHARED_ON_DELETE
    discard: str = ""  # an image a failed replacement made, removed once it settles (a rollback Update)
    answered: bool = False  # CloudFormation has its answer: this polling finishes the work after it
    signal: str = field(default="", repr=False)  # the wait condition handle to signal once done (a credential)
    not_gone_before: float = 0.0  # Delete: an absent image counts as gone only from then (a stopped poller's run)
    outcome: str = ""  # Phase.SIGNAL: the undelivered signal's status (SUCCESS or FAILURE) and its reason
    reason: str = ""

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "deadline": self.deadline,
            "image": self.image,
            "phase": Phase(self.phase).value,
            "wait": self.wait,
            "in_use": self.in_use,
            "shares": [_encode_share(s) for s in self.shares],
            "made": self.made,
            "revoked": [_encode_share(s) for s in self.revoked],
            "shared_on_delete": self.shared_on_delete,
            "discard": self.discard,
        }
        if self.answered:
            data["answered"] = True
        if self.signal:
            data["signal"] = self.signal
        if self.not_gone_before:
            data["not_gone_before"] = self.not_gone_before
        if self.outcome:
            data["outcome"], data["reason"] = self.outcome, self.reason
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Resume:
        return cls(
            deadline=float(data["deadline"]),
            image=str(data["image"]),
            phase=Phase(data.get("phase", Phase.SETTLE.value)),
            wait=bool(data.get("wait", True)),
            in_use=str(data.get("in_use", DEFAULT_IN_USE)),
            shares=tuple(_decode_share(s) for s in data.get("shares", ())),
            made=bool(data.get("made")),
            revoked=tuple(_decode_share(s) for s in data.get("revoked", ())),
            shared_on_delete=str(data.get("shared_on_delete", DEFAULT_SHARED_ON_DELETE)),
            discard=str(data.get("discard", "")),
            answered=bool(data.get("answered")),
            signal=str(data.get("signal", "")),
            not_gone_before=float(data.get("not_gone_before", 0.0)),
            outcome=str(data.get("outcome", "")),
            reason=str(data.get("reason", "")),
        )


def resume_of(event: Mapping[str, Any]) -> Resume | None:
    """The Resume a scheduled invocation carries (None on a first delivery)."""
    data = event.get("CrHelperData")
    if not event.get("CrHelperPoll") or not isinstance(data, Mapping) or RESUME not in data:
        return None
    return Resume.from_data(data[RESUME])
