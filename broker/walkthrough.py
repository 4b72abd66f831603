"""``make walkthrough``: write, validate and reject a preservation request; seal one envelope.

It runs the real ``evb`` command line (``python -m broker``) step by step, shows each
command and its output, and keeps its files in ``.demo/`` (git-ignored). The last
line is one JSON object summarising the verdicts; the exit status is non-zero if
any verdict differs from what the walkthrough expects, so a test can keep the demo
from rotting.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["main"]

T = "coe.art29.preservation"


class _Walkthrough:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.results: list[tuple[str, bool]] = []

    def evb(
        self, *args: str, stdout_to: Path | None = None, quiet: bool = False
    ) -> subprocess.CompletedProcess[str]:
        shown = "evb " + " ".join(shlex.quote(a) for a in args)
        if stdout_to is not None:
            shown += f" > {stdout_to}"
        print(f"$ {shown}")
        result = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            [sys.executable, "-m", "broker", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if stdout_to is not None:
            stdout_to.write_text(result.stdout)
        elif quiet:
            print(f"    ({len(result.stdout.splitlines())} lines of form)")
        else:
            for line in result.stdout.splitlines():
                print("    " + line.replace("\t", "  "))
        for line in result.stderr.splitlines():
            print("    " + line)
        return result

    def expect(
        self,
        what: str,
        result: subprocess.CompletedProcess[str],
        status: int,
        codes: set[str] | None,
    ) -> None:
        """Record whether the exit status (and, for `validate`, the codes) are as expected."""
        seen = {line.split("\t", 1)[0] for line in result.stdout.splitlines() if "\t" in line}
        ok = result.returncode == status and (codes is None or seen == codes)
        self.results.append((what, ok))
        mark = "as expected" if ok else f"UNEXPECTED (exit {result.returncode}, codes {seen})"
        print(f"  -> {mark}\n")

    def write(self, name: str, doc: Any) -> Path:
        path = self.state / name
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        return path


def _network_entry(participant: str) -> dict[str, Any]:
    network = json.loads(
        Path(__file__).resolve().parent.parent.joinpath("keys", "network.json").read_text()
    )
    entry: dict[str, Any] = next(p for p in network["participants"] if p["id"] == participant)
    return entry


def _envelopes(demo: _Walkthrough, state: Path, draft: Path) -> None:
    print("== 8. Sign and encrypt it for Austria: keys, a signed trust directory, an envelope")
    keys = state / "keys"
    if keys.exists():
        shutil.rmtree(keys)  # demo keys are made fresh every run, never reused or committed
    for participant in ("root1", "DE.247", "AT.247"):
        demo.evb("keys", "generate", participant, "--dir", str(keys / participant))
    directory = state / "directory.json"
    demo.evb("directory", "init", "--root", str(keys / "root1" / "root1.pub.json"),
             "--threshold", "1", "--expires", "P30D", "-o", str(directory))  # fmt: skip
    for participant in ("DE.247", "AT.247"):
        entry = _network_entry(participant)
        demo.evb(
            "directory", "add", str(directory), str(keys / participant / f"{participant}.pub.json"),
            "--role", entry["role"], "--country", entry["country"], "--name", entry["name"],
        )  # fmt: skip
    demo.evb("directory", "sign", str(directory), "--key", str(keys / "root1" / "root1.sig.pem"))
    demo.expect("directory", demo.evb("directory", "verify", str(directory)), 0, None)
    envelope = state / "envelope.json"
    demo.expect(
        "seal",
        demo.evb("seal", "--type", T, "--from", "DE.247", "--to", "AT.247",
                 "--keys", str(keys / "DE.247"), "--directory", str(directory), str(draft),
                 "-o", str(envelope)),
        0, None,
    )  # fmt: skip
    data = json.loads(envelope.read_text())
    print(
        f"    (envelope of {len(envelope.read_bytes())} bytes: header in clear, the form "
        f"HPKE-sealed to {data['payload']['kid']}, signed by {data['sig']['kid']})\n"
    )
    demo.expect("verify", demo.evb("verify", str(envelope), "--directory", str(directory)), 0,
                {"valid"})  # fmt: skip
    print("== 9. Austria opens it: signature, keys, policy, decryption, schema, the issuer's seal")
    opened = demo.evb("open", str(envelope), "--keys", str(keys / "AT.247"),
                      "--directory", str(directory), quiet=True)  # fmt: skip
    same = opened.returncode == 0 and json.loads(opened.stdout) == json.loads(draft.read_text())
    demo.results.append(("open", same))
    print(f"  -> {'the form arrived intact' if same else 'UNEXPECTED'}\n")
    print("== 10. Anyone who alters the envelope on the way is caught")
    data["priority"] = "emergency"
    tampered = demo.write("envelope-tampered.json", data)
    demo.expect("tampered", demo.evb("verify", str(tampered), "--directory", str(directory)), 1,
                {"E_SIG_INVALID"})  # fmt: skip
    demo.expect(
        "wrong recipient",
        demo.evb("open", str(envelope), "--keys", str(keys / "DE.247"),
                 "--directory", str(directory)),
        1, {"E_NOT_RECIPIENT"},
    )  # fmt: skip


def main() -> int:
    """Run the walkthrough; return 0 when every verdict was as expected."""
    state = Path(".demo")
    state.mkdir(exist_ok=True)
    demo = _Walkthrough(state)

    print("== 1. The catalogue: every form the network exchanges, with its legal basis")
    listing = demo.evb("schema", "list")
    demo.expect("schema list", listing, 0, None)

    print("== 2. A German 24/7 contact point drafts an Art 29 preservation request")
    draft = state / "preservation.json"
    demo.evb("form", "template", T, stdout_to=draft)
    doc = json.loads(draft.read_text())
    print(
        f"    ({len(doc['data'])} data items, custodian in {doc['custodian']['country']}, "
        f"{doc['preservation_days']} days)\n"
    )

    print("== 3. Validate it before sending")
    demo.expect("valid request", demo.evb("validate", "--type", T, str(draft)), 0, set())

    print("== 4. A hurried 3 a.m. draft: 30 days (Art 29(7) says at least 60), an e-mail")
    print("      without a domain, a port on an e-mail identifier, the necessity left out")
    hurried = json.loads(draft.read_text())
    hurried["preservation_days"] = 30
    hurried["requesting_authority"]["contact"]["email"] = "poc247@bka"
    hurried["data"][0]["identifiers"][0]["port"] = 25
    del hurried["necessity"]
    demo.expect(
        "hurried draft",
        demo.evb("validate", "--type", T, str(demo.write("hurried.json", hurried))),
        1,
        {"E_SCHEMA"},
    )

    print("== 5. Schema-valid, but the period ends before it starts")
    reversed_period = json.loads(draft.read_text())
    reversed_period["data"][0]["period"] = {
        "from": "2026-03-10T00:00:00Z",
        "to": "2026-03-01T00:00:00Z",
    }
    demo.expect(
        "reversed period",
        demo.evb(
            "validate", "--json", "--type", T, str(demo.write("reversed.json", reversed_period))
        ),
        1,
        set(),  # --json output has no tab-separated lines
    )

    print("== 6. Malformed and oversized input are refused with a code, never a crash")
    broken = state / "broken.json"
    broken.write_text('{"requesting_authority": ')
    demo.expect("malformed", demo.evb("validate", "--type", T, str(broken)), 1, {"E_PARSE"})
    demo.expect(
        "oversized",
        demo.evb("validate", "--type", T, "--max-bytes", "1024", str(draft)),
        1,
        {"E_TOO_LARGE"},
    )

    print("== 7. A European Investigation Order (Annex A) in its XML form")
    eio = state / "eio-annex-a.xml"
    demo.evb("form", "template", "eu.eio.a", "--xml", stdout_to=eio)
    demo.expect("EIO XML", demo.evb("validate", "--type", "eu.eio.a", str(eio)), 0, set())
    body = eio.read_text().split("?>", 1)[1]  # the document without its XML declaration
    attack = state / "eio-xxe.xml"
    attack.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + body
    )
    demo.expect(
        "XXE attempt", demo.evb("validate", "--type", "eu.eio.a", str(attack)), 1, {"E_PARSE"}
    )

    _envelopes(demo, state, draft)

    passed = sum(ok for _, ok in demo.results)
    summary = {
        "demo": "walkthrough",
        "steps": len(demo.results),
        "as_expected": passed,
        "unexpected": [what for what, ok in demo.results if not ok],
    }
    print(json.dumps(summary))
    return 0 if passed == len(demo.results) else 1


if __name__ == "__main__":
    sys.exit(main())
