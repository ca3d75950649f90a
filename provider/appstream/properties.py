"""ResourceProperties -> typed, validated settings (Source: sources.py; the shared checks: fields.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..contract import (
    ACCOUNT_ID,
    ADOPT_MODES,
    AMI_NAME,
    DEFAULT_ADOPT,
    DEFAULT_IN_USE,
    DEFAULT_SHARED_ON_DELETE,
    EXPORT_KEYS,
    IN_USE_MODES,
    KNOWN_PROPERTIES,
    MAX_DESCRIPTION,
    MAX_KEEP,
    MAX_RESOURCE_TAGS,
    MAX_SHARES,
    MAX_SIGNAL_TIMEOUT,
    MAX_TAGS,
    MAX_TIMEOUT,
    ON_DELETE_MODES,
    RESERVED_TAGS,
    ROLE_ARN,
    SHARE_KEYS,
    SHARED_ON_DELETE_MODES,
    SIGNAL_KEYS,
    default_on_delete,
    tag_key_problem,
    tag_value_problem,
)
from ..errors import InvalidProperties
from .fields import boolean, choice, entries, fail, image_name, mapping, matching, opaque, show, text_of
from .fields import passing_through as passing_through  # noqa: PLC0414 - re-exported for at_synth.py
from .sources import Source, parse_source


@dataclass(frozen=True)
class Share:
    account_id: str
    allow_fleet: bool = True
    allow_image_builder: bool = True

    def compact(self) -> str:
        """`<account>:<f|-><b|->`, 15 characters: 100 of them fit a scheduled run's input (8192 characters)."""
        return f"{self.account_id}:{'f' if self.allow_fleet else '-'}{'b' if self.allow_image_builder else '-'}"

    @classmethod
    def from_compact(cls, text: str) -> Share:
        account, _, flags = str(text).partition(":")
        return cls(account, "f" in flags, "b" in flags)


@dataclass(frozen=True)
class Signal:
    """AvailableSignal: answer once the work has started, then signal this wait condition handle when AVAILABLE."""

    handle: str = field(repr=False)  # a presigned URL: whoever holds it can signal, so it is never logged
    timeout: int = MAX_SIGNAL_TIMEOUT  # the wait condition's Timeout: the provider gives up (FAILURE) before it


@dataclass(frozen=True)
class Export:
    """Export: once AVAILABLE, CreateExportImageTask makes an EC2 AMI of the image (the user's: never deleted)."""

    ami_name: str
    iam_role_arn: str
    ami_description: str = ""
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ImageProperties:
    image_name: str
    source: Source = field(default_factory=Source)
    shared_with: tuple[Share, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    wait_for_available: bool = True
    in_use: Literal["Wait", "Fail"] = DEFAULT_IN_USE
    service_timeout: int = MAX_TIMEOUT
    shared_on_delete: Literal["Revoke", "Fail"] = DEFAULT_SHARED_ON_DELETE
    available_signal: Signal | None = None
    on_delete: Literal["Delete", "Release"] | None = None  # None: default_on_delete(source.type)
    adopt: Literal["IfUnowned", "IfOwnerGone"] = DEFAULT_ADOPT
    export: Export | None = None
    keep: int = 0  # Keep: images a rotation replaced stay retired for a fleet to roll back to (deletion.py)
    keep_sharing: bool = False  # KeepSharing: a retired image keeps its sharing (else it is revoked, as on Delete)

    @property
    def deletes(self) -> bool:
        """OnDelete, or its default for the Source: True when a Delete deletes the image."""
        return (self.on_delete or default_on_delete(self.source.type)) == "Delete"

    @property
    def tag_map(self) -> dict[str, str]:
        return dict(self.tags)


def _shares(value: Any) -> tuple[Share, ...]:
    shares: list[Share] = []
    for n, entry in enumerate(entries(value, "SharedWith", MAX_SHARES)):
        prop = f"SharedWith[{n}]"
        mapping(entry, prop, SHARE_KEYS)
        if "AccountId" not in entry:
            raise fail(f"{prop}.AccountId", "required")
        account = text_of(entry["AccountId"], f"{prop}.AccountId")
        if not ACCOUNT_ID.match(account) and not opaque(account):
            raise fail(f"{prop}.AccountId", f"{show(account)} is not a 12-digit AWS account id")
        if any(s.account_id == account for s in shares) and not opaque(account):
            raise fail(f"{prop}.AccountId", f"{account} is listed twice")
        shares.append(
            Share(
                account,
                boolean(entry.get("AllowFleet", True), f"{prop}.AllowFleet"),
                boolean(entry.get("AllowImageBuilder", True), f"{prop}.AllowImageBuilder"),
            )
        )
    return tuple(shares)


def _tags(value: Any, name: str = "Tags", limit: int = MAX_TAGS) -> tuple[tuple[str, str], ...]:
    tags: dict[str, str] = {}
    for n, entry in enumerate(entries(value, name, limit)):
        prop = f"{name}[{n}]"
        mapping(entry, prop, frozenset({"Key", "Value"}))
        if "Key" not in entry:
            raise fail(f"{prop}.Key", "required")
        key = text_of(entry["Key"], f"{prop}.Key")
        tag_value = text_of(entry.get("Value", ""), f"{prop}.Value")
        if opaque(key) or opaque(tag_value):
            continue
        problem = tag_key_problem(key)
        if problem:
            raise fail(f"{prop}.Key", f"tag key {show(key)} {problem}")
        if key in RESERVED_TAGS:
            raise fail(f"{prop}.Key", f"{key} is reserved for the provider's own tags ({', '.join(RESERVED_TAGS)})")
        problem = tag_value_problem(tag_value)
        if problem:
            raise fail(f"{prop}.Value", f"the value of tag {show(key)} {problem}")
        if key in tags:
            raise fail(f"{prop}.Key", f"{show(key)} is listed twice")
        tags[key] = tag_value
    return tuple(tags.items())


def export(value: Any) -> Export:
    """Export: CreateExportImageTask's AmiName, IamRoleArn, AmiDescription and TagSpecifications, as its model has
    them (TagSpecifications as a list of {Key, Value}, like Tags)."""
    mapping(value, "Export", EXPORT_KEYS)
    for required in ("AmiName", "IamRoleArn"):
        if required not in value:
            raise fail(f"Export.{required}", "required")
    ami_name = text_of(value["AmiName"], "Export.AmiName")
    if not AMI_NAME.match(ami_name) and not opaque(ami_name):
        raise fail(
            "Export.AmiName",
            f"{show(ami_name)} does not match {AMI_NAME.pattern} (3-128 letters, digits and ( ) . - / _)",
        )
    role = matching(value["IamRoleArn"], "Export.IamRoleArn", ROLE_ARN, "an IAM role ARN")
    description = text_of(value.get("AmiDescription", ""), "Export.AmiDescription")
    if len(description) > MAX_DESCRIPTION:
        raise fail("Export.AmiDescription", f"at most {MAX_DESCRIPTION} characters, got {len(description)}")
    tags = _tags(value.get("TagSpecifications", []), "Export.TagSpecifications", MAX_RESOURCE_TAGS)
    return Export(ami_name, role, description, tags)


def export_or_none(props: Any) -> Export | None:
    """A scheduled run's Export (the polling input keeps it): None when absent."""
    value = props.get("Export") if isinstance(props, Mapping) else None
    return export(value) if value is not None else None


def service_timeout(value: Any) -> int:
    text = text_of(value, "ServiceTimeout")
    try:
        seconds = int(float(text))
    except ValueError:
        raise fail("ServiceTimeout", f"expected a whole number of seconds, got {show(text)}") from None
    if not 1 <= seconds <= MAX_TIMEOUT:
        raise fail("ServiceTimeout", f"{seconds} is outside 1-{MAX_TIMEOUT} seconds")
    return seconds


def signal(value: Any) -> Signal:
    """AvailableSignal: {Handle: the Ref of an AWS::CloudFormation::WaitConditionHandle, Timeout: its seconds}."""
    mapping(value, "AvailableSignal", SIGNAL_KEYS)
    if "Handle" not in value:
        raise fail("AvailableSignal.Handle", "required (the Ref of an AWS::CloudFormation::WaitConditionHandle)")
    handle = text_of(value["Handle"], "AvailableSignal.Handle")
    if not handle.startswith("https://") and not opaque(handle):
        raise fail("AvailableSignal.Handle", "expected the handle's presigned https:// URL (its Ref)")
    text = text_of(value.get("Timeout", MAX_SIGNAL_TIMEOUT), "AvailableSignal.Timeout")
    if opaque(text):
        return Signal(handle)
    try:
        seconds = int(float(text))
    except ValueError:
        raise fail("AvailableSignal.Timeout", f"expected a whole number of seconds, got {show(text)}") from None
    if not 1 <= seconds <= MAX_SIGNAL_TIMEOUT:
        raise fail("AvailableSignal.Timeout", f"{seconds} is outside 1-{MAX_SIGNAL_TIMEOUT} seconds (12 hours)")
    return Signal(handle, seconds)


def keep(value: Any) -> int:
    """Keep: 0-MAX_KEEP retired images, each counted against AppStream's images-per-region quota."""
    text = text_of(value, "Keep")
    if opaque(text):
        return 0
    try:
        count = int(text)
    except ValueError:
        raise fail("Keep", f"expected a whole number of images, got {show(text)}") from None
    if not 0 <= count <= MAX_KEEP:
        raise fail(
            "Keep",
            f"{count} is outside 0-{MAX_KEEP} (each kept image counts against AppStream's images-per-region quota)",
        )
    return count


def _retention(props: Mapping[str, Any], source_type: str, on_delete: str | None) -> tuple[int, bool]:
    """Keep and KeepSharing: only for an image the resource makes and deletes (a replaced one is retired instead)."""
    raw = props.get("Keep", 0)
    count, unknown = keep(raw), isinstance(raw, str) and opaque(raw)
    sharing = boolean(props.get("KeepSharing", False), "KeepSharing")
    if count and source_type == "Existing":
        raise fail("Keep", "applies to an image the resource makes (Source Type Copy, Update or Import), not Existing")
    if count and on_delete == "Release":
        raise fail("Keep", "goes with OnDelete Delete: with Release a replaced image is kept anyway, untagged")
    if sharing and not count and not unknown:
        raise fail("KeepSharing", "true goes with Keep 1 or more: it is what a retired image keeps, and Keep is 0")
    return count, sharing


def parse(props: Any) -> ImageProperties:
    """Validate ResourceProperties; the error names the property and what is allowed."""
    if not isinstance(props, Mapping):
        raise InvalidProperties("ResourceProperties must be an object")
    unknown = sorted(str(k) for k in props if k not in KNOWN_PROPERTIES)
    if unknown:
        allowed = ", ".join(sorted(KNOWN_PROPERTIES))
        raise InvalidProperties(f"Unknown properties {', '.join(show(k) for k in unknown[:5])}; allowed: {allowed}")
    if "ImageName" not in props:
        raise fail("ImageName", "required")
    name = image_name(props["ImageName"])
    wait = boolean(props.get("WaitForAvailable", True), "WaitForAvailable")
    available_signal = signal(props["AvailableSignal"]) if "AvailableSignal" in props else None
    if available_signal is not None and not wait:
        raise fail("WaitForAvailable", "false does not go with AvailableSignal, which signals once AVAILABLE")
    source = parse_source(props["Source"], name) if "Source" in props else Source()
    exported = export(props["Export"]) if "Export" in props else None
    if exported is not None and not wait:
        raise fail("WaitForAvailable", "false does not go with Export, which starts once the image is AVAILABLE")
    adopt = choice(props.get("Adopt", DEFAULT_ADOPT), "Adopt", ADOPT_MODES)
    if adopt != DEFAULT_ADOPT and source.type != "Existing" and not opaque(adopt):
        raise fail("Adopt", f"{adopt} applies to Source Type Existing only; Type {source.type} never adopts an image")
    on_delete = choice(props["OnDelete"], "OnDelete", ON_DELETE_MODES) if "OnDelete" in props else None
    kept, keep_sharing = _retention(props, source.type, on_delete)
    return ImageProperties(
        image_name=name,
        source=source,
        shared_with=_shares(props.get("SharedWith", [])),
        tags=_tags(props.get("Tags", [])),
        wait_for_available=wait,
        in_use=choice(props.get("InUse", DEFAULT_IN_USE), "InUse", IN_USE_MODES),  # type: ignore[arg-type]
        service_timeout=service_timeout(props.get("ServiceTimeout", MAX_TIMEOUT)),
        shared_on_delete=choice(  # type: ignore[arg-type]
            props.get("SharedOnDelete", DEFAULT_SHARED_ON_DELETE), "SharedOnDelete", SHARED_ON_DELETE_MODES
        ),
        available_signal=available_signal,
        on_delete=on_delete,  # type: ignore[arg-type]
        adopt=adopt,  # type: ignore[arg-type]
        export=exported,
        keep=kept,
        keep_sharing=keep_sharing,
    )
