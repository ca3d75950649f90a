"""Where moto forgives what AWS refuses, for the calls the provider makes: made to answer as AWS does.

- Lambda AddPermission with a statement id the function's policy already has: AWS answers
  ResourceConflictException ("The statement id (...) provided already exists. Please provide a new
  statement id, or remove the existing statement."); moto 5.2 adds a second statement.
"""

from __future__ import annotations

from typing import Any

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.policy import Policy

_PATCHED = "_appstream_image_local_strict"


class ResourceConflict(LambdaClientError):
    code = 409  # Lambda's status for ResourceConflictException

    def __init__(self, message: str) -> None:
        super().__init__("ResourceConflictException", message)


def apply() -> None:
    """Patch moto's in-process backends (idempotent): every moto server of this process answers strictly."""
    if getattr(Policy, _PATCHED, False):
        return
    original = Policy.add_statement

    def add_statement(self: Policy, raw: str, qualifier: str | None = None) -> tuple[Any, str]:
        statement, revision = original(self, raw, qualifier)
        sid = statement.get("Sid")
        if sid and sum(1 for s in self.statements if s.get("Sid") == sid) > 1:
            self.statements.pop()  # the one just added
            raise ResourceConflict(
                f"The statement id ({sid}) provided already exists. Please provide a new statement id, "
                "or remove the existing statement."
            )
        return statement, revision

    Policy.add_statement = add_statement  # type: ignore[method-assign]
    setattr(Policy, _PATCHED, True)
