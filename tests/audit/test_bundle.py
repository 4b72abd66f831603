"""Audit bundles: a valid export verifies; each attack fails at its step with its exact code.

Each table case starts from a valid bundle and changes one thing (re-signing what it must,
as python-tuf's tests do), so that it fails only the check it targets.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from broker.audit.bundle import (
    BundleReport,
    case_proofs,
    read_bundle_entries,
    verify_and_read,
    verify_bundle,
    write_bundle,
)
from broker.audit.checkpoint import Checkpoint, cosign, sign_checkpoint
from broker.audit.entry import AuditEntry, entry_bytes, entry_leaf_hash
from broker.audit.merkle import MerkleLevels
from broker.errors import (
    AuditBundle,
    AuditError,
    AuditFork,
    AuditProof,
    AuditSignature,
    AuditTampered,
)
from tests.audit.test_replay import NOW, build_log


def _key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


PARTICIPANT = "AT.247"
ORIGIN = "evb/AT.247"
LOG_NAME = "AT.247#sig-eb8f1cccda423f9d"
LOG_KEY = _key(1)
OTHER_KEY = _key(2)
WITNESS = "DE.CA"
WITNESS_NAME = "DE.CA#sig-0123456789abcdef"
WITNESS_KEY = _key(3)
VERIFIERS: dict[str, Ed25519PublicKey] = {LOG_NAME: LOG_KEY.public_key()}
WITNESSES: dict[str, Ed25519PublicKey] = {WITNESS_NAME: WITNESS_KEY.public_key()}
SIZES = (10, 20)  # and the whole log
STAMP = 1_741_000_000

ENTRIES = build_log()
N = len(ENTRIES)


def _note(entries: Sequence[AuditEntry], size: int, key: Ed25519PrivateKey = LOG_KEY) -> bytes:
    levels = MerkleLevels([entry_leaf_hash(e) for e in entries[:size]])
    return sign_checkpoint(Checkpoint(ORIGIN, size, levels.root()), LOG_NAME, key)


def _write(
    path: Path,
    entries: Sequence[AuditEntry] = ENTRIES,
    sizes: Sequence[int] = (*SIZES, N),
    log: Sequence[AuditEntry] = ENTRIES,
    **kwargs: object,
) -> Path:
    notes = [_note(log, size) for size in sizes]
    lines: list[bytes | None] = [cosign(n, WITNESS_NAME, WITNESS_KEY, STAMP) for n in notes]
    return write_bundle(
        path,
        participant=PARTICIPANT,
        key_name=LOG_NAME,
        entries=entries,
        checkpoints=notes,
        cosignatures={WITNESS: lines},
        exported_at=NOW,
        **kwargs,  # type: ignore[arg-type]
    )


def _verify(path: Path, known: Sequence[bytes] = ()) -> BundleReport:
    return verify_bundle(path, verifiers=VERIFIERS, witnesses=WITNESSES, known=known)


def _verify_and_read(path: Path, known: Sequence[bytes] = ()) -> BundleReport:
    report, entries = verify_and_read(path, verifiers=VERIFIERS, witnesses=WITNESSES, known=known)
    assert entries == read_bundle_entries(path)  # what verified is what is read
    return report


# Every attack is refused alike by verify_bundle and by verify_and_read (the auditor's
# replay): same step, same code, same message.
VERIFIES = [pytest.param(_verify, id="verify"), pytest.param(_verify_and_read, id="and_read")]


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return _write(tmp_path / "bundle")


# -- the valid bundle ---------------------------------------------------------------------


def test_a_valid_bundle_verifies(bundle: Path) -> None:
    report = verify_bundle(bundle, verifiers=VERIFIERS, witnesses=WITNESSES)
    levels = MerkleLevels([entry_leaf_hash(e) for e in ENTRIES])
    assert (report.entries, report.checkpoints, report.tree_size) == (N, (*SIZES, N), N)
    assert report.root_hex == levels.root().hex()
    assert dict(report.cosignatures) == {WITNESS: (*SIZES, N)}
    assert (report.meta.participant, report.meta.origin, report.meta.case) == (
        PARTICIPANT, ORIGIN, None
    )  # fmt: skip
    assert read_bundle_entries(bundle) == ENTRIES


def test_verify_and_read_returns_the_entries_verified(bundle: Path) -> None:
    report, entries = verify_and_read(bundle, verifiers=VERIFIERS, witnesses=WITNESSES)
    assert report == _verify(bundle)
    assert entries == ENTRIES


def test_verify_and_read_a_one_case_bundle(tmp_path: Path) -> None:
    path = _case_bundle(tmp_path / "case")
    report, entries = verify_and_read(path, verifiers=VERIFIERS, witnesses=WITNESSES)
    assert report == _verify(path)
    assert entries == [e for e in ENTRIES if e.case_id == "case-2"]


def test_a_signed_line_that_is_not_a_strict_entry(tmp_path: Path) -> None:
    # The node signed a line in another spelling: the log verifies (the roots are of
    # these very bytes), but that line is no entry to replay, as read_bundle_entries says.
    path = _write(tmp_path / "b")
    lines = _lines(path)
    lines[12] = lines[12].replace(b'"code":null', b'"code": null')
    _set_lines(path, lines)
    leaves = MerkleLevels([hashlib.sha256(b"\x00" + line).digest() for line in lines])
    for size in (*SIZES, N):
        note = sign_checkpoint(Checkpoint(ORIGIN, size, leaves.root(size)), LOG_NAME, LOG_KEY)
        (path / "checkpoints" / f"{size}.note").write_bytes(note)
        (path / "cosignatures" / WITNESS / f"{size}.sig").write_bytes(
            cosign(note, WITNESS_NAME, WITNESS_KEY, STAMP)
        )
    assert _verify(path).entries == N
    with pytest.raises(AuditBundle) as read:
        read_bundle_entries(path)
    with pytest.raises(AuditBundle) as both:
        verify_and_read(path, verifiers=VERIFIERS, witnesses=WITNESSES)
    expected = "entries.jsonl line 12: an entry is not in canonical form"
    assert both.value.message == read.value.message == expected


def test_the_format_on_disk(bundle: Path) -> None:
    assert sorted(p.name for p in bundle.iterdir()) == [
        "bundle.json", "checkpoints", "cosignatures", "entries.jsonl"
    ]  # fmt: skip
    assert (bundle / "entries.jsonl").read_bytes() == b"".join(
        entry_bytes(e) + b"\n" for e in ENTRIES
    )
    assert sorted(p.name for p in (bundle / "checkpoints").iterdir()) == [
        "10.note", "20.note", f"{N}.note"
    ]  # fmt: skip
    assert (bundle / "checkpoints" / "20.note").read_bytes() == _note(ENTRIES, 20)
    assert (
        (bundle / "cosignatures" / WITNESS / "20.sig")
        .read_bytes()
        .startswith(f"\u2014 {WITNESS_NAME} ".encode())
    )
    meta = json.loads((bundle / "bundle.json").read_bytes())
    assert meta == {
        "v": 1,
        "participant": PARTICIPANT,
        "origin": ORIGIN,
        "key_name": LOG_NAME,
        "exported_at": "2025-03-09T11:00:00.000Z",
        "case": None,
        "since": None,
    }


def test_write_refuses_an_existing_directory(bundle: Path) -> None:
    with pytest.raises(FileExistsError):
        _write(bundle)
    assert not [p for p in bundle.parent.iterdir() if p.name.startswith(".")]


def test_a_cosignature_may_be_absent(tmp_path: Path) -> None:
    notes = [_note(ENTRIES, s) for s in (10, N)]
    path = write_bundle(
        tmp_path / "b",
        participant=PARTICIPANT,
        key_name=LOG_NAME,
        entries=ENTRIES,
        checkpoints=notes,
        cosignatures={WITNESS: [None, cosign(notes[1], WITNESS_NAME, WITNESS_KEY, STAMP)]},
        exported_at=NOW,
    )
    assert dict(_verify_report(path).cosignatures) == {WITNESS: (N,)}


def _verify_report(path: Path) -> BundleReport:
    return verify_bundle(path, verifiers=VERIFIERS, witnesses=WITNESSES)


# -- mutations ------------------------------------------------------------------------


def _lines(path: Path) -> list[bytes]:
    return (path / "entries.jsonl").read_bytes().split(b"\n")[:-1]


def _set_lines(path: Path, lines: Sequence[bytes]) -> None:
    (path / "entries.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))


def _edit_line(number: int, old: bytes, new: bytes) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        lines = _lines(path)
        assert old in lines[number]
        lines[number] = lines[number].replace(old, new, 1)
        _set_lines(path, lines)

    return edit


def _remove_line(number: int) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        lines = _lines(path)
        del lines[number]
        _set_lines(path, lines)

    return edit


def _swap(a: int, b: int) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        lines = _lines(path)
        lines[a], lines[b] = lines[b], lines[a]
        _set_lines(path, lines)

    return edit


def _insert(number: int, line: bytes) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        lines = _lines(path)
        lines.insert(number, line)
        _set_lines(path, lines)

    return edit


def _truncate_lines(count: int) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        _set_lines(path, _lines(path)[:-count])

    return edit


def _truncate_bytes(count: int) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        data = (path / "entries.jsonl").read_bytes()
        (path / "entries.jsonl").write_bytes(data[:-count])

    return edit


def _write_file(relative: str, data: bytes) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        (path / relative).parent.mkdir(parents=True, exist_ok=True)
        (path / relative).write_bytes(data)

    return edit


def _delete(relative: str) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        target = path / relative
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()

    return edit


def _rename(old: str, new: str) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        (path / old).rename(path / new)

    return edit


def _edit_meta(**changes: object) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        meta = json.loads((path / "bundle.json").read_bytes())
        meta.update(changes)
        (path / "bundle.json").write_text(json.dumps(meta))

    return edit


def _both(*edits: Callable[[Path], None]) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        for each in edits:
            each(path)

    return edit


def _set_lines_of(entries: Sequence[AuditEntry]) -> Callable[[Path], None]:
    return lambda p: _set_lines(p, [entry_bytes(e) for e in entries])


def _empty_checkpoints(path: Path) -> None:
    for child in (path / "checkpoints").iterdir():
        child.unlink()
    shutil.rmtree(path / "cosignatures" / WITNESS)


def _replace_proof_elements(path: Path) -> None:
    data = json.loads((path / "proofs.json").read_bytes())
    for item in data["entries"]:
        item["proof"][0] = "11" * 32
    (path / "proofs.json").write_text(json.dumps(data))


def _swap_proofs(a: int, b: int) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        data = json.loads((path / "proofs.json").read_bytes())
        items = data["entries"]
        items[a], items[b] = items[b], items[a]
        (path / "proofs.json").write_text(json.dumps(data))

    return edit


def _entry_line(entry: AuditEntry) -> bytes:
    return entry_bytes(entry)


_APPENDED = _entry_line(replace(ENTRIES[0], index=N))
_ANOTHER_LOG = [
    *ENTRIES[:15],
    *(replace(e, index=e.index, event="message.sent") for e in ENTRIES[15:]),
]
_OTHER_ORIGIN_NOTE = sign_checkpoint(
    Checkpoint("evb/AT.999", 20, MerkleLevels([entry_leaf_hash(e) for e in ENTRIES[:20]]).root()),
    LOG_NAME,
    LOG_KEY,
)


ATTACKS: list[tuple[str, Callable[[Path], None], type[AuditError], str]] = [
    # step 2: removed, inserted, reordered entries
    ("entry removed", _remove_line(5), AuditTampered, "entry 5: line 5 holds entry 6"),
    ("entries reordered", _swap(7, 8), AuditTampered, "entry 7: line 7 holds entry 8"),
    (
        "entry inserted",
        _insert(4, _entry_line(ENTRIES[3])),
        AuditTampered,
        "entry 4: line 4 holds entry 3",
    ),
    ("entry appended", _insert(N, _APPENDED), AuditTampered, f"entry {N}: not covered"),
    ("entries cut off", _truncate_lines(3), AuditTampered, f"entry {N - 3}: missing"),
    # step 4: altered entries
    (
        "entry altered, still canonical",
        _edit_line(10, b'"type":"eu.eio.a"', b'"type":"eu.eio.b"'),
        AuditTampered,
        "entry 10: the first that may have been altered; checkpoints/20.note",
    ),
    (
        "entry altered, no longer canonical",
        _edit_line(13, b"deadline.set", b"deadline.Set"),
        AuditTampered,
        "entry 13: altered",
    ),
    (
        "entry altered, a lone surrogate escaped",
        _edit_line(10, b'"type":"eu.eio.a"', b'"type":"\\ud800"'),
        AuditTampered,
        "entry 10: altered",
    ),
    (
        "entry altered after the last checkpoint but one",
        _edit_line(N - 1, b'"case_id":"case-3"', b'"case_id":"case-4"'),
        AuditTampered,
        f"entry 20: the first that may have been altered; checkpoints/{N}.note",
    ),
    # step 3: checkpoint signatures
    (
        "checkpoint signed by another key",
        _write_file("checkpoints/20.note", _note(ENTRIES, 20, OTHER_KEY)),
        AuditSignature,
        "checkpoints/20.note",
    ),
    (
        "checkpoint of another log",
        _write_file("checkpoints/20.note", _OTHER_ORIGIN_NOTE),
        AuditSignature,
        "checkpoints/20.note",
    ),
    (
        "checkpoint signature flipped",
        lambda p: _write_file(
            "checkpoints/10.note",
            (p / "checkpoints/10.note").read_bytes().replace(b"evb/AT.247", b"evb/AT.248"),
        )(p),
        AuditSignature,
        "checkpoints/10.note",
    ),
    # step 6: cosignatures
    (
        "forged cosignature",
        _write_file(
            "cosignatures/DE.CA/20.sig",
            cosign(_note(ENTRIES, 20), WITNESS_NAME, _key(9), STAMP),
        ),
        AuditSignature,
        "cosignatures/DE.CA/20.sig",
    ),
    (
        "cosignature of another checkpoint",
        _write_file(
            "cosignatures/DE.CA/20.sig", cosign(_note(ENTRIES, 10), WITNESS_NAME, WITNESS_KEY, 1)
        ),
        AuditSignature,
        "cosignatures/DE.CA/20.sig",
    ),
    (
        "cosignature by an unknown witness",
        _write_file(
            "cosignatures/FR.PNAT/20.sig",
            cosign(_note(ENTRIES, 20), "FR.PNAT#sig-0000000000000000", _key(4), STAMP),
        ),
        AuditSignature,
        "cosignatures/FR.PNAT/20.sig",
    ),
    (
        "cosignature filed under another witness",
        _rename("cosignatures/DE.CA", "cosignatures/FR.PNAT"),
        AuditSignature,
        "not by FR.PNAT",
    ),
    # step 4-5: forks
    (
        "log truncated and rebuilt",
        _both(
            _set_lines_of(_ANOTHER_LOG),
            _write_file(f"checkpoints/{N}.note", _note(_ANOTHER_LOG, N)),
            _delete("cosignatures/DE.CA"),
        ),
        AuditFork,
        f"checkpoints/20.note and {N}.note: evb/AT.247 at {N} is not shown to extend",
    ),
    # step 1: structure
    ("entries.jsonl missing", _delete("entries.jsonl"), AuditBundle, "entries.jsonl is missing"),
    ("bundle.json missing", _delete("bundle.json"), AuditBundle, "bundle.json is missing"),
    ("checkpoints missing", _delete("checkpoints"), AuditBundle, "checkpoints is missing"),
    (
        "no checkpoint",
        _empty_checkpoints,
        AuditBundle,
        "checkpoints/ holds no checkpoint",
    ),
    ("extra file", _write_file("notes.txt", b"hi"), AuditBundle, "notes.txt does not belong"),
    ("entries truncated mid-line", _truncate_bytes(5), AuditBundle, "truncated"),
    ("garbage line", _insert(3, b"{not json"), AuditBundle, "line 3: not UTF-8 JSON"),
    (
        "a number too long for int()",
        _insert(3, b'{"index":' + b"1" * 5000 + b"}"),
        AuditBundle,
        "line 3: not UTF-8 JSON",
    ),
    ("empty line", _insert(3, b""), AuditBundle, "line 3: empty"),
    (
        "a line that is JSON but not an entry",
        _insert(3, b'{"index":3}'),
        AuditBundle,
        "line 3: not an entry in canonical form",
    ),
    ("bundle.json not JSON", _write_file("bundle.json", b"{"), AuditBundle, "bundle.json"),
    ("bundle.json of another log", _edit_meta(origin="evb/DE.CA"), AuditBundle, "origin"),
    ("bundle.json with a float", _edit_meta(v=1.0), AuditBundle, "bundle.json"),
    ("bundle.json with an extra member", _edit_meta(x=1), AuditBundle, "bundle.json"),
    (
        "bundle.json says another participant",
        _edit_meta(participant="AT.999", origin="evb/AT.999"),
        AuditSignature,
        "checkpoints/10.note",
    ),
    (
        "checkpoint misnamed",
        _rename("checkpoints/10.note", "checkpoints/010.note"),
        AuditBundle,
        "checkpoints/010.note",
    ),
    (
        "checkpoint filed under another size",
        _both(
            _rename("checkpoints/10.note", "checkpoints/11.note"),
            _rename("cosignatures/DE.CA/10.sig", "cosignatures/DE.CA/11.sig"),
        ),
        AuditBundle,
        "checkpoints/11.note: the note is of tree size 10",
    ),
    (
        "cosignature of a checkpoint not in the bundle",
        _write_file("cosignatures/DE.CA/11.sig", b"x"),
        AuditBundle,
        "cosignatures/DE.CA/11.sig",
    ),
    (
        "cosignature line malformed",
        _write_file("cosignatures/DE.CA/10.sig", b"- not a line\n"),
        AuditBundle,
        "cosignatures/DE.CA/10.sig",
    ),
    (
        "proofs.json missing from a one-case bundle",
        _edit_meta(case="case-2"),
        AuditBundle,
        "proofs.json is missing",
    ),
]


@pytest.mark.parametrize("verify", VERIFIES)
@pytest.mark.parametrize(
    ("mutate", "error", "message"),
    [pytest.param(m, e, s, id=name) for name, m, e, s in ATTACKS],
)
def test_attacks(
    bundle: Path,
    mutate: Callable[[Path], None],
    error: type[AuditError],
    message: str,
    verify: Callable[[Path], BundleReport],
) -> None:
    mutate(bundle)
    with pytest.raises(error) as caught:
        verify(bundle)
    assert caught.value.code == error.code
    assert message in caught.value.message


def test_a_symbolic_link_is_refused(bundle: Path) -> None:
    target = bundle.parent / "elsewhere.note"
    (bundle / "checkpoints" / "10.note").rename(target)
    (bundle / "checkpoints" / "10.note").symlink_to(target)
    with pytest.raises(AuditBundle, match="symbolic link"):
        _verify(bundle)


# -- forks against what the auditor already holds ------------------------------------------


def _forged_note(size: int) -> bytes:
    other = [replace(e, event="message.sent") for e in ENTRIES]
    return _note(other, size)


@pytest.mark.parametrize("verify", VERIFIES)
@pytest.mark.parametrize(
    ("known", "message"),
    [
        pytest.param([_forged_note(20)], "two roots for size 20", id="same size, other root"),
        pytest.param(
            [_forged_note(15)], "is not shown to extend its tree at 15", id="inconsistent"
        ),
        pytest.param([_note(ENTRIES, 10), _forged_note(3)], "known checkpoint 1", id="second"),
    ],
)
def test_known_checkpoints_that_fork(
    bundle: Path,
    known: list[bytes],
    message: str,
    verify: Callable[[Path, Sequence[bytes]], BundleReport],
) -> None:
    with pytest.raises(AuditFork) as caught:
        verify(bundle, known)
    assert caught.value.code == "E_AUDIT_FORK"
    assert message in caught.value.message


def test_known_checkpoints_that_agree(bundle: Path) -> None:
    report = verify_bundle(
        bundle,
        verifiers=VERIFIERS,
        witnesses=WITNESSES,
        known=[_note(ENTRIES, 20), _note(ENTRIES, 15), _note([*ENTRIES, _extra()], N + 1)],
    )
    assert report.known == 2  # the one beyond the bundle cannot be checked


def test_a_known_checkpoint_signed_by_another_key(bundle: Path) -> None:
    with pytest.raises(AuditSignature, match="known checkpoint 0"):
        _verify(bundle, [_note(ENTRIES, 15, OTHER_KEY)])


def _extra() -> AuditEntry:
    return replace(ENTRIES[0], index=N)


# -- proofs.json ----------------------------------------------------------------------


def test_a_full_bundle_with_proofs(tmp_path: Path) -> None:
    proofs = case_proofs(ENTRIES, "case-2", 20)
    proofs["case"] = None
    path = _write(tmp_path / "b", proofs=proofs)
    report = verify_bundle(path, verifiers=VERIFIERS, witnesses=WITNESSES)
    assert report.proofs == len(proofs["entries"]) > 0
    data = json.loads((path / "proofs.json").read_bytes())
    data["entries"][0]["proof"][0] = "00" * 32
    (path / "proofs.json").write_text(json.dumps(data))
    with pytest.raises(AuditProof, match=r"proofs\.json entry \d+"):
        _verify(path)


def _case_bundle(path: Path, case: str = "case-2") -> Path:
    proofs = case_proofs(ENTRIES, case, N)
    return _write(path, entries=[e for e in ENTRIES if e.case_id == case], proofs=proofs)


def test_write_bundle_checks_its_arguments(tmp_path: Path) -> None:
    note = _note(ENTRIES, N)
    with pytest.raises(ValueError, match="two checkpoints of one tree size"):
        _write(tmp_path / "a", sizes=(N, N))
    with pytest.raises(ValueError, match="more cosignatures"):
        write_bundle(
            tmp_path / "b",
            participant=PARTICIPANT,
            key_name=LOG_NAME,
            entries=ENTRIES,
            checkpoints=[note],
            cosignatures={WITNESS: [None, None]},
            exported_at=NOW,
        )
    assert not list(tmp_path.iterdir())


def test_a_one_case_bundle_verifies(tmp_path: Path) -> None:
    path = _case_bundle(tmp_path / "case")
    report = verify_bundle(path, verifiers=VERIFIERS, witnesses=WITNESSES)
    case_entries = [e for e in ENTRIES if e.case_id == "case-2"]
    assert (report.meta.case, report.entries, report.proofs) == (
        "case-2", len(case_entries), len(case_entries)
    )  # fmt: skip
    assert report.tree_size == N
    assert read_bundle_entries(path) == case_entries


def _first_case_index() -> int:
    return next(e.index for e in ENTRIES if e.case_id == "case-2")


CASE_ATTACKS: list[tuple[str, Callable[[Path], None], type[AuditError], str]] = [
    (
        "case entry altered",
        _edit_line(0, b'"type":"eu.eio.a"', b'"type":"eu.eio.b"'),
        AuditProof,
        f"entry {_first_case_index()}: the inclusion proof does not lead to the root",
    ),
    (
        "proof element altered",
        _replace_proof_elements,
        AuditProof,
        f"entry {_first_case_index()}: the inclusion proof does not lead to the root",
    ),
    ("case entry removed", _remove_line(1), AuditTampered, "is not the entry proofs.json lists"),
    ("last case entry removed", _truncate_lines(1), AuditTampered, "listed in proofs.json"),
    (
        "case entries reordered",
        _swap(1, 2),
        AuditTampered,
        "line 1 is not the entry proofs.json lists there",
    ),
    (
        "case entries reordered, proofs too",
        _both(_swap(1, 2), _swap_proofs(1, 2)),
        AuditBundle,
        "entries[2].index is not in increasing order",
    ),
    (
        "entry of another case",
        _insert(1, entry_bytes(ENTRIES[0])),
        AuditBundle,
        "entries.jsonl line 1: entry 0 is not of case case-2",
    ),
    ("garbage line", _insert(1, b"[]"), AuditBundle, "entries.jsonl line 1"),
    (
        "proofs.json for an older tree",
        _write_file("proofs.json", json.dumps(case_proofs(ENTRIES, "case-2", N - 1)).encode()),
        AuditBundle,
        "tree_size is not the latest checkpoint's size",
    ),
    (
        "proofs.json of another case",
        _write_file("proofs.json", json.dumps(case_proofs(ENTRIES, "case-1", N)).encode()),
        AuditBundle,
        "proofs.json: the case is not bundle.json's",
    ),
    (
        "proofs.json malformed",
        _write_file("proofs.json", b'{"case":"case-2","tree_size":-1,"entries":[]}'),
        AuditBundle,
        "tree_size is not a tree size",
    ),
]


@pytest.mark.parametrize("verify", VERIFIES)
@pytest.mark.parametrize(
    ("mutate", "error", "message"),
    [pytest.param(m, e, s, id=name) for name, m, e, s in CASE_ATTACKS],
)
def test_case_bundle_attacks(
    tmp_path: Path,
    mutate: Callable[[Path], None],
    error: type[AuditError],
    message: str,
    verify: Callable[[Path], BundleReport],
) -> None:
    path = _case_bundle(tmp_path / "case")
    mutate(path)
    with pytest.raises(error) as caught:
        verify(path)
    assert caught.value.code == error.code
    assert message in caught.value.message


def test_a_one_case_bundle_against_known_checkpoints(tmp_path: Path) -> None:
    path = _case_bundle(tmp_path / "case")
    with pytest.raises(AuditFork, match=f"two roots for size {N}"):
        _verify(path, [_forged_note(N)])
    assert (
        verify_bundle(
            path, verifiers=VERIFIERS, witnesses=WITNESSES, known=[_note(ENTRIES, N)]
        ).known
        == 1
    )


def test_case_proofs_refuses_a_short_log() -> None:
    with pytest.raises(ValueError, match="shorter"):
        case_proofs(ENTRIES[:3], "case-1", 5)
