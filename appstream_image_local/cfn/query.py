"""The AWS Query protocol on loopback: form-encoded requests in, XML answers and errors out.

CloudFormation speaks it (`https://cloudformation.amazonaws.com/doc/2010-05-15/` namespace); the
CLI also asks CloudTrail (JSON 1.1) after a failed deploy, which is answered with no events.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from appstream_image_local.serving import Background

NS = "http://cloudformation.amazonaws.com/doc/2010-05-15/"


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def iso_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def members(form: dict[str, str], prefix: str) -> list[dict[str, str]]:
    """`Prefix.member.N.Field` form fields as a list of dicts, in N order."""
    found: dict[int, dict[str, str]] = {}
    for key, value in form.items():
        if key.startswith(f"{prefix}.member."):
            index, _, name = key[len(prefix) + 8 :].partition(".")
            found.setdefault(int(index), {})[name or "value"] = value
    return [found[i] for i in sorted(found)]


def _xml(value: Any) -> str:
    """A result as Query-protocol XML: dict -> elements, list -> <member>s, None left out."""
    if isinstance(value, dict):
        return "".join(f"<{k}>{_xml(v)}</{k}>" for k, v in value.items() if v is not None)
    if isinstance(value, list):
        return "".join(f"<member>{_xml(v)}</member>" for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso_time(value)
    return escape(str(value))


def answer(action: str, result: dict[str, Any]) -> str:
    return (
        f'<{action}Response xmlns="{NS}"><{action}Result>{_xml(result)}</{action}Result>'
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></{action}Response>"
    )


class QueryServer(Background):
    """`handle(form)` behind HTTP on 127.0.0.1; `url` is http://127.0.0.1:PORT."""

    def __init__(self, handle: Callable[[dict[str, str]], str], name: str) -> None:
        self._handle = handle
        self._http = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        super().__init__(self._http, name)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        target = request.headers.get("X-Amz-Target", "")
        if "CloudTrail_20131101." in target:  # the CLI looks up CloudTrail after a failed deploy
            body: dict[str, Any] = {"Events": []} if target.endswith(".LookupEvents") else {}
            response = Response(json.dumps(body), content_type="application/x-amz-json-1.1")
            return response(environ, start_response)
        try:
            response = Response(self._handle(dict(request.form.items())), content_type="text/xml")
        except ApiError as error:
            response = Response(
                f'<ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type><Code>{error.code}</Code>'
                f"<Message>{escape(error.message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId>"
                "</ErrorResponse>",
                status=error.status,
                content_type="text/xml",
            )
        return response(environ, start_response)
