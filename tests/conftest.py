"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    # The CLI entry points configure structlog for a process (warnings only, to stderr).
    # Tests call them in-process; without this, a later test's capture_logs() would
    # inherit a WARNING filter and see no info events.
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
