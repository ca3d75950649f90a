"""The CloudFormation response, pure: a body that always fits 4096 bytes, a wait condition signal, and their PUT with
retries and backoff; and the answer of a provider that could not load. Stdlib only (handler.py imports it first).

crhelper cuts only the Reason (never Data), takes an HTTP error status as success and retries
forever on exceptions; build_body and put replace that part of it.
"""

from __future__ import annotations

import datetime
import http.client
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..contract import FAILED_CREATE_ID  # stdlib-only, like this module

MAX_BODY = 4096
MAX_REASON = 1000
ECHOED = ("StackId", "LogicalResourceId", "RequestId", "PhysicalResourceId")
ID_LIMITS = (1024, 255, 64)
MIN_REASON = 60
TRUNCATED = " [...] "

logger = logging.getLogger("provider.response")


def _encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), default=str).encode()


def shorten(text: str, limit: int) -> str:
    """Keep the head (the cause) and the tail (the detail) of a long message."""
    if len(text) <= limit:
        return text
    head = max(0, (limit - len(TRUNCATED)) * 2 // 3)
    tail = max(0, limit - len(TRUNCATED) - head)
    return text[:head] + TRUNCATED + (text[-tail:] if tail else "")


def build_body(
    *,
    status: str,
    reason: str,
    physical_id: str,
    stack_id: str,
    request_id: str,
    logical_id: str,
    data: Mapping[str, Any],
    no_echo: bool = False,
) -> bytes:
    """The JSON body, at most 4096 bytes: Reason shortened first, then the largest Data values dropped."""
    body: dict[str, Any] = {
        "Status": status,
        "Reason": shorten(reason, MAX_REASON),
        "PhysicalResourceId": physical_id,
        "StackId": stack_id,
        "RequestId": request_id,
        "LogicalResourceId": logical_id,
        "NoEcho": no_echo,
        "Data": dict(data),
    }
    encoded = _encode(body)
    while len(encoded) > MAX_BODY and body["Data"]:
        largest = max(body["Data"], key=lambda k: len(_encode({k: body["Data"][k]})))
        logger.warning("dropping attribute %s from the response to keep it within %d bytes", largest, MAX_BODY)
        del body["Data"][largest]
        encoded = _encode(body)
    for limit in ID_LIMITS[:1]:  # ids past CloudFormation's own limits: only a malformed request has them
        if len(encoded) > MAX_BODY:
            body.update({key: body[key][:limit] for key in ECHOED})
            encoded = _encode(body)
    if len(encoded) > MAX_BODY:
        spare = max(MIN_REASON, len(body["Reason"]) - (len(encoded) - MAX_BODY))
        body["Reason"] = shorten(body["Reason"], spare)
        encoded = _encode(body)
    for limit in ID_LIMITS[1:]:
        if len(encoded) > MAX_BODY:
            body.update({key: body[key][:limit] for key in ECHOED})
            encoded = _encode(body)
    return encoded


def signal_body(*, success: bool, unique_id: str, data: str, reason: str) -> bytes:
    """A wait condition signal: Status SUCCESS or FAILURE, UniqueId, Data, Reason (CloudFormation user guide,
    "Wait condition signal JSON format"); kept within the response's size bound too."""
    body = {
        "Status": "SUCCESS" if success else "FAILURE",
        "UniqueId": unique_id[:255],
        "Data": data[:MAX_REASON],
        "Reason": shorten(reason, MAX_REASON),
    }
    return _encode(body)


def after_answer(fields: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether this scheduled invocation continues a request CloudFormation already has its answer for, and
    the wait condition handle it signals then ("" for none): its outcome never goes to the ResponseURL."""
    data = fields.get("CrHelperData") if fields.get("CrHelperPoll") else None
    state = data.get("_Resume") if isinstance(data, Mapping) else None
    if not isinstance(state, Mapping) or not state.get("answered"):
        return False, ""
    return True, str(state.get("signal") or "")


def put(
    url: str,
    body: bytes,
    *,
    deadline: float,
    attempts: int = 6,
    first_delay: float = 1.0,
    max_delay: float = 8.0,
    timeout: float = 10.0,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """PUT the body to the presigned URL over TLS; retry errors and error statuses until `deadline`."""
    parts = urlsplit(url)
    path = urlunsplit(("", "", parts.path, parts.query, ""))
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            # crhelper and CloudFormation both use TLS; the default context honours SSL_CERT_FILE.
            left = max(0.5, min(timeout, deadline - clock()))  # an attempt never outlasts the deadline
            connection = http.client.HTTPSConnection(parts.netloc, timeout=left)
            connection.request("PUT", path, body=body, headers={"Content-Type": "", "Content-Length": str(len(body))})
            status = connection.getresponse().status
            connection.close()
            if status < 400:
                logger.info("response delivered (HTTP %d, %d bytes)", status, len(body))
                return True
            problem = f"HTTP {status}"
        except (OSError, http.client.HTTPException) as exc:
            problem = type(exc).__name__
        if attempt == attempts or clock() + delay >= deadline:
            logger.error("could not deliver the response after %d attempts: %s", attempt, problem)
            return False
        logger.warning("response attempt %d failed (%s); retrying in %.1f s", attempt, problem, delay)
        sleep(delay)
        delay = min(max_delay, delay * 2)
    return False


def answer_load_failure(event: Any, context: Any, error: Exception) -> None:
    """The provider could not load: answer FAILED (stdlib only, so this works whatever failed to import)."""
    logger.error("the provider failed to load: %s: %s", type(error).__name__, error)
    fields = event if isinstance(event, dict) else {}
    url = fields.get("ResponseURL")
    remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else 30.0
    answered, handle = after_answer(fields)
    if answered:  # CloudFormation has its answer: the wait condition hears of the failure, if there is one
        if handle:
            props = fields.get("ResourceProperties")
            image = str((props.get("ImageName") if isinstance(props, Mapping) else "") or "image")
            reason = f"The provider failed to load: {type(error).__name__}: {error}"
            body = signal_body(success=False, unique_id=image, data="", reason=reason)
            put(handle, body, deadline=time.time() + max(1.0, remaining - 1.0))
        remove_schedule(fields, context)
        return
    if not isinstance(url, str) or not url:
        logger.error("the event has no ResponseURL; there is nowhere to answer")
        return
    given = fields.get("PhysicalResourceId") if fields.get("RequestType") != "Create" else None
    body = build_body(
        status="FAILED",
        reason=f"The provider failed to load: {type(error).__name__}: {error}",
        physical_id=given if isinstance(given, str) and given else FAILED_CREATE_ID,
        stack_id=str(fields.get("StackId", "")),
        request_id=str(fields.get("RequestId", "")),
        logical_id=str(fields.get("LogicalResourceId", "")),
        data={},
    )
    put(url, body, deadline=time.time() + max(1.0, remaining - 1.0))
    if fields.get("CrHelperPoll"):
        remove_schedule(fields, context)


def remove_schedule(fields: Mapping[str, Any], context: Any) -> None:
    """After answering a scheduled invocation that could not load: remove its rule and permission.

    boto3 is imported here, not above: it may be what failed to load (then the failure is logged).
    """
    rule = str(fields.get("CrHelperRule") or "").rsplit("/", 1)[-1]
    sid = fields.get("CrHelperPermission")
    try:
        import boto3  # noqa: PLC0415 - see the docstring

        if rule:
            events = boto3.client("events")
            events.remove_targets(Rule=rule, Ids=["1"])
            events.delete_rule(Name=rule)
        if sid and context is not None:
            boto3.client("lambda").remove_permission(FunctionName=context.function_name, StatementId=str(sid))
    except Exception as exc:
        logger.error("could not remove the polling schedule %s: %s: %s", rule, type(exc).__name__, exc)


def url_expiry(url: str) -> float | None:
    """A presigned URL's expiry: SigV4 `X-Amz-Date` + `X-Amz-Expires`, or SigV2 `Expires` (epoch seconds).

    CloudFormation signs a wait condition handle for 86399 s from when the stack operation started, not from
    when its wait condition starts: a signal later than that gets 403.
    """
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    try:
        if "X-Amz-Date" in query and "X-Amz-Expires" in query:
            signed = datetime.datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")
            return signed.replace(tzinfo=datetime.UTC).timestamp() + int(query["X-Amz-Expires"][0])
        if "Expires" in query:
            return float(int(query["Expires"][0]))
    except ValueError:
        return None
    return None
