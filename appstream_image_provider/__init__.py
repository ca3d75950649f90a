"""Manage Amazon AppStream 2.0 images from the AWS CDK: the `AppStreamImage` construct (a
`Custom::AppStreamImage` resource whose Delete waits until the image is really gone) and the
provider stack that plain CloudFormation templates use through its exported ServiceToken.

The provider's Lambda code and its pinned crhelper travel inside this package: synthesizing needs
only aws-cdk-lib and constructs. The names below are imported on first use, so that a submodule
(the shared contract, say) can be imported without starting aws-cdk-lib's jsii runtime.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .appstream_image import AppStreamImage
    from .promotion import ImagePromotion
    from .props import (
        Adopt,
        ImageExport,
        ImageShare,
        ImageSource,
        ImportedApplication,
        InUse,
        OnDelete,
        SharedOnDelete,
    )
    from .provider_function import ImageProvider, ProviderOptions
    from .provider_stack import AppStreamImageProviderStack

__version__ = "0.1.0"
_WHERE = {
    "AppStreamImage": "appstream_image",
    "ImagePromotion": "promotion",
    "Adopt": "props",
    "ImageExport": "props",
    "ImageShare": "props",
    "ImageSource": "props",
    "ImportedApplication": "props",
    "InUse": "props",
    "OnDelete": "props",
    "SharedOnDelete": "props",
    "ImageProvider": "provider_function",
    "ProviderOptions": "provider_function",
    "AppStreamImageProviderStack": "provider_stack",
}
__all__ = [
    "Adopt",
    "AppStreamImage",
    "AppStreamImageProviderStack",
    "ImageExport",
    "ImagePromotion",
    "ImageProvider",
    "ImageShare",
    "ImageSource",
    "ImportedApplication",
    "InUse",
    "OnDelete",
    "ProviderOptions",
    "SharedOnDelete",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
