"""Review 49c, local identities: what the owner's own node makes of a continuation of one of
its local identities that it never made.

Local 1: a thief holding a copy of the vault (the current key and the committed next key:
docs/vault.md, "Recovering from a stolen backup") rotates the identity its own way before the
owner does: `[c0, c1']`, c1' revealing the committed key and committing to a key of the thief's.
The owner's node is the one verifier that knows this change is not hers: its `observe` refuses
it (FORK, "a local identity is rotated only by its own node", docs/formats.md "Pre-rotation
and stored histories"). But `check_known` (a handshake's peer not yet admitted, `troth identity
verify --node`, a chain's issuer check) and `check_no_fork` (a trace record's signer) judged
it by the stored hashes alone, which it extends, and passed it: the owner's node called the
thief's rotation of its own identity valid, although `check_known` promises to raise as
`observe` would. Fixed: a continuation of a local identity is refused by every check, judged
against the store (another process of the node may have rotated it: its own newer history
still passes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.histories import encode, honest_history
from troth.errors import IdentityError, IdentityFailure
from troth.identity import VerifiedIdentity, rotate_identity, verify_history
from troth.node import Node, init_node, open_node
from troth.node.verify import verify_bare_history

DAY = 86_400


@pytest.fixture
def node(troth_home: Path) -> Iterator[Node]:
    init_node("n")
    with open_node("n") as node:
        yield node


def thiefs_rotation(node: Node, name: str, at: int) -> VerifiedIdentity:
    """The thief's own rotation of local identity `name`, made with the keys a copy of the
    node's vault holds (its current key and the committed next key), never stored here."""
    local = node.identities.get(name, now=at)
    held = rotate_identity(
        node.vault, local.identity, local.primary_key, local.next_key, now=at, valid_for=DAY
    )
    return held.identity


def test_check_known_refuses_a_continuation_of_a_local_identity(node: Node) -> None:
    """Local 1: as `observe` does."""
    node.identities.create(now=NOW, name="alice")
    forged = thiefs_rotation(node, "alice", NOW + 10)
    with pytest.raises(IdentityError) as observed:
        node.identities.observe(forged)
    assert observed.value.reason is IdentityFailure.FORK
    with pytest.raises(IdentityError) as checked:
        node.identities.check_known(forged)
    assert checked.value.reason is IdentityFailure.FORK
    assert "local identity" in str(checked.value)


def test_check_no_fork_refuses_a_continuation_of_a_local_identity(node: Node) -> None:
    """Local 1: a trace record's signer history (`check_no_fork`) as well."""
    node.identities.create(now=NOW, name="alice")
    forged = thiefs_rotation(node, "alice", NOW + 10)
    with pytest.raises(IdentityError) as checked:
        node.identities.check_no_fork(forged)
    assert checked.value.reason is IdentityFailure.FORK


def test_verify_node_calls_the_thiefs_rotation_invalid(node: Node) -> None:
    """Local 1: `troth identity verify --node` at the owner's node (`verify_bare_history`)."""
    node.identities.create(now=NOW, name="alice")
    forged = thiefs_rotation(node, "alice", NOW + 10)
    with pytest.raises(IdentityError) as checked:
        verify_bare_history(node, forged.history, now=NOW + 20)
    assert checked.value.reason is IdentityFailure.FORK


def test_the_nodes_own_rotation_still_passes_every_check(troth_home: Path) -> None:
    """Local 1, the fix's bound: a rotation another process of the node committed (this one's
    cache still holds the history before it) is the identity's own, and passes."""
    init_node("n")
    with open_node("n") as first, open_node("n") as second:
        first.identities.create(now=NOW, name="alice")
        before = second.identities.get("alice", now=NOW + 1).identity
        second.identities.check_known(before)  # cached in `second`: one change
        rotated = first.identities.rotate("alice", now=NOW + 10).identity
        second.identities.check_known(rotated)
        second.identities.check_no_fork(rotated)
        second.identities.check_no_fork(before)  # an older prefix: signatures before it


def test_a_first_sight_looks_for_no_local_identity(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Local 1, the fix's cost: a stranger's history, of which nothing is stored (so no local
    identity either), is checked without the extra query for a local identity."""

    def no_query(**_: object) -> None:
        raise AssertionError("looked for a local identity")

    stranger = honest_history(2)
    monkeypatch.setattr(node.identities.store, "find_local", no_query)
    node.identities.check_known(verify_history(encode(stranger.changes), now=NOW + 10 * DAY))
    node.identities.check_no_fork(verify_history(encode(stranger.changes), now=NOW + 10 * DAY))
