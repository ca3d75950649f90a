"""A promotion across regions with the real CDK CLI (issue 32, items 1 and 2): examples/promotion, the README's app,
bootstrapped in three regions, deployed with `cdk deploy --all`, rotated, rolled back in the one region whose copy
failed while the other region keeps the new image, finished as the README says, and destroyed with nothing left in
any region. The local CloudFormation serves each region's stacks; the local AppStream each region's images."""

from __future__ import annotations

import pytest

from appstream_image_local.kit import OfflineCloud, StackFailed
from provider.contract import OWNER_TAG, RETIRED_TAG
from tests.conftest import ROOT

pytestmark = [pytest.mark.toolchain, pytest.mark.long]  # the CDK CLI and a jsii synth per command: a minute

APP = ROOT / "examples" / "promotion"
SOURCE = "us-east-1"
REGIONS = ("eu-west-1", "ap-southeast-2")


def _fleet(cloud: OfflineCloud, region: str) -> str:
    """The image the region's fleet is on (the one its UpdateFleet named, while its instances recycle onto it)."""
    fleet = cloud.region_backend(region).fleets[f"euc-{region}"]
    return fleet.release_to or fleet.image_name


def test_a_promotion_deploys_rotates_rolls_back_one_region_finishes_and_is_destroyed(
    offline_cloud: OfflineCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the app imports appstream_image_provider from this checkout
    for month in ("golden-2026-11", "golden-2026-12"):
        offline_cloud.add_image(month)  # built in us-east-1 (the home region)
    offline_cloud.bootstrap(SOURCE, *REGIONS)  # `cdk bootstrap aws://123456789012/eu-west-1 ...`, as on AWS

    outputs = offline_cloud.deploy_all(APP, imageName="golden-2026-11")

    assert set(outputs) == {f"Golden-{region}" for region in REGIONS}
    for region in REGIONS:
        copy = offline_cloud.images(region)["golden-2026-11"]
        assert copy["State"] == "AVAILABLE"
        assert copy["Tags"]["team"] == "euc"  # CopyImage drops tags: the provider tags the copy where it lands
        assert copy["Tags"][OWNER_TAG].startswith(f"Golden-{region}/")
        assert "210987654321" in copy["Permissions"]
        assert _fleet(offline_cloud, region) == "golden-2026-11"
        assert offline_cloud.region_of(f"Golden-{region}") == region
    copies = [e for e in offline_cloud.audit("CopyImage") if e["status"] == 200]
    assert {(e["region"], e["params"]["DestinationRegion"]) for e in copies} == {(SOURCE, r) for r in REGIONS}

    # Someone made an image of next month's name in ap-southeast-2 by hand: that region's copy cannot land.
    offline_cloud.add_image("golden-2026-12", region="ap-southeast-2")
    with pytest.raises(StackFailed, match="golden-2026-12"):
        offline_cloud.deploy_all(APP, imageName="golden-2026-12")

    assert offline_cloud.status("Golden-eu-west-1") == "UPDATE_COMPLETE"  # rotated, its fleet on the new copy
    assert _fleet(offline_cloud, "eu-west-1") == "golden-2026-12"
    assert offline_cloud.images("eu-west-1")["golden-2026-11"]["Tags"][RETIRED_TAG]  # kept for a rollback
    assert offline_cloud.status("Golden-ap-southeast-2") == "UPDATE_ROLLBACK_COMPLETE"  # its own copy rolled back
    assert _fleet(offline_cloud, "ap-southeast-2") == "golden-2026-11"  # on the image that works
    hand_made = offline_cloud.images("ap-southeast-2")["golden-2026-12"]
    assert OWNER_TAG not in hand_made["Tags"]  # never touched: nothing lost
    assert offline_cloud.images("ap-southeast-2")["golden-2026-11"]["State"] == "AVAILABLE"

    # Finishing the rotation (README): clear what failed, deploy again; the rotated region has nothing to do.
    offline_cloud.client("appstream", "ap-southeast-2").delete_image(Name="golden-2026-12")
    offline_cloud.deploy_all(APP, imageName="golden-2026-12")

    for region in REGIONS:
        assert offline_cloud.status(f"Golden-{region}") == "UPDATE_COMPLETE"
        assert _fleet(offline_cloud, region) == "golden-2026-12"
        assert offline_cloud.images(region)["golden-2026-12"]["Tags"]["team"] == "euc"
    eu_copies = [e for e in offline_cloud.audit("CopyImage") if e["params"]["DestinationRegion"] == "eu-west-1"]
    assert len(eu_copies) == 2  # one per month: the second deploy left eu-west-1 alone

    offline_cloud.destroy_all()

    for region in REGIONS:
        assert set(offline_cloud.images(region)) == set(), region  # copies and the retired ones
    assert set(offline_cloud.images(SOURCE)) == {"golden-2026-11", "golden-2026-12"}  # the sources are the user's
    # Both stacks together: each region's images are its stack's (a sibling's count as changed from outside).
    offline_cloud.assert_clean("Golden-eu-west-1", "Golden-ap-southeast-2", also_touched=["golden-2026-12"])
    with pytest.raises(AssertionError, match="in ap-southeast-2 was changed, but Golden-eu-west-1 does not own it"):
        offline_cloud.assert_clean("Golden-eu-west-1", also_touched=["golden-2026-12"])
