"""The reliability suite's tally: cases generated, faults injected, responses checked, images protected.

`python -m bench.reliability` runs this suite at full size and writes bench/reliability.md from it.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

EXAMPLES = int(os.environ.get("RELIABILITY_EXAMPLES", "300"))
DETERMINISTIC = "RELIABILITY_EXAMPLES" not in os.environ


@pytest.fixture(scope="session")
def tally() -> Iterator[Counter[str]]:
    counts: Counter[str] = Counter()
    yield counts
    target = os.environ.get("RELIABILITY_REPORT")
    if target:
        Path(target).write_text(json.dumps(dict(counts), indent=2))
