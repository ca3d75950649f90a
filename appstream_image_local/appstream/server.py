"""The loopback HTTP front of the local AppStream service (JSON 1.1, as botocore sends it).

`POST /` with `X-Amz-Target: PhotonAdminProxyService.<Operation>` runs an operation;
`/_local/...` paths are the test and demo controls (audit log, faults, fleets, state).
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel
from botocore.validate import ParamValidator

from appstream_image_local.appstream.authorize import authorize, denial_message
from appstream_image_local.appstream.errors import ApiError
from appstream_image_local.appstream.faults import COMMON_ERRORS, Fault, FaultInjector
from appstream_image_local.appstream.model import AppStreamBackend
from appstream_image_local.appstream.operations import OPERATIONS, READ_ONLY
from appstream_image_local.appstream.records import TokenBuckets
from appstream_image_local.appstream.regions import Regions, region_of
from appstream_image_local.appstream.validation import constraint_problems, validation_message
from appstream_image_local.iam import IamGate, access_key_of
from appstream_image_local.serving import Background

TARGET_PREFIX = "PhotonAdminProxyService."
JSON_11 = "application/x-amz-json-1.1"


@functools.cache  # read once per process: a new session reads botocore's model files again (about 30 ms)
def _service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("appstream")


class AuditLog:
    """Every call the service answered: operation, parameters, status, error code, faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            entry["seq"] = len(self._entries)
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def calls(self, operation: str, **params: Any) -> list[dict[str, Any]]:
        """Entries for `operation` whose parameters include `params`."""
        return [
            e
            for e in self.entries()
            if e["operation"] == operation and all(e["params"].get(k) == v for k, v in params.items())
        ]

    def mutations(self) -> list[dict[str, Any]]:
        """Successful calls that changed something."""
        return [e for e in self.entries() if e["operation"] not in READ_ONLY and e["status"] == 200]


class LocalAppStream(Background):
    """The service: a backend, a fault injector and an audit log behind a loopback server."""

    def __init__(
        self,
        backend: AppStreamBackend | None = None,
        faults: FaultInjector | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.backend = backend or AppStreamBackend()  # the home region: unsigned calls and controls go here
        self.regions = Regions(self.backend)
        self.faults = faults or FaultInjector()
        self.audit = AuditLog()
        self._model = _service_model()
        self._validator = ParamValidator()
        self.rates = TokenBuckets(self.backend.limits, self.backend.now)
        self.iam = IamGate()
        self._http = ThreadingHTTPServer((host, port), _handler_class(self))
        self._http.daemon_threads = True
        super().__init__(self._http, "local-appstream")

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- request handling -------------------------------------------------------------

    def operation_model(self, operation: str) -> OperationModel:
        if operation not in OPERATIONS:
            raise ApiError("UnknownOperationException", f"The operation {operation} is not supported here.")
        return self._model.operation_model(operation)

    def validate(self, operation: str, params: Any) -> None:
        if not isinstance(params, dict):
            raise ApiError("SerializationException", "The request body is not a JSON object.")
        shape = self.operation_model(operation).input_shape
        assert shape is not None  # every supported operation has an input shape
        report = self._validator.validate(params, shape)
        if report.has_errors():
            raise ApiError("ValidationException", report.generate_report())
        problems = constraint_problems(params, shape)
        if problems:
            raise ApiError("ValidationException", validation_message(problems))

    def authorize(self, backend: AppStreamBackend, operation: str, params: dict[str, Any], access_key: str) -> None:
        principal = self.iam.principal(access_key)
        if principal is None:
            return
        decision = authorize(backend, principal, operation, params)
        if not decision.allowed:
            self.iam.record(decision)
            raise ApiError("AccessDeniedException", denial_message(principal, decision))

    def modelled(self, operation: str, code: str) -> bool:
        """AWS answers only the errors an operation's model lists, plus the common ones."""
        if operation not in OPERATIONS:
            return code in COMMON_ERRORS
        errors = {e.name for e in self._model.operation_model(operation).error_shapes}
        return code in errors or code in COMMON_ERRORS

    def handle(
        self, operation: str, params: Any, access_key: str = "", region: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Run one operation in `region` (the home region by default) and audit it; returns the status and body.

        A call signed with a registered access key (a function's role, offline) is checked against
        that role's IAM policies first.
        """
        started = time.monotonic()
        decision = self.faults.decide(operation, lambda code: not code or self.modelled(operation, code))
        if decision.delay:
            time.sleep(decision.delay)
        entry: dict[str, Any] = {
            "operation": operation,
            "params": params if isinstance(params, dict) else {},
            "faults": list(decision.kinds),
            "time": time.time(),
            "region": region or self.backend.region,
        }
        try:
            if decision.drop:
                entry.update(status=0, error="ConnectionDropped")
                raise ConnectionAbortedError
            if decision.error is not None:
                raise decision.error
            if not self.rates.take(operation):
                raise ApiError("ThrottlingException", "Rate exceeded")
            backend = self.regions.get(region or self.backend.region)
            self.validate(operation, params)
            self.authorize(backend, operation, params, access_key)
            status, body = 200, OPERATIONS[operation](backend, params)
            entry.update(status=200, error=None)
        except ApiError as err:
            if not self.modelled(operation, err.code):  # a bug in this service: never send what AWS cannot
                err = ApiError("InternalFailure", f"unmodelled error {err.code} for {operation}: {err.message}", 500)
            status, body = err.status, {"__type": err.code, "message": err.message}
            entry.update(status=status, error=err.code, message=err.message)
        finally:
            entry["duration"] = time.monotonic() - started
            self.audit.record(entry)
        return status, body

    def control(self, path: str, payload: Any) -> Any:
        """Test and demo controls; not part of AppStream's API."""
        backend = self.backend
        if isinstance(payload, dict) and "region" in payload:  # a control of another region's resources
            backend = self.regions.get(str(payload.pop("region")))
        action = self._controls(backend).get(path)
        if action is None:
            raise ApiError("UnknownOperationException", f"No control at {path}.", 404)
        result = action(payload)
        return {} if result is None else result

    def _controls(self, backend: AppStreamBackend) -> dict[str, Callable[[Any], Any]]:

        def fleet(p: dict[str, Any]) -> None:
            if p.get("require_available"):
                backend.require_available(p.get("image_name", ""))
            if float(p.get("after_seconds", 0)) > 0:
                backend.switch_fleet_image(p["name"], p.get("image_name", ""), float(p["after_seconds"]))
            else:
                backend.set_fleet_image(p["name"], p.get("image_name", ""))

        return {
            "/_local/audit": lambda _: self.audit.entries(),
            "/_local/audit/clear": lambda _: self.audit.clear(),
            "/_local/state": lambda _: backend.snapshot(),
            "/_local/regions": lambda _: {r: b.snapshot() for r, b in self.regions.all().items()},
            "/_local/faults": lambda p: self.faults.add(*(Fault.from_dict(f) for f in p)),
            "/_local/faults/clear": lambda _: self.faults.clear(),
            "/_local/fleet": fleet,
            "/_local/fleets/create": lambda p: (
                backend.add_fleet(
                    p["name"], p.get("image_name", ""), require_available=bool(p.get("require_available"))
                )
                and None
            ),
            "/_local/images/create": lambda p: backend.add_image(**p) and None,  # add_image's keyword arguments
            "/_local/amis/create": lambda p: backend.add_ami(p.pop("id"), **p),
            "/_local/builders/create": lambda p: backend.add_builder(p["name"], p.get("image_name", "")) and None,
            "/_local/fleets/delete": lambda p: backend.remove_fleet(p["name"]),
            "/_local/iam/principals": lambda p: self.iam.register(p["access_key"], p["arn"], p["policies"]),
            "/_local/iam/denials": lambda _: [d.__dict__ for d in self.iam.denials],
        }


def _handler_class(service: LocalAppStream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms stalls

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            return  # the audit log is the record; keep stderr quiet

        def _reply(self, status: int, body: Any, content_type: str = JSON_11) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                # The caller went away (a function that Lambda stopped at its timeout mid-call): the call was
                # made, its answer goes nowhere, as on AWS; no traceback on the cloud's stderr.
                self.close_connection = True

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def do_GET(self) -> None:
            try:
                self._reply(200, service.control(self.path, None), "application/json")
            except ApiError as err:
                self._reply(err.status, {"__type": err.code, "message": err.message}, "application/json")

        def do_POST(self) -> None:
            raw = self._body()
            if self.path.startswith("/_local/"):
                try:
                    payload = json.loads(raw or b"null")
                    self._reply(200, service.control(self.path, payload), "application/json")
                except (ApiError, ValueError, KeyError, TypeError) as err:
                    code = err.code if isinstance(err, ApiError) else "ValidationException"
                    self._reply(400, {"__type": code, "message": str(err)}, "application/json")
                return
            target = self.headers.get("X-Amz-Target", "")
            if self.path != "/" or not target.startswith(TARGET_PREFIX):
                self._reply(400, {"__type": "UnknownOperationException", "message": f"Unknown target {target!r}."})
                return
            try:
                params = json.loads(raw or b"{}")
            except ValueError:
                self._reply(400, {"__type": "SerializationException", "message": "The body is not valid JSON."})
                return
            try:
                authorization = self.headers.get("Authorization", "")
                key, region = access_key_of(authorization), region_of(authorization)
                status, body = service.handle(target[len(TARGET_PREFIX) :], params, key, region)
            except ConnectionAbortedError:
                self.close_connection = True
                self.connection.close()
                return
            self._reply(status, body)

    return Handler
