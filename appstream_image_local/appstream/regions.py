"""One account's AppStream in several regions: a backend per region, behind one loopback endpoint.

A request's region is the one it is signed for (the SigV4 credential scope), as on AWS where each region
is its own endpoint. Every region shares the home region's account, durations, limits and clock; its
images, quotas and export tasks are its own. CopyImage with another DestinationRegion makes the copy
appear there (copies.py).
"""

from __future__ import annotations

import functools
import threading

import botocore.session

from appstream_image_local.appstream.errors import ApiError
from appstream_image_local.appstream.model import AppStreamBackend


@functools.cache  # a new botocore session reads its endpoint data and models: about 60 ms for each service started
def served_regions() -> frozenset[str]:
    """The regions AppStream 2.0 serves, from botocore's endpoint data (the SDK's view of AWS)."""
    return frozenset(botocore.session.get_session().get_available_regions("appstream"))


def region_of(authorization: str) -> str | None:
    """The region a SigV4 Authorization header is signed for (None without one)."""
    marker = "Credential="
    start = authorization.find(marker)
    if start < 0:
        return None
    scope = authorization[start + len(marker) :].split(",", 1)[0].split("/")
    return scope[2] if len(scope) >= 5 else None  # AKID/date/region/service/aws4_request


class Regions:
    """The home region's backend and the others, each made on first use."""

    def __init__(self, home: AppStreamBackend) -> None:
        self.home = home
        self._lock = threading.Lock()
        self._backends = {home.region: home}
        self._known = served_regions() | {home.region}
        home.region_lookup = self.get

    def get(self, region: str) -> AppStreamBackend:
        """The backend of `region`; a region AppStream does not serve is refused as AWS's endpoint would be."""
        with self._lock:
            backend = self._backends.get(region)
            if backend is None:
                if region not in self._known:
                    raise ApiError("ResourceNotAvailableException", f"AppStream 2.0 is not available in {region}.")
                backend = AppStreamBackend(
                    region=region,
                    account=self.home.account,
                    durations=self.home.durations,
                    time_scale=self.home.time_scale,
                    clock=self.home.now,
                    limits=self.home.limits,
                )
                backend.region_lookup = self.get
                self._backends[region] = backend
            return backend

    def all(self) -> dict[str, AppStreamBackend]:
        """Every region used so far, the home region first."""
        with self._lock:
            return dict(self._backends)
