"""`make setup` byte-compiles aws-cdk-lib's modules that the construct imports (tools/precompile.py)."""

from __future__ import annotations

from tools.precompile import _cdk_modules_imported


def test_the_probe_names_the_aws_cdk_modules_a_stack_with_the_construct_imports() -> None:
    found = {path.split("/site-packages/")[-1] for path in _cdk_modules_imported()}
    for module in ("aws_cdk/__init__.py", "aws_cdk/aws_lambda/__init__.py", "aws_cdk/aws_iam/__init__.py"):
        assert module in found
    assert "aws_cdk/aws_medialive/__init__.py" not in found  # one of the ~650 modules nothing here imports
