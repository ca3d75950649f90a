"""Where the offline cloud's users get the CDK CLI from: `find_cdk`, and what to install when it is missing."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

__all__ = ["CDK_ENV", "INSTALL_HINT", "CdkNotFound", "find_cdk"]

CDK_ENV = "OFFLINE_CLOUD_CDK"  # names the `cdk` executable to use (else node_modules/.bin, then PATH)
INSTALL_HINT = (
    "Install it in your CDK app: `npm install --save-dev aws-cdk@2` (Node.js 22 or newer; jsii warns on 20), "
    f"or name it with {CDK_ENV}=/path/to/cdk or the pytest ini option offline_cloud_cdk"
)


class CdkNotFound(RuntimeError):
    """No CDK CLI where the fixture looks: the message says where it looked and what to install."""


def find_cdk(setting: str = "", near: Iterable[Path] = ()) -> str:
    """The CDK CLI: `setting` (or $OFFLINE_CLOUD_CDK) if given, else `node_modules/.bin/cdk` in each of
    `near` and their parents (your app, the pytest rootdir), else the first `cdk` on PATH."""
    named = setting or os.environ.get(CDK_ENV, "")
    if named:
        found = shutil.which(named)
        if found is None:
            raise CdkNotFound(f"the CDK CLI named by {CDK_ENV} / offline_cloud_cdk ({named}) is not an executable")
        return found
    looked: list[str] = []
    for start in near:
        for folder in (Path(start).resolve(), *Path(start).resolve().parents):
            candidate = folder / "node_modules" / ".bin" / "cdk"
            if str(candidate) in looked:
                break
            looked.append(str(candidate))
            if os.access(candidate, os.X_OK):
                return str(candidate)
    on_path = shutil.which("cdk")
    if on_path is not None:
        return on_path
    where = ", ".join([*looked[:4], "PATH"])
    raise CdkNotFound(f"the CDK CLI was not found (looked in {where}). {INSTALL_HINT}")
