"""A local AppStream 2.0 image service that speaks botocore's JSON 1.1 wire format."""

from local.appstream.errors import ApiError
from local.appstream.faults import Fault, FaultInjector
from local.appstream.model import AppStreamBackend, Durations, Limits
from local.appstream.scenario import load_scenario
from local.appstream.server import LocalAppStream

__all__ = [
    "ApiError",
    "AppStreamBackend",
    "Durations",
    "Fault",
    "FaultInjector",
    "Limits",
    "LocalAppStream",
    "load_scenario",
]
