"""The at-rest key hierarchy: storage key files, case-key wrapping, form encryption."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from broker.errors import ConfigError, StoreError
from broker.store.atrest import (
    KEY_BYTES,
    STORAGE_KEY_ENV,
    CaseKey,
    StorageKey,
    generate_storage_key,
    load_storage_key,
)

CASE = "0190f0e0-0000-7000-8000-000000000001"
MESSAGE = "0190f0e0-0000-7000-8000-000000000002"
FORM = b'{"preservation":"mailbox of suspect"}'


def test_form_round_trip_and_layout() -> None:
    key = CaseKey.generate()
    blob = key.seal_form("out", MESSAGE, FORM)
    assert len(blob) == 12 + len(FORM) + 16
    assert FORM not in blob
    assert key.open_form("out", MESSAGE, blob) == FORM
    # A fresh nonce each time: the same form never encrypts to the same bytes.
    assert key.seal_form("out", MESSAGE, FORM) != blob


def test_case_key_wrap_round_trip() -> None:
    storage = StorageKey.generate()
    case_key = CaseKey.generate()
    wrapped = storage.wrap(CASE, case_key)
    assert len(wrapped) == 12 + KEY_BYTES + 16
    unwrapped = storage.unwrap(CASE, wrapped)
    assert unwrapped.open_form("in", MESSAGE, case_key.seal_form("in", MESSAGE, FORM)) == FORM


def _flip(blob: bytes, index: int) -> bytes:
    return blob[:index] + bytes([blob[index] ^ 1]) + blob[index + 1 :]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda key, blob: (CaseKey.generate(), "out", MESSAGE, blob), "does not decrypt"),
        (lambda key, blob: (key, "in", MESSAGE, blob), "does not decrypt"),
        (lambda key, blob: (key, "out", CASE, blob), "does not decrypt"),
        (lambda key, blob: (key, "out", MESSAGE, _flip(blob, 0)), "does not decrypt"),
        (lambda key, blob: (key, "out", MESSAGE, _flip(blob, 20)), "does not decrypt"),
        (lambda key, blob: (key, "out", MESSAGE, _flip(blob, len(blob) - 1)), "does not decrypt"),
        (lambda key, blob: (key, "out", MESSAGE, blob[:27]), "truncated"),
    ],
    ids=["other-key", "other-direction", "other-message", "nonce", "body", "tag", "truncated"],
)
def test_form_tampering_is_a_store_error(mutate, message) -> None:  # type: ignore[no-untyped-def]
    key = CaseKey.generate()
    blob = key.seal_form("out", MESSAGE, FORM)
    other_key, direction, message_id, bad = mutate(key, blob)
    with pytest.raises(StoreError) as caught:
        other_key.open_form(direction, message_id, bad)
    assert caught.value.code == "E_STORE"
    assert message in caught.value.message
    assert FORM.decode() not in str(caught.value)


@pytest.mark.parametrize(
    ("storage", "case_id", "flip"),
    [("other", CASE, None), ("same", MESSAGE, None), ("same", CASE, 30)],
    ids=["other-storage-key", "moved-to-other-case", "altered"],
)
def test_unwrap_refuses(storage: str, case_id: str, flip: int | None) -> None:
    key = StorageKey.generate()
    wrapped = key.wrap(CASE, CaseKey.generate())
    if flip is not None:
        wrapped = _flip(wrapped, flip)
    unwrapping = StorageKey.generate() if storage == "other" else key
    with pytest.raises(StoreError, match="wrong storage key, or the stored bytes were altered"):
        unwrapping.unwrap(case_id, wrapped)


def test_keys_stay_out_of_reprs() -> None:
    secret = bytes(range(32))
    assert repr(StorageKey(secret)) == "StorageKey(<secret>)"
    assert repr(CaseKey(secret)) == "CaseKey(<secret>)"
    with pytest.raises(ValueError, match="32 bytes"):
        StorageKey(b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        CaseKey(bytes(33))


def test_generate_writes_a_private_file_and_load_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "storage.key"
    key = generate_storage_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text("ascii")
    assert text == key.to_text() + "\n"
    assert len(base64.urlsafe_b64decode(text.strip() + "=")) == KEY_BYTES
    assert load_storage_key(path, environ={}).to_text() == key.to_text()


def test_generate_never_replaces_a_key(tmp_path: Path) -> None:
    path = tmp_path / "storage.key"
    first = generate_storage_key(path)
    with pytest.raises(ConfigError, match="refusing to replace"):
        generate_storage_key(path)
    assert load_storage_key(path, environ={}).to_text() == first.to_text()


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "storage.key"
    generate_storage_key(path)
    env_key = StorageKey.generate()
    loaded = load_storage_key(path, environ={STORAGE_KEY_ENV: env_key.to_text()})
    assert loaded.to_text() == env_key.to_text()
    # Padding tolerated in the environment, as many base64 tools write it.
    padded = env_key.to_text() + "="
    assert load_storage_key(None, environ={STORAGE_KEY_ENV: padded}).to_text() == padded[:-1]


@pytest.mark.parametrize(
    ("content", "env", "message"),
    [
        (None, None, "no storage key: set EVB_STORAGE_KEY"),
        (b"", None, "is not a storage key file"),
        (b"A" * 42 + b"\n", None, "is not a storage key file"),
        (b"A" * 44 + b"\n", None, "is not a storage key file"),
        (b"A" * 42 + b"+\n", None, "is not a storage key file"),
        (b"\xff" * 43, None, "is not a storage key file"),
        (b"A" * 300, None, "too long"),
        (None, "A" * 42 + "/", "EVB_STORAGE_KEY: a storage key is 32 bytes"),
        (None, "not base64", "EVB_STORAGE_KEY: a storage key is 32 bytes"),
    ],
    ids=[
        "nothing",
        "empty",
        "short",
        "long",
        "std-alphabet",
        "not-ascii",
        "huge",
        "env-std-alphabet",
        "env-garbage",
    ],
)
def test_bad_keys_are_config_errors(
    tmp_path: Path, content: bytes | None, env: str | None, message: str
) -> None:
    path: Path | None = None
    if content is not None:
        path = tmp_path / "storage.key"
        path.write_bytes(content)
    environ = {} if env is None else {STORAGE_KEY_ENV: env}
    with pytest.raises(ConfigError) as caught:
        load_storage_key(path, environ=environ)
    assert caught.value.code == "E_CONFIG"
    assert message in caught.value.message
    assert caught.value.__cause__ is None  # the offending text stays out of tracebacks


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the storage key"):
        load_storage_key(tmp_path / "absent.key", environ={})
