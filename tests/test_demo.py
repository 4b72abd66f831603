"""`make demo`'s entry point: a real exchange over RabbitMQ ends with its summary line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.integration
@pytest.mark.slow
def test_demo_exchanges_and_delivers_everything(tmp_path: Path) -> None:
    env = {**os.environ, "EVB_DEMO_STATE": str(tmp_path / "state")}
    result = subprocess.run(
        [sys.executable, "-m", "broker.demo"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["sent"] == summary["delivered"] == 2
    assert (summary["rejected"], summary["lost"], summary["failed"]) == (0, 0, 0)
    assert summary["quarantined"] == 0
    assert "signed receipt" in result.stdout
    assert "Traceback" not in result.stderr
    # It cleans up after itself: the state directory is gone.
    assert not (tmp_path / "state").exists()
