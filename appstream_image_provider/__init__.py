"""Manage Amazon AppStream 2.0 images from the AWS CDK: the `AppStreamImage` construct (a
`Custom::AppStreamImage` resource whose Delete waits until the image is really gone) and the
provider stack that plain CloudFormation templates use through its exported ServiceToken.

The provider's Lambda code and its pinned crhelper travel inside this package: synthesizing needs
only aws-cdk-lib and constructs.
"""

from __future__ import annotations

from .appstream_image import AppStreamImage, ImageShare, ImageSource, ImportedApplication, InUse, SharedOnDelete
from .provider_function import ImageProvider, ProviderOptions
from .provider_stack import AppStreamImageProviderStack

__version__ = "0.1.0"
__all__ = [
    "AppStreamImage",
    "AppStreamImageProviderStack",
    "ImageProvider",
    "ImageShare",
    "ImageSource",
    "ImportedApplication",
    "InUse",
    "ProviderOptions",
    "SharedOnDelete",
    "__version__",
]
