"""ResourceProperties validation: every bad value gets a Reason naming the property and what is allowed."""

from __future__ import annotations

import pytest

from provider.appstream.properties import ImageProperties, Share, parse
from provider.appstream.sources import Source
from provider.errors import InvalidProperties


def test_minimal_properties_take_the_documented_defaults() -> None:
    props = parse({"ServiceToken": "arn", "ImageName": "golden-1"})
    assert props == ImageProperties("golden-1")
    assert (props.wait_for_available, props.in_use, props.service_timeout) == (True, "Wait", 3600)
    assert props.source == Source("Existing")


def test_strings_from_cloudformation_are_accepted_for_scalars() -> None:
    props = parse(
        {
            "ImageName": "golden-1",
            "WaitForAvailable": "false",
            "ServiceTimeout": "600",
            "InUse": "Fail",
            "SharedWith": [{"AccountId": "210987654321", "AllowFleet": "true", "AllowImageBuilder": "False"}],
            "Tags": [{"Key": "team", "Value": "euc"}],
            "Source": {"Type": "Copy", "SourceImageName": "golden-base", "Description": "copy"},
        }
    )
    assert props.wait_for_available is False
    assert props.service_timeout == 600
    assert props.in_use == "Fail"
    assert props.shared_with == (Share("210987654321", True, False),)
    assert props.tag_map == {"team": "euc"}
    assert props.source == Source("Copy", "golden-base", "copy")


@pytest.mark.parametrize(
    ("props", "fragment"),
    [
        ({}, "Invalid property ImageName: required"),
        ({"ImageName": "-starts-with-dash"}, "Invalid property ImageName"),
        ({"ImageName": "x" * 102}, "Invalid property ImageName"),
        ({"ImageName": 12.5j}, "Invalid property ImageName: expected a string"),
        ({"ImageName": "ok", "Bogus": 1}, "Unknown properties 'Bogus'"),
        ({"ImageName": "ok", "WaitForAvailable": "yes"}, "Invalid property WaitForAvailable: expected true or false"),
        ({"ImageName": "ok", "InUse": "Force"}, "Invalid property InUse: 'Force' is not one of Wait, Fail"),
        ({"ImageName": "ok", "ServiceTimeout": "0"}, "Invalid property ServiceTimeout: 0 is outside 1-3600"),
        ({"ImageName": "ok", "ServiceTimeout": "7200"}, "outside 1-3600"),
        ({"ImageName": "ok", "ServiceTimeout": "soon"}, "expected a whole number of seconds"),
        ({"ImageName": "ok", "Source": "Copy"}, "Invalid property Source: expected an object with Type"),
        ({"ImageName": "ok", "Source": {"Type": "Clone"}}, "Invalid property Source.Type: 'Clone' is not one of"),
        ({"ImageName": "ok", "Source": {"Type": "Copy"}}, "Invalid property Source.SourceImageName: required"),
        ({"ImageName": "ok", "Source": {"Type": "Copy", "SourceImageName": "ok"}}, "must differ from ImageName"),
        ({"ImageName": "ok", "Source": {"Type": "Existing", "SourceImageName": "a"}}, "unknown keys 'SourceImageName'"),
        ({"ImageName": "AWS-x", "Source": {"Type": "Update", "SourceImageName": "a"}}, "cannot start with Amazon"),
        ({"ImageName": "ok", "SharedWith": {"AccountId": "1"}}, "Invalid property SharedWith: expected a list"),
        (
            {"ImageName": "ok", "SharedWith": [{"AccountId": "12345"}]},
            "SharedWith[0].AccountId: '12345' is not a 12-digit",
        ),
        ({"ImageName": "ok", "SharedWith": [{}]}, "SharedWith[0].AccountId: required"),
        (
            {"ImageName": "ok", "SharedWith": [{"AccountId": "210987654321"}, {"AccountId": "210987654321"}]},
            "listed twice",
        ),
        ({"ImageName": "ok", "SharedWith": [{"AccountId": str(10**11 + n)} for n in range(101)]}, "at most 100"),
        ({"ImageName": "ok", "Tags": [{"Value": "v"}]}, "Invalid property Tags[0].Key: required"),
        ({"ImageName": "ok", "Tags": [{"Key": "aws:x", "Value": "v"}]}, "not start with aws:"),
        ({"ImageName": "ok", "Tags": [{"Key": "appstream-image-provider:owner", "Value": "v"}]}, "reserved"),
        (
            {"ImageName": "ok", "Tags": [{"Key": "k", "Value": "v" * 257}]},
            "Tags[0].Value: the value of tag 'k' must be at most 256",
        ),
        (
            {"ImageName": "ok", "Tags": [{"Key": "owner", "Value": "stack/Logical#hash"}]},
            "Tags[0].Value: the value of tag 'owner' contains '#'",
        ),
        ({"ImageName": "ok", "Tags": [{"Key": "a&b", "Value": "v"}]}, "Tags[0].Key: tag key 'a&b' contains '&'"),
        ({"ImageName": "ok", "Tags": [{"Key": "AWS:x", "Value": "v"}]}, "must not start with aws:"),
        ({"ImageName": "ok", "Tags": [{"Key": f"k{n}", "Value": "v"} for n in range(50)]}, "at most 46"),
    ],
)
def test_invalid_properties_name_the_property(props: dict[str, object], fragment: str) -> None:
    with pytest.raises(InvalidProperties) as excinfo:
        parse(props)
    assert fragment in str(excinfo.value)


def test_non_object_properties_are_rejected() -> None:
    with pytest.raises(InvalidProperties, match="must be an object"):
        parse(["ImageName"])


COPY = {"Type": "Copy", "SourceImageName": "plat-base"}


@pytest.mark.parametrize(
    ("props", "fragment"),
    [
        ({"Keep": "11"}, "Invalid property Keep: 11 is outside 0-10 (each kept image counts against AppStream's"),
        ({"Keep": "two"}, "Invalid property Keep: expected a whole number of images, got 'two'"),
        ({"Keep": "1", "Source": {"Type": "Existing"}}, "Keep: applies to an image the resource makes"),
        ({"Keep": "1", "OnDelete": "Release"}, "Invalid property Keep: goes with OnDelete Delete"),
        ({"KeepSharing": "true"}, "Invalid property KeepSharing: true goes with Keep 1 or more"),
        ({"Keep": "1", "KeepSharing": "maybe"}, "Invalid property KeepSharing: expected true or false"),
        ({"Tags": [{"Key": "appstream-image-provider:retired", "Value": "v"}]}, "reserved for the provider's own"),
    ],
)
def test_keep_and_keep_sharing_are_checked_naming_the_property(props: dict[str, object], fragment: str) -> None:
    with pytest.raises(InvalidProperties) as excinfo:
        parse({"ImageName": "ok", "Source": COPY, **props})
    assert fragment in str(excinfo.value)


def test_keep_defaults_to_0_and_reads_cloudformations_strings() -> None:
    assert (parse({"ImageName": "ok"}).keep, parse({"ImageName": "ok"}).keep_sharing) == (0, False)
    parsed = parse({"ImageName": "ok", "Source": COPY, "Keep": "10", "KeepSharing": "true"})
    assert (parsed.keep, parsed.keep_sharing) == (10, True)
