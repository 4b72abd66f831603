"""`make walkthrough` runs and every verdict in it is as expected."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_walkthrough(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "broker.walkthrough"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["unexpected"] == []
    assert summary["as_expected"] == summary["steps"] >= 8
    assert "Traceback" not in result.stderr
