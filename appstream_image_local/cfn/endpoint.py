"""The local CloudFormation endpoint: one HTTP server in front of a CloudFormation API per region.

On AWS each region is its own CloudFormation (its stacks, exports and functions) behind its own endpoint;
offline one loopback endpoint serves them all and a request goes to the region it is signed for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Self

import botocore.session

from appstream_image_local.appstream.regions import region_of
from appstream_image_local.cfn.api import CloudFormationApi
from appstream_image_local.cfn.driver import Cloud
from appstream_image_local.cfn.query import ApiError, QueryServer
from appstream_image_local.iam import access_key_of

# The regions CloudFormation serves (botocore's endpoint data, the SDK's view of AWS).
CLOUDFORMATION_REGIONS = frozenset(botocore.session.get_session().get_available_regions("cloudformation"))


class LocalCloudFormation(QueryServer):
    """The local CloudFormation API served on loopback over plain HTTP (`url`); the driver's functions reach it.

    Each region is its own CloudFormation, as on AWS (its stacks, exports and functions): a request goes to the
    region it is signed for (the SigV4 credential scope), unsigned ones to the home region's. `more(region)`
    makes another region's driver on its first request (None: the home region only).
    """

    def __init__(self, cloud: Cloud, more: Callable[[str], Cloud] | None = None) -> None:
        self.api = CloudFormationApi(cloud)
        self.apis = {cloud.region: self.api}  #: by region
        self._more = more
        self._regions_lock = threading.Lock()
        self._serving = False
        self._caller = threading.local()  # the access key and region of the request this thread serves
        super().__init__(self._handle_form, "local-cloudformation")

    def _handle_form(self, form: dict[str, str]) -> str:
        return self.api_of(self._caller.region).handle(form, self._caller.key)

    def api_of(self, region: str | None) -> CloudFormationApi:
        """The API of `region` (None: the home region's), made on first use."""
        with self._regions_lock:
            found = self.apis.get(region or self.api.cloud.region)
            if found is None:
                if not self._serving and self._more is not None:  # stopped: a region made now would never close
                    raise ApiError("ServiceUnavailable", "The offline cloud is stopping.", 503)
                if self._more is None or region not in CLOUDFORMATION_REGIONS:
                    raise ApiError("InvalidClientTokenId", f"CloudFormation is not served offline in {region}", 403)
                found = self.apis[region] = CloudFormationApi(self._more(region))
                if self._serving:
                    found.cloud.serve_api(self.url)
            return found

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        authorization = str(environ.get("HTTP_AUTHORIZATION", ""))
        self._caller.key, self._caller.region = access_key_of(authorization), region_of(authorization)
        return super().wsgi(environ, start_response)

    def start(self) -> Self:
        super().start()
        with self._regions_lock:
            self._serving = True
            for api in self.apis.values():
                api.cloud.serve_api(self.url)
        return self

    def stop(self) -> None:
        with self._regions_lock:  # no region is added meanwhile
            self._serving = False
            for api in self.apis.values():
                api.cloud.serve_api(None)
        super().stop()

    def regions(self) -> list[CloudFormationApi]:
        """The API of every region used so far, the home region's first."""
        with self._regions_lock:
            return list(self.apis.values())
