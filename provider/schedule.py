"""The polling schedule's names and input: an EventBridge rule per request that polls, within EventBridge's limits.

A rule name holds at most 64 characters and a target's Input at most 8192 (EventBridge's quotas); rule names
share one prefix, the one the provider's IAM policy allows.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .contract import RULE_PREFIX

MAX_RULE_NAME = 64
MAX_TARGET_INPUT = 8192
SUFFIX = 8
KEEP_IN_POLL_INPUT = ("ServiceToken", "ImageName", "OnDelete")  # and the Source's Type: a Delete's ending reads them


def rule_name(logical_id: str, suffix: str) -> str:
    """`AppStreamImagePoll-<logical id, cut>-<suffix>`: within 64 characters and one IAM prefix."""
    room = MAX_RULE_NAME - len(RULE_PREFIX) - len(suffix) - 1
    safe = "".join(c for c in logical_id if c.isalnum())[:room]
    return f"{RULE_PREFIX}{safe}-{suffix}"


def image_rule(stack_id: str, logical_id: str, image: str) -> str:
    """The rule of a Create's or Update's polling: named by stack instance, resource and image, so that a Delete
    (a rollback's, also one CloudFormation sends while a cancelled Create still runs) can find it and stop it, and
    a duplicate delivery of the request reuses it."""
    digest = hashlib.sha256(f"{stack_id}\n{logical_id}\n{image}".encode()).hexdigest()[:SUFFIX].upper()
    return rule_name(logical_id, digest)


def polling_input(event: dict[str, Any]) -> str:
    """The scheduled target's Input: the event without what polling does not need.

    A request still waiting to start its copy or update (resume phase "start") keeps all its
    properties: the scheduled invocation starts it from them.
    """
    slim = {k: v for k, v in event.items() if k != "OldResourceProperties"}
    props = event.get("ResourceProperties")
    resume = (event.get("CrHelperData") or {}).get("_Resume") or {}
    if isinstance(props, dict) and resume.get("phase") != "start":
        slim["ResourceProperties"] = {k: props[k] for k in KEEP_IN_POLL_INPUT if k in props}
        source = props.get("Source")
        if isinstance(source, dict) and "Type" in source:
            slim["ResourceProperties"]["Source"] = {"Type": source["Type"]}
    text = json.dumps(slim)
    if len(text) > MAX_TARGET_INPUT:
        raise ValueError(
            f"the polling input would be {len(text)} characters; EventBridge allows {MAX_TARGET_INPUT} "
            "(shorten the Tags to wait for a copy or update slot across invocations)"
        )
    return text
