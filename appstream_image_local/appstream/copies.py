"""CopyImage: a copy in the same region, or in another region of the account (DestinationRegion), which appears
there after the copy time, without tags, under that region's quotas; the copy holds a slot in the source region
too (the stricter reading: see `copy_image`)."""

from __future__ import annotations

from typing import Any

from appstream_image_local.appstream.errors import ApiError
from appstream_image_local.appstream.model import AppStreamBackend


def copy_image(backend: AppStreamBackend, params: dict[str, Any]) -> dict[str, Any]:
    destination, region = params["DestinationImageName"], params["DestinationRegion"]
    target = backend if region == backend.region else _peer(backend, region)
    with backend._lock:
        source = backend._image(params["SourceImageName"])
        backend._own_private(source, "copied", "ResourceNotAvailableException")  # only private images copy
        if source.state != "AVAILABLE":
            raise ApiError("ResourceNotAvailableException", f"The image {source.name} is {source.state}.")
        if region != backend.region:  # the copy holds a slot here too
            # "2 concurrent copies per destination region" (appstream-images.md); issue 32 says the source
            # region's quota applies: both are enforced, the stricter reading.
            _check_slot(backend)
            slot = backend.now() + backend.scaled(backend.durations.copy)
            backend.outbound_copies.append(slot)
        copied = {
            "then": source.copies_end,
            "description": params.get("DestinationImageDescription", ""),
            "display_name": source.display_name,
            "platform": source.platform,
            "base_image_arn": source.base_image_arn,
            "agent_version": source.agent_version,
        }
    try:
        receive_copy(target, destination, **copied)  # outside this region's lock: two regions copy to each other
    except ApiError:
        if region != backend.region:
            with backend._lock:  # gone already if a look since found it over: a slot is freed once either way
                backend.outbound_copies = [end for end in backend.outbound_copies if end is not slot]
        raise
    return {"DestinationImageName": destination}


def receive_copy(backend: AppStreamBackend, name: str, **copied: Any) -> None:
    """A copy arrives in this (destination) region: its name, quotas and lag are this region's; no tags."""
    with backend._lock:
        backend._advance()
        if name in backend.images:
            raise ApiError("ResourceAlreadyExistsException", f"The image {name} already exists.")
        # "2 concurrent copies per destination region" (appstream-images.md, quotas).
        _check_slot(backend)
        backend._check_quotas("COPYING", backend.limits.copies, "concurrent image copies")
        image = backend.add_image(name, state="COPYING", settle_seconds=backend.durations.copy, **copied)
        image.visible_at = backend.now() + backend.scaled(backend.limits.visibility_lag)


def _peer(backend: AppStreamBackend, region: str) -> AppStreamBackend:
    if backend.region_lookup is None:
        raise ApiError("ResourceNotAvailableException", "This local service holds a single region.")
    return backend.region_lookup(region)


def _check_slot(backend: AppStreamBackend) -> None:
    """A copy slot of this region is free: its copies in, and its copies out to other regions, take them."""
    backend.outbound_copies = [end for end in backend.outbound_copies if end > backend.now()]
    copying = sum(1 for i in backend.images.values() if i.state == "COPYING") + len(backend.outbound_copies)
    if copying >= backend.limits.copies:
        raise ApiError(
            "LimitExceededException", f"The limit of {backend.limits.copies} concurrent image copies was reached."
        )
