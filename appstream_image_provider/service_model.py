"""AppStream's service model as the Lambda asset ships it: stdlib only, so that hatch_build.py can load
this file by its path (the build environment has no aws-cdk-lib to import the package with)."""

from __future__ import annotations

import json


def compact_model(model: dict[str, object]) -> bytes:
    """The model without its documentation strings, as stable JSON (the wheel's build and asset.py both use this)."""

    def strip(value: object) -> object:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("documentation", "documentationUrl")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    compact = strip(model)
    assert isinstance(compact, dict)
    metadata = compact["metadata"]
    # JSON 1.1, which every botocore speaks: older ones do not know the smithy-rpc-v2-cbor listed first.
    if "json" in metadata.get("protocols", ["json"]):
        metadata["protocol"], metadata["protocols"] = "json", ["json"]
    return json.dumps(compact, separators=(",", ":"), sort_keys=True).encode()
