"""The node's side of audit bundles: its log read out of its store, exported, or checked in place.

:mod:`broker.audit.bundle` owns the bundle format and the auditor's verification; this
module reads what a node keeps — its log records (``audit_leaves``), its signed
checkpoints and the witnesses' cosignatures of them — and turns them into a bundle
(:func:`export_bundle`) or checks them where they lie (:func:`verify_live`).

Every record read is turned back into its entry with
:func:`broker.store.auditlog.entry_of` (the function the store hashed it with) and its
leaf hash recomputed: a record that no longer hashes to the leaf hash stored beside it
was altered in the database, and nothing is exported (``E_AUDIT_TAMPERED``, naming the
entry). A record rewritten together with its leaf hash hashes consistently; the signed
checkpoints catch that (the bundle's verification, or :func:`verify_live`).

What an export holds (``since`` and ``case`` are the only choices):

* a full export — entries 0 to n - 1, n the latest checkpoint's size, and every
  checkpoint up to it with its cosignatures. Entries recorded after the latest
  checkpoint are not committed to by any signature yet and are left out.
* ``since=T`` — the same full bundle (a full bundle must start at entry 0, or its
  checkpoints' roots could not be recomputed), ``since`` recorded in ``bundle.json``,
  and a ``proofs.json`` (``case`` null) holding an inclusion proof in the latest
  checkpoint for every entry recorded at or after T: the period's entries, each
  provable on its own to someone who holds only that checkpoint.
* ``case=C`` — only case C's entries (at or after T, with ``since``), each with its
  inclusion proof in the latest checkpoint, and that checkpoint with its cosignatures.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ed25519

from broker.audit.bundle import case_proofs, verify_bundle, write_bundle
from broker.audit.checkpoint import parse_note
from broker.audit.entry import AuditEntry, entry_leaf_hash
from broker.audit.merkle import MerkleLevels, MerkleTree, TreeState
from broker.audit.replay import CaseReplay, Replay
from broker.clock import wire_time
from broker.errors import AuditBundle, AuditTampered, CaseUnknown, StoreError
from broker.store.auditlog import entry_of
from broker.store.base import CaseRecord, Store, StoredDeadline

__all__ = ["Disagreement", "LiveReport", "compare_with_live", "export_bundle", "verify_live"]

#: Records (or cases) read from the store at a time.
PAGE: Final = 5000
#: Deadline states the log does not record: the last ``deadline.*`` entry of a
#: cancelled or paused deadline is its ``deadline.set`` (pending).
_UNLOGGED_STATES: Final = frozenset({"cancelled", "paused"})


@dataclass(frozen=True)
class LiveReport:
    """What :func:`verify_live` checked, all of it successfully.

    Attributes:
        entries: the log records read and re-hashed (the tree head's size).
        tree_size: the latest checkpoint's size (0 without any checkpoint).
        root_hex: the tree head's root hash, lower-case hex.
        checkpoints: the tree sizes of the checkpoints verified.
        cosignatures: witness participant → the tree sizes it cosigned (verified).
        uncommitted: records after the latest checkpoint (checked against the tree
            head, not yet signed).
    """

    entries: int
    tree_size: int
    root_hex: str
    checkpoints: tuple[int, ...]
    cosignatures: Mapping[str, tuple[int, ...]] = field(hash=False)
    uncommitted: int


async def _read_entries(store: Store, stop: int) -> list[AuditEntry]:
    """Entries 0 to ``stop - 1``, each re-hashed against the leaf hash stored with it.

    Raises:
        AuditTampered: a record is missing, out of place, no longer a valid entry, or
            no longer hashes to its stored leaf hash (the message names the entry).
        StoreError: the store failed.
    """
    entries: list[AuditEntry] = []
    while len(entries) < stop:
        page = await store.audit_leaves(start=len(entries), limit=min(PAGE, stop - len(entries)))
        if not page:
            raise AuditTampered(f"entry {len(entries)}: missing from the store")
        for index, event, stored in page:
            expected = len(entries)
            if index != expected:
                raise AuditTampered(f"entry {expected}: missing from the store (next is {index})")
            try:
                entry = entry_of(index, event)
            except StoreError as exc:
                raise AuditTampered(
                    f"entry {index}: its record is no longer a valid entry "
                    "(the database was altered)"
                ) from exc
            if entry_leaf_hash(entry) != stored:
                raise AuditTampered(
                    f"entry {index}: its record does not hash to its stored leaf hash "
                    "(the database was altered)"
                )
            entries.append(entry)
    return entries


async def _committed(store: Store) -> list[tuple[int, bytes]]:
    """Every kept checkpoint, oldest first (at most one per size, so at most n of them)."""
    newest = await store.list_checkpoints(newest_first=True, limit=1)
    if not newest:
        return []
    return await store.list_checkpoints(limit=newest[0][0])


async def _cosignatures(store: Store, sizes: Sequence[int]) -> dict[str, list[bytes | None]]:
    """Witness → cosignature lines aligned with ``sizes`` (None where it did not cosign)."""
    position = {size: i for i, size in enumerate(sizes)}
    aligned: dict[str, list[bytes | None]] = {}
    for witness, size, line in await store.list_cosignatures():
        if size not in position:  # cosigns a checkpoint newer than this export
            continue
        lines = aligned.setdefault(witness, [None] * len(sizes))
        lines[position[size]] = line
    return aligned


def _key_name(note: bytes) -> str:
    """The key name of a checkpoint's own signature (its first line)."""
    return parse_note(note).signatures[0].name


def _period_proofs(entries: Sequence[AuditEntry], since: datetime) -> dict[str, Any]:
    """The ``proofs.json`` of a full export with ``since``: every entry at or after it."""
    levels = MerkleLevels([entry_leaf_hash(e) for e in entries])
    return {
        "case": None,
        "tree_size": len(entries),
        "entries": [
            {"index": e.index, "proof": [h.hex() for h in levels.inclusion_proof(e.index)]}
            for e in entries
            if e.at >= since
        ],
    }


async def export_bundle(
    store: Store,
    *,
    participant: str,
    key_name: str | None = None,
    out: str | Path,
    case: str | None = None,
    since: datetime | None = None,
    now: datetime,
) -> Path:
    """Export the node's committed log as a bundle directory (see the module docstring).

    The plan: 1. the checkpoints, the latest one's size n; 2. entries 0 to n - 1, each
    re-hashed against its stored leaf hash; 3. the cosignatures of those checkpoints;
    4. the bundle written all at once (:func:`broker.audit.bundle.write_bundle`).
    Nothing is signed or verified here beyond step 2: the caller issues a checkpoint
    first if it wants the newest records in (:func:`broker.audit.issuer.issue_checkpoint`),
    and the auditor verifies the result.

    Args:
        store: the node's store.
        participant: the node's participant id.
        key_name: the key name its checkpoints are signed under; None for the name on
            the latest checkpoint's own signature.
        out: the bundle directory to create (it must not exist).
        case: export only this case's entries, with inclusion proofs.
        since: export (a case's entries), or prove (a full export's entries), only
            what was recorded at or after this time.
        now: the export time (``exported_at``).

    Returns:
        the bundle directory.

    Raises:
        AuditBundle: the log has no checkpoint yet (nothing signed to export).
        AuditTampered: a record was altered in the database (the message names the
            first entry found).
        CaseUnknown: ``case`` has no entry the latest checkpoint covers (at or after
            ``since``).
        FileExistsError: ``out`` exists.
        StoreError: the store failed.
        ValueError: ``since`` is not timezone-aware.
    """
    if since is not None and since.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    # 1. The checkpoints: the latest fixes what is committed.
    checkpoints = await _committed(store)
    if not checkpoints:
        raise AuditBundle("the log has no signed checkpoint yet: nothing is committed to export")
    size, latest = checkpoints[-1]
    # 2. The entries it covers, each re-hashed.
    entries = await _read_entries(store, size)
    proofs: dict[str, Any] | None = None
    exported: Sequence[AuditEntry] = entries
    if case is not None:
        proofs = case_proofs(entries, case, size)
        if since is not None:
            proofs["entries"] = [p for p in proofs["entries"] if entries[p["index"]].at >= since]
        if not proofs["entries"]:
            when = "" if since is None else f" recorded since {wire_time(since)}"
            raise CaseUnknown(f"no entry of case {case}{when} is covered by the latest checkpoint")
        exported = [entries[p["index"]] for p in proofs["entries"]]
        checkpoints = [(size, latest)]  # the one the proofs lead to
    elif since is not None:
        proofs = _period_proofs(entries, since)
    # 3. The witnesses' cosignatures of the exported checkpoints.
    sizes = [s for s, _ in checkpoints]
    cosignatures = await _cosignatures(store, sizes)
    # 4. Written all at once.
    return write_bundle(
        out,
        participant=participant,
        key_name=key_name if key_name is not None else _key_name(latest),
        entries=exported,
        checkpoints=[note for _, note in checkpoints],
        cosignatures=cosignatures,
        proofs=proofs,
        exported_at=now,
        since=since,
    )


async def verify_live(
    store: Store,
    *,
    participant: str,
    verifiers: Mapping[str, ed25519.Ed25519PublicKey],
    witnesses: Mapping[str, ed25519.Ed25519PublicKey],
    now: datetime,
) -> LiveReport:
    """Verify the node's own log where it lies, without exporting it.

    The plan (the first failure raises):

    1. The checkpoints, then the tree head (read in that order: the log only grows,
       so every checkpoint read is within the head).
    2. Every record up to the head, re-hashed against its stored leaf hash.
    3. The root recomputed from those leaves is the saved tree head's root.
    4. The committed part (up to the latest checkpoint), its checkpoints and their
       cosignatures verified exactly as an auditor verifies a bundle
       (:func:`broker.audit.bundle.verify_bundle`, on a temporary export): every
       checkpoint signed by ``verifiers`` and of the root of its entries, consecutive
       ones consistent, every cosignature valid under ``witnesses``.

    Args:
        store: the node's store.
        participant: the node's participant id.
        verifiers: key name → public key of the node's checkpoint keys.
        witnesses: key name → public key of the witnesses.
        now: the time of the check (the temporary export's ``exported_at``).

    Returns:
        what was verified.

    Raises:
        AuditTampered: a record altered, missing or out of place, a tree head that is
            not the root of the records, or entries a checkpoint does not commit to
            (the message names the first bad entry).
        AuditSignature, AuditFork, AuditBundle: as :func:`broker.audit.bundle.verify_bundle`.
        StoreError: the store failed.
    """
    # 1. Checkpoints, then the tree head.
    checkpoints = await _committed(store)
    head_size, state = await store.audit_head()
    latest = checkpoints[-1][0] if checkpoints else 0
    if latest > head_size:
        raise AuditTampered(
            f"entry {head_size}: missing; a checkpoint covers {latest} entries "
            f"and the tree head only {head_size}"
        )
    # 2. Every record, re-hashed.
    entries = await _read_entries(store, head_size)
    # 3. The saved tree head is the root of those records.
    levels = MerkleLevels([entry_leaf_hash(e) for e in entries])
    head_root = MerkleTree.from_state(TreeState.from_bytes(state)).root()
    if levels.root() != head_root:
        raise AuditTampered(
            f"the saved tree head (size {head_size}) is not the root of the stored records "
            "(the database was altered)"
        )
    # 4. The committed part, as an auditor would check it.
    cosigned: Mapping[str, tuple[int, ...]] = MappingProxyType({})
    if checkpoints:
        with tempfile.TemporaryDirectory(prefix="evb-audit-") as scratch:
            bundle = write_bundle(
                Path(scratch) / "bundle",
                participant=participant,
                key_name=_key_name(checkpoints[-1][1]),
                entries=entries[:latest],
                checkpoints=[note for _, note in checkpoints],
                cosignatures=await _cosignatures(store, [s for s, _ in checkpoints]),
                exported_at=now,
            )
            report = verify_bundle(bundle, verifiers=verifiers, witnesses=witnesses)
        cosigned = report.cosignatures
    return LiveReport(
        entries=head_size,
        tree_size=latest,
        root_hex=head_root.hex(),
        checkpoints=tuple(s for s, _ in checkpoints),
        cosignatures=cosigned,
        uncommitted=head_size - latest,
    )


# -- the replay against the live node ---------------------------------------------------


@dataclass(frozen=True)
class Disagreement:
    """Where a replayed log and the live node's records differ.

    Attributes:
        case_id: the case.
        what: ``case`` (one side has no such case), ``state``, ``deadline <rule>``
            (one side has no such deadline), ``deadline <rule> state`` or
            ``deadline <rule> due_at``.
        log: what the replayed log says (``-`` for nothing).
        live: what the live node's store says (``-`` for nothing).
    """

    case_id: str
    what: str
    log: str
    live: str


def _due(value: datetime | None) -> str:
    return "-" if value is None else wire_time(value)


def _compare_deadlines(case: CaseReplay, live: Sequence[StoredDeadline]) -> list[Disagreement]:
    found: list[Disagreement] = []
    logged = {d.rule: d for d in case.deadlines}
    kept = {d.rule: d for d in live}
    for rule in sorted(logged.keys() | kept.keys()):
        mine, theirs = logged.get(rule), kept.get(rule)
        if mine is None or theirs is None:
            found.append(
                Disagreement(
                    case.case_id,
                    f"deadline {rule}",
                    "-" if mine is None else mine.state,
                    "-" if theirs is None else theirs.state,
                )
            )
            continue
        if mine.state != theirs.state and not (
            mine.state == "pending" and theirs.state in _UNLOGGED_STATES
        ):
            found.append(
                Disagreement(case.case_id, f"deadline {rule} state", mine.state, theirs.state)
            )
        if _due(mine.due_at) != _due(theirs.due_at):
            found.append(
                Disagreement(
                    case.case_id, f"deadline {rule} due_at", _due(mine.due_at), _due(theirs.due_at)
                )
            )
    return found


async def _live_records(store: Store, case: str | None) -> dict[str, CaseRecord]:
    if case is not None:
        found = await store.get_case(case)
        return {} if found is None else {case: found[0]}
    records: dict[str, CaseRecord] = {}
    after: str | None = None
    while True:
        page = await store.case_histories(after=after, limit=PAGE)
        records.update((record.case_id, record) for record, _ in page)
        if len(page) < PAGE:
            return records
        after = page[-1][0].case_id


async def compare_with_live(
    store: Store, replayed: Replay, *, case: str | None = None
) -> list[Disagreement]:
    """Compare a replayed log with the live node's case records and deadlines.

    Compared per case: the state (the log's last ``case.state`` against the case
    record), and per deadline rule its state and due time. The log does not record a
    deadline being cancelled or paused, so a live ``cancelled`` or ``paused`` deadline
    agrees with a logged ``pending`` one. A case the log knows no state of and the
    store has no record of is not compared (a message outside any lifecycle).

    Args:
        store: the live node's store (the node whose log was replayed).
        replayed: the replay (:func:`broker.audit.replay.replay`) of its bundle.
        case: compare only this case (a one-case bundle's).

    Returns:
        the disagreements, by case id; empty when the two agree. A bundle older than
        the store disagrees wherever a case moved on since: compare a fresh export.

    Raises:
        StoreError: the store failed.
    """
    records = await _live_records(store, case)
    cases = {cid: c for cid, c in replayed.cases.items() if case is None or cid == case}
    if case is None:
        deadlines = await store.list_deadlines(pending_only=False, limit=2**31 - 1)
    else:
        deadlines = await store.list_deadlines(case_id=case, pending_only=False, limit=2**31 - 1)
    by_case: dict[str, list[StoredDeadline]] = {}
    for deadline in deadlines:
        by_case.setdefault(deadline.case_id, []).append(deadline)
    found: list[Disagreement] = []
    for case_id in sorted(cases.keys() | records.keys()):
        mine, theirs = cases.get(case_id), records.get(case_id)
        if theirs is None and (mine is None or mine.state is None):
            continue
        if mine is None or theirs is None:
            found.append(
                Disagreement(
                    case_id,
                    "case",
                    "-" if mine is None else (mine.state or "-"),
                    "-" if theirs is None else theirs.state,
                )
            )
            continue
        if mine.state != theirs.state:
            found.append(Disagreement(case_id, "state", mine.state or "-", theirs.state))
        found += _compare_deadlines(mine, by_case.get(case_id, []))
    return found
