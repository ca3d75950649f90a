"""AppStreamImage: declare an AppStream 2.0 image in a CDK stack (Custom::AppStreamImage)."""

from __future__ import annotations

import dataclasses
import hashlib
import weakref
from typing import Any, Literal

import jsii
from aws_cdk import (
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
)
from constructs import Construct

from ._shared import contract
from .at_synth import HandleAfterInputs, RenderedTags, add_synth_checks, provider_accepts
from .checks import (
    available_timeout_seconds,
    check_choices,
    check_deletion,
    check_export,
    check_keep,
    deletion_properties,
    expect,
    in_use_of,
    resolved,
    shares_of,
    timeout_seconds,
    warn_of_a_public_source,
)
from .props import Adopt, ImageExport, ImageShare, ImageSource, InUse, OnDelete, SharedOnDelete
from .provider_function import ImageProvider, ProviderOptions


def _grant_roles(provider: ImageProvider, source: ImageSource, export: ImageExport | None) -> None:
    """The roles the provider passes to AppStream: an import's, an export's (each to AppStream only)."""
    if source.type == "Import":
        provider.grant_import(source.iam_role_arn or None)
    if export is not None:
        provider.grant_export(export.role.role_arn)


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
    """One AppStreamImage per image name and region in an app: two resources cannot both own one image."""
    if not resolved(name):
        return
    declared = _DECLARED.setdefault(image.node.root, {})
    key = f"{Stack.of(image).region}/{name}"  # env-agnostic stacks share one (unresolved) region, so one key
    other = declared.setdefault(key, image.node.path)
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
        keep: int = 0,
        keep_sharing: bool = False,
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
        :param keep: default 0: a replacement's old image is deleted. 1 to 10: a replacement (a new image_name)
            retires the old image instead, for a fleet to roll back to by name: it keeps its name and ownership tag
            and gets the tag `appstream-image-provider:retired` (when, ISO 8601 UTC); the retired images past the
            `keep` most recent are deleted (waited for). A rollback never retires, and deleting the stack (or
            removing the image from it) deletes the image and every retired one. Each kept image counts against
            AppStream's images-per-region quota. Only for an image the resource makes and deletes.
        :param keep_sharing: default False: retiring revokes the image's sharing, as a Delete does. True: a
            retired image stays shared (other accounts' fleets can roll back to it too). Only with `keep`.
        """
        super().__init__(scope, construct_id)
        source = source or ImageSource.existing()
        try:  # every message names the prop; this adds the construct's path
            expect(image_name, str, "image_name", "a string")
            expect(wait_for_available, bool, "wait_for_available", "True or False")
            expect(source, ImageSource, "source", "ImageSource.existing(), copy_of(...) or updated_from(...)")
            shares = shares_of(shared_with)
            in_use = in_use_of(in_use)
            if source.type not in ("Existing", "Copy", "Update", "Import"):
                raise ValueError("source: use ImageSource.existing(), copy_of(...), updated_from(...) or imported(...)")
            seconds = timeout_seconds(service_timeout)
            signal_seconds = available_timeout_seconds(available_timeout, image_name, wait_for_available, source)
            check_choices(shared_on_delete, removal_policy, service_token, provider_options)
            check_deletion(on_delete, adopt, source)
            check_export(export, wait_for_available)
            check_keep(keep, keep_sharing, source, on_delete, removal_policy)
            if service_token is None:
                _same_provider_options(self, provider_options)
            _declare(self, image_name)
        except ValueError as err:
            raise ValueError(f"{self.node.path}: {err}") from None

        warn_of_a_public_source(self, source)
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
        properties |= deletion_properties(shared_on_delete, on_delete, adopt, keep, keep_sharing)
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
        add_synth_checks(self, self._tags)

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
