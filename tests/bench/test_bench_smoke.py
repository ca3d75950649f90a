"""Each benchmark runs at its smallest size and yields sane figures (bench/long_wait.py: tests/e2e)."""

from __future__ import annotations

from pathlib import Path

from bench.__main__ import QUICK, main, report, run_all


def test_benchmarks_run_at_the_smallest_size_and_report(tmp_path: Path) -> None:
    results = run_all(QUICK, skip={"long_wait"})
    [row] = results["latency"]["rows"]
    assert row["T"] == 0
    assert 0 <= row["ours"]["median"] < 3
    assert row["ours_delete"]["median"] == 1
    assert results["latency"]["crhelper"]["floor"] == 240
    concurrency = results["concurrency"]
    assert concurrency["success"] == concurrency["count"]
    assert concurrency["images_left"] == 0
    cold = results["cold_start"]
    assert cold["handler"]["median"] > 0
    assert cold["baseline"]["median"] > 0
    assert 0 < cold["peak_rss_mb"] < 1024
    assert cold["service_start"]["median"] > 0
    assert results["asset"]["hash_stable"]
    assert results["asset"]["zip_bytes"] < 100 * 1024
    assert [r["functions"] for r in results["synth_scale"]["rows"]] == [1, 1]
    spread = results["latency"]["random_t"]
    assert spread["T"] == [1.3]
    assert 0 <= spread["ours_mean_overhead"] < 3
    assert spread["ours_describe_per_minute"] > 0
    scale = results["scale"]
    assert scale["failures"] == []
    assert scale["images_left"] == 0
    assert scale["bystander_untouched"]
    assert scale["quota_refusals"] >= 1  # two copies, one slot: the second waited for it
    assert scale["access_denied"] == 0
    [cost] = results["cost"]["rows"]
    assert cost["ours"]["usd"] > 0
    assert cost["framework"]["transitions"] == 3
    text = report(results)
    for heading in ("## 1.", "## 2.", "## 3.", "## 5.", "## 6.", "## 7.", "## 8.", "## 9."):
        assert heading in text


def test_the_command_writes_results_files(tmp_path: Path) -> None:
    assert (
        main(
            ["--quick", "--skip", "latency,scale,concurrency,long_wait,cold_start,synth_scale", "--out", str(tmp_path)]
        )
        == 0
    )
    assert "## 6. Asset" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "results.json").exists()
