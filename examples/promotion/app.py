"""One golden image, built in us-east-1, promoted to two regions with a fleet in each: `cdk deploy --all`.

`-c imageName=golden-2026-12` rotates every region: each copy is replaced, its fleet moves onto the new copy,
and the old copy is kept (keep=1) for a rollback by name.
"""

from aws_cdk import App
from aws_cdk import aws_appstream as appstream

from appstream_image_provider import ImagePromotion, ImageShare

app = App()
image_name = str(app.node.try_get_context("imageName") or "golden-2026-11")
promotion = ImagePromotion(
    app,
    "Golden",
    image_name=image_name,
    source_image_name=image_name,  # the image built in us-east-1, under the same name
    source_region="us-east-1",
    regions=["eu-west-1", "ap-southeast-2"],
    shared_with=[ImageShare("210987654321")],
    tags={"team": "euc"},
    keep=1,
)
for region, stack in promotion.stacks.items():
    # A region's fleets go in its promotion stack: a rotation moves them before the old copy is retired.
    appstream.CfnFleet(
        stack,
        "Fleet",
        name=f"euc-{region}",
        image_name=promotion.image(region).image_name,
        instance_type="stream.standard.medium",
        compute_capacity=appstream.CfnFleet.ComputeCapacityProperty(desired_instances=2),
    )
app.synth()
