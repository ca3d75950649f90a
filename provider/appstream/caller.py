"""What the AppStream side needs from the CloudFormation side that calls it: one small Protocol, passed once.

step.py passes the request's Answer (provider/cloudformation/answer.py): it claims and stops polling for the request,
and asks DescribeStacks (provider/cloudformation/stacks.py). Each answer to a question is True, False, or None when
CloudFormation could not be asked: the AppStream side then chooses what loses nothing.
"""

from __future__ import annotations

from typing import Protocol


class Caller(Protocol):
    def claim(self, image: str) -> None:
        """This request made `image`: a FAILED answer (a timeout's too) names it, so the rollback deletes it."""

    def stop_polling(self, image: str) -> bool:
        """Stop this resource's scheduled polling of `image`; True when a run of it may still be under way."""

    def rolling_back(self) -> bool | None:
        """Whether this request's stack is rolling back: a Delete then undoes its Create."""

    def owner_gone(self, owner: str) -> bool | None:
        """Whether the stack instance the ownership tag's value `owner` names no longer exists."""
