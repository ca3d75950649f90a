"""What AppStreamImage checks of its props before it makes anything, in the construct's terms (the provider's own
rules run on the rendered properties: at_synth.py)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Annotations, Duration, RemovalPolicy, Token
from constructs import Construct

from ._shared import contract
from .props import Adopt, ImageExport, ImageShare, ImageSource, InUse, OnDelete, SharedOnDelete
from .provider_function import ProviderOptions

# What each kind of source is called in the construct's terms (messages name the factory the user wrote).
FACTORIES = {
    "Existing": "ImageSource.existing()",
    "Copy": "ImageSource.copy_of(...)",
    "Update": "ImageSource.updated_from(...)",
    "Import": "ImageSource.imported(...)",
}

# AWS's public base images are named AppStream-<platform>-<date> (and Amazon-AppStream2-Sample-Image-...).
AWS_IMAGE_PREFIXES = ("AppStream-", "Amazon-AppStream")


def resolved(value: str) -> bool:
    return not Token.is_unresolved(value)


def expect(value: Any, kind: type, prop: str, wanted: str) -> None:
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ValueError(f"{prop}: expected {wanted}, got {type(value).__name__} {value!r}")


def in_use_of(value: Any) -> InUse:
    """InUse.WAIT / InUse.FAIL, or CloudFormation's own strings ("Wait", "Fail")."""
    if isinstance(value, InUse):
        return value
    if isinstance(value, str) and value in (m.value for m in InUse):
        return InUse(value)
    raise ValueError(f"in_use: {value!r} is not one of InUse.WAIT, InUse.FAIL (or the strings 'Wait', 'Fail')")


def shares_of(value: Any) -> list[ImageShare]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise ValueError(f"shared_with: expected a list of ImageShare, got {type(value).__name__} {value!r}")
    for n, share in enumerate(value):
        if not isinstance(share, ImageShare):
            raise ValueError(
                f"shared_with[{n}]: expected ImageShare(...), got {type(share).__name__} {share!r}; "
                f"write ImageShare({str(share)!r})"
            )
        if not isinstance(share.account_id, str):
            raise ValueError(
                f"shared_with[{n}].account_id: expected a 12-digit string, got {type(share.account_id).__name__} "
                f"{share.account_id!r} (quote it: an account id can start with 0)"
            )
    return list(value)


def check_choices(
    shared_on_delete: Any, removal_policy: Any, service_token: Any, provider_options: ProviderOptions | None
) -> None:
    if not isinstance(shared_on_delete, SharedOnDelete):
        raise ValueError(
            f"shared_on_delete: {shared_on_delete!r} is not one of SharedOnDelete.REVOKE, SharedOnDelete.FAIL"
        )
    if removal_policy not in (RemovalPolicy.DESTROY, RemovalPolicy.RETAIN):
        raise ValueError("removal_policy: only DESTROY and RETAIN are supported")
    if service_token is not None and provider_options is not None:
        raise ValueError("provider_options: not with service_token (that provider has its own settings)")
    if service_token is not None:
        expect(service_token, str, "service_token", "a string (a provider function's ARN)")
    if provider_options is not None:
        expect(provider_options, ProviderOptions, "provider_options", "ProviderOptions(...)")


def check_export(export: Any, wait_for_available: bool) -> None:
    if export is None:
        return
    expect(export, ImageExport, "export", "ImageExport(ami_name=..., role=...)")
    if not wait_for_available:
        raise ValueError("export: starts once the image is AVAILABLE, which wait_for_available=False does not wait for")
    expect(export.ami_name, str, "export.ami_name", "a string")
    if not hasattr(export.role, "role_arn"):
        raise ValueError(
            f"export.role: expected an iam.IRole (iam.Role or iam.Role.from_role_arn), got {export.role!r}"
        )
    for key, value in export.tags.items():
        expect(key, str, "export.tags", "a dict of strings")
        expect(value, str, "export.tags", "a dict of strings")


def check_deletion(on_delete: Any, adopt: Any, source: ImageSource) -> None:
    """OnDelete and Adopt, in the construct's terms (the provider's rule on Adopt speaks of Source Type)."""
    if on_delete is not None and not isinstance(on_delete, OnDelete):
        raise ValueError(
            f"on_delete: {on_delete!r} is not one of OnDelete.DELETE, OnDelete.RELEASE (or None, the default: "
            "RELEASE for ImageSource.existing(), DELETE for an image the resource makes)"
        )
    if not isinstance(adopt, Adopt):
        raise ValueError(f"adopt: {adopt!r} is not one of Adopt.IF_UNOWNED, Adopt.IF_OWNER_GONE")
    if adopt is not Adopt.IF_UNOWNED and source.type != "Existing":
        raise ValueError(
            f"adopt: Adopt.{adopt.name} takes over an existing image, so it goes with source=ImageSource.existing() "
            f"only; {FACTORIES.get(source.type, source.type)} makes its own image and adopts none "
            "(allowed with it: Adopt.IF_UNOWNED, the default)"
        )


def check_keep(keep: Any, keep_sharing: Any, source: ImageSource, on_delete: Any, removal_policy: Any) -> None:
    """Keep and KeepSharing in the construct's terms (the provider's rule on their range runs on the rendered props)."""
    expect(keep, int, "keep", f"a whole number of images, 0 to {contract.MAX_KEEP}")
    expect(keep_sharing, bool, "keep_sharing", "True or False")
    if not 0 <= keep <= contract.MAX_KEEP:
        raise ValueError(
            f"keep: {keep} is outside 0-{contract.MAX_KEEP}; each kept image counts against AppStream's "
            "images-per-region quota (Service Quotas, AppStream 2.0)"
        )
    if keep_sharing and not keep:
        raise ValueError("keep_sharing: is what a retired image keeps, and keep=0 retires none (give keep=1 or more)")
    if not keep:
        return
    if source.type == "Existing":
        raise ValueError(
            "keep: applies to an image the resource makes (copy_of, updated_from, imported): "
            "ImageSource.existing() adopts an image, which a replacement releases or gives back, never retires"
        )
    if on_delete is OnDelete.RELEASE:
        raise ValueError("keep: goes with OnDelete.DELETE; with OnDelete.RELEASE a replaced image is kept anyway")
    if removal_policy is RemovalPolicy.RETAIN:
        raise ValueError(
            "keep: RemovalPolicy.RETAIN sends no Delete, so nothing is retired (every replaced image is kept); "
            "use keep with RemovalPolicy.DESTROY"
        )


def deletion_properties(
    shared_on_delete: SharedOnDelete,
    on_delete: OnDelete | None,
    adopt: Adopt,
    keep: int = 0,
    keep_sharing: bool = False,
) -> dict[str, Any]:
    """SharedOnDelete, OnDelete, Adopt, Keep and KeepSharing, each only when not left to its default: upgrades change
    no template."""
    properties: dict[str, Any] = {}
    if keep:
        properties["Keep"] = keep
    if keep_sharing:
        properties["KeepSharing"] = True
    if shared_on_delete is not SharedOnDelete.REVOKE:
        properties["SharedOnDelete"] = shared_on_delete.value
    if on_delete is not None:  # left out, the provider applies the same default for the source
        properties["OnDelete"] = on_delete.value
    if adopt is not Adopt.IF_UNOWNED:
        properties["Adopt"] = adopt.value
    return properties


def warn_of_a_public_source(image: Construct, source: ImageSource) -> None:
    name = source.source_image_name
    if source.type != "Existing" and resolved(name) and name.startswith(AWS_IMAGE_PREFIXES):
        Annotations.of(image).add_warning_v2(
            "appstream-image-provider:public-source",
            f"source: {name} looks like an AWS public image: CopyImage and CreateUpdatedImage take only images "
            f"this account owns. Launch an image builder from {name}, create a private image, and use that",
        )


def available_timeout_seconds(timeout: Duration | None, image_name: str, wait: bool, source: ImageSource) -> int | None:
    if timeout is None:
        return None
    seconds = whole_seconds(timeout, "available_timeout", "Duration.hours(12)", "1 s to 12 hours")
    if not wait:
        raise ValueError("available_timeout: waits for AVAILABLE, which wait_for_available=False turns off")
    if source.type == "Existing":
        raise ValueError(
            "available_timeout: not with source=ImageSource.existing(): an adoption starts nothing to wait for "
            "(the resource answers once the image is AVAILABLE); give it service_timeout instead (1 s to "
            "3600 s). available_timeout goes with ImageSource.copy_of(...), updated_from(...) or imported(...)"
        )
    if not resolved(image_name):
        raise ValueError(
            "available_timeout: needs an image_name known at synth (each image name gets its own wait "
            "condition, which cannot be updated), not a token"
        )
    return seconds  # its range: the provider's rule (properties.signal), checked with the rest


def timeout_seconds(timeout: Duration | None) -> int:
    if timeout is None:
        return contract.MAX_TIMEOUT
    # Its range: the provider's rule (properties.service_timeout), checked with the rest.
    return whole_seconds(timeout, "service_timeout", "Duration.minutes(30)", "1 s to 3600 s")


def whole_seconds(timeout: Any, prop: str, example: str, allowed: str) -> int:
    expect(timeout, Duration, prop, f"a Duration, such as {example}")
    try:
        return int(timeout.to_seconds())
    except RuntimeError:  # jsii: CannotConvertedIntoWhole
        raise ValueError(f"{prop}: {timeout.to_human_string()} is not a whole number of seconds ({allowed})") from None
