"""Envelope v1: sealing, verifying, opening, and every attack failing with its code.

The attack cases follow python-tuf's habit: mutate a valid envelope and, where the
mutation would otherwise be caught by the signature first, re-sign it with the
sender's real key, so that each case fails only the check it targets.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from broker import crypto, ids
from broker.canonical import canonical
from broker.clock import wire_time
from broker.envelope import (
    Envelope,
    hpke_info,
    open_envelope,
    seal_envelope,
    signed_bytes,
    verify_envelope,
)
from broker.errors import BrokerError
from broker.forms.directory import Role
from broker.keys import KeySet, generate_keyset
from broker.schema import catalogue
from broker.trust import (
    TrustDirectory,
    add_participant,
    dump_directory,
    init_directory,
    revoke_key,
    sign_directory,
    verify_directory,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SENT = T0 + timedelta(days=10)
ART29 = "coe.art29.preservation"
MS = timedelta(milliseconds=1)
OTHER_ENC_KID = "AT.247#enc-0000000000000000"

PARTICIPANTS: dict[str, tuple[Role, str, bool, bool]] = {
    # id: (role, country, hybrid, separate seal key)
    "DE.247": ("contact_point", "DE", False, False),
    "AT.247": ("contact_point", "AT", False, False),
    "FR.247": ("contact_point", "FR", True, False),
    "DE.JUD": ("judicial_authority", "DE", False, True),
    "ISP.mailhost": ("service_provider", "AT", False, False),
}


@dataclass(frozen=True)
class Network:
    keys: dict[str, KeySet]
    root: crypto.SigningKey

    def directory(self, edit: Callable[[Any], Any] | None = None) -> TrustDirectory:
        document = init_directory([self.root.public()], 1, timedelta(days=3650), T0)
        for pid, (role, country, _, _) in PARTICIPANTS.items():
            document = add_participant(document, self.keys[pid].public(), role, country, now=T0)
        if edit is not None:
            document = edit(document)
        signed = sign_directory(document, self.root)
        return verify_directory(dump_directory(signed), now=SENT)


@functools.cache
def network() -> Network:
    keys = {
        pid: generate_keyset(pid, hybrid=hybrid, seal=seal, now=T0)
        for pid, (_, _, hybrid, seal) in PARTICIPANTS.items()
    }
    return Network(keys=keys, root=crypto.generate_signing_key("root1"))


@functools.cache
def directory() -> TrustDirectory:
    return network().directory()


def form(form_type: str = ART29) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(catalogue().template(form_type))
    return data


def seal(
    sender: str = "DE.247",
    recipient: str = "AT.247",
    form_type: str = ART29,
    *,
    sealer: str | None = None,
    trust: TrustDirectory | None = None,
    now: datetime = SENT,
) -> bytes:
    keys = network().keys[sender]
    envelope = seal_envelope(
        form_type=form_type,
        form=form(form_type),
        sender=sender,
        recipient=recipient,
        directory=trust or directory(),
        signer=keys.sig,
        signer_pq=keys.sig_pq,
        sealer=network().keys[sealer].seal if sealer else keys.seal,
        now=now,
    )
    return envelope.to_bytes()


def open_as(raw: bytes, participant: str, trust: TrustDirectory | None = None) -> Any:
    return open_envelope(
        raw,
        trust or directory(),
        recipient=participant,
        decryption_keys=[network().keys[participant].enc],
    )


def resign(data: dict[str, Any], signer: str = "DE.247") -> bytes:
    """Sign the (mutated) envelope again with a participant's real keys."""
    keys = network().keys[signer]
    data["sig"] = {
        "alg": keys.sig.alg,
        "kid": keys.sig.kid,
        "value": crypto.b64u_encode(keys.sig.sign(signed_bytes(data))),
    }
    if keys.sig_pq is not None:
        data["sig_pq"] = {
            "alg": keys.sig_pq.alg,
            "kid": keys.sig_pq.kid,
            "value": crypto.b64u_encode(keys.sig_pq.sign(signed_bytes(data))),
        }
    return canonical(data)


def reencrypt(data: dict[str, Any], plaintext: bytes, recipient: str = "AT.247") -> None:
    key = directory().encryption_key(recipient, SENT)
    enc, ct = crypto.hpke_seal(key, plaintext, hpke_info(data))
    data["payload"] = {
        "suite": key.suite,
        "kid": key.kid,
        "enc": crypto.b64u_encode(enc),
        "ct": crypto.b64u_encode(ct),
    }


def code_of(action: Callable[[], object]) -> str:
    with pytest.raises(BrokerError) as info:
        action()
    return info.value.code


# -- the happy paths --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "recipient", "suite"),
    [
        ("DE.247", "AT.247", crypto.SUITE_CLASSIC),
        ("FR.247", "AT.247", crypto.SUITE_CLASSIC),  # hybrid sender: sig + sig_pq
        ("AT.247", "FR.247", crypto.SUITE_HYBRID),  # hybrid recipient: ML-KEM-768+X25519
    ],
)
def test_round_trip(sender: str, recipient: str, suite: str) -> None:
    raw = seal(sender, recipient)
    envelope = verify_envelope(raw, directory())
    assert envelope.payload.suite == suite
    assert (envelope.sig_pq is not None) == (sender == "FR.247")
    assert ids.is_uuid7(envelope.id)
    assert envelope.sent_at == wire_time(SENT)
    assert envelope.schema_ == f"urn:evb:schema:{ART29}:1"
    opened = open_as(raw, recipient)
    assert opened.form.to_json_obj() == form()
    assert opened.sealed_by == sender
    assert opened.seal_kid == network().keys[sender].sig.kid  # no seal key: sealed with sig


def test_wire_format() -> None:
    data = json.loads(seal())
    assert list(data) == sorted(data)  # RFC 8785 bytes on the wire
    assert set(data) == {
        "evb", "id", "type", "case", "in_reply_to", "from", "to", "sent_at", "priority",
        "schema", "payload", "sig",
    }  # fmt: skip
    assert data["in_reply_to"] is None
    assert set(data["payload"]) == {"suite", "kid", "enc", "ct"}
    assert "=" not in data["payload"]["ct"]
    assert data["sig"]["kid"] == network().keys["DE.247"].sig.kid


def test_the_seal_of_the_issuing_authority_travels_with_the_form() -> None:
    # A judicial authority's order, carried by the contact point's node.
    raw = seal("DE.247", "AT.247", sealer="DE.JUD")
    opened = open_as(raw, "AT.247")
    assert opened.sealed_by == "DE.JUD"
    assert opened.seal_kid == network().keys["DE.JUD"].seal.kid
    assert "#seal-" in opened.seal_kid


def test_envelope_model_round_trips() -> None:
    raw = seal()
    assert Envelope.model_validate_json(raw).to_bytes() == raw


# -- every field tampered, one at a time ----------------------------------------------------


def _flip(text: str) -> str:
    raw = crypto.b64u_decode(text)
    return crypto.b64u_encode(bytes([raw[0] ^ 1]) + raw[1:])


TAMPER: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("evb", lambda d: d.update(evb=2), "E_SCHEMA"),
    ("id", lambda d: d.update(id=ids.uuid7()), "E_SIG_INVALID"),
    ("id-not-v7", lambda d: d.update(id="0192f3c8-7d6e-4b3a-9c1d-2e4f5a6b7c8d"), "E_SCHEMA"),
    ("type", lambda d: d.update(type="coe.art30.disclosure"), "E_SCHEMA"),
    (
        "type-and-schema",
        lambda d: d.update(type="case.ack", schema="urn:evb:schema:case.ack:1"),
        "E_SIG_INVALID",
    ),
    ("type-unknown", lambda d: d.update(type="coe.art99.none"), "E_SCHEMA"),
    ("case", lambda d: d.update(case=ids.uuid7()), "E_SIG_INVALID"),
    ("in_reply_to", lambda d: d.update(in_reply_to=ids.uuid7()), "E_SIG_INVALID"),
    ("from", lambda d: d.update({"from": "AT.247"}), "E_SIG_INVALID"),
    ("to", lambda d: d.update(to="FR.247"), "E_SIG_INVALID"),
    ("sent_at", lambda d: d.update(sent_at=wire_time(SENT + MS)), "E_SIG_INVALID"),
    ("sent_at-format", lambda d: d.update(sent_at="2026-03-11T09:00:00Z"), "E_SCHEMA"),
    ("priority", lambda d: d.update(priority="emergency"), "E_SIG_INVALID"),
    ("priority-unknown", lambda d: d.update(priority="urgent"), "E_SCHEMA"),
    ("schema", lambda d: d.update(schema="urn:evb:schema:coe.art29.preservation:2"), "E_SCHEMA"),
    ("payload.suite", lambda d: d["payload"].update(suite=crypto.SUITE_HYBRID), "E_SIG_INVALID"),
    ("payload.kid", lambda d: d["payload"].update(kid=OTHER_ENC_KID), "E_SIG_INVALID"),
    ("payload.enc", lambda d: d["payload"].update(enc=_flip(d["payload"]["enc"])), "E_SIG_INVALID"),
    ("payload.ct", lambda d: d["payload"].update(ct=_flip(d["payload"]["ct"])), "E_SIG_INVALID"),
    ("payload.ct-padding", lambda d: d["payload"].update(ct=d["payload"]["ct"] + "="), "E_SCHEMA"),
    ("sig.alg", lambda d: d["sig"].update(alg="ML-DSA-65"), "E_SIG_INVALID"),
    ("sig.kid", lambda d: d["sig"].update(kid="DE.247#sig-0000000000000000"), "E_KEY_UNKNOWN"),
    ("sig.value", lambda d: d["sig"].update(value=_flip(d["sig"]["value"])), "E_SIG_INVALID"),
    ("sig-missing", lambda d: d.pop("sig"), "E_SCHEMA"),
    ("extra-member", lambda d: d.update(note="hi"), "E_SCHEMA"),
    ("null-priority", lambda d: d.update(priority=None), "E_SCHEMA"),
]  # fmt: skip


@pytest.mark.parametrize(("field", "tamper", "code"), TAMPER, ids=[t[0] for t in TAMPER])
def test_every_field_tampered(
    field: str, tamper: Callable[[dict[str, Any]], None], code: str
) -> None:
    data = json.loads(seal())
    tamper(data)
    raw = json.dumps(data).encode()
    assert code_of(lambda: verify_envelope(raw, directory())) == code, field
    assert code_of(lambda: open_as(raw, "AT.247")) == code, field


def test_signature_by_a_valid_key_of_another_participant() -> None:
    data = json.loads(seal())
    raw = resign(data, signer="AT.247")  # AT's real key, but the envelope says from DE
    assert code_of(lambda: verify_envelope(raw, directory())) == "E_SIG_INVALID"


def test_ciphertext_moved_under_another_header() -> None:
    first, second = json.loads(seal()), json.loads(seal())
    second["payload"] = first["payload"]  # a valid ciphertext for AT, from another message
    raw = resign(second)  # even re-signed by the real sender
    verify_envelope(raw, directory())  # header and signature are fine …
    assert code_of(lambda: open_as(raw, "AT.247")) == "E_DECRYPT"  # … the binding is not


def test_hybrid_sender_without_sig_pq() -> None:
    data = json.loads(seal("FR.247"))
    del data["sig_pq"]
    assert code_of(lambda: verify_envelope(canonical(data), directory())) == "E_SIG_INVALID"


def test_hybrid_sender_with_tampered_sig_pq() -> None:
    data = json.loads(seal("FR.247"))
    data["sig_pq"]["value"] = _flip(data["sig_pq"]["value"])
    assert code_of(lambda: verify_envelope(canonical(data), directory())) == "E_SIG_INVALID"


# -- keys judged at sent_at ---------------------------------------------------------------


def _revoked(reason: str, at: datetime) -> TrustDirectory:
    kid = network().keys["DE.247"].sig.kid
    return network().directory(lambda doc: revoke_key(doc, "DE.247", kid, reason, at, now=T0))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reason", "revoked_at", "code"),
    [
        ("retired", SENT + timedelta(days=1), None),  # retired after sending: still valid
        ("retired", SENT - timedelta(days=1), "E_KEY_REVOKED"),  # retired before sending
        ("retired", SENT, "E_KEY_REVOKED"),  # at the very moment
        ("compromise", SENT + timedelta(days=1), "E_KEY_REVOKED"),  # compromise: always
        ("compromise", SENT - timedelta(days=1), "E_KEY_REVOKED"),
    ],
)
def test_revoked_key(reason: str, revoked_at: datetime, code: str | None) -> None:
    raw = seal()
    trust = _revoked(reason, revoked_at)
    if code is None:
        verify_envelope(raw, trust)
    else:
        assert code_of(lambda: verify_envelope(raw, trust)) == code


@pytest.mark.parametrize(
    "sent_at",
    [T0 - timedelta(milliseconds=1), T0 + timedelta(days=3 * 365)],
    ids=["before-not_before", "after-not_after"],
)
def test_key_outside_its_validity(sent_at: datetime) -> None:
    data = json.loads(seal())
    data["sent_at"] = wire_time(sent_at)
    plaintext = canonical({"form": form(), "seal": _seal_of(form(), network().keys["DE.247"].seal)})
    reencrypt(data, plaintext)
    raw = resign(data)
    assert code_of(lambda: verify_envelope(raw, directory())) == "E_KEY_EXPIRED"


def test_sealing_refuses_an_expired_own_key() -> None:
    assert code_of(lambda: seal(now=T0 + timedelta(days=3 * 365))) == "E_KEY_EXPIRED"


# -- recipient and policy -------------------------------------------------------------------


def test_wrong_recipient() -> None:
    raw = seal("DE.247", "AT.247")
    assert code_of(lambda: open_as(raw, "FR.247")) == "E_NOT_RECIPIENT"


def test_not_our_key() -> None:
    raw = seal("DE.247", "AT.247")
    stranger = generate_keyset("AT.247", now=T0).enc
    action = lambda: open_envelope(  # noqa: E731
        raw, directory(), recipient="AT.247", decryption_keys=[stranger]
    )
    assert code_of(action) == "E_DECRYPT"


def test_forbidden_type_for_the_senders_role() -> None:
    # A service provider may answer, never order.
    assert code_of(lambda: seal("ISP.mailhost", "DE.JUD", "eu.epoc")) == "E_POLICY_FORBIDDEN"
    # Forged past the sender-side check: the receiver refuses it too.
    data = json.loads(seal("DE.JUD", "ISP.mailhost", "eu.epoc"))
    data["from"], data["to"] = "ISP.mailhost", "DE.JUD"
    reencrypt(data, b"{}", recipient="DE.JUD")
    raw = resign(data, signer="ISP.mailhost")
    assert code_of(lambda: verify_envelope(raw, directory())) == "E_POLICY_FORBIDDEN"


def test_invalid_form_is_refused_before_sending() -> None:
    keys = network().keys["DE.247"]
    bad = form()
    bad["preservation_days"] = 30
    action = lambda: seal_envelope(  # noqa: E731
        form_type=ART29, form=bad, sender="DE.247", recipient="AT.247",
        directory=directory(), signer=keys.sig, sealer=keys.seal, now=SENT,
    )  # fmt: skip
    assert code_of(action) == "E_SCHEMA"


# -- inside the ciphertext: the form and its seal ---------------------------------------------


def _seal_of(document: dict[str, Any], key: crypto.SigningKey) -> dict[str, str]:
    return {
        "alg": key.alg,
        "kid": key.kid,
        "value": crypto.b64u_encode(key.sign(canonical(document))),
    }


def _inner(plaintext: Any) -> bytes:
    data = json.loads(seal())
    reencrypt(data, canonical(plaintext) if not isinstance(plaintext, bytes) else plaintext)
    return resign(data)


def _bad_seal_value() -> dict[str, Any]:
    value = _seal_of(form(), network().keys["DE.247"].seal)
    value["value"] = _flip(value["value"])
    return value


INNER: list[tuple[str, Callable[[], Any], str]] = [
    ("seal-altered", lambda: {"form": form(), "seal": _bad_seal_value()}, "E_SEAL_INVALID"),
    (
        "form-altered-after-sealing",
        lambda: {
            "form": {**form(), "preservation_days": 120},
            "seal": _seal_of(form(), network().keys["DE.247"].seal),
        },
        "E_SEAL_INVALID",
    ),
    (
        "seal-unknown-key",
        lambda: {"form": form(), "seal": _seal_of(form(), crypto.generate_signing_key("XX.1"))},
        "E_KEY_UNKNOWN",
    ),
    (
        "seal-by-encryption-kid",
        lambda: {
            "form": form(),
            "seal": {**_seal_of(form(), network().keys["DE.247"].seal),
                     "kid": network().keys["DE.247"].enc.kid},
        },
        "E_KEY_UNKNOWN",
    ),
    (
        "form-invalid",
        lambda: {
            "form": {**form(), "preservation_days": 30},
            "seal": _seal_of({**form(), "preservation_days": 30}, network().keys["DE.247"].seal),
        },
        "E_SCHEMA",
    ),
    ("no-seal", lambda: {"form": form()}, "E_SCHEMA"),
    ("seal-malformed", lambda: {"form": form(), "seal": {"alg": "RSA"}}, "E_SEAL_INVALID"),
    ("not-json", lambda: b"\x00garbage", "E_PARSE"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "plaintext", "code"), INNER, ids=[i[0] for i in INNER])
def test_inside_the_ciphertext(name: str, plaintext: Callable[[], Any], code: str) -> None:
    raw = _inner(plaintext())
    verify_envelope(raw, directory())  # the outside is flawless
    assert code_of(lambda: open_as(raw, "AT.247")) == code, name


# -- malformed input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mangle", "code"),
    [
        ("truncated", lambda raw: raw[: len(raw) // 2], "E_PARSE"),
        ("not-json", lambda raw: b"\x89PNG\r\n", "E_PARSE"),
        ("array", lambda raw: b"[]", "E_SCHEMA"),
        ("empty", lambda raw: b"", "E_PARSE"),
        ("duplicate-key", lambda raw: raw[:-1] + b',"evb":1}', "E_PARSE"),
        ("oversized", lambda raw: raw + b" " * (3 * 1024 * 1024), "E_TOO_LARGE"),
    ],
)
def test_malformed(name: str, mangle: Callable[[bytes], bytes], code: str) -> None:
    raw = mangle(seal())
    assert code_of(lambda: verify_envelope(raw, directory())) == code, name


def test_only_broker_errors_escape() -> None:
    # Random single-byte corruption anywhere: every outcome is a BrokerError or success.
    raw = bytearray(seal())
    for position in range(0, len(raw), max(1, len(raw) // 200)):
        mutated = copy.copy(raw)
        mutated[position] ^= 0x20
        try:
            open_as(bytes(mutated), "AT.247")
        except BrokerError:
            continue
