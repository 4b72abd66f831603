"""Directories for the trust tests, built from keys generated at test time.

Nothing here is committed key material: every key pair is made when the tests run.
A :class:`Listing` stands in for an ``ID.pub.json`` with chosen validity windows.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from broker import crypto
from broker.canonical import canonical
from broker.forms.directory import DirectoryDocument, Role
from broker.trust import (
    add_participant,
    dump_directory,
    init_directory,
    parse_directory,
    sign_directory,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Validity:
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True)
class Listing:
    """What ``ID.pub.json`` holds (a :class:`broker.trust.KeyListing`)."""

    participant: str
    suite: Literal["classic", "hybrid"]
    keys: tuple[tuple[crypto.PublicKey, Validity], ...]


@dataclass(frozen=True)
class Network:
    """Private keys of the test network, by name."""

    roots: dict[str, crypto.SigningKey]
    signing: dict[str, crypto.SigningKey]
    decryption: dict[str, crypto.DecryptionKey]

    def root_keys(self, *names: str) -> list[crypto.PublicKey]:
        return [self.roots[name].public() for name in names]


@functools.cache
def network() -> Network:
    """Generate the keys once per test session."""
    roots = {name: crypto.generate_signing_key(name) for name in ("root1", "root2", "root3")}
    roots |= {name: crypto.generate_signing_key(name) for name in ("new1", "new2")}
    signing = {
        "AT.247/sig": crypto.generate_signing_key("AT.247"),
        "AT.247/sig-old": crypto.generate_signing_key("AT.247"),
        "AT.247/sig-stolen": crypto.generate_signing_key("AT.247"),
        "AT.247/seal": crypto.generate_signing_key("AT.247", "seal"),
        "DE.CA/sig": crypto.generate_signing_key("DE.CA"),
        "DE.JUD/sig": crypto.generate_signing_key("DE.JUD"),
        "DE.JUD/sig-pq": crypto.generate_signing_key("DE.JUD", "sig", crypto.SIG_MLDSA65),
        "ISP.mailhost/sig": crypto.generate_signing_key("ISP.mailhost"),
    }
    decryption = {
        "AT.247/enc": crypto.generate_decryption_key("AT.247"),
        "AT.247/enc-old": crypto.generate_decryption_key("AT.247"),
        "DE.CA/enc": crypto.generate_decryption_key("DE.CA"),
        "DE.JUD/enc": crypto.generate_decryption_key("DE.JUD", crypto.ENC_HYBRID),
        "DE.JUD/enc-classic": crypto.generate_decryption_key("DE.JUD"),
        "ISP.mailhost/enc": crypto.generate_decryption_key("ISP.mailhost"),
    }
    return Network(roots, signing, decryption)


def window(start: timedelta, end: timedelta) -> Validity:
    return Validity(T0 + start, T0 + end)


YEAR = window(-30 * DAY, 365 * DAY)


def listings() -> list[tuple[Listing, Role, str]]:
    """The participants of the base directory: (listing, role, country)."""
    net = network()
    return [
        (
            Listing(
                "AT.247",
                "classic",
                (
                    (net.signing["AT.247/sig-old"].public(), window(-400 * DAY, -DAY)),
                    (net.signing["AT.247/sig"].public(), YEAR),
                    (net.signing["AT.247/sig-stolen"].public(), YEAR),
                    (net.signing["AT.247/seal"].public(), window(10 * DAY, 365 * DAY)),
                    (net.decryption["AT.247/enc-old"].public(), window(-400 * DAY, 100 * DAY)),
                    (net.decryption["AT.247/enc"].public(), window(10 * DAY, 365 * DAY)),
                ),
            ),
            "contact_point",
            "AT",
        ),
        (
            Listing(
                "DE.CA",
                "classic",
                (
                    (net.signing["DE.CA/sig"].public(), YEAR),
                    (net.decryption["DE.CA/enc"].public(), YEAR),
                ),
            ),
            "central_authority",
            "DE",
        ),
        (
            Listing(
                "DE.JUD",
                "hybrid",
                (
                    (net.signing["DE.JUD/sig"].public(), YEAR),
                    (net.signing["DE.JUD/sig-pq"].public(), YEAR),
                    (net.decryption["DE.JUD/enc-classic"].public(), YEAR),
                    (net.decryption["DE.JUD/enc"].public(), YEAR),
                ),
            ),
            "judicial_authority",
            "DE",
        ),
        (
            Listing(
                "ISP.mailhost",
                "classic",
                (
                    (net.signing["ISP.mailhost/sig"].public(), YEAR),
                    (net.decryption["ISP.mailhost/enc"].public(), YEAR),
                ),
            ),
            "service_provider",
            "IE",
        ),
    ]


@functools.cache
def _base_json() -> str:
    net = network()
    doc = init_directory(net.root_keys("root1", "root2", "root3"), 2, 365 * DAY, T0 - 2 * DAY)
    for listing, role, country in listings():
        doc = add_participant(doc, listing, role, country, now=T0 - DAY)
    return json.dumps(doc.to_json_obj())


def base() -> DirectoryDocument:
    """The unsigned base directory: roots 1-3, threshold 2, four participants."""
    return parse_directory(_base_json().encode())


def signed(doc: DirectoryDocument, *roots: str) -> DirectoryDocument:
    """Sign with the named root keys, in order."""
    for name in roots:
        doc = sign_directory(doc, network().roots[name])
    return doc


def raw(doc: DirectoryDocument) -> bytes:
    return dump_directory(doc)


def edit(doc: DirectoryDocument, change: Callable[[dict[str, Any]], None]) -> bytes:
    """Change the JSON of a document (after signing: a tampered file)."""
    data = doc.to_json_obj()
    change(data)
    return json.dumps(data).encode()


def resign(
    doc: DirectoryDocument, change: Callable[[dict[str, Any]], None], roots: Sequence[str]
) -> DirectoryDocument:
    """Change a document's JSON, then sign it properly (each case fails only its target)."""
    data = doc.to_json_obj()
    change(data)
    data["signatures"] = []
    return signed(parse_directory(json.dumps(data).encode()), *roots)


def sign_json(
    doc: DirectoryDocument, change: Callable[[dict[str, Any]], None], roots: Sequence[str]
) -> bytes:
    """Change a document's JSON and sign the result by hand, valid or not (a hostile signer)."""
    data = doc.to_json_obj()
    change(data)
    data.pop("signatures")
    message = canonical(data)
    keys = [network().roots[name] for name in roots]
    data["signatures"] = [
        {"kid": key.kid, "value": crypto.b64u_encode(key.sign(message))} for key in keys
    ]
    return json.dumps(data).encode()


def signature(key: crypto.SigningKey, doc: DirectoryDocument) -> dict[str, str]:
    """A signature entry of ``key`` over ``doc`` (for hand-made signature lists)."""
    value = key.sign(canonical(doc.unsigned()))
    return {"kid": key.kid, "value": crypto.b64u_encode(value)}
