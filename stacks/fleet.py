"""The streaming fleet this repository's example stacks put on their images."""

from __future__ import annotations

from aws_cdk import aws_appstream as appstream
from constructs import Construct


def streaming_fleet(scope: Construct, construct_id: str, *, name: str, image_name: str) -> appstream.CfnFleet:
    """One small on-demand instance; `image_name` from an AppStreamImage orders the fleet after the image (and,
    with `available_timeout`, after it is AVAILABLE), and deletes it first."""
    return appstream.CfnFleet(
        scope,
        construct_id,
        name=name,
        instance_type="stream.standard.small",
        fleet_type="ON_DEMAND",
        compute_capacity=appstream.CfnFleet.ComputeCapacityProperty(desired_instances=1),
        image_name=image_name,
        enable_default_internet_access=False,
        max_user_duration_in_seconds=3600,
        disconnect_timeout_in_seconds=900,
    )
