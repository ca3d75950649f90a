"""moto on loopback over TLS: S3 (presigned response URLs), EventBridge and Lambda (crhelper's polling).

crhelper always PUTs its response over HTTPS, so the response endpoint must speak TLS with a
certificate the provider process trusts (SSL_CERT_FILE for the PUT, AWS_CA_BUNDLE for botocore).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from moto.moto_server.threaded_moto_server import MotoRequestHandler  # type: ignore[attr-defined]
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server


class MotoTls:
    """A threaded moto server with a certificate; `url` is https://127.0.0.1:PORT."""

    def __init__(self, cert: Path, key: Path) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self.cert = cert
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1",
            0,
            DomainDispatcherApplication(create_backend_app),
            threaded=True,
            request_handler=MotoRequestHandler,
            ssl_context=(str(cert), str(key)),
        )
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> MotoTls:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def env(self) -> dict[str, str]:
        """What a process needs to reach it: endpoints and the certificate to trust."""
        return {
            "AWS_ENDPOINT_URL_S3": self.url,
            "AWS_ENDPOINT_URL_EVENTBRIDGE": self.url,
            "AWS_ENDPOINT_URL_LAMBDA": self.url,
            "AWS_ENDPOINT_URL_IAM": self.url,
            "AWS_CA_BUNDLE": str(self.cert),
            "SSL_CERT_FILE": str(self.cert),
        }
