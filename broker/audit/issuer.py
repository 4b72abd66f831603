"""Issuing a node's signed checkpoints: the tree head of its audit log, signed.

A node signs a C2SP checkpoint (origin ``evb/<participant>``, tree size, root hash)
with its envelope signing key, under the key's id as the note key name, whenever its
log has grown since the last one — every ``audit.checkpoint_interval`` or sooner when
``audit.checkpoint_every`` records were added. Issuing a checkpoint adds no record to
the log (it would make the next checkpoint always due). Auditors verify checkpoints
against the trust directory (:func:`checkpoint_verifiers`).
"""

from __future__ import annotations

from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric import ed25519

from broker.audit.checkpoint import Checkpoint, origin_for, sign_checkpoint
from broker.audit.merkle import MerkleTree, TreeState
from broker.crypto import SigningKey
from broker.errors import ConfigError
from broker.store.base import Store

__all__ = ["checkpoint_verifiers", "issue_checkpoint", "latest_checkpoint_size"]


async def latest_checkpoint_size(store: Store) -> int:
    """Return the tree size of the newest kept checkpoint (0 without any)."""
    kept = await store.list_checkpoints(newest_first=True, limit=1)
    return kept[0][0] if kept else 0


async def issue_checkpoint(store: Store, participant: str, signer: SigningKey) -> int | None:
    """Sign and keep a checkpoint of the log if it grew since the last; return its size.

    Raises:
        ConfigError: the signing key is not an Ed25519 key.
        StoreError: the store failed.
    """
    if not isinstance(signer.private, ed25519.Ed25519PrivateKey):
        raise ConfigError("checkpoints are signed with the node's Ed25519 signing key")
    size, state = await store.audit_head()
    if size == 0 or size <= await latest_checkpoint_size(store):
        return None
    root = MerkleTree.from_state(TreeState.from_bytes(state)).root()
    note = sign_checkpoint(
        Checkpoint(origin_for(participant), size, root), signer.kid, signer.private
    )
    await store.add_checkpoint(size, note)
    return size


def checkpoint_verifiers(keys: Mapping[str, bytes]) -> dict[str, ed25519.Ed25519PublicKey]:
    """Return note verifiers (key name → public key) from raw Ed25519 public keys by kid."""
    return {kid: ed25519.Ed25519PublicKey.from_public_bytes(raw) for kid, raw in keys.items()}
