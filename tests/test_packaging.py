"""An installed wheel carries the schemas and works from any directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from broker.schema import catalogue

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel and install it (without dependencies) into a private directory."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(ROOT),
        ],
        check=True,
    )
    wheels = list(out.glob("evidence_broker-*.whl"))
    assert len(wheels) == 1
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = set(wheel.namelist())
    assert "broker/_schemas/json/coe.art29.preservation.json" in names
    assert "broker/_schemas/json/_defs.json" in names
    target = out / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(wheels[0]),
        ],
        check=True,
    )
    return target


def _evb(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The wheel's copy of `broker` comes first on the path; the dependencies come
    # from this environment. The working directory is not the source tree.
    env = {**os.environ, "PYTHONPATH": str(target)}
    return subprocess.run(
        [sys.executable, "-m", "broker", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.slow
def test_installed_wheel_lists_every_type(installed: Path, tmp_path: Path) -> None:
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import broker, broker.resources as r; print(broker.__file__); print(r.schema_root())",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(installed)},
        capture_output=True,
        text=True,
        check=True,
    )
    module_file, root = probe.stdout.splitlines()
    assert module_file.startswith(str(installed))
    assert root.startswith(str(installed)), "the schemas must come from the wheel"
    result = _evb(installed, tmp_path, "schema", "list")
    assert result.returncode == 0, result.stderr
    listed = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert listed == [t.name for t in catalogue().types()]


@pytest.mark.slow
def test_installed_wheel_validates(installed: Path, tmp_path: Path) -> None:
    template = _evb(installed, tmp_path, "form", "template", "coe.art29.preservation")
    assert template.returncode == 0, template.stderr
    form = tmp_path / "request.json"
    form.write_text(template.stdout)
    ok = _evb(installed, tmp_path, "validate", "--type", "coe.art29.preservation", str(form))
    assert (ok.returncode, ok.stdout) == (0, "valid\n")
    doc = json.loads(template.stdout)
    doc["preservation_days"] = 59
    form.write_text(json.dumps(doc))
    bad = _evb(installed, tmp_path, "validate", "--type", "coe.art29.preservation", str(form))
    assert bad.returncode == 1
    assert bad.stdout.startswith("E_SCHEMA\t/preservation_days\t")
