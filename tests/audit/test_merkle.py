"""RFC 9162 trees: published vectors, an exhaustive cross-check against a literal
recursive reference, tamper tables (one change per case, exact error code), hypothesis."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.audit.merkle import (
    EMPTY_ROOT,
    MerkleLevels,
    MerkleTree,
    TreeState,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from broker.errors import AuditProof, AuditTampered

# -- a reference written straight from RFC 9162 §2.1, sharing no code with the module --


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return _h(b"")
    if n == 1:
        return _h(b"\x00" + d[0])
    k = _k(n)
    return _h(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


# -- published vectors (RFC 6962 reference tree, as used by CT and transparency-dev) --

CT_LEAVES = [
    bytes.fromhex(x)
    for x in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    bytes.fromhex(x)
    for x in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
CT_INCLUSION = [  # (index, size, proof)
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_CONSISTENCY = [  # (old size, new size, proof)
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
CT_LEVELS = MerkleLevels([leaf_hash(d) for d in CT_LEAVES])


def test_hash_prefixes() -> None:
    assert CT_ROOTS[0] == EMPTY_ROOT
    assert leaf_hash(b"") == CT_ROOTS[1]
    assert node_hash(b"a" * 32, b"b" * 32) == _h(b"\x01" + b"a" * 32 + b"b" * 32)


@pytest.mark.parametrize("size", range(9))
def test_published_roots(size: int) -> None:
    data = CT_LEAVES[:size]
    hashes = [leaf_hash(d) for d in data]
    tree = MerkleTree()
    tree.extend(hashes)
    assert root_of(data) == CT_ROOTS[size]
    assert root_from_leaf_hashes(hashes) == CT_ROOTS[size]
    assert tree.root() == CT_ROOTS[size]
    assert CT_LEVELS.root(size) == CT_ROOTS[size]


@pytest.mark.parametrize(("index", "size", "proof"), CT_INCLUSION)
def test_published_inclusion_proofs(index: int, size: int, proof: list[str]) -> None:
    expected = [bytes.fromhex(p) for p in proof]
    assert CT_LEVELS.inclusion_proof(index, size) == expected
    verify_inclusion(leaf_hash(CT_LEAVES[index]), index, size, expected, CT_ROOTS[size])


@pytest.mark.parametrize(("old", "new", "proof"), CT_CONSISTENCY)
def test_published_consistency_proofs(old: int, new: int, proof: list[str]) -> None:
    expected = [bytes.fromhex(p) for p in proof]
    assert CT_LEVELS.consistency_proof(old, new) == expected
    verify_consistency(old, new, CT_ROOTS[old], CT_ROOTS[new], expected)


# -- exhaustive cross-check, sizes 1..64 -------------------------------------------------

MAX_EXHAUSTIVE = 64
DATA = [b"leaf %d" % i for i in range(MAX_EXHAUSTIVE)]
HASHES = [leaf_hash(d) for d in DATA]
LEVELS = MerkleLevels(HASHES)


@cache
def ref_root(size: int) -> bytes:
    return ref_mth(DATA[:size])


def slow_hash_range(hashes: Sequence[bytes]) -> Callable[[int, int], bytes]:
    """A HashRange as a store without interior hashes would write it."""

    def hash_range(start: int, end: int) -> bytes:
        return root_from_leaf_hashes(hashes[start:end])

    return hash_range


@pytest.mark.parametrize("size", range(1, MAX_EXHAUSTIVE + 1))
def test_every_root_index_and_old_size(size: int) -> None:
    root = ref_root(size)
    assert root_from_leaf_hashes(HASHES[:size]) == root
    assert root_of(DATA[:size]) == root
    assert LEVELS.root(size) == root
    slow = slow_hash_range(HASHES[:size])
    for index in range(size):
        expected = ref_path(index, DATA[:size])
        assert LEVELS.inclusion_proof(index, size) == expected
        assert inclusion_proof(index, size, slow) == expected
        verify_inclusion(HASHES[index], index, size, expected, root)
    for old in range(size + 1):
        expected = ref_proof(old, DATA[:size]) if 0 < old < size else []
        assert LEVELS.consistency_proof(old, size) == expected
        assert consistency_proof(old, size, slow) == expected
        verify_consistency(old, size, ref_root(old), root, expected)


def test_largest_proofs_are_logarithmic() -> None:
    # Inclusion: one sibling per level. Consistency: one more, the old tree's own seed.
    assert max(len(LEVELS.inclusion_proof(i, 64)) for i in range(64)) == 6
    assert max(len(LEVELS.inclusion_proof(i, 63)) for i in range(63)) == 6
    assert max(len(LEVELS.consistency_proof(m, 64)) for m in range(1, 64)) == 7
    assert [len(LEVELS.consistency_proof(m, 64)) for m in (1, 2, 32)] == [6, 5, 1]


# -- the incremental tree --------------------------------------------------------------


def test_incremental_root_equals_recomputed_root_up_to_1000() -> None:
    hashes = [leaf_hash(b"%d" % i) for i in range(1000)]
    levels = MerkleLevels()
    tree = MerkleTree()
    assert tree.root() == EMPTY_ROOT
    for size, h in enumerate(hashes, start=1):
        assert tree.append(h) == size - 1
        levels.extend([h])
        expected = root_from_leaf_hashes(hashes[:size])
        assert tree.root() == expected
        assert levels.root() == expected
        assert len(tree.to_state().frontier) == size.bit_count()
    assert levels.root(1000) == MerkleLevels(hashes).root()


@pytest.mark.parametrize("size", [0, 1, 2, 3, 7, 8, 13, 64, 100])
def test_state_round_trip_and_resume(size: int) -> None:
    hashes = [leaf_hash(b"%d" % i) for i in range(size + 20)]
    tree = MerkleTree()
    tree.extend(hashes[:size])
    state = TreeState.from_bytes(tree.to_state().to_bytes())
    assert state == tree.to_state()
    resumed = MerkleTree.from_state(state)
    assert resumed.size == size
    assert resumed.root() == tree.root()
    resumed.extend(hashes[size:])
    assert resumed.root() == root_from_leaf_hashes(hashes)


BAD_STATES: dict[str, Callable[[], object]] = {
    "frontier shorter than the size's bits": lambda: TreeState(3, (b"x" * 32,)),
    "frontier longer than the size's bits": lambda: TreeState(4, (b"x" * 32, b"y" * 32)),
    "negative size": lambda: TreeState(-1, ()),
    "boolean size": lambda: TreeState(True, (b"x" * 32,)),
    "31-byte hash": lambda: TreeState(1, (b"x" * 31,)),
    "truncated bytes": lambda: TreeState.from_bytes(b"\x00" * 7),
    "ragged bytes": lambda: TreeState.from_bytes(b"\x00" * 7 + b"\x01" + b"x" * 31),
    "bytes frontier missing": lambda: TreeState.from_bytes((3).to_bytes(8, "big") + b"x" * 32),
}


@pytest.mark.parametrize("make", BAD_STATES.values(), ids=BAD_STATES.keys())
def test_corrupt_state_is_refused(make: Callable[[], object]) -> None:
    with pytest.raises(AuditTampered) as caught:
        make()
    assert caught.value.code == "E_AUDIT_TAMPERED"


def test_bad_inputs_to_builders() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        MerkleTree().append(b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        root_from_leaf_hashes([b"x" * 32, b"y" * 33])
    with pytest.raises(ValueError, match="32 bytes"):
        MerkleLevels([b"x" * 31, b"y" * 33])  # joined length would look right
    with pytest.raises(ValueError, match="not in the tree"):
        LEVELS.inclusion_proof(5, 5)
    with pytest.raises(ValueError, match="old_size <= new_size"):
        LEVELS.consistency_proof(6, 5)
    with pytest.raises(ValueError, match="outside the tree"):
        LEVELS.hash_range(0, MAX_EXHAUSTIVE + 1)
    with pytest.raises(IndexError):
        LEVELS.leaf(MAX_EXHAUSTIVE)
    assert LEVELS.leaf(3) == HASHES[3]


@pytest.mark.parametrize(("start", "end"), [(1, 4), (3, 10), (5, 6), (7, 64), (0, 0), (9, 9)])
def test_hash_range_of_any_range(start: int, end: int) -> None:
    assert LEVELS.hash_range(start, end) == ref_mth(DATA[start:end])


def test_levels_extend_matches_bulk_build() -> None:
    levels = MerkleLevels(HASHES[:5])
    levels.extend(HASHES[5:33])
    levels.extend([])
    levels.extend(HASHES[33:])
    for size in range(MAX_EXHAUSTIVE + 1):
        assert levels.root(size) == LEVELS.root(size)


# -- tamper tables (sigsum / transparency-dev style): each probe must fail -----------------

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
InclusionProbe = tuple[bytes, int, int, list[bytes], bytes]


def _flip(proof: list[bytes], i: int, bit: int) -> list[bytes]:
    changed = list(proof)
    element = bytearray(changed[i])
    element[bit // 8] ^= 1 << (bit % 8)
    changed[i] = bytes(element)
    return changed


def inclusion_probes(index: int, size: int) -> dict[str, InclusionProbe]:
    leaf, root = HASHES[index], ref_root(size)
    proof = LEVELS.inclusion_proof(index, size)
    probes: dict[str, InclusionProbe] = {
        "index - 1": (leaf, index - 1, size, proof, root),
        "index + 1": (leaf, index + 1, size, proof, root),
        "index ^ 2": (leaf, index ^ 2, size, proof, root),
        # Not size + 1: where the path has the same shape, the proof rightly leads to
        # the same root; it is the signed (size, root) pair that binds the size.
        "size * 2": (leaf, index, size * 2, proof, root),
        "size / 2": (leaf, index, size // 2, proof, root),
        "wrong leaf": (SOME_HASH, index, size, proof, root),
        "leaf data, not leaf hash": (_h(DATA[index]), index, size, proof, root),
        "empty root": (leaf, index, size, proof, EMPTY_ROOT),
        "random root": (leaf, index, size, proof, SOME_HASH),
        "short leaf": (leaf[:31], index, size, proof, root),
        "short root": (leaf, index, size, proof, root[:31]),
        "trailing empty element": (leaf, index, size, [*proof, b""], root),
        "trailing root": (leaf, index, size, [*proof, root], root),
        "preceding empty element": (leaf, index, size, [b"", *proof], root),
        "preceding root": (leaf, index, size, [root, *proof], root),
    }
    if proof:
        probes["33-byte element"] = (leaf, index, size, [*proof[:-1], proof[-1] + b"\x00"], root)
        probes["removed last element"] = (leaf, index, size, proof[:-1], root)
        probes["reversed"] = (leaf, index, size, proof[::-1], root)
    if len(proof) > 1:
        probes["inserted element"] = (leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root)
    for i in range(len(proof)):
        for bit in (0, 3, 255):
            probes[f"proof[{i}] bit {bit} flipped"] = (
                leaf,
                index,
                size,
                _flip(proof, i, bit),
                root,
            )
    return probes


INCLUSION_CASES = [
    pytest.param(*probe, id=f"{index}/{size}: {name}")
    for index, size in [(0, 1), (0, 8), (5, 8), (2, 3), (1, 5), (12, 13), (6, 13), (31, 64)]
    for name, probe in inclusion_probes(index, size).items()
    if not (name == "reversed" and len(probe[3]) == 1)
]


@pytest.mark.parametrize(("leaf", "index", "size", "proof", "root"), INCLUSION_CASES)
def test_tampered_inclusion_fails(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> None:
    with pytest.raises(AuditProof) as caught:
        verify_inclusion(leaf, index, size, proof, root)
    assert caught.value.code == "E_AUDIT_PROOF"


ConsistencyProbe = tuple[int, int, bytes, bytes, list[bytes]]


def consistency_probes(old: int, new: int) -> dict[str, ConsistencyProbe]:
    r1, r2 = ref_root(old), ref_root(new)
    proof = LEVELS.consistency_proof(old, new)
    probes: dict[str, ConsistencyProbe] = {
        "old - 1": (old - 1, new, r1, r2, proof),
        "old + 1": (old + 1, new, r1, r2, proof),
        "old ^ 2": (old ^ 2, new, r1, r2, proof),
        "new * 2": (old, new * 2, r1, r2, proof),
        "new / 2": (old, new // 2, r1, r2, proof),
        "wrong old root": (old, new, SOME_HASH, r2, proof),
        "wrong new root": (old, new, r1, SOME_HASH, proof),
        "swapped roots": (old, new, r2, r1, proof),
        "swapped sizes": (new, old, r2, r1, proof),
        "empty proof": (old, new, r1, r2, []),
        "trailing empty element": (old, new, r1, r2, [*proof, b""]),
        "trailing old root": (old, new, r1, r2, [*proof, r1]),
        "trailing new root": (old, new, r1, r2, [*proof, r2]),
        "preceding empty element": (old, new, r1, r2, [b"", *proof]),
        "preceding old root": (old, new, r1, r2, [r1, *proof]),
        "preceding new root": (old, new, r1, r2, [r2, *proof]),
        "preceding proof[0]": (old, new, r1, r2, [proof[0], *proof]),
        "removed last element": (old, new, r1, r2, proof[:-1]),
    }
    for i in range(len(proof)):
        for bit in (4, 200):
            probes[f"proof[{i}] bit {bit} flipped"] = (old, new, r1, r2, _flip(proof, i, bit))
    return probes


CONSISTENCY_CASES = [
    pytest.param(*probe, id=f"{old}->{new}: {name}")
    for old, new in [(1, 8), (6, 8), (2, 5), (6, 7), (4, 13), (13, 64), (1, 2), (63, 64)]
    for name, probe in consistency_probes(old, new).items()
]


@pytest.mark.parametrize(("old", "new", "old_root", "new_root", "proof"), CONSISTENCY_CASES)
def test_tampered_consistency_fails(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> None:
    with pytest.raises(AuditProof) as caught:
        verify_consistency(old, new, old_root, new_root, proof)
    assert caught.value.code == "E_AUDIT_PROOF"


R1, R2 = ref_root(1), ref_root(2)
EDGE_CASES = [  # (old, new, old root, new root, proof, verifies?)
    pytest.param(0, 0, EMPTY_ROOT, EMPTY_ROOT, [], True, id="0->0"),
    pytest.param(0, 5, EMPTY_ROOT, SOME_HASH, [], True, id="0->5"),
    pytest.param(1, 1, R1, R1, [], True, id="1->1"),
    pytest.param(0, 0, EMPTY_ROOT, R1, [], False, id="0->0 other root"),
    pytest.param(1, 1, R1, R2, [], False, id="1->1 other root"),
    pytest.param(0, 5, SOME_HASH, R2, [], False, id="0->5 old root not empty"),
    pytest.param(0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False, id="0->0 proof"),
    pytest.param(0, 1, EMPTY_ROOT, R1, [EMPTY_ROOT], False, id="0->1 proof"),
    pytest.param(1, 1, R1, R1, [R1], False, id="1->1 proof"),
    pytest.param(1, 0, R1, EMPTY_ROOT, [], False, id="1->0"),
    pytest.param(2, 1, R2, R1, [], False, id="2->1"),
    pytest.param(1, 2, R1, R2, [], False, id="1->2 empty proof"),
    pytest.param(1, 2, R1, R2, [HASHES[1]], True, id="1->2"),
    pytest.param(-1, 2, R1, R2, [HASHES[1]], False, id="negative old size"),
]


@pytest.mark.parametrize(("old", "new", "old_root", "new_root", "proof", "ok"), EDGE_CASES)
def test_consistency_edge_cases(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes], ok: bool
) -> None:
    if ok:
        verify_consistency(old, new, old_root, new_root, proof)
    else:
        with pytest.raises(AuditProof):
            verify_consistency(old, new, old_root, new_root, proof)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (1, 1), (2, 1), (-1, 4)])
def test_inclusion_outside_the_tree(index: int, size: int) -> None:
    with pytest.raises(AuditProof):
        verify_inclusion(HASHES[0], index, size, [], HASHES[0])


# -- hypothesis: larger trees --------------------------------------------------------------

BIG = 3000
BIG_HASHES = [leaf_hash(b"big %d" % i) for i in range(BIG)]
BIG_LEVELS = MerkleLevels(BIG_HASHES)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_random_inclusion_proofs(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, BIG))
    index = data.draw(st.integers(0, size - 1))
    root = BIG_LEVELS.root(size)
    proof = BIG_LEVELS.inclusion_proof(index, size)
    verify_inclusion(BIG_HASHES[index], index, size, proof, root)
    assert len(proof) <= (size - 1).bit_length()
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        with pytest.raises(AuditProof):
            verify_inclusion(BIG_HASHES[index], index, size, _flip(proof, i, bit), root)
    other = data.draw(st.integers(0, size - 1))
    if BIG_HASHES[other] != BIG_HASHES[index]:
        with pytest.raises(AuditProof):
            verify_inclusion(BIG_HASHES[other], index, size, proof, root)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_random_consistency_proofs(data: st.DataObject) -> None:
    new = data.draw(st.integers(1, BIG))
    old = data.draw(st.integers(1, new))
    old_root, new_root = BIG_LEVELS.root(old), BIG_LEVELS.root(new)
    assert old_root == root_from_leaf_hashes(BIG_HASHES[:old])
    proof = BIG_LEVELS.consistency_proof(old, new)
    verify_consistency(old, new, old_root, new_root, proof)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        with pytest.raises(AuditProof):
            verify_consistency(old, new, old_root, new_root, _flip(proof, i, bit))
    # A log that rewrote one old leaf cannot prove consistency with its past.
    victim = data.draw(st.integers(0, old - 1))
    forged = [*BIG_HASHES[:new]]
    forged[victim] = SOME_HASH
    forged_levels = MerkleLevels(forged)
    with pytest.raises(AuditProof):
        verify_consistency(
            old, new, old_root, forged_levels.root(), forged_levels.consistency_proof(old, new)
        )
