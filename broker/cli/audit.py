"""``evb audit export|verify|replay|report``: a node's audit log, exported and checked.

Thin: :mod:`broker.audit.export` reads the node's store, :mod:`broker.audit.bundle`
verifies, :mod:`broker.audit.replay` and :mod:`broker.audit.report` rebuild and count.
``export`` and ``verify --live`` need the node (``--config``); ``verify``, ``replay``
and ``report`` of a bundle need only the bundle and the trust directory
(``--directory FILE``), so an auditor can run them without a node. A verification
failure prints one ``CODE<TAB><TAB>message`` line naming the first bad entry or file
and exits 1; nothing else is printed of the entries (ids and states, never payloads).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ed25519

from broker import crypto
from broker.audit.bundle import (
    BundleReport,
    read_bundle_entries,
    verify_and_read,
    verify_bundle,
)
from broker.audit.checkpoint import MAX_NOTE_SIZE
from broker.audit.export import LiveReport, compare_with_live, export_bundle, verify_live
from broker.audit.issuer import checkpoint_verifiers, issue_checkpoint
from broker.audit.replay import Replay, replay
from broker.audit.report import compliance_report, to_csv, to_html, to_json
from broker.cli.common import EXIT_OK, EXIT_REFUSED, Commands, Usage, print_refusal, read_input
from broker.cli.node import _config, _print_json, _run, _store, _table, _time, _with_config
from broker.clock import SystemClock, wire_time
from broker.errors import AuditBundle, AuditError, CaseUnknown
from broker.files import atomic_write
from broker.identity import load_directory, load_identity
from broker.ids import is_participant_id
from broker.trust.directory import DEFAULT_MAX_BYTES, TrustDirectory, trusted_directory

__all__ = ["register"]

_MAX_META_SIZE: Final = 65_536
_RENDERERS: Final = {"html": to_html, "json": to_json, "csv": to_csv}

Verifiers = dict[str, ed25519.Ed25519PublicKey]


# -- keys, times, the bundle's claim -----------------------------------------------------


def _trusted_keys(directory: TrustDirectory, participant: str) -> tuple[Verifiers, Verifiers]:
    """The node's checkpoint keys and the witnesses' keys, by kid (the note key names).

    Every Ed25519 signature key counts, expired or retired ones too (old checkpoints
    were signed with them), except keys revoked as compromised.

    Raises:
        KeyUnknown: the participant is not in the directory.
    """
    directory.participant(participant)
    node: dict[str, bytes] = {}
    witnesses: dict[str, bytes] = {}
    for listed in directory.participants:
        for key in listed.keys:
            usable = key.use == "sig" and key.alg == crypto.SIG_ED25519
            if usable and key.revocation_reason != "compromise":
                (node if listed.id == participant else witnesses)[key.kid] = key.raw
    return checkpoint_verifiers(node), checkpoint_verifiers(witnesses)


def _parse_time(text: str, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text if "T" in text else text + "T00:00:00Z")
    except ValueError as exc:
        raise Usage(f"{option} must be an ISO 8601 date or date-time") from exc
    if value.tzinfo is None:
        raise Usage(f"{option} needs a time zone (e.g. Z)")
    return value


def _bundle_claims(bundle: str) -> tuple[str, str | None]:
    """The participant and case ``bundle.json`` claims (verification holds it to them).

    Raises:
        AuditBundle: no readable bundle.json naming a participant.
    """
    path = Path(bundle) / "bundle.json"
    if not path.is_file():
        raise AuditBundle(f"{bundle}: not a bundle directory (no bundle.json)")
    data = read_input(str(path), _MAX_META_SIZE)
    if len(data) > _MAX_META_SIZE:
        raise AuditBundle(f"bundle.json: larger than {_MAX_META_SIZE} bytes")
    try:
        meta = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AuditBundle("bundle.json: not JSON") from exc
    participant = meta.get("participant") if isinstance(meta, dict) else None
    if not (isinstance(participant, str) and is_participant_id(participant)):
        raise AuditBundle("bundle.json: no participant id")
    case = meta.get("case")
    return participant, case if isinstance(case, str) else None


def _has_config(args: argparse.Namespace) -> bool:
    return bool(args.config or os.environ.get("EVB_CONFIG"))


def _auditor_directory(args: argparse.Namespace) -> TrustDirectory:
    """The trust directory: ``--directory FILE``, or the node's (``--config``).

    A directory file has its root signatures checked, not its expiry: the log under
    audit may be older than the directory's validity.
    """
    if args.directory is not None:
        return trusted_directory(read_input(args.directory, DEFAULT_MAX_BYTES))
    if not _has_config(args):
        raise Usage("give --directory FILE (the trust directory) or --config FILE (a node)")
    return load_directory(_config(args), SystemClock())


def _trust(args: argparse.Namespace, bundle: str) -> tuple[Verifiers, Verifiers, list[bytes]]:
    """The node's and the witnesses' keys for a bundle, and the auditor's known checkpoints."""
    participant, _ = _bundle_claims(bundle)
    verifiers, witnesses = _trusted_keys(_auditor_directory(args), participant)
    known = [read_input(note, MAX_NOTE_SIZE) for note in getattr(args, "known", None) or ()]
    return verifiers, witnesses, known


def _verify(args: argparse.Namespace, bundle: str) -> BundleReport:
    """Verify a bundle against the trust directory (and the auditor's known checkpoints).

    Raises:
        AuditError: it does not verify.
    """
    verifiers, witnesses, known = _trust(args, bundle)
    return verify_bundle(bundle, verifiers=verifiers, witnesses=witnesses, known=known)


def _cosigned(cosignatures: Mapping[str, Sequence[int]]) -> str:
    if not cosignatures:
        return "no cosignature"
    return "cosigned by " + ", ".join(f"{w} ({len(s)})" for w, s in sorted(cosignatures.items()))


def _summary(report: BundleReport) -> dict[str, Any]:
    meta = report.meta
    return {
        "participant": meta.participant,
        "origin": meta.origin,
        "case": meta.case,
        "since": meta.since,
        "exported_at": meta.exported_at,
        "entries": report.entries,
        "proofs": report.proofs,
        "checkpoints": list(report.checkpoints),
        "tree_size": report.tree_size,
        "root": report.root_hex,
        "cosignatures": {w: list(s) for w, s in report.cosignatures.items()},
        "known": report.known,
    }


def _describe(report: BundleReport) -> str:
    meta = report.meta
    what = f"case {meta.case} of {meta.origin}" if meta.case else meta.origin
    proofs = f", {report.proofs} inclusion proofs" if report.proofs else ""
    return (
        f"{what}: {report.entries} entries{proofs}, {len(report.checkpoints)} checkpoint(s), "
        f"latest of size {report.tree_size} root {report.root_hex}, "
        f"{_cosigned(report.cosignatures)}"
    )


# -- export ------------------------------------------------------------------------------


def _cmd_export(args: argparse.Namespace) -> int:
    config = _config(args)
    clock = SystemClock()
    since = _parse_time(args.since, "--since") if args.since else None
    out = Path(args.output)
    if out.exists() or out.is_symlink():
        raise Usage(f"{out} exists")
    # Signing a fresh checkpoint needs the node's private key; --no-checkpoint needs
    # only its trust directory (to check the bundle written).
    identity = None if args.no_checkpoint else load_identity(config, clock)
    directory = identity.directory if identity else load_directory(config, clock)
    verifiers, witnesses = _trusted_keys(directory, config.participant)

    async def main() -> int:
        async with _store(config) as store:
            issued = None
            if identity is not None:
                issued = await issue_checkpoint(store, config.participant, identity.keyset.sig)
            try:
                path = await export_bundle(
                    store, participant=config.participant, out=out, case=args.case,
                    since=since, now=clock.now(),
                )  # fmt: skip
            except (AuditError, CaseUnknown) as exc:
                return print_refusal(exc)
            except FileExistsError as exc:
                raise Usage(f"{out} exists") from exc
            except OSError as exc:
                raise Usage(f"cannot write {out}: {exc.strerror or exc}") from exc
            head, _ = await store.audit_head()
        # The node checks what it hands out, as the auditor will.
        try:
            report = verify_bundle(path, verifiers=verifiers, witnesses=witnesses)
        except AuditError as exc:
            print_refusal(exc)
            print(f"evb: the bundle written does not verify; kept as evidence: {path}",
                  file=sys.stderr)  # fmt: skip
            return EXIT_REFUSED
        uncommitted = head - report.tree_size
        if args.json:
            _print_json(
                {"bundle": str(path), "issued_checkpoint": issued, "uncommitted": uncommitted,
                 **_summary(report)}
            )  # fmt: skip
            return EXIT_OK
        print(f"exported {path}")
        print(f"  {_describe(report)}")
        if issued is not None:
            print(f"  checkpoint of size {issued} issued for this export")
        if not report.cosignatures:
            print("  no witness has cosigned it yet: once they have (the running node sends")
            print("  checkpoints to its witnesses), export again with --no-checkpoint")
        if uncommitted > 0:
            print(f"  {uncommitted} later entries are not yet covered by a checkpoint: left out")
        return EXIT_OK

    return _run(main)


# -- verify ------------------------------------------------------------------------------


def _print_live(report: LiveReport, as_json: bool) -> None:
    if as_json:
        _print_json(
            {"live": True, "entries": report.entries, "tree_size": report.tree_size,
             "root": report.root_hex, "checkpoints": list(report.checkpoints),
             "cosignatures": {w: list(s) for w, s in report.cosignatures.items()},
             "uncommitted": report.uncommitted}
        )  # fmt: skip
        return
    print(f"valid: live log, {report.entries} entries, tree head root {report.root_hex}")
    if report.checkpoints:
        print(f"  {len(report.checkpoints)} checkpoint(s), latest of size {report.tree_size}, "
              f"{_cosigned(report.cosignatures)}")  # fmt: skip
    else:
        print("  no checkpoint yet: nothing signed to check the records against")
    if report.uncommitted:
        print(f"  {report.uncommitted} entries after the latest checkpoint (tree head only)")


def _cmd_verify(args: argparse.Namespace) -> int:
    if args.live == (args.bundle is not None):
        raise Usage("give either BUNDLE or --live")
    if not args.live:
        try:
            report = _verify(args, args.bundle)
        except AuditError as exc:
            return print_refusal(exc)
        if args.json:
            _print_json({"valid": True, **_summary(report)})
        else:
            print(f"valid: {_describe(report)}")
        return EXIT_OK
    config = _config(args)
    clock = SystemClock()
    directory = (
        trusted_directory(read_input(args.directory, DEFAULT_MAX_BYTES))
        if args.directory is not None
        else load_directory(config, clock)
    )
    verifiers, witnesses = _trusted_keys(directory, config.participant)

    async def main() -> int:
        async with _store(config) as store:
            try:
                live = await verify_live(
                    store, participant=config.participant, verifiers=verifiers,
                    witnesses=witnesses, now=clock.now(),
                )  # fmt: skip
            except AuditError as exc:
                return print_refusal(exc)
        _print_live(live, args.json)
        return EXIT_OK

    return _run(main)


# -- replay and report -------------------------------------------------------------------


def _checked_entries(args: argparse.Namespace) -> tuple[str, str | None, Replay]:
    """Verify the bundle (unless --no-verify) and replay it: participant, case, replay.

    Raises:
        AuditError: the bundle does not verify, or an entry does not parse.
    """
    participant, case = _bundle_claims(args.bundle)
    if args.no_verify:
        return participant, case, replay(read_bundle_entries(args.bundle))
    # The entries replayed are the lines verified, parsed once (not read again).
    verifiers, witnesses, known = _trust(args, args.bundle)
    _, entries = verify_and_read(args.bundle, verifiers=verifiers, witnesses=witnesses, known=known)
    return participant, case, replay(entries)


def _case_json(replayed: Replay) -> list[dict[str, Any]]:
    return [
        {
            "case_id": c.case_id, "instrument": c.instrument, "state": c.state, "role": c.role,
            "counterpart": c.counterpart, "opened_at": c.opened_at, "updated_at": c.updated_at,
            "refusals": len(c.refusals), "messages": len(c.messages),
            "deadlines": [
                {"rule": d.rule, "step": d.step, "owed_by": d.owed_by, "state": d.state,
                 "due_at": d.due_at, "met_at": d.met_at, "reminders": d.reminders}
                for d in c.deadlines
            ],
        }
        for c in replayed.cases.values()
    ]  # fmt: skip


def _print_replay(participant: str, replayed: Replay, verified: bool) -> None:
    check = "verified" if verified else "NOT VERIFIED (--no-verify)"
    print(
        f"log of {participant}: {replayed.entries} entries, {len(replayed.cases)} case(s), {check}"
    )
    cases = list(replayed.cases.values())
    _table(
        [[c.case_id, c.instrument or "-", c.state or "-", c.role or "-", c.counterpart or "-",
          _time(c.updated_at)] for c in cases],
        ["CASE", "INSTRUMENT", "STATE", "ROLE", "COUNTERPART", "UPDATED"],
    )  # fmt: skip
    rows = [
        [c.case_id, d.rule, d.state, _time(d.due_at), d.owed_by or "-", _time(d.met_at)]
        for c in cases
        for d in c.deadlines
    ]
    if rows:
        print()
        _table(rows, ["CASE", "DEADLINE", "STATE", "DUE", "OWED_BY", "MET"])
    for event, count in replayed.unknown_events.items():
        print(f"  ({count} entries of event {event} not interpreted)")


def _cmd_replay(args: argparse.Namespace) -> int:
    if args.against_live and not _has_config(args):
        raise Usage("--against-live needs the node: --config FILE")
    try:
        participant, case, replayed = _checked_entries(args)
    except AuditError as exc:
        return print_refusal(exc)
    verified = not args.no_verify
    if not args.against_live:
        if args.json:
            _print_json({"participant": participant, "verified": verified,
                         "entries": replayed.entries, "cases": _case_json(replayed),
                         "unknown_events": dict(replayed.unknown_events)})  # fmt: skip
        else:
            _print_replay(participant, replayed, verified)
        return EXIT_OK
    config = _config(args)
    if config.participant != participant:
        raise Usage(f"the bundle is {participant}'s log, the node is {config.participant}")

    async def main() -> int:
        async with _store(config) as store:
            found = await compare_with_live(store, replayed, case=case)
        if args.json:
            _print_json({"participant": participant, "verified": verified,
                         "entries": replayed.entries, "cases": _case_json(replayed),
                         "unknown_events": dict(replayed.unknown_events),
                         "disagreements": found})  # fmt: skip
        else:
            _print_replay(participant, replayed, verified)
            print()
            for d in found:
                print(f"MISMATCH\t{d.case_id}\t{d.what}\tlog={d.log}\tlive={d.live}")
            if not found:
                print(f"agrees with the live node: {len(replayed.cases)} case(s) compared")
        return EXIT_REFUSED if found else EXIT_OK

    return _run(main)


def _cmd_report(args: argparse.Namespace) -> int:
    try:
        participant, _, replayed = _checked_entries(args)
    except AuditError as exc:
        return print_refusal(exc)
    verified = not args.no_verify
    now = SystemClock().now()
    text = _RENDERERS[args.format](compliance_report(replayed, now=now, participant=participant))
    if args.output == "-":
        sys.stdout.write(text)
        return EXIT_OK
    try:
        atomic_write(Path(args.output), text.encode("utf-8"))
    except OSError as exc:
        raise Usage(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    check = "" if verified else " (bundle NOT VERIFIED: --no-verify)"
    print(
        f"wrote {args.output}: {args.format} report of {participant}, {len(replayed.cases)} "
        f"case(s), {replayed.entries} entries, as of {wire_time(now)}{check}"
    )
    return EXIT_OK


# -- registration ------------------------------------------------------------------------


def _with_trust(parser: argparse.ArgumentParser, json_flag: bool = True) -> None:
    _with_config(parser, json_flag)
    parser.add_argument(
        "--directory", metavar="FILE", help="the trust directory (an auditor without a node)"
    )


def register(commands: Commands) -> None:
    """Add ``evb audit`` and its sub-commands to ``evb``."""
    audit = commands.add_parser("audit", help="export, verify, replay and report the audit log")
    sub = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")

    export = sub.add_parser("export", help="write the node's committed log as a bundle")
    _with_config(export)
    export.add_argument("-o", "--output", required=True, metavar="BUNDLE", help="a new directory")
    export.add_argument("--case", help="only this case's entries, with inclusion proofs")
    export.add_argument(
        "--since", metavar="TIME", help="prove (with --case: export) entries from this time on"
    )
    export.add_argument(
        "--no-checkpoint",
        action="store_true",
        help="do not sign a fresh checkpoint first (export up to the latest kept one)",
    )
    export.set_defaults(func=_cmd_export)

    verify = sub.add_parser("verify", help="verify a bundle, or the node's live log")
    _with_trust(verify)
    verify.add_argument("bundle", nargs="?", metavar="BUNDLE")
    verify.add_argument("--live", action="store_true", help="the node's own store (--config)")
    verify.add_argument(
        "--known",
        action="append",
        metavar="NOTE",
        help="a checkpoint of this log you hold already (repeatable)",
    )
    verify.set_defaults(func=_cmd_verify)

    replay_cmd = sub.add_parser("replay", help="rebuild every case from a bundle")
    _with_trust(replay_cmd)
    replay_cmd.add_argument("bundle", metavar="BUNDLE")
    replay_cmd.add_argument(
        "--against-live", action="store_true", help="compare with the node's store (--config)"
    )
    replay_cmd.add_argument("--no-verify", action="store_true", help="replay without verifying")
    replay_cmd.set_defaults(func=_cmd_replay)

    report = sub.add_parser("report", help="compliance figures of a bundle")
    _with_trust(report, json_flag=False)
    report.add_argument("bundle", metavar="BUNDLE")
    report.add_argument("--format", choices=sorted(_RENDERERS), required=True)
    report.add_argument("-o", "--output", required=True, metavar="OUT", help="the file (- stdout)")
    report.add_argument("--no-verify", action="store_true", help="report without verifying")
    report.set_defaults(func=_cmd_report)
