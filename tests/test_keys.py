"""Key generation and key files (broker.keys): round trips, strict parsing, refusals."""

from __future__ import annotations

import copy
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from broker import crypto
from broker.errors import BrokerError, SchemaError
from broker.keys import (
    DEFAULT_VALIDITY,
    KeySet,
    KeyValidity,
    check_participant_id,
    generate_keyset,
    is_participant_id,
    key_files,
    load_keyset,
    load_signing_key,
    parse_public,
    passphrase_from_env,
    read_public,
    write_keyset,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
P = "AT.247"
REPO = Path(__file__).resolve().parent.parent

Doc = dict[str, Any]


def code_of(exc: pytest.ExceptionInfo[BrokerError]) -> str:
    return exc.value.code


@pytest.fixture(scope="module")
def classic_seal() -> KeySet:
    return generate_keyset(P, seal=True, now=NOW)


@pytest.fixture(scope="module")
def hybrid_seal() -> KeySet:
    return generate_keyset(P, seal=True, hybrid=True, now=NOW)


def expected_names(participant: str, *, hybrid: bool, seal: bool) -> list[str]:
    names = [f"{participant}.sig.pem"]
    if hybrid:
        names.append(f"{participant}.sig-pq.pem")
    if seal:
        names.append(f"{participant}.seal.pem")
    names.append(f"{participant}.enc.pem")
    if hybrid:
        names.append(f"{participant}.enc-mlkem.pem")
    names.append(f"{participant}.pub.json")
    return names


# --- round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("hybrid", [False, True], ids=["classic", "hybrid"])
@pytest.mark.parametrize("seal", [False, True], ids=["no-seal", "seal"])
@pytest.mark.parametrize("passphrase", [None, b"correct horse"], ids=["plain", "passphrase"])
def test_round_trip(tmp_path: Path, hybrid: bool, seal: bool, passphrase: bytes | None) -> None:
    keyset = generate_keyset(P, seal=seal, hybrid=hybrid, now=NOW)
    written = write_keyset(keyset, tmp_path, passphrase)

    # Exactly the documented files, private keys 0600, the public file 0644.
    assert [path.name for path in written] == expected_names(P, hybrid=hybrid, seal=seal)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)
    for path in written:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o644 if path.suffix == ".json" else 0o600), path.name
        if path.suffix == ".pem":
            label = "ENCRYPTED PRIVATE KEY" if passphrase else "PRIVATE KEY"
            assert path.read_text().startswith(f"-----BEGIN {label}-----")

    loaded = load_keyset(tmp_path, P, passphrase)
    assert loaded.public() == keyset.public()
    assert read_public(tmp_path / f"{P}.pub.json") == keyset.public()
    assert loaded.suite == ("hybrid" if hybrid else "classic")
    assert loaded.has_seal == seal
    if not seal:
        assert loaded.seal is loaded.sig  # a participant without one seals with its sig key

    # The loaded private halves work with the generated public halves.
    for mine, theirs in [(loaded.sig, keyset.sig), (loaded.seal, keyset.seal)]:
        theirs.public().verify(mine.sign(b"msg"), b"msg")
    if hybrid:
        assert loaded.sig_pq is not None
        assert keyset.sig_pq is not None
        keyset.sig_pq.public().verify(loaded.sig_pq.sign(b"msg"), b"msg")
    enc_public = keyset.enc.public()
    enc, ct = crypto.hpke_seal(enc_public, b"payload", b"info")
    assert crypto.hpke_open(loaded.enc, enc_public.suite, enc, ct, b"info") == b"payload"

    # Signing keys load on their own by file-name convention, with the same kids.
    assert load_signing_key(tmp_path / f"{P}.sig.pem", passphrase).kid == keyset.sig.kid
    if seal:
        assert load_signing_key(tmp_path / f"{P}.seal.pem", passphrase).kid == keyset.seal.kid
    if hybrid and keyset.sig_pq is not None:
        pq = load_signing_key(tmp_path / f"{P}.sig-pq.pem", passphrase)
        assert (pq.kid, pq.alg) == (keyset.sig_pq.kid, crypto.SIG_MLDSA65)


def test_public_json_is_the_documented_format(classic_seal: KeySet) -> None:
    doc = classic_seal.public().to_json()
    assert set(doc) == {"participant", "suite", "keys"}
    assert (doc["participant"], doc["suite"]) == (P, "classic")
    assert [(k["use"], k["alg"]) for k in doc["keys"]] == [
        ("sig", "Ed25519"),
        ("seal", "Ed25519"),
        ("enc", "X25519"),
    ]
    for key in doc["keys"]:
        assert set(key) == {"kid", "use", "alg", "public", "not_before", "not_after"}
        raw = crypto.b64u_decode(key["public"])
        assert key["kid"] == crypto.key_id(P, key["use"], raw)
        assert key["not_before"] == "2026-03-01T12:00:00.123Z"
        assert key["not_after"] == "2028-02-29T12:00:00.123Z"
    assert parse_public(json.dumps(doc).encode()) == classic_seal.public()


def test_by_use(hybrid_seal: KeySet) -> None:
    public = hybrid_seal.public()
    assert [k.alg for k, _ in public.by_use("sig")] == ["Ed25519", "ML-DSA-65"]
    assert [k.kid for k, _ in public.by_use("seal")] == [hybrid_seal.seal.kid]
    assert [k.alg for k, _ in public.by_use("enc")] == ["ML-KEM-768+X25519"]


def test_validity_is_truncated_to_milliseconds() -> None:
    keyset = generate_keyset("root1", now=NOW, valid_for=timedelta(days=10))
    assert keyset.validity == KeyValidity(
        NOW.replace(microsecond=123000), NOW.replace(microsecond=123000) + timedelta(days=10)
    )
    assert generate_keyset("root1", now=NOW).validity.not_after.year == 2028  # two years


@pytest.mark.parametrize(
    ("now", "valid_for"),
    [
        (NOW.replace(tzinfo=None), DEFAULT_VALIDITY),
        (NOW, timedelta(0)),
        (NOW, timedelta(days=-1)),
    ],
    ids=["naive-now", "zero-validity", "negative-validity"],
)
def test_generate_refuses_bad_times(now: datetime, valid_for: timedelta) -> None:
    with pytest.raises(BrokerError) as exc:
        generate_keyset(P, now=now, valid_for=valid_for)
    assert code_of(exc) == "E_CONFIG"


def test_keyset_refuses_keys_of_another_participant(classic_seal: KeySet) -> None:
    other = generate_keyset("DE.CA", now=NOW)
    with pytest.raises(BrokerError) as exc:
        KeySet(P, "classic", other.sig, None, other.sig, classic_seal.enc, classic_seal.validity)
    assert code_of(exc) == "E_CONFIG"


# --- participant ids -----------------------------------------------------------------

GOOD_IDS = ["AT.247", "DE.CA", "ISP.mailhost", "FR.pnf_2-a", "root1", "r", "root-2_b"]
BAD_IDS = [
    "",
    "../x",
    "AT/247",
    "AT.247/../../etc",
    "at.247",
    "AT.",
    "A.247",
    "ABCD.x",
    "AT.2 47",
    "AT.247\n",
    "Root1",
    "1root",
    ".",
    "..",
    "AT.247.sig",
    "AT." + "x" * 33,
    "r" * 33,
]


@pytest.mark.parametrize("participant", GOOD_IDS)
def test_good_ids(participant: str) -> None:
    assert is_participant_id(participant)
    assert check_participant_id(participant) == participant


@pytest.mark.parametrize("participant", BAD_IDS)
def test_bad_ids_are_refused(tmp_path: Path, participant: str) -> None:
    assert not is_participant_id(participant)
    for call in (
        lambda: generate_keyset(participant, now=NOW),
        lambda: key_files(tmp_path, participant),
        lambda: load_keyset(tmp_path, participant, None),
    ):
        with pytest.raises(BrokerError) as exc:
            call()
        assert code_of(exc) == "E_CONFIG"
    assert list(tmp_path.iterdir()) == []


# --- passphrases ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written_with", "loaded_with"),
    [(b"right", b"wrong"), (b"right", None), (None, b"right")],
    ids=["wrong", "missing", "unexpected"],
)
def test_passphrase_mismatch_is_config_error(
    tmp_path: Path, classic_seal: KeySet, written_with: bytes | None, loaded_with: bytes | None
) -> None:
    write_keyset(classic_seal, tmp_path, written_with)
    for call in (
        lambda: load_keyset(tmp_path, P, loaded_with),
        lambda: load_signing_key(tmp_path / f"{P}.sig.pem", loaded_with),
    ):
        with pytest.raises(BrokerError) as exc:
            call()
        assert code_of(exc) == "E_CONFIG"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("s3cret", b"s3cret"), ("pässwört", "pässwört".encode())],
    ids=["unset", "empty", "ascii", "utf-8"],
)
def test_passphrase_from_env(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: bytes | None
) -> None:
    if value is None:
        monkeypatch.delenv("EVB_KEY_PASSPHRASE", raising=False)
    else:
        monkeypatch.setenv("EVB_KEY_PASSPHRASE", value)
    assert passphrase_from_env() == expected


# --- load_signing_key ----------------------------------------------------------------


@pytest.fixture
def hybrid_dir(tmp_path: Path, hybrid_seal: KeySet) -> Path:
    directory = tmp_path / "keys"
    write_keyset(hybrid_seal, directory, None)
    return directory


@pytest.mark.parametrize(
    ("source", "target", "kwargs", "use", "alg"),
    [
        ("sig", "renamed.pem", {"participant": P, "use": "sig"}, "sig", "Ed25519"),
        ("sig", None, {"use": "seal"}, "seal", "Ed25519"),
        ("sig_pq", "x.pem", {"participant": P, "use": "sig"}, "sig", "ML-DSA-65"),
        ("seal", None, {}, "seal", "Ed25519"),
        ("sig", "DE.CA.sig.pem", {}, "sig", "Ed25519"),
    ],
    ids=["explicit", "use-override", "explicit-pq", "seal-by-name", "participant-by-name"],
)
def test_load_signing_key_derives_kid(
    hybrid_dir: Path,
    source: str,
    target: str | None,
    kwargs: dict[str, Any],
    use: str,
    alg: str,
) -> None:
    path = key_files(hybrid_dir, P)[source]
    if target is not None:
        path = Path(shutil.copy(path, hybrid_dir / target))
    key = load_signing_key(path, None, **kwargs)
    participant = kwargs.get("participant", path.name.split(".s")[0])
    raw = key.private.public_key().public_bytes_raw()
    assert (key.use, key.alg) == (use, alg)
    assert key.kid == crypto.key_id(participant, key.use, raw)


def _garbage(directory: Path) -> Path:
    path = directory / "garbage.pem"
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    return path


def _big(directory: Path) -> Path:
    path = directory / "big.sig.pem"
    path.write_bytes(b"x" * (64 * 1024 + 1))
    return path


SIGNING_KEY_REFUSALS: list[tuple[str, Callable[[Path], Path], dict[str, Any], str]] = [
    ("no-convention", lambda d: Path(shutil.copy(d / f"{P}.sig.pem", d / "k.pem")), {}, "E_CONFIG"),
    ("x25519", lambda d: d / f"{P}.enc.pem", {"participant": P, "use": "sig"}, "E_CONFIG"),
    ("mlkem", lambda d: d / f"{P}.enc-mlkem.pem", {"participant": P, "use": "sig"}, "E_CONFIG"),
    (
        "pq-named-sig",
        lambda d: Path(shutil.copy(d / f"{P}.sig-pq.pem", d / "DE.CA.sig.pem")),
        {},
        "E_CONFIG",
    ),
    (
        "ed25519-named-pq",
        lambda d: Path(shutil.copy(d / f"{P}.sig.pem", d / "DE.CA.sig-pq.pem")),
        {},
        "E_CONFIG",
    ),
    ("not-pem", lambda d: d / f"{P}.pub.json", {"participant": P, "use": "sig"}, "E_CONFIG"),
    ("garbage", _garbage, {"participant": P, "use": "sig"}, "E_CONFIG"),
    ("missing", lambda d: d / "nobody.sig.pem", {}, "E_CONFIG"),
    ("directory", lambda d: d, {"participant": P, "use": "sig"}, "E_CONFIG"),
    ("use-enc", lambda d: d / f"{P}.sig.pem", {"use": "enc"}, "E_CONFIG"),
    ("bad-participant", lambda d: d / f"{P}.sig.pem", {"participant": "../x"}, "E_CONFIG"),
    (
        "bad-name",
        lambda d: Path(shutil.copy(d / f"{P}.sig.pem", d / "a b.sig.pem")),
        {},
        "E_CONFIG",
    ),
    ("too-large", _big, {}, "E_TOO_LARGE"),
]


@pytest.mark.parametrize(
    ("make", "kwargs", "code"),
    [case[1:] for case in SIGNING_KEY_REFUSALS],
    ids=[case[0] for case in SIGNING_KEY_REFUSALS],
)
def test_load_signing_key_refusals(
    hybrid_dir: Path, make: Callable[[Path], Path], kwargs: dict[str, Any], code: str
) -> None:
    with pytest.raises(BrokerError) as exc:
        load_signing_key(make(hybrid_dir), None, **kwargs)
    assert code_of(exc) == code


# --- ID.pub.json, strictly -----------------------------------------------------------


def _rekey(doc: Doc, index: int, raw: bytes) -> Doc:
    key = doc["keys"][index]
    key["public"] = crypto.b64u_encode(raw)
    key["kid"] = crypto.key_id(doc["participant"], key["use"], raw)
    return doc


def _raw(doc: Doc, index: int) -> bytes:
    return crypto.b64u_decode(doc["keys"][index]["public"])


def _non_canonical(text: str) -> str:
    # 32 bytes = 43 characters whose last one carries 2 unused bits: set one.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return text[:-1] + alphabet[alphabet.index(text[-1]) ^ 1]


def _set(path: str, value: object) -> Callable[[Doc], Doc]:
    def mutate(doc: Doc) -> Doc:
        *parents, last = path.strip("/").split("/")
        target: Any = doc
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[int(last) if isinstance(target, list) else last] = value
        return doc

    return mutate


def _drop(path: str) -> Callable[[Doc], Doc]:
    def mutate(doc: Doc) -> Doc:
        *parents, last = path.strip("/").split("/")
        target: Any = doc
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        del target[last]
        return doc

    return mutate


def _kid_flip(doc: Doc) -> Doc:
    kid = doc["keys"][0]["kid"]
    doc["keys"][0]["kid"] = kid[:-1] + ("0" if kid[-1] != "0" else "1")
    return doc


def _duplicate_enc(doc: Doc) -> Doc:
    doc["keys"].append(copy.deepcopy(doc["keys"][2]))
    return doc


# (id, mutation of the classic+seal document [sig, seal, enc], pointer of a problem)
PUBLIC_SCHEMA_CASES: list[tuple[str, Callable[[Doc], Doc], str]] = [
    ("kid-tampered", _kid_flip, "/keys/0/kid"),
    (
        "kid-other-participant",
        lambda d: _set("/keys/0/kid", crypto.key_id("DE.CA", "sig", _raw(d, 0)))(d),
        "/keys/0/kid",
    ),
    (
        "kid-other-use",
        lambda d: _set("/keys/0/kid", crypto.key_id(P, "seal", _raw(d, 0)))(d),
        "/keys/0/kid",
    ),
    ("kid-swapped", lambda d: _set("/keys/0/kid", d["keys"][1]["kid"])(d), "/keys/0/kid"),
    ("kid-not-string", _set("/keys/0/kid", 7), "/keys/0/kid"),
    ("participant-changed", _set("/participant", "DE.CA"), "/keys/0/kid"),
    ("raw-too-short", lambda d: _rekey(d, 0, _raw(d, 0)[:31]), "/keys/0/public"),
    ("raw-too-long", lambda d: _rekey(d, 2, _raw(d, 2) + b"\0"), "/keys/2/public"),
    ("raw-empty", lambda d: _rekey(d, 0, b""), "/keys/0/public"),
    (
        "b64-padding",
        lambda d: _set("/keys/0/public", d["keys"][0]["public"] + "=")(d),
        "/keys/0/public",
    ),
    ("b64-alphabet", _set("/keys/0/public", "+/+/" * 10 + "AAA"), "/keys/0/public"),
    ("b64-garbage", _set("/keys/0/public", "!!!!"), "/keys/0/public"),
    (
        "b64-non-canonical",
        lambda d: _set("/keys/0/public", _non_canonical(d["keys"][0]["public"]))(d),
        "/keys/0/public",
    ),
    ("public-not-string", _set("/keys/0/public", 12), "/keys/0/public"),
    ("alg-unknown", _set("/keys/0/alg", "RSA"), "/keys/0/alg"),
    ("alg-wrong-use", _set("/keys/0/alg", "X25519"), "/keys/0/alg"),
    ("alg-enc-as-sig", _set("/keys/2/alg", "Ed25519"), "/keys/2/alg"),
    ("alg-not-string", _set("/keys/0/alg", ["Ed25519"]), "/keys/0/alg"),
    ("use-unknown", _set("/keys/0/use", "auth"), "/keys/0/use"),
    ("use-not-string", _set("/keys/0/use", {"sig": 1}), "/keys/0/use"),
    ("extra-top-field", _set("/comment", "hi"), "/comment"),
    (
        "extra-key-field",
        _set("/keys/0/revoked_at", "2026-03-01T12:00:00.000Z"),
        "/keys/0/revoked_at",
    ),
    ("missing-top-field", _drop("/suite"), "/suite"),
    ("missing-key-field", _drop("/keys/1/not_after"), "/keys/1/not_after"),
    ("suite-unknown", _set("/suite", "quantum"), "/suite"),
    ("suite-not-string", _set("/suite", ["classic"]), "/suite"),
    ("suite-hybrid-on-classic-keys", _set("/suite", "hybrid"), "/keys"),
    ("participant-traversal", _set("/participant", "../x"), "/participant"),
    ("participant-not-string", _set("/participant", 247), "/participant"),
    ("keys-empty", _set("/keys", []), "/keys"),
    ("keys-object", _set("/keys", {}), "/keys"),
    ("key-not-object", _set("/keys/0", "AT.247#sig"), "/keys/0"),
    ("time-no-ms", _set("/keys/0/not_before", "2026-03-01T12:00:00Z"), "/keys/0/not_before"),
    (
        "time-offset",
        _set("/keys/0/not_before", "2026-03-01T13:00:00.000+01:00"),
        "/keys/0/not_before",
    ),
    ("time-not-string", _set("/keys/0/not_after", 1767225600), "/keys/0/not_after"),
    ("time-inverted", _set("/keys/0/not_after", "2026-03-01T12:00:00.123Z"), "/keys/0/not_after"),
    ("enc-twice", _duplicate_enc, "/keys"),
    ("sig-missing", lambda d: _set("/keys", d["keys"][1:])(d), "/keys"),
    ("enc-missing", lambda d: _set("/keys", d["keys"][:2])(d), "/keys"),
]


@pytest.mark.parametrize(
    ("mutate", "pointer"),
    [case[1:] for case in PUBLIC_SCHEMA_CASES],
    ids=[case[0] for case in PUBLIC_SCHEMA_CASES],
)
def test_public_file_schema_refusals(
    tmp_path: Path, classic_seal: KeySet, mutate: Callable[[Doc], Doc], pointer: str
) -> None:
    doc = mutate(copy.deepcopy(classic_seal.public().to_json()))
    path = tmp_path / f"{P}.pub.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SchemaError) as exc:
        read_public(path)
    assert exc.value.code == "E_SCHEMA"
    assert pointer in {problem.pointer for problem in exc.value.problems}


@pytest.mark.parametrize(
    "mutate",
    [
        _set("/suite", "classic"),
        lambda d: _set("/keys", [k for k in d["keys"] if k["alg"] != "ML-DSA-65"])(d),
    ],
    ids=["classic-with-pq-keys", "hybrid-without-mldsa"],
)
def test_hybrid_composition_refusals(
    tmp_path: Path, hybrid_seal: KeySet, mutate: Callable[[Doc], Doc]
) -> None:
    doc = mutate(copy.deepcopy(hybrid_seal.public().to_json()))
    with pytest.raises(BrokerError) as exc:
        parse_public(json.dumps(doc).encode())
    assert code_of(exc) == "E_SCHEMA"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "E_PARSE"),
        (b"not json", "E_PARSE"),
        (b'{"participant": "AT.247"', "E_PARSE"),
        (b'{"a": 1} {"b": 2}', "E_PARSE"),
        (
            b'{"participant": "AT.247", "participant": "DE.CA", "suite": "classic", "keys": []}',
            "E_PARSE",
        ),
        (b'{"x": NaN}', "E_PARSE"),
        (b'{"x": Infinity}', "E_PARSE"),
        (b'{"participant": "\xff"}', "E_PARSE"),
        (b"[" * 100_000, "E_TOO_LARGE"),
        (b"[]", "E_SCHEMA"),
        (b'"AT.247"', "E_SCHEMA"),
        (b"null", "E_SCHEMA"),
        (b" " * (64 * 1024) + b"{}", "E_TOO_LARGE"),
    ],
    ids=[
        "empty",
        "not-json",
        "truncated",
        "trailing",
        "duplicate-member",
        "nan",
        "infinity",
        "not-utf8",
        "deep-and-large",
        "list",
        "string",
        "null",
        "oversized",
    ],
)
def test_public_file_parse_refusals(tmp_path: Path, data: bytes, code: str) -> None:
    path = tmp_path / "x.pub.json"
    path.write_bytes(data)
    with pytest.raises(BrokerError) as exc:
        read_public(path)
    assert code_of(exc) == code


def test_deeply_nested_public_file_is_parse_error() -> None:
    with pytest.raises(BrokerError) as exc:
        parse_public(b"[" * 30_000 + b"]" * 30_000)
    assert code_of(exc) == "E_PARSE"


def test_unreadable_public_file_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(BrokerError) as exc:
        read_public(tmp_path / "missing.pub.json")
    assert code_of(exc) == "E_CONFIG"


# --- private and public halves must match ---------------------------------------------


def _swap_from_other(role: str) -> Callable[[Path, Path], None]:
    def mutate(mine: Path, other: Path) -> None:
        shutil.copy(key_files(other, P)[role], key_files(mine, P)[role])

    return mutate


def _pub_of_other_participant(mine: Path, other: Path) -> None:
    stranger = generate_keyset("DE.CA", seal=True, hybrid=True, now=NOW)
    write_keyset(stranger, other, None)
    shutil.copy(other / "DE.CA.pub.json", mine / f"{P}.pub.json")


def _split_validity(mine: Path, other: Path) -> None:
    path = mine / f"{P}.pub.json"
    doc = json.loads(path.read_text())
    doc["keys"][2]["not_after"] = "2027-01-01T00:00:00.000Z"
    path.write_text(json.dumps(doc))


def _swap_sig_and_seal(mine: Path, other: Path) -> None:
    files = key_files(mine, P)
    sig = files["sig"].read_bytes()
    shutil.copy(files["seal"], files["sig"])
    files["seal"].write_bytes(sig)


def _delete(role: str) -> Callable[[Path, Path], None]:
    def mutate(mine: Path, other: Path) -> None:
        key_files(mine, P)[role].unlink()

    return mutate


MISMATCHES: list[tuple[str, Callable[[Path, Path], None], str]] = [
    ("sig-of-other-set", _swap_from_other("sig"), "E_CONFIG"),
    ("sig-pq-of-other-set", _swap_from_other("sig_pq"), "E_CONFIG"),
    ("seal-of-other-set", _swap_from_other("seal"), "E_CONFIG"),
    ("enc-of-other-set", _swap_from_other("enc"), "E_CONFIG"),
    ("enc-mlkem-of-other-set", _swap_from_other("enc_mlkem"), "E_CONFIG"),
    ("pub-of-other-set", _swap_from_other("pub"), "E_CONFIG"),
    ("pub-of-other-participant", _pub_of_other_participant, "E_CONFIG"),
    ("sig-and-seal-swapped", _swap_sig_and_seal, "E_CONFIG"),
    ("validity-differs", _split_validity, "E_CONFIG"),
    ("sig-missing", _delete("sig"), "E_CONFIG"),
    ("sig-pq-missing", _delete("sig_pq"), "E_CONFIG"),
    ("seal-missing", _delete("seal"), "E_CONFIG"),
    ("enc-missing", _delete("enc"), "E_CONFIG"),
    ("enc-mlkem-missing", _delete("enc_mlkem"), "E_CONFIG"),
    ("pub-missing", _delete("pub"), "E_CONFIG"),
]


@pytest.mark.parametrize(
    ("mutate", "code"),
    [case[1:] for case in MISMATCHES],
    ids=[case[0] for case in MISMATCHES],
)
def test_load_keyset_refuses_mismatched_halves(
    tmp_path: Path, hybrid_seal: KeySet, mutate: Callable[[Path, Path], None], code: str
) -> None:
    mine, other = tmp_path / "mine", tmp_path / "other"
    write_keyset(hybrid_seal, mine, None)
    write_keyset(generate_keyset(P, seal=True, hybrid=True, now=NOW), other, None)
    load_keyset(mine, P, None)  # intact, it loads
    mutate(mine, other)
    with pytest.raises(BrokerError) as exc:
        load_keyset(mine, P, None)
    assert code_of(exc) == code


# --- writing: only where asked, never over existing keys ------------------------------


def _all_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_keys_are_written_only_where_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hybrid_seal: KeySet
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    target = tmp_path / "state" / "keys"
    write_keyset(hybrid_seal, target, b"pw")
    expected = {f"state/keys/{name}" for name in expected_names(P, hybrid=True, seal=True)}
    assert _all_files(tmp_path) == expected  # no temp files, nothing in the cwd
    assert stat.S_IMODE(target.stat().st_mode) == 0o700


@pytest.mark.parametrize("existing", ["sig", "sig_pq", "seal", "enc", "enc_mlkem"])
def test_refuses_to_overwrite_private_keys(
    tmp_path: Path, hybrid_seal: KeySet, existing: str
) -> None:
    files = key_files(tmp_path, P)
    files[existing].write_bytes(b"old key")
    with pytest.raises(BrokerError) as exc:
        write_keyset(hybrid_seal, tmp_path, None)
    assert code_of(exc) == "E_CONFIG"
    assert _all_files(tmp_path) == {files[existing].name}  # nothing else was written
    assert files[existing].read_bytes() == b"old key"


def test_refuses_to_overwrite_a_whole_set(tmp_path: Path, classic_seal: KeySet) -> None:
    write_keyset(classic_seal, tmp_path, None)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(BrokerError) as exc:
        write_keyset(generate_keyset(P, now=NOW), tmp_path, None)
    assert code_of(exc) == "E_CONFIG"
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_overwrite_replaces_and_removes_stale_files(tmp_path: Path, hybrid_seal: KeySet) -> None:
    write_keyset(hybrid_seal, tmp_path, None)
    replacement = generate_keyset(P, now=NOW)
    write_keyset(replacement, tmp_path, None, overwrite=True)
    assert _all_files(tmp_path) == set(expected_names(P, hybrid=False, seal=False))
    assert load_keyset(tmp_path, P, None).public() == replacement.public()


def test_write_to_an_unwritable_place_is_config_error(tmp_path: Path, classic_seal: KeySet) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(BrokerError) as exc:
        write_keyset(classic_seal, blocker / "keys", None)
    assert code_of(exc) == "E_CONFIG"


# --- the repository never holds private keys ------------------------------------------


def test_no_file_outside_tests_holds_a_private_key() -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}

    def files_with_label(*pathspec: str) -> list[str]:
        # Tracked files plus untracked ones that are not ignored: what a commit could add.
        result = subprocess.run(
            ["git", "grep", "-I", "--untracked", "-l", "-e", "PRIVATE KEY", "--", *pathspec],
            cwd=REPO,
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert result.returncode in (0, 1), result.stderr  # 1: no match
        return result.stdout.splitlines()

    # The search works (this very file names the label) ...
    assert "tests/test_keys.py" in files_with_label("tests")
    # ... and finds nothing outside tests/.
    assert files_with_label(".", ":(exclude)tests") == []
