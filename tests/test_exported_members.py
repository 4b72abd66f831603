"""The curated public API: sorted, importable, nothing missing."""

from __future__ import annotations

import broker


def _isort_key(name: str) -> tuple[int, str]:
    # The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions.
    if name.isupper():
        return (0, name)
    return (1, name) if name[:1].isupper() else (2, name)


def test_all_is_sorted_and_importable() -> None:
    assert broker.__all__ == sorted(broker.__all__, key=_isort_key)
    for name in broker.__all__:
        assert getattr(broker, name) is not None


def test_every_error_class_is_exported() -> None:
    errors = [
        name
        for name, value in vars(broker.errors).items()
        if isinstance(value, type) and issubclass(value, broker.BrokerError)
    ]
    assert set(errors) <= set(broker.__all__)
