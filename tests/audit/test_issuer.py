"""A node's signed checkpoints of its audit log: issued when the log grew, verifiable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from broker.audit.checkpoint import open_checkpoint
from broker.audit.issuer import checkpoint_verifiers, issue_checkpoint, latest_checkpoint_size
from broker.audit.merkle import root_from_leaf_hashes
from broker.clock import FixedClock
from broker.config import load_config
from broker.errors import AuditSignature
from broker.identity import load_identity
from broker.localnet import build_network
from broker.store import StorageKey, open_store
from broker.store.base import AuditEvent
from tests.node.conftest import T0


async def test_checkpoints_follow_the_log_and_verify_under_the_node_key(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    network = build_network(tmp_path / "net", ["AT.247", "DE.247"], now=T0 - timedelta(days=1))
    identity = load_identity(load_config(network.configs["AT.247"], env={}), clock)
    signer = identity.keyset.sig
    verifiers = checkpoint_verifiers({signer.kid: signer.public().raw})
    async with open_store(f"sqlite://{tmp_path}/at.db", StorageKey.generate(), clock) as store:
        assert await issue_checkpoint(store, "AT.247", signer) is None  # empty log
        await store.audit([AuditEvent(event="message.sent", at=T0) for _ in range(3)])
        assert await issue_checkpoint(store, "AT.247", signer) == 3
        assert await issue_checkpoint(store, "AT.247", signer) is None  # nothing new
        await store.audit([AuditEvent(event="message.delivered", at=T0)])
        assert await issue_checkpoint(store, "AT.247", signer) == 4
        assert await latest_checkpoint_size(store) == 4
        leaves = [h for _, _, h in await store.audit_leaves(start=0, limit=10)]
        for size, note in await store.list_checkpoints():
            checkpoint = open_checkpoint(note, verifiers)
            assert checkpoint.origin == "evb/AT.247"
            assert (checkpoint.size, checkpoint.root_hash) == (
                size,
                root_from_leaf_hashes(leaves[:size]),
            )
        other = ed25519.Ed25519PrivateKey.generate().public_key()
        with pytest.raises(AuditSignature):
            open_checkpoint((await store.list_checkpoints())[0][1], {signer.kid: other})
