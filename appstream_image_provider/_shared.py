"""The provider modules the construct uses (contract, errors, properties), imported from one place.

Installed from the wheel, the Lambda code travels inside this package as `appstream_image_provider.provider`
(hatch_build.py puts provider/**/*.py there). In a source checkout there is no such subpackage: the
repository's top-level `provider` package is imported under its own name, so every module has exactly
one import path (`provider.errors.InvalidProperties` is the construct's InvalidProperties too).
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

PACKAGE = Path(__file__).resolve().parent
INSTALLED = (PACKAGE / "provider" / "contract.py").is_file()  # the wheel's copy
PROVIDER_DIR = PACKAGE / "provider" if INSTALLED else PACKAGE.parent / "provider"
PROVIDER_PACKAGE = f"{__package__}.provider" if INSTALLED else "provider"

if TYPE_CHECKING:
    from provider import contract, errors
    from provider.appstream import properties, sources
else:
    contract = import_module(f"{PROVIDER_PACKAGE}.contract")
    errors = import_module(f"{PROVIDER_PACKAGE}.errors")
    properties = import_module(f"{PROVIDER_PACKAGE}.appstream.properties")
    sources = import_module(f"{PROVIDER_PACKAGE}.appstream.sources")

__all__ = ["PROVIDER_DIR", "contract", "errors", "properties", "sources"]
