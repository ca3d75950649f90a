"""Images that take hours, deployed with the unmodified CDK CLI on the offline cloud at AWS-like durations
(local/scenarios aws-durations: a managed update of 3 hours, an import of 2.5 + 0.5 hours and its export to an AMI
of 1 hour, under a time scale of 0.001; EventBridge's minute runs ten times faster): the stack waits through wait
conditions (the import's also for its export, issue 32 item 4), the fleet starts only once its image is AVAILABLE,
then a rotation and a destroy leave nothing behind but the AMI, which is the user's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appstream_image_local.kit import OfflineCloud
from tools.synth import cached_synth

pytestmark = pytest.mark.toolchain  # the CDK CLI deploys synthesized assemblies (tools/synth.py: jsii)

STACK = "AppStreamLongImages"
BASE = {
    "stacks": "long",
    "nag": "false",
    "updatedImage": "patched-2026-11",
    "importedImage": "imported-2026-11",
    "exportAmi": "imported-2026-11-ami",
}


def _assembly(**changes: str) -> Path:
    return cached_synth(**{**BASE, **changes})


def _events(cloud: OfflineCloud) -> list[dict[str, Any]]:
    """The stack's events, oldest first."""
    client = cloud.client("cloudformation")
    events = client.describe_stack_events(StackName=STACK)["StackEvents"]
    return list(reversed(events))


def _first(events: list[dict[str, Any]], status: str, prefix: str, kind: str = "") -> int:
    return next(
        n
        for n, e in enumerate(events)
        if e["ResourceStatus"] == status
        and e["LogicalResourceId"].startswith(prefix)
        and (not kind or e["ResourceType"] == kind)
    )


@pytest.mark.long
@pytest.mark.offline_cloud(scenario="aws-durations", schedule_scale=0.1)
def test_an_import_and_a_3_hour_update_deploy_the_fleet_waits_then_rotation_and_destroy(
    offline_cloud: OfflineCloud,
) -> None:
    assert offline_cloud.backend.durations.update == 10800  # AppStream's hours, on the service's scaled clock
    assert offline_cloud.backend.time_scale == 0.001
    outputs = offline_cloud.deploy_assembly(_assembly(), STACK)
    images = offline_cloud.images()
    assert images["patched-2026-11"]["State"] == "AVAILABLE"
    assert images["imported-2026-11"]["State"] == "AVAILABLE"
    assert outputs["UpdatedImageName"] == "patched-2026-11"
    assert offline_cloud.state()["fleets"][f"{STACK}-fleet"] == "patched-2026-11"

    events = _events(offline_cloud)
    wait = "AWS::CloudFormation::WaitCondition"
    resource_done = _first(events, "CREATE_COMPLETE", "Updated", "Custom::AppStreamImage")
    available = _first(events, "CREATE_COMPLETE", "UpdatedAvailable", wait)
    # The resource answered, then the wait condition waited for AVAILABLE, then (only then) the fleet started:
    # the local AppStream refuses a fleet on an image that is not AVAILABLE, as CreateFleet does.
    assert resource_done < _first(events, "CREATE_IN_PROGRESS", "UpdatedAvailable", wait) < available
    assert available < _first(events, "CREATE_IN_PROGRESS", "Fleet")
    assert [c["error"] for c in offline_cloud.audit("CreateUpdatedImage")] == [None]
    assert [c["error"] for c in offline_cloud.audit("CreateImportedImage")] == [None]
    # The export (an hour: 3.6 s here) started once the import was AVAILABLE, after the resource's answer; the
    # deploy ended only once it had COMPLETED: the import's wait condition waited for it (scheduled runs followed it).
    [export] = offline_cloud.audit("CreateExportImageTask")
    assert (export["error"], export["params"]["AmiName"]) == (None, "imported-2026-11-ami")
    [task] = offline_cloud.backend.exports.tasks.values()
    assert task.state == "COMPLETED"

    # The rotation: a new 3-hour update, a new wait condition pair, the fleet moves, the old image goes.
    offline_cloud.deploy_assembly(_assembly(updatedImage="patched-2026-12"), STACK)
    images = offline_cloud.images()
    assert "patched-2026-11" not in images
    assert images["patched-2026-12"]["State"] == "AVAILABLE"
    assert offline_cloud.state()["fleets"][f"{STACK}-fleet"] == "patched-2026-12"
    waits = [r for r in offline_cloud.cloud.stacks[STACK].resources.values() if r.type == wait]
    assert len(waits) == 2  # the import's, and the new update's (the old one went with its image)

    offline_cloud.destroy(STACK)
    offline_cloud.assert_clean(STACK, also_touched=["golden-base"])
    assert [t.state for t in offline_cloud.backend.exports.tasks.values()] == ["COMPLETED"]  # the AMI stays the user's
    assert len(offline_cloud.audit("CreateExportImageTask")) == 1  # the rotation left the import and its export
    assert offline_cloud.owned_images(STACK) == {"patched-2026-11", "patched-2026-12", "imported-2026-11"}
