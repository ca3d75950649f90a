"""tests/conftest.py's order for worksteal (long tests at the heads of the shares, jsii tests together first), and
its test tiers: the fast tier (`make check`) leaves out the tests marked jsii or toolchain, and fails a test of its
own that starts what they do."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

import tests.conftest
from tests.conftest import (
    FAST_TIER,
    ROOT,
    Tripwire,
    module_marks,
    pytest_collection_modifyitems,
    pytest_ignore_collect,
    pytest_runtest_makereport,
    selects_any,
)
from tools.synth import cached_synth


@dataclass(eq=False)
class Item:
    name: str
    marker: str = ""
    also: str = ""  # a second marker

    def get_closest_marker(self, name: str) -> object | None:
        return object() if name in (self.marker, self.also) and name else None

    @property
    def nodeid(self) -> str:
        return self.name


def shares(items: list[Item], workers: int) -> list[list[str]]:
    """The contiguous shares worksteal deals: each worker the remaining count over the workers left."""
    out, rest = [], [i.name for i in items]
    for worker in range(workers):
        count = len(rest) // (workers - worker)
        out.append(rest[:count])
        rest = rest[count:]
    return out


def ordered(items: list[Item], workers: int) -> list[Item]:
    config = SimpleNamespace(workerinput={"workercount": workers})
    pytest_collection_modifyitems(cast("pytest.Config", cast("Any", config)), cast("list[pytest.Item]", items))
    return items


def test_the_jsii_tests_lead_the_last_share_and_the_long_tests_lead_the_others() -> None:
    items = [Item(f"t{n}") for n in range(40)]
    items += [Item(f"long{n}", "long") for n in range(7)]
    items += [Item(f"jsii{n}", "jsii") for n in range(8)]
    dealt = shares(ordered(items, 6), 6)
    assert dealt[-1][:8] == [f"jsii{n}" for n in range(8)]
    assert not [name for name in dealt[-1] if name.startswith("long")]
    assert [share[0] for share in dealt[:5]] == [f"long{n}" for n in range(5)]
    assert sorted(name for share in dealt for name in share) == sorted(i.name for i in items)


def test_without_jsii_tests_every_share_leads_with_a_long_test() -> None:
    items = [Item(f"t{n}") for n in range(30)] + [Item(f"long{n}", "long") for n in range(6)]
    dealt = shares(ordered(items, 6), 6)
    assert [share[0] for share in dealt] == [f"long{n}" for n in range(6)]


def test_the_minutes_long_tests_lead_before_any_share_gets_a_fast_tier_long_one() -> None:
    items = [Item(f"t{n}") for n in range(30)] + [Item(f"quick{n}", "long") for n in range(4)]
    items += [Item(f"cli{n}", "long", also="toolchain") for n in range(3)]
    dealt = shares(ordered(items, 4), 4)
    assert [share[0] for share in dealt] == ["cli0", "cli1", "cli2", "quick0"]
    assert [share[1] for share in dealt[:3]] == ["quick1", "quick2", "quick3"]


def test_every_process_of_a_distributed_run_collects_garbage_again_once_the_tests_run(tmp_path: Path) -> None:
    """tests/conftest.py turns the collector off while the modules load: pytest-xdist's controller, which collects
    nothing, ran the whole suite without it (found in review)."""
    probe = tmp_path / "gc_probe.py"
    probe.write_text(
        "import gc, os\n\n"
        "def pytest_sessionfinish(session):\n"
        '    print(f\'\\nGC {os.environ.get("PYTEST_XDIST_WORKER", "controller")} {gc.isenabled()}\')\n'
    )
    one = "tests/infra/test_ordering.py::test_without_jsii_tests_every_share_leads_with_a_long_test"
    command = [sys.executable, "-m", "pytest", "-q", "-s", "-n", "1", "-p", "gc_probe", "-p", "no:cacheprovider", one]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}  # not this run's worker
    env["PYTHONPATH"] = str(tmp_path)
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("GC ")]  # a worker's output stays there
    assert (result.returncode, lines) == (0, ["GC controller True"]), result.stdout[-3000:] + result.stderr[-3000:]


# -- the test tiers (tests/conftest.py): `make check` runs `-m FAST_TIER` -------------------------------------------


def test_the_fast_tier_leaves_out_the_jsii_and_toolchain_tests_and_keeps_the_others() -> None:
    assert not selects_any(FAST_TIER, {"jsii"})
    assert not selects_any(FAST_TIER, {"toolchain", "long"})
    assert selects_any(FAST_TIER, set())
    assert selects_any(FAST_TIER, {"long"})
    assert selects_any("jsii or toolchain", {"jsii"})
    assert selects_any("long", {"jsii"})  # a jsii module may hold a long test
    assert not selects_any("long and not jsii", {"jsii"})
    assert selects_any('offline_cloud(scenario="aws-durations")', {"jsii"})  # marker arguments: not judged


def test_a_module_whose_every_test_the_expression_leaves_out_is_not_even_imported(tmp_path: Path) -> None:
    """Importing test_construct.py starts jsii: `make check` does not import it."""
    jsii, both, plain = (tmp_path / f"test_{name}.py" for name in ("jsii", "both", "plain"))
    jsii.write_text("import pytest\n\npytestmark = pytest.mark.jsii\n")
    both.write_text("import pytest\n\npytestmark = [pytest.mark.toolchain, pytest.mark.long]\n")
    plain.write_text("import pytest\n\n@pytest.mark.toolchain\ndef test_x() -> None: ...\n")
    assert (module_marks(jsii), module_marks(both), module_marks(plain)) == ({"jsii"}, {"toolchain", "long"}, set())

    def ignored(path: Path, markexpr: str) -> bool | None:
        config = SimpleNamespace(option=SimpleNamespace(markexpr=markexpr))
        return pytest_ignore_collect(path, cast("pytest.Config", cast("Any", config)))

    assert ignored(jsii, FAST_TIER) is True
    assert ignored(both, FAST_TIER) is True
    assert ignored(plain, FAST_TIER) is None  # its test is deselected after collection
    assert ignored(jsii, "") is None
    assert ignored(jsii, "jsii") is None
    assert ignored(both, "long") is None


def test_the_tripwire_refuses_node_a_venv_pip_and_a_synth_in_this_process_and_its_children(tmp_path: Path) -> None:
    tripwire = Tripwire()  # armed over the one this fast-tier test runs under, and before it: it sees each refusal
    path, popen = os.environ["PATH"], subprocess.Popen.__init__
    tripwire.arm()
    try:
        child = subprocess.run(["sh", "-c", "node -e 1"], capture_output=True, text=True, check=False)
        assert child.returncode == 97  # jsii's runtime and the CDK CLI are `node` from PATH, also in a child
        assert "mark the test `toolchain`" in child.stderr
        for command in (["node", "x.js"], [sys.executable, "-m", "venv", "v"], ["pip", "install", "x"]):
            with pytest.raises(RuntimeError, match="mark the test `toolchain`"):
                subprocess.run(command, check=False)
        with pytest.raises(RuntimeError, match="mark the test `toolchain`"):
            venv.create(tmp_path / "venv")
        with pytest.raises(RuntimeError, match="may start no jsii runtime"):
            cached_synth(goldenImage="golden-2026-11")
        assert subprocess.run(["sh", "-c", "exit 0"], check=False).returncode == 0  # anything else runs
        started = tripwire.started()
        assert [line.split()[0] for line in started] == ["node", "node", sys.executable, "pip", "venv", "a"]
        assert tripwire.started() == []  # each refusal is reported once
    finally:
        tripwire.disarm()
    assert (os.environ["PATH"], subprocess.Popen.__init__) == (path, popen)


def test_a_fast_tier_test_that_started_one_fails_naming_it_and_a_toolchain_test_may(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tripwire = Tripwire()
    monkeypatch.setattr(tests.conftest, "TRIPWIRE", tripwire)

    def reported(item: Item) -> pytest.TestReport:
        tripwire.log.write_text(tripwire.log.read_text() + "node /tmp/jsii-runtime.js\n")
        report = pytest.TestReport(item.name, ("x.py", 0, item.name), {}, "passed", None, "call")
        hook = pytest_runtest_makereport(cast("pytest.Item", item), cast("Any", None))
        next(hook)
        with pytest.raises(StopIteration) as done:
            hook.send(report)
        return cast("pytest.TestReport", done.value.value)

    failed = reported(Item("tests/x.py::test_fast"))
    assert failed.outcome == "failed"
    assert "tests/x.py::test_fast is in the fast tier" in str(failed.longrepr)
    assert "started: node /tmp/jsii-runtime.js" in str(failed.longrepr)
    assert reported(Item("tests/x.py::test_slow", "toolchain")).outcome == "passed"
    assert reported(Item("tests/x.py::test_cdk", "jsii")).outcome == "passed"


def test_make_check_runs_the_fast_tier_of_tests_conftest_py() -> None:
    [expression] = re.findall(r"^FAST_TIER := (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert expression == FAST_TIER
