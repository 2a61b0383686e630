"""Review 49c, refuted: attacks on the identity layer that the code already resists (kept as
tests so they stay resisted)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.histories import (
    DAY,
    T0,
    HonestHistory,
    body_for,
    encode,
    extend,
    honest_history,
    sign_change,
)
from troth.clock import SystemClock
from troth.crypto import KeyType, sha256
from troth.crypto.private import generate_private_key
from troth.errors import IdentityError, IdentityFailure
from troth.identity import Checkpoint, Identifier, encode_history, verify_history
from troth.node import Node, init_node, open_node

NOW = T0 + 5 * DAY


@pytest.fixture
def node(troth_home: Path) -> Iterator[Node]:
    init_node("n")
    with open_node("n") as node:
        yield node


def test_an_older_prefix_is_refused_after_a_restart_and_the_fork_kept(troth_home: Path) -> None:
    """A replay of an older prefix after the node stored a longer history, by another process
    (a restart: no cache), is a rollback; the longer one still passes; a fork kept survives."""
    line = honest_history(3)
    forged = extend(honest_history_prefix(line, 2), T0 + 2 * DAY + 7)
    init_node("n")
    with open_node("n") as node:
        node.identities.import_history(encode(line.changes), now=NOW)
        with pytest.raises(IdentityError):
            node.identities.import_history(encode(forged.changes), now=NOW)
    with open_node("n") as node:
        for end in (1, 2):
            with pytest.raises(IdentityError) as refused:
                node.identities.import_history(encode(line.changes[:end]), now=NOW)
            assert refused.value.reason is IdentityFailure.ROLLBACK
        node.identities.import_history(encode(line.changes), now=NOW)
        (kept,) = node.identities.forks(Identifier(sha256(line.changes[0].body)))
        assert kept.index == 2


def honest_history_prefix(line: HonestHistory, count: int) -> HonestHistory:
    """`line` cut to its first `count` changes, committing to key `count`."""
    return HonestHistory(line.keys[:count], line.changes[:count], line.keys[count])


def test_changes_out_of_order_or_missing_are_refused() -> None:
    """Changes swapped, or one left out, break the links (BROKEN_LINK) before any signature."""
    line = honest_history(3)
    c0, c1, c2 = line.changes
    for changes in ([c0, c2, c1], [c0, c2], [c1, c0, c2]):
        with pytest.raises(IdentityError) as refused:
            verify_history(encode(changes), now=NOW)
        assert refused.value.reason is IdentityFailure.BROKEN_LINK


def test_a_stolen_old_key_alone_cannot_rotate() -> None:
    """A thief holding only the current key (not the committed next one) cannot make a
    rotation every verifier takes: its own key is not the one committed to."""
    line = honest_history(1)
    own = generate_private_key(KeyType.ED25519)
    body = body_for(own, sha256(line.changes[0].body), T0 + DAY, index=1)
    forged = sign_change(body, own, line.keys[0])
    with pytest.raises(IdentityError) as refused:
        verify_history(encode([*line.changes, forged]), now=NOW)
    assert refused.value.reason is IdentityFailure.NEXT_KEY_MISMATCH


def test_a_history_ending_in_an_unseen_change_extends_the_copy(node: Node) -> None:
    """A longer history ending in changes the node never saw is stored over its copy."""
    line = honest_history(3)
    node.identities.import_history(encode(line.changes[:1]), now=NOW)
    node.identities.import_history(encode(line.changes), now=NOW)
    assert node.identities.stored_changes(Identifier(sha256(line.changes[0].body))) == 3


def test_a_checkpointed_fork_is_refused_and_not_kept(node: Node) -> None:
    """A fork whose first differing change is the first of a checkpointed history (its link
    only the checkpoint's word, no previous-key signature checked) is refused, not kept as
    evidence (review 49c, forks 1's bound)."""
    line = honest_history(2)
    node.identities.import_history(encode(line.changes), now=NOW)
    forged = extend(honest_history_prefix(line, 1), T0 + DAY + 3)
    identifier = sha256(line.changes[0].body)
    checkpointed = verify_history(
        encode_history(forged.changes[1:], Checkpoint(identifier, b"\xaa" * 32, 1)),
        now=NOW,
        checkpoints=lambda checkpoint, change: True,
    )
    with pytest.raises(IdentityError) as refused:
        node.identities.check_known(checkpointed)
    assert refused.value.reason is IdentityFailure.FORK
    assert node.identities.forks(Identifier(identifier)) == []


def test_two_processes_rotating_at_once_serialise(troth_home: Path) -> None:
    """Two processes of the node rotate one identity at once: both rotations land, one after
    the other (the write lock, the compare-and-swap on the change count), no fork, and the
    history both made verifies."""
    init_node("n")
    with open_node("n") as node:
        node.identities.create(now=SystemClock().now(), name="alice")
    made: list[int] = []
    failed: list[BaseException] = []

    def rotate() -> None:
        try:
            with open_node("n") as mine:
                rotated = mine.identities.rotate("alice", now=SystemClock())
                made.append(rotated.identity.change_count)
        except BaseException as exc:  # reported below
            failed.append(exc)

    threads = [threading.Thread(target=rotate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failed == []
    assert sorted(made) == [2, 3]
    with open_node("n") as node:
        identity = node.identities.get("alice", now=SystemClock().now()).identity
        assert identity.change_count == 3
        verify_history(identity.history, now=SystemClock().now())
        assert node.identities.forks(identity.identifier) == []
