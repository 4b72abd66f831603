"""The trust directory: who is in the network, their keys, and who may send what.

* :mod:`broker.trust.directory` — verify a directory version (root signature
  threshold, TUF-style rotation, rollback, expiry), judge keys at a time, and edit
  and sign directory documents;
* :mod:`broker.trust.policy` — the authorisation policy and the default one.

The document itself is the catalogue type ``trust.directory``
(:mod:`broker.forms.directory`). Everything here is pure: no file or network I/O;
:mod:`broker.keys` and the ``evb directory`` commands read and write files.
"""

from __future__ import annotations

from broker.trust.directory import (
    DEFAULT_MAX_BYTES,
    KeyListing,
    TrustDirectory,
    add_participant,
    default_routing,
    dump_directory,
    init_directory,
    parse_directory,
    revoke_key,
    set_policy,
    set_roots,
    sign_directory,
    trusted_directory,
    verify_directory,
)
from broker.trust.policy import check_route, default_policy, matches, parse_policy, unknown_types

__all__ = [
    "DEFAULT_MAX_BYTES",
    "KeyListing",
    "TrustDirectory",
    "add_participant",
    "check_route",
    "default_policy",
    "default_routing",
    "dump_directory",
    "init_directory",
    "matches",
    "parse_directory",
    "parse_policy",
    "revoke_key",
    "set_policy",
    "set_roots",
    "sign_directory",
    "trusted_directory",
    "unknown_types",
    "verify_directory",
]
