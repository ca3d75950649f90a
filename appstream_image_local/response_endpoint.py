"""A loopback HTTPS endpoint that takes CloudFormation responses (PUT) and keeps them per path."""

from __future__ import annotations

import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

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
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._http.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._http.socket = context.wrap_socket(self._http.socket, server_side=True)
        super().__init__(self._http, "response-endpoint")

    def url(self, name: str) -> str:
        """A presigned-looking URL whose path is `name`."""
        port = self._http.server_address[1]
        return f"https://127.0.0.1:{port}/{name}?X-Amz-Signature=secret-signature&X-Amz-Credential=secret-key"

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
