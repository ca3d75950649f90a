"""JSON log lines carrying the request id, logical id, image name, phase and state."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from typing import Any

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context", default={})  # noqa: B039 - never mutated
_SECRET = re.compile(r"(X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s\"']+", re.IGNORECASE)
_URL = re.compile(r"https://[^\s\"']*X-Amz-Signature=[^\s\"']*", re.IGNORECASE)
FIELDS = ("request_id", "logical_id", "image", "phase", "state")

logger = logging.getLogger("provider")


def redact(text: str) -> str:
    """Drop presigned URLs (the ResponseURL is a credential) and any signature left over."""
    return _SECRET.sub(r"\1REDACTED", _URL.sub("<presigned-url>", text))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"level": record.levelname, "logger": record.name}
        line.update(_context.get())
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        line["message"] = redact(record.getMessage())
        if record.exc_info:
            line["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


def setup(level: int = logging.INFO) -> None:
    """Format every root handler (Lambda installs one) as JSON; quiet the AWS SDK."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stdout))
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())
    root.setLevel(level)
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def bind(**fields: Any) -> None:
    """Attach fields (request id, logical id, image) to every line of this invocation."""
    _context.set({k: v for k, v in fields.items() if v is not None})


def event(message: str, **fields: Any) -> None:
    logger.info(message, extra=fields)
