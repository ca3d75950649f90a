"""Exceptions whose messages become the CloudFormation Reason: short, naming image and cause."""


class ProviderError(Exception):
    """A failure the provider reports to CloudFormation as FAILED with this message."""


class InvalidProperties(ProviderError):
    """A resource property is missing, mistyped or outside its allowed values."""


class NotOwned(ProviderError):
    """The image belongs to another resource (or to nobody this provider manages)."""


class ImageFailed(ProviderError):
    """The image ended in the FAILED state or disappeared while being waited on."""


class ImageInUse(ProviderError):
    """Fleets or image builders still use the image."""


class NotPermitted(ProviderError):
    """AppStream refused the operation for this account (public or shared-with-us image)."""


class DeadlineExceeded(ProviderError):
    """The request's deadline (ServiceTimeout) passed before the image settled."""


class CreateFailed(ProviderError):
    """A Create failed after making the image: its response keeps the image name so the rollback deletes it."""

    def __init__(self, cause: str, physical_id: str) -> None:
        super().__init__(f"{cause} (the rollback deletes image {physical_id})")
        self.cause = cause
        self.physical_id = physical_id
