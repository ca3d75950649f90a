"""Logging the Lambda way: Lambda's JSON log format does the formatting, these filters add context and redact.

With the function's LoggingConfig at LogFormat JSON, the Lambda runtime writes every record as a JSON
line (timestamp, level, message, logger, requestId, and each extra attribute) and applies the
application log level (AWS_LAMBDA_LOG_LEVEL). The provider only adds two filters to the runtime's
handler: one attaches this invocation's request id, logical id, image, phase and state; one redacts
presigned URLs (the ResponseURL is a credential for the response) from messages and tracebacks.
"""

from __future__ import annotations

import contextvars
import logging
import re
import traceback
from typing import Any

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context", default={})  # noqa: B039 - never mutated
# SigV4 (ResponseURL) and SigV2 (a wait condition handle: ?Expires=..&AWSAccessKeyId=..&Signature=..) alike.
_SECRET = re.compile(
    r"((?:X-Amz-(?:Signature|Credential|Security-Token)|AWSAccessKeyId|Signature|x-amz-security-token)=)[^&\s\"']+",
    re.IGNORECASE,
)
_URL = re.compile(r"https://[^\s\"']*[?&](?:X-Amz-)?Signature=[^\s\"']*", re.IGNORECASE)

logger = logging.getLogger("provider")

# Lambda's Python runtime (awslambdaric) reads AWS_LAMBDA_LOG_LEVEL with TRACE as DEBUG; Python knows the rest.
LAMBDA_LOG_LEVELS = {"TRACE": "DEBUG", "DEBUG": "DEBUG", "INFO": "INFO", "WARN": "WARNING", "ERROR": "ERROR",
                     "FATAL": "CRITICAL"}  # fmt: skip


def lambda_log_level(level: str) -> str:
    """The Python level for Lambda's application log level (unknown or unset: INFO)."""
    return LAMBDA_LOG_LEVELS.get(level.upper(), "INFO")


def redact(text: str) -> str:
    """Drop presigned URLs (the ResponseURL is a credential) and any signature left over."""
    return _SECRET.sub(r"\1REDACTED", _URL.sub("<presigned-url>", text))


class Redact(logging.Filter):
    """Presigned URLs never reach a log line: the message and any traceback are redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), ()
        if record.exc_info:
            record.error = redact("".join(traceback.format_exception(*record.exc_info)).rstrip())
            record.exc_info, record.exc_text = None, None
        return True


class Context(logging.Filter):
    """This invocation's fields (bound with `bind`) on every record; the runtime writes them as JSON keys."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


FILTERS = (Context(), Redact())


def install(handler: logging.Handler) -> None:
    for log_filter in FILTERS:
        if log_filter not in handler.filters:
            handler.addFilter(log_filter)


def setup() -> None:
    """Filter every handler of the root logger (the Lambda runtime installs one); quiet the AWS SDK."""
    for handler in logging.getLogger().handlers:
        install(handler)
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def bind(**fields: Any) -> None:
    """Attach fields (request id, logical id, image) to every line of this invocation."""
    _context.set({k: v for k, v in fields.items() if v is not None})


def event(message: str, **fields: Any) -> None:
    logger.info(message, extra=fields)
