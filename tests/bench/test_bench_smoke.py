"""Each benchmark runs at its smallest size, yields sane figures and renders its report section.

One test per benchmark, so they run side by side (bench/long_wait.py's smoke test is in tests/e2e); concurrency's
runs through the command, which writes the results files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import QUICK, main, report, run_all

BENCHMARKS = {
    "latency",
    "scale",
    "long_scale",
    "concurrency",
    "long_wait",
    "cold_start",
    "asset",
    "synth_scale",
    "console_stop",
    "kit_long_wait",
}


def only(name: str) -> dict[str, Any]:
    """run_all at the smallest sizes, for this one benchmark."""
    results = run_all(QUICK, skip=BENCHMARKS - {name})
    assert name in results
    return results


@pytest.mark.long  # one of the fast tier's longest (real-time waits): started first (tests/conftest.py)
def test_latency_and_its_cost_at_the_smallest_size() -> None:
    results = only("latency")
    [row] = results["latency"]["rows"]
    assert row["T"] == 0
    assert 0 <= row["ours"]["median"] < 3
    assert row["ours_delete"]["median"] == 1
    assert results["latency"]["crhelper"]["floor"] == 240
    spread = results["latency"]["random_t"]
    assert spread["T"] == [1.3]
    assert 0 <= spread["ours_mean_overhead"] < 3
    assert spread["ours_describe_per_minute"] > 0
    [cost] = results["cost"]["rows"]
    assert cost["ours"]["usd"] > 0
    assert cost["framework"]["transitions"] == 3
    text = report(results)
    for heading in ("## 1.", "## 2.", "## 8."):
        assert heading in text


@pytest.mark.long  # one of the fast tier's longest (real-time waits): started first (tests/conftest.py)
def test_cold_start_at_the_smallest_size() -> None:
    results = only("cold_start")
    cold = results["cold_start"]
    assert cold["handler"]["median"] > 0
    assert cold["baseline"]["median"] > 0
    assert 0 < cold["peak_rss_mb"] < 1024
    assert cold["service_start"]["median"] > 0
    assert "## 5." in report(results)


@pytest.mark.long  # half a minute or more: started first (tests/conftest.py)
@pytest.mark.toolchain  # synths in child processes (jsii)
def test_asset_and_synth_scale_at_the_smallest_size() -> None:
    results = run_all(QUICK, skip=BENCHMARKS - {"asset", "synth_scale"})
    assert results["asset"]["hash_stable"]
    assert results["asset"]["zip_bytes"] < 100 * 1024
    assert [r["functions"] for r in results["synth_scale"]["rows"]] == [1, 1]
    text = report(results)
    assert "## 6." in text
    assert "## 7." in text


@pytest.mark.toolchain  # the synthesized provider stack (bench/harness.py: tools/synth.py)
def test_scale_at_the_smallest_size() -> None:
    results = only("scale")
    scale = results["scale"]
    assert scale["failures"] == []
    assert scale["images_left"] == 0
    assert scale["bystander_untouched"]
    assert scale["quota_refusals"] >= 1  # the one slot was taken as the stack deployed: its copy waited
    assert scale["access_denied"] == 0
    assert "## 9." in report(results)


@pytest.mark.long  # half a minute or more: started first (tests/conftest.py)
@pytest.mark.toolchain  # the synthesized provider stack (bench/harness.py)
def test_aws_durations_through_wait_conditions_at_the_smallest_size() -> None:
    results = only("long_scale")
    run = results["long_scale"]
    assert run["failures"] == []
    assert run["available_after_deploy"] == run["images"]
    assert run["images_left"] == 0
    assert run["rules_left"] == 0
    assert run["leaks"] == 0
    assert run["invalid_responses"] == 0
    assert run["bystander_untouched"]
    assert run["quota_refusals"] >= 1  # both copy slots held by unrelated copies at first: a copy waited
    assert run["deploy_seconds"] >= run["bound_seconds"]  # nothing beats AppStream's own durations
    assert "## 10." in report(results)


@pytest.mark.long  # one of the fast tier's longest (real-time waits): started first (tests/conftest.py)
def test_the_command_writes_results_files_and_concurrency_at_the_smallest_size(tmp_path: Path) -> None:
    skip = ",".join(sorted(BENCHMARKS - {"concurrency"}))  # the cheapest one: no synth, four small processes
    (tmp_path / "results.md").write_text("# old figures\n\n## Test tiers (by hand)\n\nmake check: 64 s\n")
    assert main(["--quick", "--skip", skip, "--out", str(tmp_path)]) == 0
    written = (tmp_path / "results.md").read_text()
    assert "## 3. Concurrency" in written
    assert "old figures" not in written  # the benchmarks' part is written anew
    assert written.endswith("\n\n## Test tiers (by hand)\n\nmake check: 64 s\n")  # the hand-measured part is kept
    concurrency = json.loads((tmp_path / "results.json").read_text())["concurrency"]
    assert concurrency["success"] == concurrency["count"]
    assert concurrency["images_left"] == 0


def test_the_full_run_measures_deletions_at_distinct_times_off_the_loops_interval() -> None:
    from bench.__main__ import FULL

    times = FULL["random_t"]
    assert len(times) == 8
    assert len(set(times)) == len(times)  # one seeded generator, not eight fresh ones
    assert any(t % 5 for t in times)


def test_console_stop_at_the_smallest_size() -> None:
    results = only("console_stop")
    stop = results["console_stop"]
    assert stop["functions_left"] == 0  # what the figure is for: nothing left running after Ctrl-C
    assert stop["idle"]["n"] == stop["busy"]["n"] == 1
    assert "## 11. Ctrl-C" in report(results)
