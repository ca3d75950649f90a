"""Source: where an image comes from (Existing, Copy, Update, Import), parsed and checked against AppStream's model."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..contract import (
    AGENT_SOFTWARE_VERSIONS,
    AMI_ID,
    APP_KEYS,
    APP_NAME,
    IMPORT_TEXT,
    MAX_APPS,
    MAX_DESCRIPTION,
    MAX_DISPLAY_NAME,
    REGION,
    RESERVED_PREFIXES,
    ROLE_ARN,
    SOURCE_KEYS,
    SOURCE_TYPES,
    WORKSPACE_IMAGE_ID,
)
from .fields import choice, entries, fail, image_name, mapping, matching, opaque, show, text_of


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


def parse_source(value: Any, new_name: str) -> Source:
    if not isinstance(value, Mapping) or "Type" not in value:
        raise fail("Source", f"expected an object with Type ({', '.join(SOURCE_TYPES)})")
    kind = choice(value["Type"], "Source.Type", SOURCE_TYPES)
    mapping(value, "Source", SOURCE_KEYS[kind])
    if kind == "Existing":
        return Source()
    if kind == "Import":
        return _import(value)
    if "SourceImageName" not in value:
        raise fail("Source.SourceImageName", f"required when Source.Type is {kind}")
    source_name = image_name(value["SourceImageName"], "Source.SourceImageName")
    region = source_region(value["SourceRegion"]) if "SourceRegion" in value else ""
    if source_name == new_name and not opaque(new_name) and not region:
        raise fail("Source.SourceImageName", "must differ from ImageName (or name its SourceRegion)")
    if kind == "Update" and new_name.lower().startswith(RESERVED_PREFIXES) and not opaque(new_name):
        raise fail("ImageName", "an updated image's name cannot start with Amazon, AWS or AppStream")
    description = text_of(value.get("Description", ""), "Source.Description")
    display_name = text_of(value.get("DisplayName", ""), "Source.DisplayName")
    if len(description) > MAX_DESCRIPTION:
        raise fail("Source.Description", f"at most {MAX_DESCRIPTION} characters, got {len(description)}")
    if len(display_name) > MAX_DISPLAY_NAME:
        raise fail("Source.DisplayName", f"at most {MAX_DISPLAY_NAME} characters, got {len(display_name)}")
    return Source(kind, source_name, description, display_name, source_region=region)  # type: ignore[arg-type]


@functools.cache  # a botocore session once per container, not per request
def appstream_regions() -> frozenset[str]:
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
    text = text_of(value, "Source.SourceRegion")
    if opaque(text):
        return text
    if not REGION.match(text):
        raise fail("Source.SourceRegion", f"{show(text)} is not a region name (such as us-west-2)")
    served = appstream_regions()
    if served and text not in served:
        raise fail("Source.SourceRegion", f"AppStream is not served in {text}; it is in {', '.join(sorted(served))}")
    return text


def _import(value: Mapping[str, Any]) -> Source:
    """CreateImportedImage's members, checked against its model (an AMI import needs its role)."""
    ami, workspace = value.get("SourceAmiId"), value.get("WorkspaceImageId")
    if (ami is None) == (workspace is None):
        raise fail("Source", "Type Import takes exactly one of SourceAmiId and WorkspaceImageId")
    if ami is not None:
        origin = matching(ami, "Source.SourceAmiId", AMI_ID, "an EC2 AMI id")
    else:
        origin = matching(workspace, "Source.WorkspaceImageId", WORKSPACE_IMAGE_ID, "a WorkSpaces image id")
    if ami is not None and "IamRoleArn" not in value:
        raise fail("Source.IamRoleArn", "required to import an AMI (the role AppStream uses to read it)")
    role = (
        matching(value["IamRoleArn"], "Source.IamRoleArn", ROLE_ARN, "an IAM role ARN") if "IamRoleArn" in value else ""
    )
    texts = {}
    for key, limit in (("Description", MAX_DESCRIPTION), ("DisplayName", MAX_DISPLAY_NAME)):
        text = text_of(value.get(key, ""), f"Source.{key}")
        if len(text) > limit:
            raise fail(f"Source.{key}", f"at most {limit} characters, got {len(text)}")
        if text and not IMPORT_TEXT.match(text) and not opaque(text):
            raise fail(f"Source.{key}", f"{show(text)} may hold only letters, digits, spaces and _ . ( ) -")
        texts[key] = text
    agent = (
        choice(value["AgentSoftwareVersion"], "Source.AgentSoftwareVersion", AGENT_SOFTWARE_VERSIONS)
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
        intended_instance_type=text_of(value.get("IntendedInstanceType", ""), "Source.IntendedInstanceType"),
        app_catalog=_apps(value.get("AppCatalogConfig", [])),
    )


def _apps(value: Any) -> str:
    apps = []
    for n, entry in enumerate(entries(value, "Source.AppCatalogConfig", MAX_APPS)):
        prop = f"Source.AppCatalogConfig[{n}]"
        mapping(entry, prop, APP_KEYS)
        for required in ("Name", "AbsoluteAppPath"):
            if required not in entry:
                raise fail(f"{prop}.{required}", "required")
        matching(entry["Name"], f"{prop}.Name", APP_NAME, "an application name")
        apps.append({str(k): text_of(v, f"{prop}.{k}") for k, v in sorted(entry.items())})
    return json.dumps(apps, separators=(",", ":"), sort_keys=True) if apps else ""
