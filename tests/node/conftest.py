"""Fixtures of the node tests: stores on SQLite and PostgreSQL, a fixed start time."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.store.conftest import pg_database

__all__ = ["T0", "pg_database"]

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store_urls(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """Fresh store URLs for two nodes (DE.247, AT.247) on one backend."""
    if request.param == "sqlite":
        return (f"sqlite://{tmp_path}/de.db", f"sqlite://{tmp_path}/at.db")
    database: str = request.getfixturevalue("pg_database")
    return (
        f"{database}?schema=de_{secrets.token_hex(5)}",
        f"{database}?schema=at_{secrets.token_hex(5)}",
    )
