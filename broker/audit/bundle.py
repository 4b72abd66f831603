r"""Exported audit bundles: the directory format, writing one, and the auditor's verification.

A bundle is what a node hands an auditor: its audit log (or one case's part of it), the
signed checkpoints that commit to it, the witnesses' cosignatures of those checkpoints
and, for a one-case export, the inclusion proofs that tie the case's entries to the
latest checkpoint. The auditor needs no node, database or network: only the directory
and the public keys of the node (``verifiers``) and of the witnesses (``witnesses``).
This module owns the layout and the checks; the hashing, the note format and the entry
format are :mod:`~broker.audit.merkle`'s, :mod:`~broker.audit.checkpoint`'s and
:mod:`~broker.audit.entry`'s. Only :func:`write_bundle` and the readers touch files.

The layout (every other file or directory is refused)::

    bundle.json            {"v":1,"participant":"AT.247","origin":"evb/AT.247",
                            "key_name":"AT.247#sig-…","exported_at":"<wire time>",
                            "case":null|"<case id>","since":null|"<wire time>"}
    entries.jsonl          one entry per line: exactly entry_bytes(entry) + b"\n"
    checkpoints/<n>.note   the signed note of the checkpoint of tree size n
    cosignatures/<witness participant>/<n>.sig
                           one cosignature line (as cosign() returns it) over <n>.note
    proofs.json            optional; required when "case" is set:
                           {"case":…,"tree_size":n,"entries":[{"index":i,"proof":[hex,…]}]}

``bundle.json`` is not signed: it only says what to expect, and every claim it makes
that matters (the origin) is checked against the signed checkpoints. In a full bundle
``entries.jsonl`` holds entries 0 to n - 1 where n is the latest checkpoint's size; in a
one-case bundle it holds only the case's entries, in index order, each with its proof.

:func:`verify_bundle` is fail-closed and raises at the first failing step, naming the
entry index or the file; its plan is in its docstring and mirrored by numbered blocks.
:func:`verify_and_read` does the same and returns the entries too, for a replay.
Error codes: ``E_AUDIT_BUNDLE`` (structure), ``E_AUDIT_TAMPERED`` (entries altered,
removed, inserted or reordered), ``E_AUDIT_SIG`` (a checkpoint or cosignature signature),
``E_AUDIT_FORK`` (two signed tree heads no log can join), ``E_AUDIT_PROOF`` (an
inclusion proof).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ed25519

from broker.audit.checkpoint import (
    MAX_NOTE_SIZE,
    Checkpoint,
    add_signatures,
    check_fork,
    is_valid_key_name,
    open_checkpoint,
    origin_for,
    parse_note,
    verify_cosignature,
)
from broker.audit.entry import (
    MAX_ENTRY_SIZE,
    AuditEntry,
    entry_bytes,
    parse_entry,
    paused_gc,
)
from broker.audit.merkle import MerkleLevels, verify_inclusion
from broker.canonical import canonical
from broker.clock import parse_wire_time, wire_time
from broker.errors import (
    AuditBundle,
    AuditError,
    AuditFork,
    AuditProof,
    AuditSignature,
    AuditTampered,
)
from broker.ids import is_participant_id

__all__ = [
    "BUNDLE_VERSION",
    "BundleMeta",
    "BundleReport",
    "case_proofs",
    "read_bundle_entries",
    "verify_and_read",
    "verify_bundle",
    "write_bundle",
]

#: The ``v`` member of ``bundle.json``.
BUNDLE_VERSION: Final = 1

_META = "bundle.json"
_ENTRIES = "entries.jsonl"
_CHECKPOINTS = "checkpoints"
_COSIGNATURES = "cosignatures"
_PROOFS = "proofs.json"
_REQUIRED = frozenset({_META, _ENTRIES, _CHECKPOINTS, _COSIGNATURES})
_ALLOWED = _REQUIRED | {_PROOFS}
_META_MEMBERS = frozenset(
    {"v", "participant", "origin", "key_name", "exported_at", "case", "since"}
)
_MAX_META_SIZE = 65_536
_MAX_PROOFS_SIZE = 256 * 1024 * 1024
_MAX_COSIGNATURE_SIZE = 4096
_MAX_TREE_SIZE = 2**53 - 1
_SIZE_NAME = re.compile(r"(0|[1-9][0-9]{0,15})\.(note|sig)")
_CASE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:#@/-]{0,127}")
_HEX_HASH = re.compile(r"[0-9a-f]{64}")
#: The last members of a canonical entry, top level by construction: after "index"
#: come only "message_id", "peer" and "v", all scalars, so this tail cannot lie inside
#: ``details`` or ``digests`` (a JSON string cannot hold an unescaped quote).
_INDEX_TAIL = re.compile(
    rb',"index":(0|[1-9][0-9]{0,15}),"message_id":(?:null|"[^"\\]*"),'
    rb'"peer":(?:null|"[^"\\]*"),"v":1\}\Z'
)


@dataclass(frozen=True)
class BundleMeta:
    """What ``bundle.json`` says (unsigned: a claim checked against the checkpoints).

    Attributes:
        participant: the node whose log this is.
        origin: its log's origin, ``evb/<participant>``.
        key_name: the note key name the node signs its checkpoints under.
        exported_at: when the bundle was written (wire time).
        case: the case of a one-case export, else None.
        since: the lower time bound the export was asked for, if any (informational:
            a full bundle always starts at entry 0, or its roots could not be rebuilt).
    """

    participant: str
    origin: str
    key_name: str
    exported_at: str
    case: str | None
    since: str | None

    def to_json_obj(self) -> dict[str, Any]:
        """Return the ``bundle.json`` object."""
        return {
            "v": BUNDLE_VERSION,
            "participant": self.participant,
            "origin": self.origin,
            "key_name": self.key_name,
            "exported_at": self.exported_at,
            "case": self.case,
            "since": self.since,
        }


@dataclass(frozen=True)
class BundleReport:
    """What :func:`verify_bundle` checked, all of it successfully.

    Attributes:
        meta: the bundle's metadata.
        entries: the number of entries verified.
        checkpoints: the tree sizes of the checkpoints whose signatures and roots verified.
        cosignatures: witness participant → the tree sizes it cosigned (verified).
        proofs: the number of inclusion proofs verified.
        known: the number of the auditor's own checkpoints found consistent.
        tree_size: the latest checkpoint's tree size.
        root_hex: the latest checkpoint's root hash, lower-case hex.
    """

    meta: BundleMeta
    entries: int
    checkpoints: tuple[int, ...]
    cosignatures: Mapping[str, tuple[int, ...]] = field(hash=False)
    proofs: int
    known: int
    tree_size: int
    root_hex: str


# -- small helpers ----------------------------------------------------------------------

_CODED: Final = (AuditTampered, AuditFork, AuditSignature, AuditProof, AuditBundle)


@contextmanager
def _where(name: str) -> Iterator[None]:
    """Prefix the message of an audit error with the file or entry it concerns."""
    try:
        yield
    except AuditError as exc:
        for cls in _CODED:
            if isinstance(exc, cls):
                raise cls(f"{name}: {exc.message}") from exc
        raise


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise AuditBundle("a duplicate member")
    return result


def _no_float(text: str) -> Any:
    raise AuditBundle("a non-integer number")


def _strict_json(data: bytes) -> Any:
    """Parse JSON without duplicate members, floats, NaN or infinities."""
    try:
        return json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_float=_no_float,
            parse_constant=_no_float,
        )
    # ValueError: also int()'s refusal of a number of more than 4300 digits.
    except (ValueError, RecursionError) as exc:
        raise AuditBundle("not UTF-8 JSON") from exc


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read(path: Path, limit: int) -> bytes:
    """Read a regular file (not a link) of at most ``limit`` bytes."""
    if path.is_symlink() or not path.is_file():
        raise AuditBundle("not a regular file")
    if path.stat().st_size > limit:
        raise AuditBundle(f"larger than {limit} bytes")
    data = path.read_bytes()
    if len(data) > limit:  # it grew since
        raise AuditBundle(f"larger than {limit} bytes")
    return data


def _listing(path: Path) -> dict[str, Path]:
    """The entries of a directory (not itself a link), refusing symbolic links in it."""
    if path.is_symlink() or not path.is_dir():
        raise AuditBundle("not a directory")
    found = {child.name: child for child in path.iterdir()}
    for name, child in found.items():
        if child.is_symlink():
            raise AuditBundle(f"{name} is a symbolic link")
    return found


def _size_of(name: str, suffix: str) -> int:
    match = _SIZE_NAME.fullmatch(name)
    if match is None or match.group(2) != suffix:
        raise AuditBundle(f"{name} is not named <tree size>.{suffix}")
    return int(match.group(1))


def _is_wire_time(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_wire_time(value)
    except ValueError:
        return False
    return True


# -- bundle.json ------------------------------------------------------------------------


def _parse_meta(data: bytes) -> BundleMeta:
    obj = _strict_json(data)
    if not isinstance(obj, dict) or set(obj) != _META_MEMBERS:
        raise AuditBundle("not exactly the bundle.json members")
    if not _is_int(obj["v"]) or obj["v"] != BUNDLE_VERSION:
        raise AuditBundle("an unknown bundle version")
    participant = obj["participant"]
    if not (isinstance(participant, str) and is_participant_id(participant)):
        raise AuditBundle("the participant is not a participant id")
    if obj["origin"] != origin_for(participant):
        raise AuditBundle("the origin is not the participant's log")
    key_name = obj["key_name"]
    if not (isinstance(key_name, str) and is_valid_key_name(key_name)):
        raise AuditBundle("the key name is not a valid note key name")
    if not _is_wire_time(obj["exported_at"]):
        raise AuditBundle("exported_at is not a wire time")
    case = obj["case"]
    if case is not None and not (isinstance(case, str) and _CASE_ID.fullmatch(case)):
        raise AuditBundle("case is not a case id")
    if obj["since"] is not None and not _is_wire_time(obj["since"]):
        raise AuditBundle("since is not a wire time")
    return BundleMeta(participant, obj["origin"], key_name, obj["exported_at"], case, obj["since"])


# -- proofs.json ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Proofs:
    case: str | None
    tree_size: int
    entries: tuple[tuple[int, tuple[bytes, ...]], ...]


def _parse_proofs(data: bytes) -> _Proofs:
    obj = _strict_json(data)
    if not isinstance(obj, dict) or set(obj) != {"case", "tree_size", "entries"}:
        raise AuditBundle("not exactly the members case, tree_size, entries")
    case, tree_size, items = obj["case"], obj["tree_size"], obj["entries"]
    if case is not None and not (isinstance(case, str) and _CASE_ID.fullmatch(case)):
        raise AuditBundle("case is not a case id")
    if not _is_int(tree_size) or not 0 <= tree_size <= _MAX_TREE_SIZE:
        raise AuditBundle("tree_size is not a tree size")
    if not isinstance(items, list):
        raise AuditBundle("entries is not a list")
    parsed: list[tuple[int, tuple[bytes, ...]]] = []
    for position, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"index", "proof"}:
            raise AuditBundle(f"entries[{position}] is not {{index, proof}}")
        index, proof = item["index"], item["proof"]
        if not _is_int(index) or not 0 <= index < tree_size:
            raise AuditBundle(f"entries[{position}].index is not a leaf of the tree")
        if parsed and index <= parsed[-1][0]:
            raise AuditBundle(f"entries[{position}].index is not in increasing order")
        if not isinstance(proof, list) or len(proof) > 64:
            raise AuditBundle(f"entries[{position}].proof is not a list of hashes")
        if not all(isinstance(h, str) and _HEX_HASH.fullmatch(h) for h in proof):
            raise AuditBundle(f"entries[{position}].proof holds a value that is not a hash")
        parsed.append((index, tuple(bytes.fromhex(h) for h in proof)))
    return _Proofs(case, tree_size, tuple(parsed))


def case_proofs(entries: Sequence[AuditEntry], case_id: str, tree_size: int) -> dict[str, Any]:
    """Build the ``proofs.json`` object of a one-case export.

    Args:
        entries: the whole log, entries 0 to at least ``tree_size - 1``, in order.
        case_id: the case to export.
        tree_size: the size of the checkpoint the proofs lead to (the latest exported).

    Returns:
        ``{"case": …, "tree_size": …, "entries": [{"index": i, "proof": [hex, …]}]}``
        for every entry of the case below ``tree_size``.

    Raises:
        ValueError: the log is shorter than ``tree_size`` or not indexed 0, 1, 2 …
    """
    if len(entries) < tree_size:
        raise ValueError("the log is shorter than the tree size")
    if any(entry.index != i for i, entry in enumerate(entries[:tree_size])):
        raise ValueError("the log's indices are not 0, 1, 2 …")
    levels = MerkleLevels(
        [hashlib.sha256(b"\x00" + entry_bytes(e)).digest() for e in entries[:tree_size]]
    )
    return {
        "case": case_id,
        "tree_size": tree_size,
        "entries": [
            {"index": e.index, "proof": [h.hex() for h in levels.inclusion_proof(e.index)]}
            for e in entries[:tree_size]
            if e.case_id == case_id
        ],
    }


# -- writing ----------------------------------------------------------------------------


def _write_file(path: Path, data: bytes) -> None:
    with path.open("xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _note_size(note: bytes) -> int:
    return Checkpoint.from_body(parse_note(note).text).size


def write_bundle(
    path: str | os.PathLike[str],
    *,
    participant: str,
    key_name: str,
    entries: Sequence[AuditEntry],
    checkpoints: Sequence[bytes],
    cosignatures: Mapping[str, Sequence[bytes | None]] | None = None,
    proofs: Mapping[str, Any] | None = None,
    exported_at: datetime,
    since: datetime | None = None,
) -> Path:
    """Write a bundle directory, all at once: into a temporary sibling, then renamed.

    Nothing is verified here (the auditor does that); only the shape is checked.

    Args:
        path: the bundle directory to create; it must not exist.
        participant: the node whose log this is.
        key_name: the key name its checkpoints are signed under.
        entries: the log's entries (a full export: 0 to n - 1 with n the latest
            checkpoint's size) or one case's entries (with ``proofs``).
        checkpoints: signed checkpoint notes, one per tree size.
        cosignatures: witness participant → cosignature lines, aligned with
            ``checkpoints`` (``lines[i]`` cosigns ``checkpoints[i]``; None, or a
            shorter sequence, where the witness did not cosign).
        proofs: the ``proofs.json`` object (see :func:`case_proofs`); its ``case``
            becomes the bundle's.
        exported_at: the time of export.
        since: the lower time bound asked for, if any (recorded only).

    Returns:
        the bundle directory.

    Raises:
        FileExistsError: ``path`` exists.
        ValueError: a malformed argument (participant id, key name, witness name, two
            checkpoints of one size, more cosignatures than checkpoints).
        AuditBundle: a checkpoint is not a checkpoint note.
    """
    target = Path(path)
    if target.exists() or target.is_symlink():
        raise FileExistsError(f"{target} exists")
    case = None if proofs is None else proofs.get("case")
    meta = BundleMeta(
        participant=participant,
        origin=origin_for(participant),
        key_name=key_name,
        exported_at=wire_time(exported_at),
        case=case if isinstance(case, str) else None,
        since=None if since is None else wire_time(since),
    )
    if not is_valid_key_name(key_name):
        raise ValueError("not a valid key name")
    sizes = [_note_size(note) for note in checkpoints]
    if len(set(sizes)) != len(sizes):
        raise ValueError("two checkpoints of one tree size")
    witness_files: dict[str, list[tuple[int, bytes]]] = {}
    for witness, lines in (cosignatures or {}).items():
        if not is_participant_id(witness):
            raise ValueError(f"{witness!r} is not a participant id")
        if len(lines) > len(sizes):
            raise ValueError(f"{witness} has more cosignatures than there are checkpoints")
        witness_files[witness] = [
            (size, line) for size, line in zip(sizes, lines, strict=False) if line is not None
        ]
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _write_file(tmp / _META, canonical(meta.to_json_obj()) + b"\n")
        _write_file(tmp / _ENTRIES, b"".join(entry_bytes(e) + b"\n" for e in entries))
        (tmp / _CHECKPOINTS).mkdir()
        for size, note in zip(sizes, checkpoints, strict=True):
            _write_file(tmp / _CHECKPOINTS / f"{size}.note", note)
        (tmp / _COSIGNATURES).mkdir()
        for witness, files in sorted(witness_files.items()):
            (tmp / _COSIGNATURES / witness).mkdir()
            for size, line in files:
                _write_file(tmp / _COSIGNATURES / witness / f"{size}.sig", line)
        if proofs is not None:
            _write_file(tmp / _PROOFS, canonical(dict(proofs)) + b"\n")
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


# -- reading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    meta: BundleMeta
    entries: bytes
    checkpoints: dict[int, bytes]
    cosignatures: dict[str, dict[int, bytes]]
    proofs: _Proofs | None


def _read_layout(root: Path) -> _Layout:
    """Step 1: the files, their names and sizes, bundle.json and proofs.json parsed."""
    with _where(str(root)):
        top = _listing(root)
    missing = sorted(_REQUIRED - set(top))
    if missing:
        raise AuditBundle(f"{missing[0]} is missing")
    extra = sorted(set(top) - _ALLOWED)
    if extra:
        raise AuditBundle(f"{extra[0]} does not belong in a bundle")
    with _where(_META):
        meta = _parse_meta(_read(top[_META], _MAX_META_SIZE))
    with _where(_ENTRIES):
        entries = _read(top[_ENTRIES], 2**40)
    checkpoints: dict[int, bytes] = {}
    with _where(_CHECKPOINTS):
        listing = _listing(top[_CHECKPOINTS])
    for name, child in sorted(listing.items()):
        with _where(f"{_CHECKPOINTS}/{name}"):
            checkpoints[_size_of(name, "note")] = _read(child, MAX_NOTE_SIZE)
    if not checkpoints:
        raise AuditBundle(f"{_CHECKPOINTS}/ holds no checkpoint")
    cosignatures: dict[str, dict[int, bytes]] = {}
    with _where(_COSIGNATURES):
        witnesses = _listing(top[_COSIGNATURES])
    for witness, directory in sorted(witnesses.items()):
        where = f"{_COSIGNATURES}/{witness}"
        if not is_participant_id(witness):
            raise AuditBundle(f"{where}: not named after a participant id")
        with _where(where):
            files = _listing(directory)
        lines: dict[int, bytes] = {}
        for name, child in sorted(files.items()):
            with _where(f"{where}/{name}"):
                size = _size_of(name, "sig")
                if size not in checkpoints:
                    raise AuditBundle("cosigns a checkpoint the bundle does not hold")
                lines[size] = _read(child, _MAX_COSIGNATURE_SIZE)
        cosignatures[witness] = lines
    proofs = None
    if _PROOFS in top:
        with _where(_PROOFS):
            proofs = _parse_proofs(_read(top[_PROOFS], _MAX_PROOFS_SIZE))
            if proofs.case != meta.case:
                raise AuditBundle("the case is not bundle.json's")
    elif meta.case is not None:
        raise AuditBundle(f"{_PROOFS} is missing (a one-case bundle needs it)")
    return _Layout(meta, entries, checkpoints, cosignatures, proofs)


def _split_lines(data: bytes) -> list[bytes]:
    """The lines of entries.jsonl: each non-empty, bounded and ended by a newline."""
    if not data:
        return []
    if not data.endswith(b"\n"):
        raise AuditBundle(f"{_ENTRIES}: the last line has no newline (truncated)")
    lines = data.split(b"\n")
    lines.pop()
    for number, line in enumerate(lines):
        if not line or len(line) > MAX_ENTRY_SIZE:
            raise AuditBundle(f"{_ENTRIES} line {number}: empty or larger than an entry")
    return lines


def _line_index(line: bytes, number: int) -> int:
    """The index member of a line, checked cheaply: JSON syntax and the canonical tail."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:  # ValueError: as in _strict_json
        raise AuditBundle(f"{_ENTRIES} line {number}: not UTF-8 JSON") from exc
    match = _INDEX_TAIL.search(line)
    if not isinstance(obj, dict) or match is None:
        raise AuditBundle(f"{_ENTRIES} line {number}: not an entry in canonical form")
    return int(match.group(1))


def read_bundle_entries(path: str | os.PathLike[str]) -> list[AuditEntry]:
    """Parse every entry of a bundle strictly.

    This checks nothing but the entry format. To replay a bundle, prefer
    :func:`verify_and_read`, which returns the very lines it verified (parsed once);
    this reads the file again, which may have changed since it was verified.

    Raises:
        AuditBundle: entries.jsonl is missing, truncated or holds a malformed entry
            (the message names its line).
    """
    with _where(_ENTRIES):
        data = _read(Path(path) / _ENTRIES, 2**40)
    parsed = []
    with paused_gc():
        for number, line in enumerate(_split_lines(data)):
            with _where(f"{_ENTRIES} line {number}"):
                parsed.append(parse_entry(line))
    return parsed


# -- verification -----------------------------------------------------------------------


def _open_checkpoints(
    layout: _Layout, verifiers: Mapping[str, ed25519.Ed25519PublicKey]
) -> list[Checkpoint]:
    """Step 3: each checkpoint signed by the node, of its log, of the size in its name."""
    opened = []
    for size, note in sorted(layout.checkpoints.items()):
        with _where(f"{_CHECKPOINTS}/{size}.note"):
            checkpoint = open_checkpoint(note, verifiers, origin=layout.meta.origin)
            if checkpoint.size != size:
                raise AuditBundle(f"the note is of tree size {checkpoint.size}")
        opened.append(checkpoint)
    return opened


def _first_refused(
    lines: Sequence[bytes], refused: Sequence[int] | None, start: int, stop: int
) -> int | None:
    """The first line in ``[start, stop)`` that is not a strict entry.

    From the lines step 2 refused if it parsed them all, else by parsing these.
    """
    if refused is not None:
        return next((number for number in refused if start <= number < stop), None)
    for number in range(start, min(stop, len(lines))):
        try:
            parse_entry(lines[number])
        except AuditBundle:
            return number
    return None


def _check_roots(
    checkpoints: Sequence[Checkpoint],
    levels: MerkleLevels,
    lines: Sequence[bytes],
    refused: Sequence[int] | None,
) -> None:
    """Steps 4 and 5 (forks): every checkpoint's root is the root of the entries it covers.

    A failing checkpoint larger than every passing one means entries were altered (or
    removed) after signing: the first bad entry lies at or after the largest passing
    size and before the smallest failing one. A failing checkpoint *smaller* than a
    passing one is a fork: the entries are the passing one's tree, so the consistency
    proof built from them is the only one there is, and it cannot join the two
    signed heads (a log truncated and rebuilt, or two histories signed).
    """
    count = levels.size
    passing = [
        c.size for c in checkpoints if c.size <= count and levels.root(c.size) == c.root_hash
    ]
    failing = [c for c in checkpoints if c.size not in passing]
    if not failing:
        return
    first = failing[0]
    later = [c for c in checkpoints if c.size > first.size and c.size in passing]
    if later:
        with _where(f"{_CHECKPOINTS}/{first.size}.note and {later[0].size}.note"):
            check_fork(first, later[0], levels.consistency_proof(first.size, later[0].size))
        raise AuditFork(  # unreachable unless SHA-256 collides; fail closed all the same
            f"{_CHECKPOINTS}/{first.size}.note does not match its entries"
        )
    low, high = (max(passing) if passing else 0), first.size
    if high > count:
        raise AuditTampered(
            f"entry {count}: missing; {_CHECKPOINTS}/{high}.note covers {high} entries "
            f"and the bundle has {count}"
        )
    found = _first_refused(lines, refused, low, high)
    if found is not None:
        raise AuditTampered(f"entry {found}: altered (not a canonical entry)")
    raise AuditTampered(
        f"entry {low}: the first that may have been altered; "
        f"{_CHECKPOINTS}/{high}.note does not commit to entries {low} to {high - 1}"
    )


def _check_consistency(
    checkpoints: Sequence[Checkpoint],
    levels: MerkleLevels,
    known: Sequence[bytes],
    verifiers: Mapping[str, ed25519.Ed25519PublicKey],
    origin: str,
) -> int:
    """Step 5: consecutive checkpoints, and the auditor's own, are one log."""
    for older, newer in itertools.pairwise(checkpoints):
        with _where(f"{_CHECKPOINTS}/{older.size}.note and {newer.size}.note"):
            try:
                proof = levels.consistency_proof(older.size, newer.size)
            except ValueError as exc:  # beyond the entries: cannot be shown consistent
                raise AuditFork("no consistency proof can be built") from exc
            check_fork(older, newer, proof)
    latest = checkpoints[-1]
    by_size = {c.size: c for c in checkpoints}
    checked = 0
    for number, note in enumerate(known):
        with _where(f"known checkpoint {number}"):
            mine = open_checkpoint(note, verifiers, origin=origin)
            if mine.size > latest.size:
                continue  # newer than the bundle: nothing here can join it
            other = by_size.get(mine.size, latest)
            check_fork(mine, other, levels.consistency_proof(mine.size, other.size))
            checked += 1
    return checked


def _check_cosignatures(
    layout: _Layout, witnesses: Mapping[str, ed25519.Ed25519PublicKey]
) -> dict[str, tuple[int, ...]]:
    """Step 6: every cosignature verifies under its witness's key."""
    verified: dict[str, tuple[int, ...]] = {}
    for witness, lines in sorted(layout.cosignatures.items()):
        for size, line in sorted(lines.items()):
            note = layout.checkpoints[size]
            with _where(f"{_COSIGNATURES}/{witness}/{size}.sig"):
                signature = parse_note(add_signatures(note, [line])).signatures[-1]
                if signature.name != witness and not signature.name.startswith(witness + "#"):
                    raise AuditSignature(f"signed by {signature.name}, not by {witness}")
                public_key = witnesses.get(signature.name)
                if public_key is None:
                    raise AuditSignature(f"{signature.name} is not a known witness key")
                verify_cosignature(note, signature, signature.name, public_key)
        verified[witness] = tuple(sorted(lines))
    return verified


def _check_inclusion(proofs: _Proofs, leaves: Mapping[int, bytes], root: bytes, what: str) -> None:
    for index, proof in proofs.entries:
        with _where(f"{what} {index}"):
            verify_inclusion(leaves[index], index, proofs.tree_size, proof, root)


def _required(proofs: _Proofs | None) -> _Proofs:
    if proofs is None:  # _read_layout requires proofs.json in a one-case bundle
        raise AuditBundle(f"{_PROOFS} is missing")
    return proofs


@dataclass
class _Parsed:
    """What step 2 parsed of a bundle's lines.

    Attributes:
        entries: the entries, in line order (of a full bundle: only if asked for, and
            only those that parsed).
        refused: the numbers of the lines that are not strict entries, in order, if
            every line was parsed (a full bundle's: a one-case bundle refuses the first).
        first_error: the strict parser's refusal of the first of them.
    """

    entries: list[AuditEntry] = field(default_factory=list)
    refused: list[int] | None = None
    first_error: AuditBundle | None = None


def _check_indices(lines: Sequence[bytes], keep: bool) -> _Parsed:
    """Step 2 of a full bundle: line ``i`` holds entry ``i``.

    Without ``keep``, each line gets the cheap check (JSON ending in a canonical entry's
    tail: a fifth cheaper than a parse). With it, each line is parsed strictly, once,
    and its entry gives the index and is kept; a line that is not a strict entry gets
    the cheap check instead and is noted: whether it was altered is for step 4 to say
    (the signed roots), and only in a bundle that verifies is it an error of its own,
    the one :func:`read_bundle_entries` raises.
    """
    if not keep:
        for number, line in enumerate(lines):
            index = _line_index(line, number)
            if index != number:
                raise _moved(index, number)
        return _Parsed()  # what step 4 may need to know, it parses then
    entries: list[AuditEntry] = []
    refused: list[int] = []
    first_error: AuditBundle | None = None
    for number, line in enumerate(lines):
        try:
            entry = parse_entry(line)
        except AuditBundle as exc:
            index = _line_index(line, number)
            if first_error is None:
                first_error = exc
            refused.append(number)
        else:
            # A strict entry is canonical, so _line_index would read this same index.
            index = entry.index
            entries.append(entry)
        if index != number:
            raise _moved(index, number)
    return _Parsed(entries, refused, first_error)


def _moved(index: int, number: int) -> AuditTampered:
    return AuditTampered(
        f"entry {number}: line {number} holds entry {index} "
        "(an entry was removed, inserted or reordered)"
    )


def _check_case_entries(
    lines: Sequence[bytes], case: str, proofs: _Proofs
) -> tuple[dict[int, bytes], list[AuditEntry]]:
    """Step 2 of a one-case bundle: strict entries of the case, those proofs.json lists.

    Returns:
        entry index → leaf hash, and the entries in line order.
    """
    listed = [index for index, _ in proofs.entries]
    leaves: dict[int, bytes] = {}
    entries: list[AuditEntry] = []
    previous = -1
    for number, line in enumerate(lines):
        with _where(f"{_ENTRIES} line {number}"):
            entry = parse_entry(line)
            if entry.case_id != case:
                raise AuditBundle(f"entry {entry.index} is not of case {case}")
        entries.append(entry)
        if entry.index <= previous:
            raise AuditTampered(f"entry {entry.index}: out of order at line {number}")
        if number >= len(listed) or listed[number] != entry.index:
            raise AuditTampered(
                f"entry {entry.index}: line {number} is not the entry {_PROOFS} lists there"
            )
        previous = entry.index
        leaves[entry.index] = hashlib.sha256(b"\x00" + line).digest()
    if len(listed) > len(lines):
        raise AuditTampered(f"entry {listed[len(lines)]}: listed in {_PROOFS}, missing")
    return leaves, entries


def _check_full_tree(
    lines: Sequence[bytes],
    refused: Sequence[int] | None,
    checkpoints: Sequence[Checkpoint],
    known: Sequence[bytes],
    verifiers: Mapping[str, ed25519.Ed25519PublicKey],
    meta: BundleMeta,
) -> tuple[MerkleLevels, int]:
    """Steps 4 and 5 of a full bundle; return the tree and the known checkpoints checked."""
    sha256 = hashlib.sha256
    levels = MerkleLevels([sha256(b"\x00" + line).digest() for line in lines])
    _check_roots(checkpoints, levels, lines, refused)
    known_checked = _check_consistency(checkpoints, levels, known, verifiers, meta.origin)
    latest = checkpoints[-1]
    if len(lines) > latest.size:
        raise AuditTampered(
            f"entry {latest.size}: not covered by any checkpoint "
            f"(the latest covers {latest.size} entries, the bundle has {len(lines)})"
        )
    return levels, known_checked


def _check_case_tree(
    leaves: Mapping[int, bytes],
    proofs: _Proofs,
    checkpoints: Sequence[Checkpoint],
    known: Sequence[bytes],
    verifiers: Mapping[str, ed25519.Ed25519PublicKey],
    meta: BundleMeta,
) -> int:
    """Steps 4 and 5 of a one-case bundle; return the known checkpoints checked.

    Without the other entries no consistency proof can be built: only the auditor's
    checkpoints of a size the bundle holds can be compared (same size, same root).
    """
    latest = checkpoints[-1]
    if proofs.tree_size != latest.size:
        raise AuditBundle(f"{_PROOFS}: tree_size is not the latest checkpoint's size")
    _check_inclusion(proofs, leaves, latest.root_hash, "entry")
    by_size = {c.size: c for c in checkpoints}
    checked = 0
    for number, note in enumerate(known):
        with _where(f"known checkpoint {number}"):
            mine = open_checkpoint(note, verifiers, origin=meta.origin)
            if mine.size in by_size:
                check_fork(mine, by_size[mine.size], [])
                checked += 1
    return checked


def verify_bundle(
    path: str | os.PathLike[str],
    *,
    verifiers: Mapping[str, ed25519.Ed25519PublicKey],
    witnesses: Mapping[str, ed25519.Ed25519PublicKey],
    known: Sequence[bytes] = (),
) -> BundleReport:
    """Verify an audit bundle, fail-closed, and say what was checked.

    The plan (each step a numbered block below; the first failure raises):

    1. Structure: exactly the bundle's files, named as the format says, within size
       limits; ``bundle.json`` and ``proofs.json`` well formed.
    2. Entries: every line is JSON ending in a canonical entry's tail, indices 0 to
       n - 1 in order (a one-case bundle: every entry parsed strictly, of the case, in
       increasing index order, exactly those ``proofs.json`` lists).
    3. Every checkpoint is signed by a node key in ``verifiers``, for the bundle's
       origin, of the size in its file name.
    4. Full bundle: every checkpoint's root is the root of the first ``size`` entries,
       and the latest covers every entry. One-case bundle instead: every entry's
       inclusion proof leads to the latest checkpoint's root.
    5. Consecutive checkpoints are consistent, and so is every checkpoint in ``known``
       (the auditor's own, e.g. received earlier) no larger than the latest.
    6. Every cosignature verifies under its witness's key in ``witnesses``.
    7. Full bundle with ``proofs.json``: its inclusion proofs lead to the root of the
       checkpoint of its ``tree_size``.

    Args:
        path: the bundle directory.
        verifiers: key name → Ed25519 public key of the node's checkpoint keys.
        witnesses: key name → Ed25519 public key of the witnesses.
        known: signed checkpoint notes of the same log the auditor already holds.

    Returns:
        what was verified.

    Raises:
        AuditBundle: step 1 or 2 (structure, a malformed line or file).
        AuditTampered: step 2 or 4 (an entry removed, inserted, reordered or altered;
            the message names the first bad entry index).
        AuditSignature: step 3 or 6 (a checkpoint, known checkpoint or cosignature).
        AuditFork: step 4-5 (signed checkpoints that no consistency proof joins:
            a rewritten log, or a known checkpoint contradicting the bundle).
        AuditProof: step 4 of a one-case bundle, or step 7.
    """
    report, _ = _verify(path, verifiers, witnesses, known, keep=False)
    return report


def verify_and_read(
    path: str | os.PathLike[str],
    *,
    verifiers: Mapping[str, ed25519.Ed25519PublicKey],
    witnesses: Mapping[str, ed25519.Ed25519PublicKey],
    known: Sequence[bytes] = (),
) -> tuple[BundleReport, list[AuditEntry]]:
    """Verify an audit bundle and return its entries, each line read and parsed once.

    The same as :func:`verify_bundle` followed by :func:`read_bundle_entries`, errors
    included, but faster (one parse, not two) and without a second read of the file:
    the entries returned are the very lines that verified.

    Args:
        path: the bundle directory.
        verifiers: key name → Ed25519 public key of the node's checkpoint keys.
        witnesses: key name → Ed25519 public key of the witnesses.
        known: signed checkpoint notes of the same log the auditor already holds.

    Returns:
        what was verified, and the entries in line order (index order), ready for
        :func:`broker.audit.replay.replay`.

    Raises:
        AuditBundle, AuditTampered, AuditSignature, AuditFork, AuditProof: as
            :func:`verify_bundle`; then AuditBundle if a line of a bundle that verifies
            is not a strict entry (as :func:`read_bundle_entries`: naming the line).
    """
    with paused_gc():
        report, parsed = _verify(path, verifiers, witnesses, known, keep=True)
    if parsed.first_error is not None and parsed.refused:
        with _where(f"{_ENTRIES} line {parsed.refused[0]}"):
            raise parsed.first_error
    return report, parsed.entries


def _verify(
    path: str | os.PathLike[str],
    verifiers: Mapping[str, ed25519.Ed25519PublicKey],
    witnesses: Mapping[str, ed25519.Ed25519PublicKey],
    known: Sequence[bytes],
    keep: bool,
) -> tuple[BundleReport, _Parsed]:
    """The steps of :func:`verify_bundle` (its plan); also return what step 2 parsed."""
    # 1. Structure.
    layout = _read_layout(Path(path))
    meta = layout.meta
    lines = _split_lines(layout.entries)
    if meta.case is None:
        # 2. Entries: indices (and, to keep them, each line parsed once).
        parsed = _check_indices(lines, keep)
        # 3. Checkpoint signatures.
        checkpoints = _open_checkpoints(layout, verifiers)
        # 4. Roots, recomputed from the lines' own bytes; 5. consistency.
        levels, known_checked = _check_full_tree(
            lines, parsed.refused, checkpoints, known, verifiers, meta
        )
    else:
        # 2. The case's entries, strictly, each listed in proofs.json.
        leaves, case_entries = _check_case_entries(lines, meta.case, _required(layout.proofs))
        parsed = _Parsed(case_entries)
        # 3. Checkpoint signatures.
        checkpoints = _open_checkpoints(layout, verifiers)
        # 4.-5. Inclusion in the latest checkpoint; known checkpoints of equal sizes.
        known_checked = _check_case_tree(
            leaves, _required(layout.proofs), checkpoints, known, verifiers, meta
        )
    # 6. Cosignatures.
    cosigned = _check_cosignatures(layout, witnesses)
    # 7. Inclusion proofs of a full bundle's proofs.json.
    proofs_checked = len(lines) if meta.case is not None else 0
    if meta.case is None and layout.proofs is not None:
        proofs = layout.proofs
        target = next((c for c in checkpoints if c.size == proofs.tree_size), None)
        if target is None:
            raise AuditBundle(f"{_PROOFS}: no checkpoint of tree size {proofs.tree_size}")
        if proofs.tree_size > levels.size:
            raise AuditBundle(f"{_PROOFS}: tree_size is beyond the entries")
        full_leaves = {i: levels.leaf(i) for i, _ in proofs.entries}
        _check_inclusion(proofs, full_leaves, target.root_hash, f"{_PROOFS} entry")
        proofs_checked = len(full_leaves)
    latest = checkpoints[-1]
    report = BundleReport(
        meta=meta,
        entries=len(lines),
        checkpoints=tuple(c.size for c in checkpoints),
        cosignatures=MappingProxyType(cosigned),
        proofs=proofs_checked,
        known=known_checked,
        tree_size=latest.size,
        root_hex=latest.root_hash.hex(),
    )
    return report, parsed
