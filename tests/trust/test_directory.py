"""broker.trust.directory: root signatures, rotation, rollback, expiry, and key judgement.

Each attack starts from a valid directory and changes one thing — re-signing where the
change itself is not the attack (python-tuf's test_trusted_metadata_set style) — so
that every case fails only the check it targets, with its exact code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from broker import crypto
from broker.errors import BrokerError
from broker.forms.directory import DirectoryDocument
from broker.trust import (
    TrustDirectory,
    add_participant,
    default_policy,
    init_directory,
    parse_directory,
    revoke_key,
    set_policy,
    set_roots,
    sign_directory,
    trusted_directory,
    verify_directory,
)
from broker.trust.policy import parse_policy
from tests.trust.builders import (
    DAY,
    MS,
    T0,
    YEAR,
    Listing,
    base,
    edit,
    network,
    raw,
    resign,
    sign_json,
    signature,
    signed,
)


def _code(call: Callable[[], object]) -> str:
    try:
        call()
    except BrokerError as exc:
        return exc.code
    return "valid"


def _verify(data: bytes, previous: TrustDirectory | None = None, now: datetime = T0) -> str:
    return _code(lambda: verify_directory(data, now=now, previous=previous))


def _kid(name: str) -> str:
    net = network()
    if name in net.signing:
        return net.signing[name].kid
    if name in net.decryption:
        return net.decryption[name].kid
    return net.roots[name].kid


# -- one version on its own ----------------------------------------------------------------


def _root_twice(doc: DirectoryDocument) -> bytes:
    once = signature(network().roots["root1"], doc)
    return edit(doc, lambda d: d.update(signatures=[once, once]))


def _forged_root_kid(doc: DirectoryDocument) -> bytes:
    # A signature by another key, labelled with root2's kid.
    forged = signature(network().signing["AT.247/sig"], doc)
    forged["kid"] = _kid("root2")
    good = signature(network().roots["root1"], doc)
    return edit(doc, lambda d: d.update(signatures=[good, forged]))


def _impostor_root(doc: DirectoryDocument) -> bytes:
    # A fresh key generated under the name "root2": same name, different digest.
    impostor = crypto.generate_signing_key("root2")
    return raw(sign_directory(signed(doc, "root1"), impostor))


def _old_signatures(doc: DirectoryDocument) -> bytes:
    # Valid signatures of this version, moved onto the next one.
    old = signed(doc, "root1", "root2")
    newer = set_policy(doc, default_policy(), now=T0)
    return edit(newer, lambda d: d.update(signatures=old.to_json_obj()["signatures"]))


def _rename(d: dict[str, Any]) -> None:
    d["participants"][0]["name"] = "Someone else"


def _reroute(d: dict[str, Any]) -> None:
    d["participants"][0]["routing"]["exchange"] = "evb.attacker"


def _promote(d: dict[str, Any]) -> None:
    d["participants"][3]["role"] = "judicial_authority"


def _drop_policy_rule(d: dict[str, Any]) -> None:
    d["policy"]["rules"] = d["policy"]["rules"][1:]


def _two_root_same_key(d: dict[str, Any]) -> None:
    # A root whose kid another entry already has (E_SEMANTIC), properly re-signed.
    at_sig = network().signing["AT.247/sig"].public()
    d["roots"].append(
        {"kid": at_sig.kid, "alg": "Ed25519", "public": crypto.b64u_encode(at_sig.raw)}
    )


SINGLE: list[tuple[str, Callable[[DirectoryDocument], bytes], str]] = [
    ("valid-threshold", lambda d: raw(signed(d, "root1", "root2")), "valid"),
    ("valid-all-roots", lambda d: raw(signed(d, "root3", "root1", "root2")), "valid"),
    ("unsigned", raw, "E_DIRECTORY_UNSIGNED"),
    ("too-few-signatures", lambda d: raw(signed(d, "root1")), "E_DIRECTORY_UNSIGNED"),
    ("same-root-twice-counts-once", _root_twice, "E_DIRECTORY_UNSIGNED"),
    (
        "non-root-key",
        lambda d: raw(sign_directory(signed(d, "root1"), network().signing["AT.247/sig"])),
        "E_DIRECTORY_UNSIGNED",
    ),
    (
        "future-root-not-yet-listed",
        lambda d: raw(signed(d, "root1", "new1")),
        "E_DIRECTORY_UNSIGNED",
    ),
    ("forged-root-kid", _forged_root_kid, "E_DIRECTORY_UNSIGNED"),
    ("impostor-root-name", _impostor_root, "E_DIRECTORY_UNSIGNED"),
    ("signatures-of-another-version", _old_signatures, "E_DIRECTORY_UNSIGNED"),
    ("tampered-name", lambda d: edit(signed(d, "root1", "root2"), _rename), "E_DIRECTORY_UNSIGNED"),
    (
        "tampered-routing",
        lambda d: edit(signed(d, "root1", "root2"), _reroute),
        "E_DIRECTORY_UNSIGNED",
    ),
    (
        "tampered-role",
        lambda d: edit(signed(d, "root1", "root2"), _promote),
        "E_DIRECTORY_UNSIGNED",
    ),
    (
        "tampered-policy",
        lambda d: edit(signed(d, "root1", "root2"), _drop_policy_rule),
        "E_DIRECTORY_UNSIGNED",
    ),
    (
        "tampered-version",
        lambda d: edit(signed(d, "root1", "root2"), lambda j: j.update(version=j["version"] + 1)),
        "E_DIRECTORY_UNSIGNED",
    ),
    (
        "tampered-expiry",
        lambda d: edit(
            signed(d, "root1", "root2"), lambda j: j.update(expires_at="2099-01-01T00:00:00.000Z")
        ),
        "E_DIRECTORY_UNSIGNED",
    ),
    (
        "tampered-threshold",
        lambda d: edit(signed(d, "root1"), lambda j: j.update(threshold=1)),
        "E_DIRECTORY_UNSIGNED",
    ),
    (
        "duplicate-kid-even-if-signed",
        lambda d: sign_json(d, _two_root_same_key, ["root1", "root2"]),
        "E_SEMANTIC",
    ),
]


@pytest.mark.parametrize(("name", "make", "code"), SINGLE, ids=[c[0] for c in SINGLE])
def test_single_version(name: str, make: Callable[[DirectoryDocument], bytes], code: str) -> None:
    assert _verify(make(base())) == code


def test_signature_over_the_document_without_signatures_verifies_with_cryptography() -> None:
    # What an auditor does by hand: JCS of the document minus "signatures", Ed25519.
    from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: PLC0415

    from broker.canonical import canonical  # noqa: PLC0415

    data = json.loads(raw(signed(base(), "root1")))
    entry = data.pop("signatures")[0]
    root = next(r for r in data["roots"] if r["kid"] == entry["kid"])
    public = ed25519.Ed25519PublicKey.from_public_bytes(crypto.b64u_decode(root["public"]))
    public.verify(crypto.b64u_decode(entry["value"]), canonical(data))


# -- expiry ------------------------------------------------------------------------------------


EXPIRY = [
    ("just-issued", timedelta(0), "valid"),
    ("last-millisecond", 364 * DAY - MS, "valid"),
    ("at-expires-at", 364 * DAY, "E_DIRECTORY_EXPIRED"),
    ("long-after", 3000 * DAY, "E_DIRECTORY_EXPIRED"),
]


@pytest.mark.parametrize(("name", "offset", "code"), EXPIRY, ids=[c[0] for c in EXPIRY])
def test_expiry(name: str, offset: timedelta, code: str) -> None:
    # The base version was issued at T0 - 1 day with 365 days of validity.
    doc = signed(base(), "root1", "root2")
    assert doc.expires_at == T0 + 364 * DAY
    assert _verify(raw(doc), now=T0 + offset) == code


def test_naive_now_is_refused() -> None:
    doc = raw(signed(base(), "root1", "root2"))
    assert _verify(doc, now=T0.replace(tzinfo=None)) == "E_TRUST"


# -- malformed input ----------------------------------------------------------------------


def _malformed() -> list[tuple[str, bytes, str]]:
    good = raw(signed(base(), "root1", "root2"))
    return [
        ("truncated", good[: len(good) // 2], "E_PARSE"),
        ("truncated-by-one", good.rstrip()[:-1], "E_PARSE"),
        ("empty", b"", "E_PARSE"),
        ("not-json", b"version: 3\n", "E_PARSE"),
        ("not-utf8", b'{"version": "\xff"}', "E_PARSE"),
        ("nan", good.replace(b'"threshold": 2', b'"threshold": NaN'), "E_PARSE"),
        (
            "duplicate-member",
            good.replace(b'"threshold": 2', b'"threshold": 2, "threshold": 1'),
            "E_PARSE",
        ),
        ("json-array", b"[]", "E_SCHEMA"),
        ("json-string", b'"directory"', "E_SCHEMA"),
        ("oversized", good + b" " * (8 * 1024 * 1024), "E_TOO_LARGE"),
        ("deeply-nested", b"[" * 100_000 + b"]" * 100_000, "E_PARSE"),
    ]


@pytest.mark.parametrize(("name", "data", "code"), _malformed(), ids=[c[0] for c in _malformed()])
def test_malformed_input(name: str, data: bytes, code: str) -> None:
    assert _verify(data) == code


def test_size_limit_is_configurable() -> None:
    good = raw(signed(base(), "root1", "root2"))
    assert _code(lambda: verify_directory(good, now=T0, max_bytes=len(good) - 1)) == "E_TOO_LARGE"
    assert _code(lambda: verify_directory(good, now=T0, max_bytes=len(good))) == "valid"


@pytest.mark.parametrize("position", range(0, 4000, 37))
def test_any_flipped_bit_fails_closed(position: int) -> None:
    good = bytearray(raw(signed(base(), "root1", "root2")))
    index = position % len(good)
    good[index] ^= 0x01
    code = _code(lambda: verify_directory(bytes(good), now=T0))
    assert code.startswith("E_")
    assert code != "E_INTERNAL"


# -- updates: rotation (TUF update_root), rollback ---------------------------------------------


def _trusted(doc: DirectoryDocument) -> TrustDirectory:
    return verify_directory(raw(doc), now=T0)


def _rotated() -> DirectoryDocument:
    """Roots root1, new1, new2 (threshold 2) replacing root1-3: signed by both sets."""
    net = network()
    new = set_roots(base(), net.root_keys("root1", "new1", "new2"), 2, now=T0)
    return signed(new, "root2", "root3", "new1", "new2")


def _next(doc: DirectoryDocument) -> DirectoryDocument:
    """The same content as a new version (a policy re-set bumps the version)."""
    return set_policy(doc, default_policy(), now=T0)


UPDATES: list[tuple[str, Callable[[], DirectoryDocument], Callable[[], bytes], str]] = [
    (
        "next-version",
        lambda: signed(base(), "root1", "root2"),
        lambda: raw(signed(_next(base()), "root2", "root3")),
        "valid",
    ),
    (
        "skipped-versions",
        lambda: signed(base(), "root1", "root2"),
        lambda: raw(signed(_next(_next(_next(base()))), "root1", "root3")),
        "valid",
    ),
    (
        "equal-version",
        lambda: signed(base(), "root1", "root2"),
        lambda: raw(signed(base(), "root2", "root3")),
        "E_DIRECTORY_ROLLBACK",
    ),
    (
        "rolled-back",
        lambda: signed(_next(base()), "root1", "root2"),
        lambda: raw(signed(base(), "root1", "root2")),
        "E_DIRECTORY_ROLLBACK",
    ),
    (
        "rotation-signed-by-old-and-new",
        lambda: signed(base(), "root1", "root2"),
        lambda: raw(_rotated()),
        "valid",
    ),
    (
        "rotation-signed-by-new-roots-only",
        lambda: signed(base(), "root1", "root2"),
        lambda: raw(
            signed(
                set_roots(base(), network().root_keys("new1", "new2"), 2, now=T0), "new1", "new2"
            )
        ),
        "E_DIRECTORY_UNSIGNED",
    ),
    (
        "rotation-one-old-root-short",
        lambda: signed(base(), "root1", "root2"),
        lambda: raw(
            signed(
                set_roots(base(), network().root_keys("root1", "new1", "new2"), 2, now=T0),
                "root1",
                "new1",
            )
        ),
        "E_DIRECTORY_UNSIGNED",
    ),
    (
        "after-rotation-new-roots-suffice",
        _rotated,
        lambda: raw(signed(_next(_rotated()), "new1", "new2")),
        "valid",
    ),
    (
        "after-rotation-signed-by-removed-roots",
        _rotated,
        lambda: raw(signed(_next(_rotated()), "root2", "root3")),
        "E_DIRECTORY_UNSIGNED",
    ),
    (
        "after-rotation-one-removed-one-kept",
        _rotated,
        lambda: raw(signed(_next(_rotated()), "root1", "root3")),
        "E_DIRECTORY_UNSIGNED",
    ),
    (
        "lowered-threshold-still-needs-old-threshold",
        lambda: signed(base(), "root1", "root2"),
        lambda: raw(signed(set_roots(base(), network().root_keys("root1"), 1, now=T0), "root1")),
        "E_DIRECTORY_UNSIGNED",
    ),
    (
        "rollback-even-if-signed-by-all",
        lambda: signed(_next(base()), "root1", "root2"),
        lambda: raw(signed(base(), "root1", "root2", "root3")),
        "E_DIRECTORY_ROLLBACK",
    ),
]


@pytest.mark.parametrize(("name", "previous", "make", "code"), UPDATES, ids=[c[0] for c in UPDATES])
def test_update(
    name: str,
    previous: Callable[[], DirectoryDocument],
    make: Callable[[], bytes],
    code: str,
) -> None:
    assert _verify(make(), previous=_trusted(previous())) == code


def test_trusted_directory_ignores_expiry_but_not_signatures() -> None:
    old = signed(base(), "root1", "root2")
    anchor = trusted_directory(raw(old))
    assert anchor.version == old.version
    assert _code(lambda: trusted_directory(raw(signed(base(), "root1")))) == "E_DIRECTORY_UNSIGNED"
    later = T0 + 5000 * DAY
    new = set_policy(old, default_policy(), now=later)
    fresh = raw(signed(new, "root1", "root2"))
    assert _verify(fresh, previous=anchor, now=later) == "valid"


def test_trust_directory_is_only_made_by_verification() -> None:
    assert _code(lambda: TrustDirectory(base(), object())) == "E_TRUST"


# -- judging keys at a time ---------------------------------------------------------------


def _judged() -> TrustDirectory:
    doc = revoke_key(
        base(), "AT.247", _kid("AT.247/sig-stolen"), "compromise", T0 + 100 * DAY, now=T0
    )
    doc = revoke_key(doc, "AT.247", _kid("AT.247/sig"), "retired", T0 + 200 * DAY, now=T0)
    return _trusted(signed(doc, "root1", "root2"))


KEYS: list[tuple[str, str, str, timedelta, str]] = [
    ("current", "AT.247/sig", "sig", timedelta(0), "valid"),
    ("first-millisecond", "AT.247/sig", "sig", -30 * DAY, "valid"),
    ("not-yet-valid", "AT.247/sig", "sig", -30 * DAY - MS, "E_KEY_EXPIRED"),
    ("retired-after-sent", "AT.247/sig", "sig", 200 * DAY - MS, "valid"),
    ("retired-at-sent", "AT.247/sig", "sig", 200 * DAY, "E_KEY_REVOKED"),
    ("retired-before-sent", "AT.247/sig", "sig", 300 * DAY, "E_KEY_REVOKED"),
    ("compromised-after-sent", "AT.247/sig-stolen", "sig", timedelta(0), "E_KEY_REVOKED"),
    ("compromised-before-sent", "AT.247/sig-stolen", "sig", 150 * DAY, "E_KEY_REVOKED"),
    ("expired", "AT.247/sig-old", "sig", timedelta(0), "E_KEY_EXPIRED"),
    ("at-not-after", "AT.247/sig-old", "sig", -DAY, "E_KEY_EXPIRED"),
    ("last-millisecond", "AT.247/sig-old", "sig", -DAY - MS, "valid"),
    ("seal-not-yet-valid", "AT.247/seal", "seal", timedelta(0), "E_KEY_EXPIRED"),
    ("seal-valid", "AT.247/seal", "seal", 10 * DAY, "valid"),
    ("sig-asked-as-seal", "AT.247/sig", "seal", timedelta(0), "E_KEY_UNKNOWN"),
    ("seal-asked-as-sig", "AT.247/seal", "sig", 10 * DAY, "E_KEY_UNKNOWN"),
    ("enc-asked-as-sig", "AT.247/enc-old", "sig", timedelta(0), "E_KEY_UNKNOWN"),
    ("enc-use", "AT.247/enc-old", "enc", timedelta(0), "E_KEY_UNKNOWN"),
    ("root-key", "root1", "sig", timedelta(0), "E_KEY_UNKNOWN"),
    ("pq-key", "DE.JUD/sig-pq", "sig", timedelta(0), "valid"),
]


@pytest.mark.parametrize(("name", "key", "use", "offset", "code"), KEYS, ids=[c[0] for c in KEYS])
def test_verification_key(
    name: str, key: str, use: crypto.Use, offset: timedelta, code: str
) -> None:
    directory = _judged()
    kid = _kid(key)
    assert _code(lambda: directory.verification_key(kid, use=use, at=T0 + offset)) == code
    if code == "valid":
        owner, public = directory.verification_key(kid, use=use, at=T0 + offset)
        assert (owner, public.kid) == (kid.split("#")[0], kid)


@pytest.mark.parametrize(
    "kid",
    [
        "AT.247#sig-0000000000000000",
        "XX.1#sig-0000000000000000",
        "",
        "not a kid",
    ],
)
def test_unknown_kid(kid: str) -> None:
    assert _code(lambda: _judged().verification_key(kid, use="sig", at=T0)) == "E_KEY_UNKNOWN"


def test_naive_time_is_refused() -> None:
    kid = _kid("AT.247/sig")
    naive = T0.replace(tzinfo=None)
    assert _code(lambda: _judged().verification_key(kid, use="sig", at=naive)) == "E_TRUST"


ENCRYPTION = [
    ("older-until-newer-starts", "AT.247", timedelta(0), "AT.247/enc-old"),
    ("newest-of-two", "AT.247", 50 * DAY, "AT.247/enc"),
    ("after-older-expired", "AT.247", 200 * DAY, "AT.247/enc"),
    ("hybrid-suite-key", "DE.JUD", timedelta(0), "DE.JUD/enc"),
    ("none-valid-yet", "AT.247", -500 * DAY, "E_KEY_UNKNOWN"),
    ("all-expired", "DE.CA", 400 * DAY, "E_KEY_UNKNOWN"),
    ("unknown-participant", "FR.247", timedelta(0), "E_KEY_UNKNOWN"),
]


@pytest.mark.parametrize(
    ("name", "participant", "offset", "expected"), ENCRYPTION, ids=[c[0] for c in ENCRYPTION]
)
def test_encryption_key(name: str, participant: str, offset: timedelta, expected: str) -> None:
    directory = _trusted(signed(base(), "root1", "root2"))
    at = T0 + offset
    if expected.startswith("E_"):
        assert _code(lambda: directory.encryption_key(participant, at)) == expected
    else:
        assert directory.encryption_key(participant, at).kid == _kid(expected)


def test_encryption_key_skips_revoked_keys() -> None:
    doc = revoke_key(base(), "AT.247", _kid("AT.247/enc"), "retired", T0 + 60 * DAY, now=T0)
    directory = _trusted(signed(doc, "root1", "root2"))
    assert directory.encryption_key("AT.247", T0 + 50 * DAY).kid == _kid("AT.247/enc")
    assert directory.encryption_key("AT.247", T0 + 60 * DAY).kid == _kid("AT.247/enc-old")
    doc = revoke_key(doc, "AT.247", _kid("AT.247/enc-old"), "compromise", T0, now=T0)
    directory = _trusted(signed(doc, "root1", "root2"))
    assert _code(lambda: directory.encryption_key("AT.247", T0 + 60 * DAY)) == "E_KEY_UNKNOWN"


def test_participant_and_suite() -> None:
    directory = _trusted(signed(base(), "root1", "root2"))
    assert directory.suite("DE.JUD") == "hybrid"
    assert directory.suite("AT.247") == "classic"
    assert directory.participant("ISP.mailhost").role == "service_provider"
    assert [p.id for p in directory.participants] == ["AT.247", "DE.CA", "DE.JUD", "ISP.mailhost"]
    assert _code(lambda: directory.participant("FR.247")) == "E_KEY_UNKNOWN"
    assert _code(lambda: directory.suite("FR.247")) == "E_KEY_UNKNOWN"


# -- editing -------------------------------------------------------------------------------


def test_every_content_change_bumps_the_version_and_drops_signatures() -> None:
    net = network()
    start = signed(base(), "root1", "root2")
    later = T0 + 10 * DAY
    changes: list[Callable[[DirectoryDocument], DirectoryDocument]] = [
        lambda d: add_participant(d, _listing("FR.247"), "contact_point", "FR", now=later),
        lambda d: revoke_key(d, "DE.CA", _kid("DE.CA/sig"), "retired", later),
        lambda d: set_roots(d, net.root_keys("root1", "root2"), 1, now=later),
        lambda d: set_policy(d, parse_policy(b'{"rules": []}'), now=later),
    ]
    for change in changes:
        new = change(start)
        assert new.version == start.version + 1
        assert new.signatures == ()
        assert new.issued_at == later
        assert new.expires_at - new.issued_at == start.expires_at - start.issued_at


def _listing(participant: str) -> Listing:
    return Listing(
        participant,
        "classic",
        (
            (crypto.generate_signing_key(participant).public(), YEAR),
            (crypto.generate_decryption_key(participant).public(), YEAR),
        ),
    )


def test_sign_keeps_the_version_and_replaces_its_own_signature() -> None:
    doc = base()
    once = signed(doc, "root1")
    twice = signed(once, "root1")
    assert once.version == twice.version == doc.version
    assert [s.kid for s in twice.signatures] == [_kid("root1")]
    both = signed(once, "root2")
    assert sorted(s.kid for s in both.signatures) == sorted([_kid("root1"), _kid("root2")])


def test_only_ed25519_sig_keys_sign() -> None:
    pq = network().signing["DE.JUD/sig-pq"]
    assert _code(lambda: sign_directory(base(), pq)) == "E_CONFIG"
    assert _code(lambda: sign_directory(base(), network().signing["AT.247/seal"])) == "E_CONFIG"


def test_init_embeds_the_default_policy() -> None:
    doc = init_directory(network().root_keys("root1"), 1, 30 * DAY, T0)
    assert (doc.version, doc.participants, doc.signatures) == (1, (), ())
    assert doc.policy == default_policy()
    assert doc.expires_at == T0 + 30 * DAY


INIT_REFUSALS = [
    (
        "threshold-above-roots",
        lambda: init_directory(network().root_keys("root1"), 2, DAY, T0),
        "E_SEMANTIC",
    ),
    (
        "no-validity",
        lambda: init_directory(network().root_keys("root1"), 1, timedelta(0), T0),
        "E_SEMANTIC",
    ),
    ("no-roots", lambda: init_directory([], 1, DAY, T0), "E_SCHEMA"),
    (
        "pq-root",
        lambda: init_directory([network().signing["DE.JUD/sig-pq"].public()], 1, DAY, T0),
        "E_SCHEMA",
    ),
    (
        "naive-now",
        lambda: init_directory(network().root_keys("root1"), 1, DAY, T0.replace(tzinfo=None)),
        "E_TRUST",
    ),
]


@pytest.mark.parametrize(("name", "call", "code"), INIT_REFUSALS, ids=[c[0] for c in INIT_REFUSALS])
def test_init_refusals(name: str, call: Callable[[], object], code: str) -> None:
    assert _code(call) == code


def test_add_merges_new_keys_of_a_listed_participant() -> None:
    doc = base()
    fresh = crypto.generate_signing_key("DE.CA").public()
    rotated = Listing("DE.CA", "classic", ((fresh, YEAR),))
    new = add_participant(doc, rotated, "central_authority", "DE", name="Bundesamt", now=T0)
    entry = next(p for p in new.participants if p.id == "DE.CA")
    assert [k.kid for k in entry.keys] == [_kid("DE.CA/sig"), _kid("DE.CA/enc"), fresh.kid]
    assert entry.name == "Bundesamt"
    assert entry.routing.exchange == "evb.DE.CA"
    assert len(new.participants) == len(doc.participants)


def test_add_routing_defaults_and_overrides() -> None:
    doc = add_participant(base(), _listing("FR.247"), "contact_point", "FR", now=T0)
    entry = next(p for p in doc.participants if p.id == "FR.247")
    assert entry.routing.model_dump() == {"site": "FR", "vhost": "evb-fr", "exchange": "evb.FR.247"}
    assert entry.name == "FR.247"
    routed = add_participant(
        base(),
        _listing("FR.247"),
        "contact_point",
        "FR",
        routing={"site": "paris", "vhost": "/", "exchange": "x"},
        now=T0,
    )
    assert next(p for p in routed.participants if p.id == "FR.247").routing.site == "paris"


ADD_REFUSALS: list[tuple[str, Callable[[], object], str]] = [
    (
        "root-name-as-participant",
        lambda: add_participant(base(), _listing("root9"), "auditor", "BE", now=T0),
        "E_SCHEMA",
    ),
    (
        "bad-country",
        lambda: add_participant(base(), _listing("FR.247"), "contact_point", "France", now=T0),
        "E_SCHEMA",
    ),
    (
        "hybrid-without-pq-keys",
        lambda: add_participant(
            base(),
            Listing("FR.247", "hybrid", _listing("FR.247").keys),
            "contact_point",
            "FR",
            now=T0,
        ),
        "E_SEMANTIC",
    ),
    (
        "bad-routing",
        lambda: add_participant(
            base(),
            _listing("FR.247"),
            "contact_point",
            "FR",
            routing={"site": "FR", "vhost": "a b", "exchange": "x"},
            now=T0,
        ),
        "E_SCHEMA",
    ),
]


@pytest.mark.parametrize(("name", "call", "code"), ADD_REFUSALS, ids=[c[0] for c in ADD_REFUSALS])
def test_add_refusals(name: str, call: Callable[[], object], code: str) -> None:
    assert _code(call) == code


REVOKE: list[tuple[str, str, str, str]] = [
    ("unknown-participant", "FR.247", "AT.247/sig", "E_KEY_UNKNOWN"),
    ("key-of-another-participant", "DE.CA", "AT.247/sig", "E_KEY_UNKNOWN"),
    ("already-compromised", "AT.247", "AT.247/sig-stolen", "E_KEY_REVOKED"),
    ("retired-then-compromised", "AT.247", "AT.247/sig", "valid"),
]


@pytest.mark.parametrize(("name", "participant", "key", "code"), REVOKE, ids=[c[0] for c in REVOKE])
def test_revoke(name: str, participant: str, key: str, code: str) -> None:
    doc = revoke_key(base(), "AT.247", _kid("AT.247/sig-stolen"), "compromise", T0)
    doc = revoke_key(doc, "AT.247", _kid("AT.247/sig"), "retired", T0)
    assert _code(lambda: revoke_key(doc, participant, _kid(key), "compromise", T0)) == code


def test_document_round_trips_exactly() -> None:
    data = raw(signed(base(), "root1", "root2"))
    doc = parse_directory(data)
    assert doc.to_json_obj() == json.loads(data)
    assert raw(doc) == data


def test_directory_without_policy_uses_the_default() -> None:
    doc = resign(base(), lambda d: d.pop("policy"), ["root1", "root2"])
    assert doc.policy is None
    assert _trusted(doc).policy == default_policy()
