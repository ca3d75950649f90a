"""A loopback HTTPS endpoint that takes CloudFormation responses (PUT) and keeps them per path.

A URL may carry an expiry as a wait condition handle's does (SigV4 X-Amz-Date + X-Amz-Expires): a PUT after it
answers 403 AccessDenied "Request has expired", as S3 answers it.
"""

from __future__ import annotations

import datetime
import json
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from appstream_image_local.moto_strict import expired_answer, url_expiry
from appstream_image_local.serving import Background


class ResponseEndpoint(Background):
    """Records every PUT body by URL path; `fail_next(n)` answers the next n PUTs with HTTP 500."""

    def __init__(self, cert: Path, key: Path) -> None:
        self._lock = threading.Condition()
        self.received: dict[str, list[dict[str, Any]]] = {}
        self.raw: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.arrivals: dict[str, float] = {}  # path -> time.monotonic() of its first response
        self._failures = 0
        self._hangs: list[float] = []
        self.wall_clock: Callable[[], float] = time.time  #: epoch seconds an expiry is checked against
        self.expired: list[str] = []  # paths of PUTs refused because their URL had expired
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._http.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._http.socket = context.wrap_socket(self._http.socket, server_side=True)
        super().__init__(self._http, "response-endpoint")

    def url(self, name: str, *, expires_in: int | None = None, signed_at: float | None = None) -> str:
        """A presigned-looking URL whose path is `name`; with `expires_in`, it carries X-Amz-Date (`signed_at`, epoch
        seconds, default now) and X-Amz-Expires, and a PUT after that expiry is refused."""
        port = self._http.server_address[1]
        expiry = ""
        if expires_in is not None:
            when = self.wall_clock() if signed_at is None else signed_at
            signed = datetime.datetime.fromtimestamp(when, datetime.UTC)
            query = {"X-Amz-Date": signed.strftime("%Y%m%dT%H%M%SZ"), "X-Amz-Expires": str(expires_in)}
            expiry = f"&{urllib.parse.urlencode(query)}"
        return f"https://127.0.0.1:{port}/{name}?X-Amz-Signature=secret-signature&X-Amz-Credential=secret-key{expiry}"

    def hang_next(self, count: int, seconds: float) -> None:
        """Hold the next `count` PUTs for `seconds` before answering (a response URL that times out)."""
        with self._lock:
            self._hangs = [seconds] * count

    def fail_next(self, count: int) -> None:
        with self._lock:
            self._failures = count

    def wait_for(self, name: str, count: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
        with self._lock:
            self._lock.wait_for(lambda: len(self.received.get(name, [])) >= count, timeout=timeout)
            return list(self.received.get(name, []))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms stalls

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                return

            def do_PUT(self) -> None:
                with endpoint._lock:
                    hang = endpoint._hangs.pop() if endpoint._hangs else 0.0
                if hang:
                    time.sleep(hang)
                    self.close_connection = True
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                name = self.path.split("?", 1)[0].lstrip("/")
                expiry, now = url_expiry(self.path), endpoint.wall_clock()
                if expiry is not None and now > expiry:
                    with endpoint._lock:
                        endpoint.expired.append(name)
                    status, headers, answer = expired_answer(expiry, now)
                    self.send_response(status)
                    for header, value in {**headers, "Content-Length": str(len(answer))}.items():
                        self.send_header(header, value)
                    self.end_headers()
                    self.wfile.write(answer.encode())
                    return
                with endpoint._lock:
                    failing = endpoint._failures > 0
                    if failing:
                        endpoint._failures -= 1
                    else:
                        endpoint.raw.append(body)
                        endpoint.headers.append(dict(self.headers))
                        endpoint.received.setdefault(name, []).append(json.loads(body))
                        endpoint.arrivals.setdefault(name, time.monotonic())
                        endpoint._lock.notify_all()
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler
