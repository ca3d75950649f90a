"""moto on loopback over TLS: S3 (presigned response URLs), EventBridge and Lambda (crhelper's polling),
EventBridge Scheduler (one-time schedules, fired by appstream_image_local/cfn/schedules.py).

crhelper always PUTs its response over HTTPS, so the response endpoint must speak TLS with a
certificate the provider process trusts (SSL_CERT_FILE for the PUT, AWS_CA_BUNDLE for botocore).
"""

from __future__ import annotations

import logging
from pathlib import Path

from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.threaded_moto_server import MotoRequestHandler  # type: ignore[attr-defined]
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from appstream_image_local import moto_strict
from appstream_image_local.serving import Background


class MotoTls(Background):
    """A threaded moto server with a certificate; `url` is https://127.0.0.1:PORT."""

    def __init__(self, cert: Path, key: Path) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        moto_strict.apply()
        self.cert = cert
        server: BaseWSGIServer = make_server(
            "127.0.0.1",
            0,
            DomainDispatcherApplication(create_backend_app),
            threaded=True,
            request_handler=MotoRequestHandler,
            ssl_context=(str(cert), str(key)),
        )
        self._moto = server
        super().__init__(server, "moto-tls")

    @staticmethod
    def reset() -> None:
        """Forget every resource: moto keeps its state per process, so a new offline cloud starts empty."""
        moto_api_backend.reset()
        moto_strict.forget_updates()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._moto.server_address[1]}"

    def env(self) -> dict[str, str]:
        """What a process needs to reach it: endpoints and the certificate to trust."""
        return {
            "AWS_ENDPOINT_URL_S3": self.url,
            "AWS_ENDPOINT_URL_EVENTBRIDGE": self.url,
            "AWS_ENDPOINT_URL_LAMBDA": self.url,
            "AWS_ENDPOINT_URL_IAM": self.url,
            "AWS_ENDPOINT_URL_SCHEDULER": self.url,  # boto3's variable for service "scheduler"
            "AWS_CA_BUNDLE": str(self.cert),
            "SSL_CERT_FILE": str(self.cert),
        }
