#!/usr/bin/env python3
"""Check an evidence-broker audit bundle without evidence-broker (see docs/audit.md).

Usage: python3 verify_bundle.py BUNDLE PUBLIC_KEY

PUBLIC_KEY is the node's Ed25519 signature key, the base64url (or base64) of its 32 raw
bytes: the "public" member of its "sig" key in the trust directory. Needs Python 3.10+
and the `cryptography` package; nothing else. For a full bundle (not one case) it:

1. hashes each line of entries.jsonl (without its newline) as an RFC 9162 leaf,
   SHA-256(0x00 || line), and computes the tree's root, nodes SHA-256(0x01 || l || r);
2. reads the latest checkpoint (checkpoints/<n>.note, n largest): origin
   evb/<participant>, tree size n (= the number of entries), the root of step 1;
3. checks its C2SP signed-note signature: the line "— <key name> <base64(id || sig)>"
   with bundle.json's key name, key id SHA-256(name || 0x0A || 0x01 || key)[:4], and an
   Ed25519 signature over the note's text.

It checks less than `evb audit verify` (older checkpoints, witnesses' cosignatures,
strict entry syntax), on purpose: it is short enough to read. Exit 0 OK, 1 FAIL.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def fail(message: str) -> None:
    """Say what failed and exit 1."""
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def root(leaves: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1: the Merkle tree hash of a list of leaf hashes."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):  # the largest power of two smaller than n
        k *= 2
    return hashlib.sha256(b"\x01" + root(leaves[:k]) + root(leaves[k:])).digest()


def b64(text: str) -> bytes:
    """Decode base64url or base64, padded or not."""
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def main(bundle: Path, public_key: bytes) -> None:
    """Check the bundle's entries against its latest checkpoint, signed by public_key."""
    meta = json.loads((bundle / "bundle.json").read_bytes())
    if meta.get("case") is not None:
        fail("a one-case bundle: its entries need inclusion proofs (use evb audit verify)")
    # 1. The root of the entries, from the exact bytes of each line.
    data = (bundle / "entries.jsonl").read_bytes()
    if data and not data.endswith(b"\n"):
        fail("entries.jsonl: the last line has no newline (truncated)")
    lines = data.split(b"\n")[:-1]
    computed = root([hashlib.sha256(b"\x00" + line).digest() for line in lines])
    # 2. The latest checkpoint: its origin, size and root.
    sizes = [int(p.name.removesuffix(".note")) for p in (bundle / "checkpoints").glob("*.note")]
    if not sizes:
        fail("no checkpoint")
    size = max(sizes)
    note = (bundle / "checkpoints" / f"{size}.note").read_bytes().decode("utf-8")
    text, _, signatures = note.rpartition("\n\n")
    body = text + "\n"  # the signed text: origin, size, root hash (and extensions)
    origin, size_line, root_line = body.split("\n")[:3]
    if origin != "evb/" + meta["participant"] or origin != meta["origin"]:
        fail(f"the checkpoint is of log {origin}, not of evb/{meta['participant']}")
    if size_line != str(size) or len(lines) != size:
        fail(f"the checkpoint covers {size_line} entries, the bundle has {len(lines)}")
    if base64.b64decode(root_line, validate=True) != computed:
        fail(f"the root of the entries, {computed.hex()}, is not the checkpoint's root")
    # 3. The node's signature on it.
    name = meta["key_name"]
    key_id = hashlib.sha256(name.encode() + b"\n\x01" + public_key).digest()[:4]
    for line in signatures.splitlines():
        if line.startswith("\u2014 ") and line[2:].split(" ")[0] == name:
            raw = base64.b64decode(line[2:].split(" ")[1], validate=True)
            if raw[:4] != key_id:
                continue  # another key of that name
            try:
                Ed25519PublicKey.from_public_bytes(public_key).verify(raw[4:], body.encode())
            except InvalidSignature:
                fail(f"the signature of {name} on checkpoint {size} does not verify")
            print(f"OK: {size} entries, checkpoint {size} of {origin}, root {computed.hex()}")
            print(f"    signed by {name}")
            return
    fail(f"checkpoint {size} has no signature by {name} with this public key")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(Path(sys.argv[1]), b64(sys.argv[2]))
