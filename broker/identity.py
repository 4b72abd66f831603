"""Who a node is: its participant id, its private keys and the trust directory it trusts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from broker import keys
from broker.clock import Clock
from broker.config import NodeConfig
from broker.envelope import Envelope, Priority, seal_envelope
from broker.errors import ConfigError
from broker.files import read_bounded
from broker.forms.base import Form
from broker.keys import KeySet
from broker.trust.directory import TrustDirectory, verify_directory

__all__ = ["Identity", "load_directory", "load_identity"]

_MAX_DIRECTORY_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Identity:
    """Who a node is: its participant id, private keys and the trusted directory."""

    participant: str
    keyset: KeySet
    directory: TrustDirectory

    def __post_init__(self) -> None:
        if self.keyset.participant != self.participant:
            raise ConfigError(
                f"the keys belong to {self.keyset.participant}, not {self.participant}"
            )
        # The directory must list this participant (KeyUnknown / ConfigError otherwise).
        self.directory.participant(self.participant)

    def seal(
        self,
        *,
        form_type: str,
        form: Form | Mapping[str, Any],
        recipient: str,
        clock: Clock,
        case: str | None = None,
        in_reply_to: str | None = None,
        priority: Priority = "normal",
    ) -> Envelope:
        """Seal a form from this participant (it is the issuing authority too)."""
        return seal_envelope(
            form_type=form_type,
            form=form,
            sender=self.participant,
            recipient=recipient,
            directory=self.directory,
            signer=self.keyset.sig,
            sealer=self.keyset.seal,
            signer_pq=self.keyset.sig_pq,
            now=clock.now(),
            case=case,
            in_reply_to=in_reply_to,
            priority=priority,
        )


def load_directory(config: NodeConfig, clock: Clock) -> TrustDirectory:
    """Read and verify the node's trust directory (signed by its roots, unexpired)."""
    raw = read_bounded(config.directory, _MAX_DIRECTORY_BYTES, "the trust directory")
    return verify_directory(raw, now=clock.now())


def load_identity(config: NodeConfig, clock: Clock) -> Identity:
    """Load the node's keys and trust directory.

    Raises:
        ConfigError, TrustError: unreadable keys, a directory that does not verify,
            or keys that are not the directory's.
    """
    directory = load_directory(config, clock)
    keyset = keys.load_keyset(config.keys, config.participant, keys.passphrase_from_env())
    return Identity(participant=config.participant, keyset=keyset, directory=directory)
