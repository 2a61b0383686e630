"""Review 57b, pkcs11 1: a token key another process destroyed (`troth identity rotate` in the
CLI beside a running node) failed through the vault's cached object as a VaultError
(`ObjectHandleInvalid`), not KeyNotFound, and for good: the object stayed cached. Every holder
of a signer takes KeyNotFound as "rotated elsewhere: ask again" (the trace recorder, the trace
outbox, docs/vault.md, "Keys deleted by another process"), so on a PKCS#11 node the running
node's recorder refused every record until its next look at its signer source (60 s), where
a software node's renews at once. Now a stale object is dropped and the key looked up again:
KeyNotFound when the token no longer holds it."""

from __future__ import annotations

import pytest

from tests.support.hsm import NOW, agent_node_fixture  # noqa: F401  (fixtures)
from tests.support.traces import tool_call
from troth.clock import FixedClock
from troth.errors import KeyNotFound
from troth.node import Node, open_node
from troth.trace import TraceRecorder
from troth.trace.log import open_node_log


def _rotate_elsewhere() -> None:
    """The recovery rotation by another opener of the node (the CLI beside a running node)."""
    with open_node("hsm") as other:
        other.identities.rotate("agent", now=NOW + 10, compromised=True)


def test_a_held_signer_whose_token_key_was_destroyed_elsewhere_is_key_not_found(
    node: Node,
) -> None:
    held = node.identities.signer("agent", now=NOW)
    held.sign(b"before")  # its object cached
    _rotate_elsewhere()
    for _ in range(2):  # the stale object dropped, not kept failing otherwise
        with pytest.raises(KeyNotFound, match="in the token"):
            held.sign(b"after")


def test_the_recorder_of_a_pkcs11_node_signs_on_after_a_rotation_elsewhere(node: Node) -> None:
    clock = FixedClock(NOW + 20)
    with open_node_log(node, clock=clock) as log:
        agent = TraceRecorder(log, lambda at: node.identities.signer("agent", now=at), clock=clock)
        first = agent.record(tool_call())
        _rotate_elsewhere()
        after = agent.record(tool_call())  # the new signing key, under the new history
    assert after.index == first.index + 1
    assert node.identities.get("agent", now=NOW + 20).identity.change_count == 3
