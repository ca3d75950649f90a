"""mypy follows only the aws-cdk-lib modules this code imports (pyproject.toml): the list must stay whole,
or a newly imported module would be typed Any without a word."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from tests.conftest import ROOT


def _mypy_config() -> dict[str, object]:
    config: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    return config


def _followed() -> set[str]:
    overrides = _mypy_config()["overrides"]
    assert isinstance(overrides, list)
    return {
        module for override in overrides if override.get("follow_imports") == "normal" for module in override["module"]
    }


def _checked_files() -> list[Path]:
    files = _mypy_config()["files"]
    assert isinstance(files, list)
    found: list[Path] = []
    for entry in files:
        path = ROOT / entry
        found.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return found


def _cdk_modules(source: str) -> set[str]:
    """Every aws_cdk module a file names: `import aws_cdk.x`, `from aws_cdk import x` (a module or a name)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names if alias.name.split(".")[0] == "aws_cdk")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "aws_cdk":
            modules.add(node.module)
            if node.module == "aws_cdk":
                # `from aws_cdk import aws_iam as iam` imports a module; `from aws_cdk import Stack` a name of aws_cdk.
                modules.update(f"aws_cdk.{a.name}" for a in node.names if a.name.startswith(("aws_", "assertions")))
    return modules


def test_every_aws_cdk_module_the_checked_code_imports_is_followed_by_mypy() -> None:
    imported = set().union(*(_cdk_modules(path.read_text()) for path in _checked_files()))
    assert "aws_cdk.aws_lambda" in imported  # the scan sees the construct's imports
    assert imported - _followed() == set(), "add these to the follow_imports = 'normal' override in pyproject.toml"


def test_the_scan_sees_both_import_forms() -> None:
    source = "import aws_cdk.aws_sqs\nfrom aws_cdk import Stack, aws_sns as sns\nfrom aws_cdk.aws_kms import Key\n"
    assert _cdk_modules(source) == {"aws_cdk.aws_sqs", "aws_cdk", "aws_cdk.aws_sns", "aws_cdk.aws_kms"}


def test_every_provider_module_its_packages_too_is_checked_strictly() -> None:
    """provider/ is two packages (cloudformation/, appstream/) and the modules between: mypy strict sees them all."""
    provider = set((ROOT / "provider").rglob("*.py"))
    assert {ROOT / "provider" / side / "__init__.py" for side in ("cloudformation", "appstream")} <= provider
    assert provider - set(_checked_files()) == set()
    config = _mypy_config()
    assert config["strict"] is True
    overrides = config["overrides"]
    assert isinstance(overrides, list)
    assert [o for o in overrides if any(str(m).startswith("provider") for m in o["module"])] == []  # none relaxed
