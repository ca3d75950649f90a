"""AppStreamImage: declare an AppStream 2.0 image in a CDK stack (Custom::AppStreamImage)."""

from __future__ import annotations

import dataclasses
import hashlib
import weakref
from typing import Any, Literal

import jsii
from aws_cdk import (
    Annotations,
    Aspects,
    CfnWaitCondition,
    CfnWaitConditionHandle,
    CustomResource,
    Duration,
    Fn,
    ITaggable,
    RemovalPolicy,
    Stack,
    TagManager,
    TagType,
    Token,
)
from constructs import Construct

from ._shared import contract
from .at_synth import HandleAfterInputs, RenderedTags, TagsAllowed, provider_accepts
from .props import Adopt, ImageExport, ImageShare, ImageSource, InUse, OnDelete, SharedOnDelete
from .provider_function import ImageProvider, ProviderOptions

# What each kind of source is called in the construct's terms (messages name the factory the user wrote).
FACTORIES = {
    "Existing": "ImageSource.existing()",
    "Copy": "ImageSource.copy_of(...)",
    "Update": "ImageSource.updated_from(...)",
    "Import": "ImageSource.imported(...)",
}

# AWS's public base images are named AppStream-<platform>-<date> (and Amazon-AppStream2-Sample-Image-...).
AWS_IMAGE_PREFIXES = ("AppStream-", "Amazon-AppStream")


def _resolved(value: str) -> bool:
    return not Token.is_unresolved(value)


def _expect(value: Any, kind: type, prop: str, wanted: str) -> None:
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ValueError(f"{prop}: expected {wanted}, got {type(value).__name__} {value!r}")


def _in_use(value: Any) -> InUse:
    """InUse.WAIT / InUse.FAIL, or CloudFormation's own strings ("Wait", "Fail")."""
    if isinstance(value, InUse):
        return value
    if isinstance(value, str) and value in (m.value for m in InUse):
        return InUse(value)
    raise ValueError(f"in_use: {value!r} is not one of InUse.WAIT, InUse.FAIL (or the strings 'Wait', 'Fail')")


def _shares(value: Any) -> list[ImageShare]:
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


def _check_choices(
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
        _expect(service_token, str, "service_token", "a string (a provider function's ARN)")
    if provider_options is not None:
        _expect(provider_options, ProviderOptions, "provider_options", "ProviderOptions(...)")


def _check_export(export: Any, wait_for_available: bool) -> None:
    if export is None:
        return
    _expect(export, ImageExport, "export", "ImageExport(ami_name=..., role=...)")
    if not wait_for_available:
        raise ValueError("export: starts once the image is AVAILABLE, which wait_for_available=False does not wait for")
    _expect(export.ami_name, str, "export.ami_name", "a string")
    if not hasattr(export.role, "role_arn"):
        raise ValueError(
            f"export.role: expected an iam.IRole (iam.Role or iam.Role.from_role_arn), got {export.role!r}"
        )
    for key, value in export.tags.items():
        _expect(key, str, "export.tags", "a dict of strings")
        _expect(value, str, "export.tags", "a dict of strings")


def _grant_roles(provider: ImageProvider, source: ImageSource, export: ImageExport | None) -> None:
    """The roles the provider passes to AppStream: an import's, an export's (each to AppStream only)."""
    if source.type == "Import":
        provider.grant_import(source.iam_role_arn or None)
    if export is not None:
        provider.grant_export(export.role.role_arn)


def _check_deletion(on_delete: Any, adopt: Any, source: ImageSource) -> None:
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


def _deletion_properties(shared_on_delete: SharedOnDelete, on_delete: OnDelete | None, adopt: Adopt) -> dict[str, str]:
    """SharedOnDelete, OnDelete and Adopt, each only when not left to its default: upgrades change no template."""
    properties = {}
    if shared_on_delete is not SharedOnDelete.REVOKE:
        properties["SharedOnDelete"] = shared_on_delete.value
    if on_delete is not None:  # left out, the provider applies the same default for the source
        properties["OnDelete"] = on_delete.value
    if adopt is not Adopt.IF_UNOWNED:
        properties["Adopt"] = adopt.value
    return properties


def _warn_of_a_public_source(image: Construct, source: ImageSource) -> None:
    name = source.source_image_name
    if source.type != "Existing" and _resolved(name) and name.startswith(AWS_IMAGE_PREFIXES):
        Annotations.of(image).add_warning_v2(
            "appstream-image-provider:public-source",
            f"source: {name} looks like an AWS public image: CopyImage and CreateUpdatedImage take only images "
            f"this account owns. Launch an image builder from {name}, create a private image, and use that",
        )


# Per stack: the path of the AppStreamImage whose provider_options made the stack's provider function.
_PROVIDER_MADE_BY: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def _show_option(value: Any) -> str:
    if isinstance(value, Construct):
        return value.node.path
    if isinstance(value, tuple):
        return "(" + ", ".join(_show_option(v) for v in value) + ")"
    return repr(value)


def _same_provider_options(image: Construct, options: ProviderOptions | None) -> None:
    """One provider function per stack, made with the first image's options: every other image must ask for them.

    `ImageProvider.of` refuses other options only when some are given: an image without `provider_options`
    (the default `ProviderOptions()`) after one with them would silently get that image's function.
    """
    stack = Stack.of(image)
    found = stack.node.try_find_child(ImageProvider.ID)
    if not isinstance(found, ImageProvider):
        return
    wanted = options if options is not None else ProviderOptions()
    if wanted == found.options:
        return
    differ = [
        f"{field.name}={_show_option(getattr(wanted, field.name))} here, "
        f"{_show_option(getattr(found.options, field.name))} there"
        for field in dataclasses.fields(ProviderOptions)
        if getattr(wanted, field.name) != getattr(found.options, field.name)
    ]
    first = _PROVIDER_MADE_BY.get(stack, found.node.path)
    raise ValueError(
        f"provider_options: differ from {first}'s, which made {stack.node.path}'s one provider function "
        f"({'; '.join(differ)}); every AppStreamImage of a stack shares that function: give them all the same "
        "provider_options (leaving it out means ProviderOptions())"
    )


_DECLARED: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()


def _declare(image: Construct, name: str) -> None:
    """One AppStreamImage per image name in an app: two resources cannot both own one image."""
    if not _resolved(name):
        return
    declared = _DECLARED.setdefault(image.node.root, {})
    other = declared.setdefault(name, image.node.path)
    if other != image.node.path:
        raise ValueError(f"image_name: {name} is already declared by {other}; one image can have one owner")


@jsii.implements(ITaggable)
class AppStreamImage(Construct):
    """An AppStream image managed by the stack. Delete waits until AppStream says it is gone.

    Tags: `Tags.of(image).add(key, value)`. Using `image.image_name` in a fleet or image
    builder makes CloudFormation delete that fleet before the image.

    What removing the image from the stack does (or deleting the stack): `on_delete` decides what the
    resource's Delete does: RELEASE (the default for `ImageSource.existing()`) removes the provider's own tags
    and keeps the image, with its other tags and its sharing; DELETE (the default for an image the resource
    makes) deletes it. `removal_policy=RemovalPolicy.RETAIN` is different: CloudFormation then sends no Delete
    at all, so the image keeps everything, the ownership tag naming this stack instance included, and no other
    resource adopts it by default; `adopt=Adopt.IF_OWNER_GONE` (with `ImageSource.existing()`) takes it over
    once that stack instance is gone. To hand an image over cleanly, prefer `on_delete=OnDelete.RELEASE`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        image_name: str,
        source: ImageSource | None = None,
        shared_with: list[ImageShare] | None = None,
        in_use: InUse | Literal["Wait", "Fail"] = InUse.WAIT,
        wait_for_available: bool = True,
        service_timeout: Duration | None = None,
        shared_on_delete: SharedOnDelete = SharedOnDelete.REVOKE,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
        provider_options: ProviderOptions | None = None,
        service_token: str | None = None,
        available_timeout: Duration | None = None,
        on_delete: OnDelete | None = None,
        adopt: Adopt = Adopt.IF_UNOWNED,
        export: ImageExport | None = None,
    ) -> None:
        """
        :param image_name: the image's name (required); also the resource's physical id.
        :param source: default `ImageSource.existing()` (adopt an existing image).
        :param shared_with: default none; at most 100 accounts.
        :param in_use: default `InUse.WAIT`: a Delete (a rotation's cleanup too) waits until fleets and image
            builders let go of the image, up to `service_timeout`; `InUse.FAIL` fails at once naming them.
            CloudFormation's strings "Wait" and "Fail" are accepted too.
        :param wait_for_available: default True: deployment waits until the image is AVAILABLE.
        :param service_timeout: default one hour (CloudFormation's maximum); 1 s to 3600 s.
        :param shared_on_delete: default `SharedOnDelete.REVOKE`: a Delete revokes the image's sharing first
            (logged by account: other accounts' fleets on the image drop to zero capacity); `SharedOnDelete.FAIL`
            refuses to delete an image that is still shared, naming the accounts.
        :param removal_policy: default DESTROY: CloudFormation sends the resource its Delete, and `on_delete`
            decides what that does. RETAIN: CloudFormation sends no Delete at all (nor on a replacement: it is the
            UpdateReplacePolicy too), and the image keeps its ownership tag (see above: `adopt=Adopt.IF_OWNER_GONE`
            takes it over later).
        :param provider_options: default `ProviderOptions()`: the settings of the stack's provider function
            (memory, function name, role, permissions boundary, VPC and security groups, log retention or
            log group). Every image of a stack shares one function, so give them all the same options.
        :param service_token: default none: the stack gets its own provider function. Give an existing
            provider's ServiceToken instead (such as `Fn.import_value("AppStreamImageProvider-ServiceToken")`
            from the provider stack): then no function is made here, and that provider's scope applies.
            Choose once: CloudFormation does not update a custom resource's ServiceToken ("Modifying service
            token is not allowed."), so moving an existing image between providers needs a new construct id.
        :param available_timeout: default none: the resource itself waits for AVAILABLE, within `service_timeout`
            (at most one hour). A Duration of up to 12 hours (CloudFormation's wait condition maximum) waits
            longer: the resource answers once the copy, update or import has started, and a wait condition (a
            new handle and condition per image name, since a wait condition cannot be updated) waits for the
            provider's signal. Then `image_name` resolves only once the image is AVAILABLE, so a fleet using
            it starts only then; `available` is the one thing to depend on otherwise. A failure, or the
            deadline, fails the wait condition: the stack rolls back and the image is deleted. Not with
            `ImageSource.existing()`: an adoption starts nothing to wait for (the resource answers once the image
            is AVAILABLE, within `service_timeout`).
        :param on_delete: default none, which means `OnDelete.RELEASE` for `ImageSource.existing()` (the
            image is kept, without the provider's tags) and `OnDelete.DELETE` for an image the resource makes
            (copy_of, updated_from, imported: it is deleted, and the Delete waits until it is gone). Given, it is
            sent as the resource's OnDelete; left out, nothing is sent and the provider applies the same default.
        :param adopt: default `Adopt.IF_UNOWNED`: `ImageSource.existing()` takes only an image no other resource
            owns. `Adopt.IF_OWNER_GONE` also takes one whose ownership tag names a stack instance that no longer
            exists, such as an image kept by `RemovalPolicy.RETAIN` after its stack was deleted. Only with
            `ImageSource.existing()`.
        :param export: default none. `ImageExport(ami_name=..., role=...)` exports the image to an EC2 AMI once it
            is AVAILABLE (on the first deployment, and again when the export settings change: the image itself is
            kept); the deployment waits for the export, and `ami_id` is the AMI's id. The AMI is yours: deleting
            the image or the stack never deletes it. With `available_timeout`, the export goes on after the
            resource's answer too (the wait condition waits for it), and `ami_id` is not available.
        """
        super().__init__(scope, construct_id)
        source = source or ImageSource.existing()
        try:  # every message names the prop; this adds the construct's path
            _expect(image_name, str, "image_name", "a string")
            _expect(wait_for_available, bool, "wait_for_available", "True or False")
            _expect(source, ImageSource, "source", "ImageSource.existing(), copy_of(...) or updated_from(...)")
            shares = _shares(shared_with)
            in_use = _in_use(in_use)
            if source.type not in ("Existing", "Copy", "Update", "Import"):
                raise ValueError("source: use ImageSource.existing(), copy_of(...), updated_from(...) or imported(...)")
            seconds = self._validate_timeout(service_timeout)
            signal_seconds = self._validate_available_timeout(available_timeout, image_name, wait_for_available, source)
            _check_choices(shared_on_delete, removal_policy, service_token, provider_options)
            _check_deletion(on_delete, adopt, source)
            _check_export(export, wait_for_available)
            if service_token is None:
                _same_provider_options(self, provider_options)
            _declare(self, image_name)
        except ValueError as err:
            raise ValueError(f"{self.node.path}: {err}") from None

        _warn_of_a_public_source(self, source)
        self.provider: ImageProvider | None = None
        if service_token is None:
            self.provider = ImageProvider.of(self, provider_options)
            _PROVIDER_MADE_BY.setdefault(Stack.of(self), self.node.path)
            sources = [source.source_image_name] if source.type in ("Copy", "Update") else []
            self.provider.grant_images([image_name], sources=sources, source_region=source.region)
            _grant_roles(self.provider, source, export)
            self.provider.allow_retiring_owned_images()
            service_token = self.provider.service_token
        self._tags = TagManager(TagType.KEY_VALUE, contract.RESOURCE_TYPE)
        properties: dict[str, Any] = {
            "ImageName": image_name,
            "Source": source.to_properties(),
            "SharedWith": [
                {
                    "AccountId": s.account_id,
                    "AllowFleet": s.allow_fleet,
                    "AllowImageBuilder": s.allow_image_builder,
                }
                for s in shares
            ],
            "Tags": RenderedTags(self._tags),
            "WaitForAvailable": wait_for_available,
            "InUse": in_use.value,
        }
        properties |= _deletion_properties(shared_on_delete, on_delete, adopt)
        properties |= {"Export": export.to_properties()} if export is not None else {}
        # A wait condition cannot be updated, and a handle must not be reused: a new pair for each image name.
        suffix = hashlib.sha256(image_name.encode()).hexdigest()[:8].upper()
        handle = CfnWaitConditionHandle(self, f"AvailableHandle{suffix}") if signal_seconds is not None else None
        if handle is not None:
            properties["AvailableSignal"] = {"Handle": handle.ref, "Timeout": signal_seconds}
        provider_accepts(properties, seconds, self.node.path)
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=service_token,
            resource_type=contract.RESOURCE_TYPE,
            properties=properties,
            removal_policy=removal_policy,
            service_timeout=Duration.seconds(seconds),
        )
        if self.provider is not None:
            # The provider's policies exist before the first request and after the last (the function is a GetAtt).
            self.resource.node.add_dependency(*self.provider.policies)
        self.wait_condition: CfnWaitCondition | None = None
        if handle is not None:
            self.wait_condition = CfnWaitCondition(
                self, f"Available{suffix}", handle=handle.ref, timeout=str(signal_seconds)
            )
            # Its Timeout starts when it is created: after the resource has answered (user guide, wait conditions).
            self.wait_condition.node.add_dependency(self.resource)
            # The handle's URL expires 24 hours after the handle is made: made as late as it can be, just before the
            # resource, it depends on what the resource depends on (once the app has added every dependency).
            Aspects.of(self).add(HandleAfterInputs(self.resource, handle, properties))
        self.node.add_validation(TagsAllowed(self._tags, self.node.path))

    # -- attributes ---------------------------------------------------------------------------

    @property
    def tags(self) -> TagManager:
        """Tags for the image; add them with `Tags.of(image).add(key, value)`."""
        return self._tags

    @property
    def image_name(self) -> str:
        """The image name: resources using it are created after the image is AVAILABLE and deleted before it.

        Without `available_timeout`, the resource's Ref. With it, the same name joined to the wait condition's
        Ref and taken back out (both strings), so that whatever uses it also waits for the wait condition."""
        if self.wait_condition is None:
            return self.resource.ref
        return Fn.select(0, Fn.split(",", Fn.join(",", [self.resource.ref, self.wait_condition.ref])))

    @property
    def available(self) -> Construct:
        """What to depend on to start only once the image is AVAILABLE (`fleet.node.add_dependency(...)`): the
        wait condition with `available_timeout`, else the resource (which then answers only once AVAILABLE)."""
        return self.wait_condition if self.wait_condition is not None else self.resource

    @property
    def image_arn(self) -> str:
        return self.resource.get_att_string("Arn")

    @property
    def state(self) -> str:
        return self.resource.get_att_string("State")

    @property
    def platform(self) -> str:
        return self.resource.get_att_string("Platform")

    @property
    def visibility(self) -> str:
        return self.resource.get_att_string("Visibility")

    @property
    def created_time(self) -> str:
        return self.resource.get_att_string("CreatedTime")

    @property
    def base_image_arn(self) -> str:
        return self.resource.get_att_string("BaseImageArn")

    @property
    def appstream_agent_version(self) -> str:
        return self.resource.get_att_string("AppstreamAgentVersion")

    @property
    def display_name(self) -> str:
        return self.resource.get_att_string("DisplayName")

    @property
    def ami_id(self) -> str:
        """The id of the AMI `export` made (empty without `export`). Not with `available_timeout`: the resource
        answers before the export ends, so refer to the AMI by its `ami_name` there."""
        if self.wait_condition is not None:
            raise ValueError(
                f"{self.node.path}: ami_id: with available_timeout the resource answers before the export ends, so "
                "its AmiId is empty; refer to the AMI by its name (ImageExport.ami_name) instead, or wait within "
                "service_timeout (no available_timeout)"
            )
        return self.resource.get_att_string("AmiId")

    # -- validation ---------------------------------------------------------------------------

    @staticmethod
    def _validate_available_timeout(
        timeout: Duration | None, image_name: str, wait: bool, source: ImageSource
    ) -> int | None:
        if timeout is None:
            return None
        seconds = _whole_seconds(timeout, "available_timeout", "Duration.hours(12)", "1 s to 12 hours")
        if not wait:
            raise ValueError("available_timeout: waits for AVAILABLE, which wait_for_available=False turns off")
        if source.type == "Existing":
            raise ValueError(
                "available_timeout: not with source=ImageSource.existing(): an adoption starts nothing to wait for "
                "(the resource answers once the image is AVAILABLE); give it service_timeout instead (1 s to "
                "3600 s). available_timeout goes with ImageSource.copy_of(...), updated_from(...) or imported(...)"
            )
        if not _resolved(image_name):
            raise ValueError(
                "available_timeout: needs an image_name known at synth (each image name gets its own wait "
                "condition, which cannot be updated), not a token"
            )
        return seconds  # its range: the provider's rule (properties.signal), checked with the rest

    @staticmethod
    def _validate_timeout(timeout: Duration | None) -> int:
        if timeout is None:
            return contract.MAX_TIMEOUT
        # Its range: the provider's rule (properties.service_timeout), checked with the rest.
        return _whole_seconds(timeout, "service_timeout", "Duration.minutes(30)", "1 s to 3600 s")


def _whole_seconds(timeout: Any, prop: str, example: str, allowed: str) -> int:
    _expect(timeout, Duration, prop, f"a Duration, such as {example}")
    try:
        return int(timeout.to_seconds())
    except RuntimeError:  # jsii: CannotConvertedIntoWhole
        raise ValueError(f"{prop}: {timeout.to_human_string()} is not a whole number of seconds ({allowed})") from None


# Whole paths that are one prop of the construct's (it fills in the rest of the resource's object itself).
