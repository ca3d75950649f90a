"""ResourceProperties -> typed, validated settings. CloudFormation sends scalars as strings."""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..contract import (
    ACCOUNT_ID,
    ADOPT_MODES,
    AGENT_SOFTWARE_VERSIONS,
    AMI_ID,
    AMI_NAME,
    APP_KEYS,
    APP_NAME,
    DEFAULT_ADOPT,
    DEFAULT_IN_USE,
    DEFAULT_SHARED_ON_DELETE,
    EXPORT_KEYS,
    IMAGE_NAME,
    IMPORT_TEXT,
    IN_USE_MODES,
    KNOWN_PROPERTIES,
    MAX_APPS,
    MAX_DESCRIPTION,
    MAX_DISPLAY_NAME,
    MAX_RESOURCE_TAGS,
    MAX_SHARES,
    MAX_SIGNAL_TIMEOUT,
    MAX_TAGS,
    MAX_TIMEOUT,
    ON_DELETE_MODES,
    PROVIDER_TAGS,
    REGION,
    RESERVED_PREFIXES,
    ROLE_ARN,
    SHARE_KEYS,
    SHARED_ON_DELETE_MODES,
    SIGNAL_KEYS,
    SOURCE_KEYS,
    SOURCE_TYPES,
    WORKSPACE_IMAGE_ID,
    default_on_delete,
    tag_key_problem,
    tag_value_problem,
)
from ..errors import InvalidProperties


@dataclass(frozen=True)
class Source:
    type: Literal["Existing", "Copy", "Update", "Import"] = "Existing"
    source_image_name: str = ""  # Copy, Update; Import: the AMI or WorkSpaces image id
    description: str = ""
    display_name: str = ""
    iam_role_arn: str = ""  # Import
    agent_software_version: str = ""  # Import: CURRENT_LATEST or ALWAYS_LATEST ("" leaves AppStream's default)
    intended_instance_type: str = ""  # Import: RuntimeValidationConfig.IntendedInstanceType
    app_catalog: str = ""  # Import: AppCatalogConfig as canonical JSON ("" for none)
    source_region: str = ""  # Copy: the region SourceImageName is in ("" for the stack's own)

    def fingerprint(self) -> str:
        """The source tag's value: readable type and source name, and a digest of every field (tag-safe)."""
        if self.type == "Existing":
            return "Existing"
        fields: tuple[str, ...] = (self.type, self.source_image_name, self.description, self.display_name)
        if self.type == "Import":
            fields += (self.iam_role_arn, self.agent_software_version, self.intended_instance_type, self.app_catalog)
        if self.source_region:  # only when given: the fingerprints of images made before it stay as they were
            fields += (self.source_region,)
        digest = hashlib.sha256("\n".join(fields).encode()).hexdigest()[:16]
        return f"{self.type}/{self.source_image_name}/{digest}"


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
    source: Source = Source()
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

    @property
    def deletes(self) -> bool:
        """OnDelete, or its default for the Source: True when a Delete deletes the image."""
        return (self.on_delete or default_on_delete(self.source.type)) == "Delete"

    @property
    def tag_map(self) -> dict[str, str]:
        return dict(self.tags)


# Synth time: values only known at deploy time (CDK tokens) pass through; their structure is still checked.
_OPAQUE: contextvars.ContextVar[Callable[[str], bool]] = contextvars.ContextVar("opaque", default=lambda _: False)


@contextlib.contextmanager
def passing_through(opaque: Callable[[str], bool]) -> Iterator[None]:
    """Within this block, `parse` skips the checks of every string `opaque(value)` says is not known yet."""
    token = _OPAQUE.set(opaque)
    try:
        yield
    finally:
        _OPAQUE.reset(token)


def _opaque(text: str) -> bool:
    return _OPAQUE.get()(text)


def _fail(prop: str, problem: str) -> InvalidProperties:
    return InvalidProperties(f"Invalid property {prop}: {problem}", prop, problem)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _string(value: Any, prop: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail(prop, f"expected a string, got {type(value).__name__}")
    return str(value)


def _bool(value: Any, prop: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _fail(prop, f"expected true or false, got {_show(value)}")


def _choice(value: Any, prop: str, allowed: tuple[str, ...]) -> str:
    text = _string(value, prop)
    if text not in allowed and not _opaque(text):
        raise _fail(prop, f"{_show(text)} is not one of {', '.join(allowed)}")
    return text


def image_name(value: Any, prop: str = "ImageName") -> str:
    text = _string(value, prop)
    if not IMAGE_NAME.match(text) and not _opaque(text):
        raise _fail(
            prop,
            f"{_show(text)} does not match {IMAGE_NAME.pattern} (a letter or digit, then letters, digits, _ . -)",
        )
    return text


def _mapping(value: Any, prop: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(prop, f"expected an object, got {type(value).__name__}")
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise _fail(
            prop, f"unknown keys {', '.join(_show(k) for k in unknown[:5])}; allowed: {', '.join(sorted(allowed))}"
        )
    return value


def _list(value: Any, prop: str, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(prop, f"expected a list, got {type(value).__name__}")
    if len(value) > limit:
        raise _fail(prop, f"at most {limit} entries are allowed, got {len(value)}")
    return value


def _source(value: Any, new_name: str) -> Source:
    if not isinstance(value, Mapping) or "Type" not in value:
        raise _fail("Source", f"expected an object with Type ({', '.join(SOURCE_TYPES)})")
    kind = _choice(value["Type"], "Source.Type", SOURCE_TYPES)
    _mapping(value, "Source", SOURCE_KEYS[kind])
    if kind == "Existing":
        return Source()
    if kind == "Import":
        return _import(value)
    if "SourceImageName" not in value:
        raise _fail("Source.SourceImageName", f"required when Source.Type is {kind}")
    source_name = image_name(value["SourceImageName"], "Source.SourceImageName")
    region = source_region(value["SourceRegion"]) if "SourceRegion" in value else ""
    if source_name == new_name and not _opaque(new_name) and not region:
        raise _fail("Source.SourceImageName", "must differ from ImageName (or name its SourceRegion)")
    if kind == "Update" and new_name.lower().startswith(RESERVED_PREFIXES) and not _opaque(new_name):
        raise _fail("ImageName", "an updated image's name cannot start with Amazon, AWS or AppStream")
    description = _string(value.get("Description", ""), "Source.Description")
    display_name = _string(value.get("DisplayName", ""), "Source.DisplayName")
    if len(description) > MAX_DESCRIPTION:
        raise _fail("Source.Description", f"at most {MAX_DESCRIPTION} characters, got {len(description)}")
    if len(display_name) > MAX_DISPLAY_NAME:
        raise _fail("Source.DisplayName", f"at most {MAX_DISPLAY_NAME} characters, got {len(display_name)}")
    return Source(kind, source_name, description, display_name, source_region=region)  # type: ignore[arg-type]


def _appstream_regions() -> frozenset[str]:
    """The regions AppStream serves, from botocore's endpoint data (every partition); empty without botocore (at
    synth, where the construct's only dependency is aws-cdk-lib: the pattern alone is checked)."""
    try:
        import botocore.session  # noqa: PLC0415 - optional: the construct does not depend on botocore
    except ImportError:
        return frozenset()
    session = botocore.session.get_session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("appstream", partition_name=partition)
    )


def source_region(value: Any) -> str:
    """Source.SourceRegion: a region AppStream serves (botocore's endpoint data for appstream)."""
    text = _string(value, "Source.SourceRegion")
    if _opaque(text):
        return text
    if not REGION.match(text):
        raise _fail("Source.SourceRegion", f"{_show(text)} is not a region name (such as us-west-2)")
    served = _appstream_regions()
    if served and text not in served:
        raise _fail("Source.SourceRegion", f"AppStream is not served in {text}; it is in {', '.join(sorted(served))}")
    return text


def _matching(value: Any, prop: str, pattern: Any, what: str) -> str:
    text = _string(value, prop)
    if not pattern.match(text) and not _opaque(text):
        raise _fail(prop, f"{_show(text)} is not {what} (pattern {pattern.pattern})")
    return text


def _import(value: Mapping[str, Any]) -> Source:
    """CreateImportedImage's members, checked against its model (an AMI import needs its role)."""
    ami, workspace = value.get("SourceAmiId"), value.get("WorkspaceImageId")
    if (ami is None) == (workspace is None):
        raise _fail("Source", "Type Import takes exactly one of SourceAmiId and WorkspaceImageId")
    if ami is not None:
        origin = _matching(ami, "Source.SourceAmiId", AMI_ID, "an EC2 AMI id")
    else:
        origin = _matching(workspace, "Source.WorkspaceImageId", WORKSPACE_IMAGE_ID, "a WorkSpaces image id")
    if ami is not None and "IamRoleArn" not in value:
        raise _fail("Source.IamRoleArn", "required to import an AMI (the role AppStream uses to read it)")
    role = (
        _matching(value["IamRoleArn"], "Source.IamRoleArn", ROLE_ARN, "an IAM role ARN")
        if "IamRoleArn" in value
        else ""
    )
    texts = {}
    for key, limit in (("Description", MAX_DESCRIPTION), ("DisplayName", MAX_DISPLAY_NAME)):
        text = _string(value.get(key, ""), f"Source.{key}")
        if len(text) > limit:
            raise _fail(f"Source.{key}", f"at most {limit} characters, got {len(text)}")
        if text and not IMPORT_TEXT.match(text) and not _opaque(text):
            raise _fail(f"Source.{key}", f"{_show(text)} may hold only letters, digits, spaces and _ . ( ) -")
        texts[key] = text
    agent = (
        _choice(value["AgentSoftwareVersion"], "Source.AgentSoftwareVersion", AGENT_SOFTWARE_VERSIONS)
        if ("AgentSoftwareVersion" in value)
        else ""
    )
    return Source(
        "Import",
        origin,
        texts["Description"],
        texts["DisplayName"],
        iam_role_arn=role,
        agent_software_version=agent,
        intended_instance_type=_string(value.get("IntendedInstanceType", ""), "Source.IntendedInstanceType"),
        app_catalog=_apps(value.get("AppCatalogConfig", [])),
    )


def _apps(value: Any) -> str:
    apps = []
    for n, entry in enumerate(_list(value, "Source.AppCatalogConfig", MAX_APPS)):
        prop = f"Source.AppCatalogConfig[{n}]"
        _mapping(entry, prop, APP_KEYS)
        for required in ("Name", "AbsoluteAppPath"):
            if required not in entry:
                raise _fail(f"{prop}.{required}", "required")
        _matching(entry["Name"], f"{prop}.Name", APP_NAME, "an application name")
        apps.append({str(k): _string(v, f"{prop}.{k}") for k, v in sorted(entry.items())})
    return json.dumps(apps, separators=(",", ":"), sort_keys=True) if apps else ""


def _shares(value: Any) -> tuple[Share, ...]:
    shares: list[Share] = []
    for n, entry in enumerate(_list(value, "SharedWith", MAX_SHARES)):
        prop = f"SharedWith[{n}]"
        _mapping(entry, prop, SHARE_KEYS)
        if "AccountId" not in entry:
            raise _fail(f"{prop}.AccountId", "required")
        account = _string(entry["AccountId"], f"{prop}.AccountId")
        if not ACCOUNT_ID.match(account) and not _opaque(account):
            raise _fail(f"{prop}.AccountId", f"{_show(account)} is not a 12-digit AWS account id")
        if any(s.account_id == account for s in shares) and not _opaque(account):
            raise _fail(f"{prop}.AccountId", f"{account} is listed twice")
        shares.append(
            Share(
                account,
                _bool(entry.get("AllowFleet", True), f"{prop}.AllowFleet"),
                _bool(entry.get("AllowImageBuilder", True), f"{prop}.AllowImageBuilder"),
            )
        )
    return tuple(shares)


def _tags(value: Any, name: str = "Tags", limit: int = MAX_TAGS) -> tuple[tuple[str, str], ...]:
    tags: dict[str, str] = {}
    for n, entry in enumerate(_list(value, name, limit)):
        prop = f"{name}[{n}]"
        _mapping(entry, prop, frozenset({"Key", "Value"}))
        if "Key" not in entry:
            raise _fail(f"{prop}.Key", "required")
        key = _string(entry["Key"], f"{prop}.Key")
        tag_value = _string(entry.get("Value", ""), f"{prop}.Value")
        if _opaque(key) or _opaque(tag_value):
            continue
        problem = tag_key_problem(key)
        if problem:
            raise _fail(f"{prop}.Key", f"tag key {_show(key)} {problem}")
        if key in PROVIDER_TAGS:
            raise _fail(f"{prop}.Key", f"{key} is reserved for the provider's own tags ({', '.join(PROVIDER_TAGS)})")
        problem = tag_value_problem(tag_value)
        if problem:
            raise _fail(f"{prop}.Value", f"the value of tag {_show(key)} {problem}")
        if key in tags:
            raise _fail(f"{prop}.Key", f"{_show(key)} is listed twice")
        tags[key] = tag_value
    return tuple(tags.items())


def export(value: Any) -> Export:
    """Export: CreateExportImageTask's AmiName, IamRoleArn, AmiDescription and TagSpecifications, as its model has
    them (TagSpecifications as a list of {Key, Value}, like Tags)."""
    _mapping(value, "Export", EXPORT_KEYS)
    for required in ("AmiName", "IamRoleArn"):
        if required not in value:
            raise _fail(f"Export.{required}", "required")
    ami_name = _string(value["AmiName"], "Export.AmiName")
    if not AMI_NAME.match(ami_name) and not _opaque(ami_name):
        raise _fail(
            "Export.AmiName",
            f"{_show(ami_name)} does not match {AMI_NAME.pattern} (3-128 letters, digits and ( ) . - / _)",
        )
    role = _matching(value["IamRoleArn"], "Export.IamRoleArn", ROLE_ARN, "an IAM role ARN")
    description = _string(value.get("AmiDescription", ""), "Export.AmiDescription")
    if len(description) > MAX_DESCRIPTION:
        raise _fail("Export.AmiDescription", f"at most {MAX_DESCRIPTION} characters, got {len(description)}")
    tags = _tags(value.get("TagSpecifications", []), "Export.TagSpecifications", MAX_RESOURCE_TAGS)
    return Export(ami_name, role, description, tags)


def export_or_none(props: Any) -> Export | None:
    """A scheduled run's Export (the polling input keeps it): None when absent."""
    value = props.get("Export") if isinstance(props, Mapping) else None
    return export(value) if value is not None else None


def service_timeout(value: Any) -> int:
    text = _string(value, "ServiceTimeout")
    try:
        seconds = int(float(text))
    except ValueError:
        raise _fail("ServiceTimeout", f"expected a whole number of seconds, got {_show(text)}") from None
    if not 1 <= seconds <= MAX_TIMEOUT:
        raise _fail("ServiceTimeout", f"{seconds} is outside 1-{MAX_TIMEOUT} seconds")
    return seconds


def signal(value: Any) -> Signal:
    """AvailableSignal: {Handle: the Ref of an AWS::CloudFormation::WaitConditionHandle, Timeout: its seconds}."""
    _mapping(value, "AvailableSignal", SIGNAL_KEYS)
    if "Handle" not in value:
        raise _fail("AvailableSignal.Handle", "required (the Ref of an AWS::CloudFormation::WaitConditionHandle)")
    handle = _string(value["Handle"], "AvailableSignal.Handle")
    if not handle.startswith("https://") and not _opaque(handle):
        raise _fail("AvailableSignal.Handle", "expected the handle's presigned https:// URL (its Ref)")
    text = _string(value.get("Timeout", MAX_SIGNAL_TIMEOUT), "AvailableSignal.Timeout")
    if _opaque(text):
        return Signal(handle)
    try:
        seconds = int(float(text))
    except ValueError:
        raise _fail("AvailableSignal.Timeout", f"expected a whole number of seconds, got {_show(text)}") from None
    if not 1 <= seconds <= MAX_SIGNAL_TIMEOUT:
        raise _fail("AvailableSignal.Timeout", f"{seconds} is outside 1-{MAX_SIGNAL_TIMEOUT} seconds (12 hours)")
    return Signal(handle, seconds)


def parse(props: Any) -> ImageProperties:
    """Validate ResourceProperties; the error names the property and what is allowed."""
    if not isinstance(props, Mapping):
        raise InvalidProperties("ResourceProperties must be an object")
    unknown = sorted(str(k) for k in props if k not in KNOWN_PROPERTIES)
    if unknown:
        allowed = ", ".join(sorted(KNOWN_PROPERTIES))
        raise InvalidProperties(f"Unknown properties {', '.join(_show(k) for k in unknown[:5])}; allowed: {allowed}")
    if "ImageName" not in props:
        raise _fail("ImageName", "required")
    name = image_name(props["ImageName"])
    wait = _bool(props.get("WaitForAvailable", True), "WaitForAvailable")
    available_signal = signal(props["AvailableSignal"]) if "AvailableSignal" in props else None
    if available_signal is not None and not wait:
        raise _fail("WaitForAvailable", "false does not go with AvailableSignal, which signals once AVAILABLE")
    source = _source(props["Source"], name) if "Source" in props else Source()
    exported = export(props["Export"]) if "Export" in props else None
    if exported is not None and not wait:
        raise _fail("WaitForAvailable", "false does not go with Export, which starts once the image is AVAILABLE")
    adopt = _choice(props.get("Adopt", DEFAULT_ADOPT), "Adopt", ADOPT_MODES)
    if adopt != DEFAULT_ADOPT and source.type != "Existing" and not _opaque(adopt):
        raise _fail("Adopt", f"{adopt} applies to Source Type Existing only; Type {source.type} never adopts an image")
    return ImageProperties(
        image_name=name,
        source=source,
        shared_with=_shares(props.get("SharedWith", [])),
        tags=_tags(props.get("Tags", [])),
        wait_for_available=wait,
        in_use=_choice(props.get("InUse", DEFAULT_IN_USE), "InUse", IN_USE_MODES),  # type: ignore[arg-type]
        service_timeout=service_timeout(props.get("ServiceTimeout", MAX_TIMEOUT)),
        shared_on_delete=_choice(  # type: ignore[arg-type]
            props.get("SharedOnDelete", DEFAULT_SHARED_ON_DELETE), "SharedOnDelete", SHARED_ON_DELETE_MODES
        ),
        available_signal=available_signal,
        on_delete=_choice(props["OnDelete"], "OnDelete", ON_DELETE_MODES) if "OnDelete" in props else None,  # type: ignore[arg-type]
        adopt=adopt,  # type: ignore[arg-type]
        export=exported,
    )
