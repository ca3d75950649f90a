"""provider/ in two packages with one module between them: the CloudFormation side imports nothing of the AppStream
side and the AppStream side nothing of the CloudFormation side; only step.py (and the entry, handler.py) join them.
The imports are read from each module's AST, relative ones resolved, so a lazy import inside a function counts."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PROVIDER = ROOT / "provider"
CLOUDFORMATION, APPSTREAM = "provider.cloudformation", "provider.appstream"
SHARED = {"provider.contract", "provider.errors", "provider.logs"}  # leaves both sides may import


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every module `path` imports: `import a.b`, `from a import b` (a, and a.b should b be a module), relative too."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def modules(package: str) -> dict[str, set[str]]:
    directory = ROOT.joinpath(*package.split("."))
    return {module_name(path): imported(path) for path in sorted(directory.glob("*.py"))}


def within(names: set[str], package: str) -> set[str]:
    return {name for name in names if name == package or name.startswith(f"{package}.")}


def test_the_scan_resolves_relative_imports() -> None:
    creation = imported(PROVIDER / "appstream" / "creation.py")
    assert {"provider.appstream.states", "provider.errors", "provider.contract.IMAGE_NAME"} <= creation
    assert "provider.cloudformation.response" in imported(PROVIDER / "handler.py")
    assert "provider.appstream.caller" in imported(PROVIDER / "appstream" / "creation.py")  # under TYPE_CHECKING too


@pytest.mark.parametrize(("side", "other"), [(CLOUDFORMATION, APPSTREAM), (APPSTREAM, CLOUDFORMATION)])
def test_neither_side_imports_the_other_nor_the_modules_between(side: str, other: str) -> None:
    found = modules(side)
    assert len(found) >= 9  # the scan sees the package's modules
    crossing = {name: sorted(within(names, other)) for name, names in found.items() if within(names, other)}
    assert crossing == {}
    joining = {name: sorted(names & {"provider.step", "provider.handler"}) for name, names in found.items()}
    assert {name: names for name, names in joining.items() if names} == {}


def test_only_the_step_and_the_entry_know_both_sides() -> None:
    top = modules("provider")
    both = {name for name, names in top.items() if within(names, CLOUDFORMATION) and within(names, APPSTREAM)}
    assert both == {"provider.step", "provider.handler"}
    for leaf in SHARED:  # the shared leaves import neither side
        assert not within(top[leaf], "provider.cloudformation") | within(top[leaf], "provider.appstream")


def test_the_appstream_side_reads_no_cloudformation_wire_format() -> None:
    """Its modules never name the request's or the polling input's keys: the step hands them typed values."""
    wire = ("CrHelper", "ResponseURL", "_Resume", "RequestType", "PhysicalResourceId", "StackId")
    for path in sorted((PROVIDER / "appstream").glob("*.py")):
        text = path.read_text()
        assert [key for key in wire if key in text] == [], path.name


def test_the_cloudformation_side_makes_no_appstream_call() -> None:
    for path in sorted((PROVIDER / "cloudformation").glob("*.py")):
        names = imported(path)
        assert not {name for name in names if "appstream" in name.lower()}, path.name
        assert '"appstream"' not in path.read_text(), path.name  # no boto3.client("appstream")
