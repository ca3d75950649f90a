"""A loopback server run in a daemon thread: what the local AppStream service, moto and the response
endpoint share."""

from __future__ import annotations

import threading
from typing import Protocol, Self


class _Serving(Protocol):
    def serve_forever(self, poll_interval: float = 0.5) -> None: ...
    def shutdown(self) -> None: ...
    def server_close(self) -> None: ...


class Background:
    """`start()` serves in a thread; `stop()` shuts down and closes; also a context manager."""

    def __init__(self, server: _Serving, name: str) -> None:
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
        )

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
