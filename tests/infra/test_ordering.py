"""tests/conftest.py's order for worksteal: long tests at the heads of the shares, jsii tests together first."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

import pytest

from tests.conftest import pytest_collection_modifyitems


@dataclass(eq=False)
class Item:
    name: str
    marker: str = ""

    def get_closest_marker(self, name: str) -> object | None:
        return object() if name == self.marker else None


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
