"""Stacks sharing one provider under throttling (also the smoke test of bench/load.py)."""

from __future__ import annotations

import os

import pytest

from bench import load

pytestmark = pytest.mark.toolchain  # the synthesized provider stack (bench/harness.py, tools/synth.py: jsii)

STACKS = int(os.environ.get("RELIABILITY_STACKS", "3"))


def test_stacks_sharing_one_provider_all_succeed_while_a_fifth_of_calls_are_throttled() -> None:
    result = load.run(stacks=STACKS, throttled=0.2)
    assert result["failures"] == []
    assert result["requests"] == 2 * STACKS
    assert result["throttled"] > 0
    assert result["images_left"] == 0
    assert result["bystander_untouched"]
    assert result["leaks"] == 0
    assert result["invalid_responses"] == 0
