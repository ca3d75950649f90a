"""What one invocation's work comes to: the answer's owner (answer.py) acts on it, the step (step.py) returns it.

A failure is an exception whose message becomes the Reason (provider/errors.py); these are the other endings. As the
CDK provider framework's isComplete contract has it, an answer carries Data (the attributes) only when it is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .resume import Resume


@dataclass(frozen=True)
class Done:
    """Finished: answer SUCCESS now with this physical id and these attributes (Fn::GetAtt)."""

    physical_id: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    # The wait condition handle to signal SUCCESS with the answer: its wait was done inline (a credential).
    signal: str = field(default="", repr=False)


@dataclass(frozen=True)
class Continue:
    """Not finished: no answer yet; a scheduled run continues from `state`."""

    state: Resume


@dataclass(frozen=True)
class AnsweredThenContinue:
    """Answer SUCCESS now (the work has started); a scheduled run continues from `state`, which says so
    (answered), and signals its wait condition at the end."""

    physical_id: str
    attributes: Mapping[str, str]
    state: Resume


Outcome = Done | Continue | AnsweredThenContinue
