"""Crypto primitives: base64url strictness, key ids, signatures and HPKE fail closed."""

from __future__ import annotations

import hashlib

import pytest

from broker import crypto
from broker.errors import DecryptionFailed, SignatureInvalid


@pytest.mark.parametrize(
    ("data", "text"), [(b"", ""), (b"\xff", "_w"), (b"\xff\xfe", "__4"), (b"abc", "YWJj")]
)
def test_b64u_round_trip(data: bytes, text: str) -> None:
    assert crypto.b64u_encode(data) == text
    assert crypto.b64u_decode(text) == data


@pytest.mark.parametrize("text", ["__5", "__4=", "YWJj=", "a", "+/8", "YW Jj", "YWJj\n"])
def test_b64u_refuses_padding_foreign_alphabet_and_non_canonical(text: str) -> None:
    with pytest.raises(ValueError, match="base64url"):
        crypto.b64u_decode(text)


def test_key_id() -> None:
    raw = bytes(range(32))
    digest = hashlib.sha256(raw).hexdigest()[:16]
    assert crypto.key_id("AT.247", "sig", raw) == f"AT.247#sig-{digest}"


@pytest.mark.parametrize("alg", [crypto.SIG_ED25519, crypto.SIG_MLDSA65])
def test_signatures_verify_and_fail_closed(alg: str) -> None:
    key = crypto.generate_signing_key("AT.247", "sig", alg)
    public = key.public()
    assert public.kid == crypto.key_id("AT.247", "sig", public.raw)
    signature = key.sign(b"message")
    public.verify(signature, b"message")
    with pytest.raises(SignatureInvalid):
        public.verify(signature, b"other message")
    with pytest.raises(SignatureInvalid):
        public.verify(signature[:-1] + bytes([signature[-1] ^ 1]), b"message")
    with pytest.raises(SignatureInvalid):
        public.verify(b"short", b"message")
    other = crypto.generate_signing_key("AT.247", "sig", alg).public()
    with pytest.raises(SignatureInvalid):
        other.verify(signature, b"message")


@pytest.mark.parametrize("alg", [crypto.ENC_X25519, crypto.ENC_HYBRID])
def test_hpke_round_trip_and_binding(alg: str) -> None:
    key = crypto.generate_decryption_key("AT.247", alg)
    public = key.public()
    enc, ct = crypto.hpke_seal(public, b"plaintext", b"info")
    assert crypto.hpke_open(key, public.suite, enc, ct, b"info") == b"plaintext"
    tampered = {
        "other info": (enc, ct, b"info2"),
        "ciphertext": (enc, ct[:-1] + bytes([ct[-1] ^ 1]), b"info"),
        "encapsulated key": (bytes([enc[0] ^ 1]) + enc[1:], ct, b"info"),
        "truncated": (enc, ct[:5], b"info"),
        "zero key": (bytes(len(enc)), ct, b"info"),
    }
    for e, c, i in tampered.values():
        with pytest.raises(DecryptionFailed):
            crypto.hpke_open(key, public.suite, e, c, i)
    stranger = crypto.generate_decryption_key("AT.247", alg)
    with pytest.raises(DecryptionFailed):
        crypto.hpke_open(stranger, public.suite, enc, ct, b"info")


def test_hpke_suite_mismatch() -> None:
    key = crypto.generate_decryption_key("AT.247", crypto.ENC_X25519)
    enc, ct = crypto.hpke_seal(key.public(), b"x", b"i")
    with pytest.raises(DecryptionFailed):
        crypto.hpke_open(key, crypto.SUITE_HYBRID, enc, ct, b"i")


@pytest.mark.parametrize(
    ("use", "alg", "length"),
    [
        ("sig", crypto.SIG_ED25519, 31),
        ("enc", crypto.ENC_HYBRID, 32),
        ("sig", crypto.ENC_X25519, 32),
    ],
)
def test_public_key_refuses_wrong_material(use: crypto.Use, alg: str, length: int) -> None:
    with pytest.raises(ValueError, match=r"raw|algorithm"):
        crypto.PublicKey("AT.247#x-0", use, alg, bytes(length))


def test_hybrid_key_has_two_parts() -> None:
    key = crypto.generate_decryption_key("AT.247", crypto.ENC_HYBRID)
    assert set(key.parts()) == {"", "mlkem"}
    assert len(key.public().raw) == 1184 + 32
