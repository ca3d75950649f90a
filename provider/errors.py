"""Exceptions whose messages become the CloudFormation Reason: short, naming image and cause."""

from __future__ import annotations

from typing import Any


class ProviderError(Exception):
    """A failure the provider reports to CloudFormation as FAILED with this message."""


class InvalidProperties(ProviderError):
    """A resource property is missing, mistyped or outside its allowed values.

    `prop` names it as CloudFormation does (`SharedWith[0].AccountId`); `problem` is what is wrong.
    """

    def __init__(self, message: str, prop: str = "", problem: str = "") -> None:
        super().__init__(message)
        self.prop = prop
        self.problem = problem or message


class NotOwned(ProviderError):
    """The image belongs to another resource (or to nobody this provider manages)."""


class ImageFailed(ProviderError):
    """The image ended in the FAILED state or disappeared while being waited on."""


class ImageInUse(ProviderError):
    """Fleets or image builders still use the image."""


class ImageShared(ProviderError):
    """The image is shared with other accounts and SharedOnDelete is Fail."""


class NotPermitted(ProviderError):
    """AppStream refused the operation for this account (public or shared-with-us image)."""


class QuotaExceeded(ProviderError):
    """An AppStream quota that waiting will not free (images per account and region)."""


class AccessDenied(ProviderError):
    """The provider's role may not do this to this image."""


class DeadlineExceeded(ProviderError):
    """The request's deadline (ServiceTimeout) passed before the image settled."""

    def __init__(self, message: str, progress: Any = None) -> None:
        super().__init__(message)
        self.progress = progress
