"""Fixtures of the transport tests: the real RabbitMQ (see tests/support/rabbit.py)."""

from __future__ import annotations

from tests.support.rabbit import rabbit

__all__ = ["rabbit"]
