"""AppStreamImage's keep and keep_sharing: rendered as Keep and KeepSharing only when given, the provider accepts
them, and every misuse fails at synth naming the prop and the construct's path."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, RemovalPolicy, Stack
from aws_cdk.assertions import Template

from appstream_image_provider import OnDelete
from appstream_image_provider.appstream_image import AppStreamImage, ImageSource
from provider.appstream.properties import parse

# aws-cdk-lib runs in this process: the tests share one worker (tests/conftest.py).
pytestmark = pytest.mark.jsii

COPY = ImageSource.copy_of("golden-base")


def rendered(**kwargs: Any) -> dict[str, Any]:
    stack = Stack(App(), "Images")
    AppStreamImage(stack, "Golden", image_name="golden-2026-11", source=kwargs.pop("source", COPY), **kwargs)
    (resource,) = Template.from_stack(stack).find_resources("Custom::AppStreamImage").values()
    return dict(resource["Properties"])


def test_keep_and_keep_sharing_are_rendered_only_when_given_and_the_provider_reads_them() -> None:
    plain = rendered()
    assert "Keep" not in plain
    assert "KeepSharing" not in plain
    props = rendered(keep=3, keep_sharing=True)
    assert (props["Keep"], props["KeepSharing"]) == (3, True)
    parsed = parse({k: v for k, v in props.items() if k not in ("ServiceToken", "Tags")})
    assert (parsed.keep, parsed.keep_sharing) == (3, True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"keep": 11}, "keep: 11 is outside 0-10; each kept image counts against AppStream's images-per-region quota"),
        ({"keep": -1}, "keep: -1 is outside 0-10"),
        ({"keep": "2"}, "keep: expected a whole number of images, 0 to 10, got str '2'"),
        ({"keep": True}, "keep: expected a whole number of images"),
        ({"keep_sharing": True}, "keep_sharing: is what a retired image keeps, and keep=0 retires none"),
        ({"keep": 1, "source": ImageSource.existing()}, "keep: applies to an image the resource makes"),
        ({"keep": 1, "on_delete": OnDelete.RELEASE}, "keep: goes with OnDelete.DELETE"),
        ({"keep": 1, "removal_policy": RemovalPolicy.RETAIN}, "keep: RemovalPolicy.RETAIN sends no Delete"),
    ],
)
def test_a_misused_keep_fails_at_synth_naming_the_prop_and_the_path(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=r"^Images/Golden: ") as err:
        rendered(**kwargs)
    assert message in str(err.value)
