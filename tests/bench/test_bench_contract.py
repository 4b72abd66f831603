"""Every benchmark runs and ends with the JSON line the project's contract asks for.

Timings are not asserted here (benchmarks judge their targets themselves); this only
keeps the scripts from rotting.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
REQUIRED = {"name", "value", "unit", "baseline", "ratio", "target", "pass"}


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("*.py")))
def test_benchmark_prints_its_result_line(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", "--seconds", "0.05"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(last) >= REQUIRED
    assert last["name"] == script.removesuffix(".py")
    assert isinstance(last["pass"], bool)
    assert last["value"] > 0
    assert last["baseline"] > 0
