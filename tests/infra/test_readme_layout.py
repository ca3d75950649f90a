"""The README's Layout section matches the tree: every module is named there, and every name there exists."""

from __future__ import annotations

import re
import subprocess
from functools import cache

from tests.conftest import ROOT

# The packages whose modules the Layout names one by one.
PACKAGES = [
    "provider",
    "appstream_image_provider",
    "appstream_image_local",
    "appstream_image_local/appstream",
    "appstream_image_local/cfn",
    "stacks",
    "tools",
    "bench",
]


def layout() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^## Layout\n\n```\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    assert match, "the README has a Layout section with one code block"
    return match.group(1)


def entry(package: str) -> str:
    """The Layout's text for one package: its top-level entry, or for a subpackage the parentheses after it."""
    top, _, sub = package.partition("/")
    entries = re.split(r"^(?=\S)", layout(), flags=re.MULTILINE)
    [text] = [e for e in entries if e.startswith(f"{top}/ ")]
    if not sub:
        return text
    start = text.index(f"{sub}/ (") + len(sub) + 3
    depth, end = 1, start
    while depth:
        depth += {"(": 1, ")": -1}.get(text[end], 0)
        end += 1
    return text[start : end - 1]


@cache
def tracked() -> tuple[str, ...]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return tuple(out.splitlines())


def modules(package: str) -> set[str]:
    """The package's tracked modules (not stray files of a working tree)."""
    files = set(tracked())
    return {
        path.stem
        for path in (ROOT / package).glob("*.py")
        if path.stem not in ("__init__", "__main__") and str(path.relative_to(ROOT)) in files
    }


def test_every_module_of_each_package_is_named_in_its_entry() -> None:
    missing = {
        package: sorted(modules(package) - set(re.findall(r"[A-Za-z_]\w*", entry(package)))) for package in PACKAGES
    }
    assert {package: names for package, names in missing.items() if names} == {}


def test_every_top_level_folder_is_in_the_layout() -> None:
    folders = {path.split("/")[0] for path in tracked() if "/" in path and not path.startswith(".")}
    named = set(re.findall(r"^([A-Za-z_][\w-]*)/", layout(), re.MULTILINE))
    assert folders - named == set()


def test_every_python_file_the_layout_names_exists() -> None:
    files = {path.rsplit("/", 1)[-1] for path in tracked() if path.endswith(".py")}
    named = set(re.findall(r"\b([A-Za-z_]\w*\.py)\b", layout()))
    assert named - files == set()
