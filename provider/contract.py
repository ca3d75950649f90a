"""Names, patterns and limits shared by the provider (Lambda) and the CDK construct: one place.

Stdlib only, no imports from the rest of provider/: the construct imports this module at synth
time, and the Lambda asset carries it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Final

RESOURCE_TYPE = "Custom::AppStreamImage"
OWNER_TAG = "appstream-image-provider:owner"
# What the image was made from: an in-place Update (a rollback's too) compares its Source with this, not with
# OldResourceProperties, which a rollback fills with the failed properties (aws/aws-cdk#17040).
SOURCE_TAG = "appstream-image-provider:source"
# An adopted image's state before the adoption (the user's tags and sharing it changed): a rollback of that Create
# puts them back. Its value is ownership.AdoptedState's encoding.
ADOPTED_TAG = "appstream-image-provider:adopted"
# A renamed or moved construct (a new logical id, same ImageName, same stack instance): the owner it moved from,
# until CloudFormation's cleanup Delete of the old logical id; a rollback's Delete gives the image back to it.
MOVED_FROM_TAG = "appstream-image-provider:moved-from"
PROVIDER_TAGS = (OWNER_TAG, SOURCE_TAG, ADOPTED_TAG, MOVED_FROM_TAG)  # reserved: users' Tags cannot set them
# Keep: an image a rotation replaced, kept for a fleet to roll back to; its value is when (ISO 8601, UTC). Only an
# image the resource made is retired (never an adopted one), so it carries at most four of the provider's tags.
RETIRED_TAG = "appstream-image-provider:retired"
RESERVED_TAGS = (*PROVIDER_TAGS, RETIRED_TAG)
RULE_PREFIX = "AppStreamImagePoll-"  # every old polling rule's name starts with it (IAM scopes rules by it)
FAILED_CREATE_ID = "AppStreamImage::CREATE_FAILED"
SCOPE_ENV = "APPSTREAM_IMAGE_SCOPE"  # the provider function's env var: which images its role may manage
# The provider function's env vars for scheduled polling: its EventBridge Scheduler schedule group (the provider's
# role may manage schedules in it only), and the execution role its schedules invoke the function with.
SCHEDULE_GROUP_ENV = "APPSTREAM_IMAGE_SCHEDULE_GROUP"
SCHEDULER_ROLE_ENV = "APPSTREAM_IMAGE_SCHEDULER_ROLE"

# botocore appstream model, shape Name.
IMAGE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,100}$")
ACCOUNT_ID = re.compile(r"^\d{12}$")
RESERVED_PREFIXES = ("amazon", "aws", "appstream")  # CreateUpdatedImage: new names must not start with these
SOURCE_TYPES = ("Existing", "Copy", "Update", "Import")
# Source Copy's SourceRegion: a region's name (us-west-2, us-gov-west-1); the provider also checks it against
# botocore's list of the regions AppStream serves (endpoints data), where botocore is there (not at synth).
REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$")
# botocore appstream model, CreateImportedImage: PhotonAmiId, WorkspaceImageId, Arn, ImageImport* and the enum.
AMI_ID = re.compile(r"^ami-[a-z0-9]{8,17}$")
WORKSPACE_IMAGE_ID = re.compile(r"^wsi-[0-9a-z]{8,63}$")
ROLE_ARN = re.compile(r"^arn:aws(?:-cn|-iso-b|-iso|-us-gov)?:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")
IMPORT_TEXT = re.compile(r"^[a-zA-Z0-9_.() -]+$")  # an imported image's Description and DisplayName
AGENT_SOFTWARE_VERSIONS = ("CURRENT_LATEST", "ALWAYS_LATEST")
APP_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,99}$")
APP_KEYS = frozenset(
    {"Name", "DisplayName", "AbsoluteAppPath", "AbsoluteIconPath", "AbsoluteManifestPath", "WorkingDirectory",
     "LaunchParameters"}
)  # fmt: skip
MAX_APPS = 50
IN_USE_MODES = ("Wait", "Fail")
# Revoking an account's fleet permission sets its fleets on the image to zero capacity (admin guide, sharing images).
SHARED_ON_DELETE_MODES = ("Revoke", "Fail")
DEFAULT_SHARED_ON_DELETE: Final = "Revoke"
DEFAULT_IN_USE: Final = "Wait"  # a rotation's cleanup Delete waits for the stack's fleet to let go of the old image
# OnDelete: what a Delete does with the image (CDK's convention for stateful resources: nothing the stack did not
# make is deleted by default). Release removes the provider's tags and keeps the image, its tags and its sharing.
ON_DELETE_MODES = ("Delete", "Release")


def default_on_delete(source_type: str) -> str:
    """Release for an adopted image (Source Existing), Delete for one the resource made (Copy, Update, Import)."""
    return "Release" if source_type == "Existing" else "Delete"


# Adopt: which images Source Existing takes. IfUnowned: only one without an ownership tag (or this resource's);
# IfOwnerGone: also one whose owner stack instance no longer exists (DescribeStacks says so), e.g. a retained image.
ADOPT_MODES = ("IfUnowned", "IfOwnerGone")
DEFAULT_ADOPT: Final = "IfUnowned"
MAX_TIMEOUT = 3600  # CloudFormation's ServiceTimeout: 1-3600 s
# AWS::CloudFormation::WaitCondition: Timeout at most 43200 s (12 hours), counted from the wait condition's creation.
MAX_SIGNAL_TIMEOUT = 43200
SIGNAL_KEYS = frozenset({"Handle", "Timeout"})  # AvailableSignal: the wait condition's handle and its Timeout
MAX_DESCRIPTION = 256  # botocore model: Description max 256
MAX_DISPLAY_NAME = 100  # botocore model: DisplayName max 100

# Tags (botocore model, shapes TagKey / TagValue / Tags): AppStream's patterns use \p{L}\p{Z}\p{N}.
MAX_RESOURCE_TAGS = 50
MAX_TAGS = MAX_RESOURCE_TAGS - len(PROVIDER_TAGS)  # the rest are the provider's own
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
TAG_PUNCTUATION = frozenset("_.:/=+-@")
# botocore's AppStream model, TagValue (Java regex classes; CloudFormation's AllowedPattern reads them too).
TAG_VALUE_PATTERN = r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$"
MAX_SHARES = 100  # accounts an image can be shared with

KNOWN_PROPERTIES = frozenset(
    {
        "ServiceToken",
        "ServiceTimeout",
        "ImageName",
        "Source",
        "SharedWith",
        "Tags",
        "WaitForAvailable",
        "InUse",
        "SharedOnDelete",
        "AvailableSignal",
        "OnDelete",
        "Adopt",
        "Export",
        "Keep",
        "KeepSharing",
    }
)
# Keep: how many images a rotation replaced stay retired (not deleted) for a fleet to roll back to. Each counts
# against AppStream's images-per-region quota (adjustable, on the order of tens: Service Quotas, AppStream).
MAX_KEEP = 10
# Export: CreateExportImageTask's members (botocore appstream model): AmiName (shape AmiName), IamRoleArn,
# AmiDescription (shape Description, max 256), TagSpecifications (shape Tags: the AMI's tags, at most 50).
EXPORT_KEYS = frozenset({"AmiName", "IamRoleArn", "AmiDescription", "TagSpecifications"})
AMI_NAME = re.compile(r"^[a-zA-Z0-9().\-/_]{3,128}$")
SOURCE_KEYS = {
    "Existing": frozenset({"Type"}),
    "Copy": frozenset({"Type", "SourceImageName", "Description", "SourceRegion"}),
    "Update": frozenset({"Type", "SourceImageName", "DisplayName", "Description"}),
    "Import": frozenset(
        {
            "Type",
            "SourceAmiId",
            "WorkspaceImageId",
            "IamRoleArn",
            "Description",
            "DisplayName",
            "AgentSoftwareVersion",
            "IntendedInstanceType",
            "AppCatalogConfig",
        }
    ),
}
SHARE_KEYS = frozenset({"AccountId", "AllowFleet", "AllowImageBuilder"})
ATTRIBUTES = (
    "Arn",
    "Name",
    "State",
    "Platform",
    "Visibility",
    "CreatedTime",
    "BaseImageArn",
    "AppstreamAgentVersion",
    "DisplayName",
    "AmiId",  # Export: the AMI the export made ("" without Export, or until it has completed)
)


def tag_character_ok(char: str) -> bool:
    r"""`[\p{L}\p{Z}\p{N}_.:/=+\-@]`: a letter, a separator (space), a number, or one of `_ . : / = + - @`."""
    return unicodedata.category(char)[0] in "LZN" or char in TAG_PUNCTUATION


def tag_key_problem(key: str) -> str:
    """Why AppStream would reject this tag key ("" when it would not)."""
    if not 1 <= len(key) <= MAX_TAG_KEY:
        return f"must be 1-{MAX_TAG_KEY} characters"
    if key.lower().startswith("aws:"):
        return "must not start with aws:"
    bad = sorted({c for c in key[1:] if not tag_character_ok(c)} | ({"\n"} & {key[0]}))
    if bad:
        return f"contains {''.join(bad)!r}; allowed: letters, digits, spaces and _ . : / = + - @"
    return ""


def tag_value_problem(value: str) -> str:
    """Why AppStream would reject this tag value ("" when it would not)."""
    if len(value) > MAX_TAG_VALUE:
        return f"must be at most {MAX_TAG_VALUE} characters"
    bad = sorted({c for c in value if not tag_character_ok(c)})
    if bad:
        return f"contains {''.join(bad)!r}; allowed: letters, digits, spaces and _ . : / = + - @"
    return ""


def tag_safe(text: str) -> str:
    """`text` with every character a tag value does not allow replaced by `-`."""
    return "".join(c if tag_character_ok(c) else "-" for c in text)


# The ownership tag's value names a resource: `<stack name>/<logical id>/<8 hex of the StackId>` (owner_value).
STACK_DIGEST = 8
LONG_DIGEST = 16


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def stack_name_of(stack_id: str) -> str:
    """The stack name from a StackId ARN (`arn:...:stack/<name>/<uuid>`); the id itself otherwise."""
    parts = stack_id.split("/")
    return parts[1] if len(parts) > 1 and stack_id.startswith("arn:") else stack_id


def owner_value(stack_id: str, logical_id: str) -> str:
    """`<stack name>/<logical id>/<8 hex of the StackId>`: only characters AppStream's TagValue allows.

    The StackId (unique per stack instance) keeps a late duplicate Delete from a deleted stack
    away from the image of a re-created stack of the same name. The `<stack name>/` prefix is what
    the IAM statement that retires a stack's images matches (owner_pattern). A value longer
    than a tag value allows keeps its head and ends with a hash of the whole.
    """
    value = tag_safe(f"{stack_name_of(stack_id)}/{logical_id}/{_digest(stack_id, STACK_DIGEST)}")
    if len(value) <= MAX_TAG_VALUE:
        return value
    return f"{value[: MAX_TAG_VALUE - LONG_DIGEST - 1]}/{_digest(value, LONG_DIGEST)}"


def stack_of(owner: str) -> tuple[str, str] | None:
    """(stack name, 8 hex of its StackId) from an ownership tag's value; None for a value that was shortened."""
    parts = owner.split("/")
    if len(parts) != 3 or len(parts[2]) != STACK_DIGEST:
        return None
    return parts[0], parts[2]


def same_stack(stack_id: str, digest: str) -> bool:
    """Whether `digest` (from an ownership tag's value) is that of stack instance `stack_id`."""
    return _digest(stack_id, STACK_DIGEST) == digest


def owner_pattern(stack_name: str) -> str:
    """The IAM StringLike pattern matching the ownership tag of every resource of stack `stack_name`."""
    return f"{stack_name}/*"
