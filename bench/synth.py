"""The asset (zip size, hash stability) and synth scale (1, 10, 100 images in one stack)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import zipfile
from typing import Any

from appstream_image_provider import asset
from bench.harness import ROOT, summary

SYNTH = """
import json, sys
from aws_cdk import App, Stack
from aws_cdk.assertions import Template
from appstream_image_provider.appstream_image import AppStreamImage
app = App()
stack = Stack(app, "Scale")
for n in range({count}):
    AppStreamImage(stack, f"Image{{n}}", image_name=f"image-{{n:03d}}")
template = Template.from_stack(stack).to_json()
print(json.dumps(template))
"""


def asset_figures() -> dict[str, Any]:
    directory = asset.build()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory))
    hashes = [_asset_hash() for _ in range(2)]
    return {"zip_bytes": len(buffer.getvalue()), "hashes": hashes, "hash_stable": hashes[0] == hashes[1]}


def _asset_hash() -> str:
    template = _synth(1)[1]
    [function] = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    return str(function["Properties"]["Code"]["S3Key"])


def _synth(count: int) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", SYNTH.format(count=count)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    elapsed = time.perf_counter() - started
    return elapsed, json.loads(out.stdout.strip().splitlines()[-1])


def scale(counts: list[int], repeats: int = 3) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for count in counts:
        runs = [_synth(count) for _ in range(repeats)]
        template = runs[-1][1]
        size = len(json.dumps(template))
        functions = sum(1 for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function")
        rows.append({"images": count, "seconds": summary([r[0] for r in runs]), "bytes": size, "functions": functions})
    base = rows[0]
    for row in rows:
        added = row["images"] - base["images"]
        row["bytes_per_added_image"] = (row["bytes"] - base["bytes"]) / added if added else 0.0
        row["time_ratio"] = row["seconds"]["median"] / base["seconds"]["median"]
    return {"rows": rows}
