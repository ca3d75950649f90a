"""A local AppStream 2.0 image service that speaks botocore's JSON 1.1 wire format."""

from appstream_image_local.appstream.errors import ApiError
from appstream_image_local.appstream.faults import Fault, FaultInjector
from appstream_image_local.appstream.model import AppStreamBackend
from appstream_image_local.appstream.records import Durations, Limits
from appstream_image_local.appstream.scenario import load_scenario
from appstream_image_local.appstream.server import LocalAppStream

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
