"""Review 53m, refuted: attacks on the retirement objects a failed or crashed write leaves in
the token (docs/vault.md, "Keys of a failed write") that the code withstands."""

from __future__ import annotations

import pytest

from tests.support.hsm import (  # noqa: F401 - `node` is a fixture
    NOW,
    agent_node_fixture,
    fail,
    token_retirements,
)
from troth.errors import KeyNotFound
from troth.node import Node
from troth.storage.base import RETIRED_PROOF_MARK
from troth.vault import KeyHandle, KeyPurpose

pytestmark = pytest.mark.hsm


def _stale(node: Node) -> tuple[KeyHandle, str]:
    """The current key retired in the token by a write that never committed (a crash before
    its commit, or a token from before review 53m): its handle and the proof."""
    primary = KeyHandle.parse(node.identities.find("agent").primary_key)
    proof = node.vault.retire(primary, KeyPurpose.PRIMARY)  # type: ignore[attr-defined]
    assert isinstance(proof, str)
    return primary, proof


def test_a_stale_retirement_with_a_planted_record_of_another_proof_destroys_nothing(
    node: Node,
) -> None:
    """A writer of node.db who cannot read the token's private objects plants the current
    key's handle with no proof, or a guessed one: the key stays, the records go."""
    primary, _proof = _stale(node)
    store = node.identities.store
    with store.transaction():
        store.add_retired_keys([str(primary), f"{primary}{RETIRED_PROOF_MARK}{'0' * 32}"])
    assert node.identities.forget_retired() == 2
    node.vault.sign(primary, b"still the current key")


def test_a_stale_retirement_goes_with_the_key_at_its_real_retirement(node: Node) -> None:
    """The key a crashed rotation retired is rotated out later: the committed retirement's
    proof destroys it and every retirement object of it, the stale one included."""
    primary, _proof = _stale(node)
    node.identities.rotate("agent", now=NOW + 10)
    with pytest.raises(KeyNotFound):
        node.vault.public_key(primary)
    assert not [label for label in token_retirements(node) if label.endswith(primary.key_id)]


def test_a_rotation_failing_after_its_commit_keeps_its_retirements(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the commit (a callback raising) undoes no retirement: the committed
    records destroy the retired keys (the old primary key no longer signs)."""
    store = node.identities.store
    old = KeyHandle.parse(node.identities.find("agent").primary_key)
    forget = node.identities._forget_retired_after_commit
    monkeypatch.setattr(node.identities, "_forget_retired_after_commit", lambda: None)
    take = store.take_purpose_keys

    def then_raise(identifier: bytes) -> object:
        store.after_commit(lambda: fail())
        return take(identifier)

    monkeypatch.setattr(store, "take_purpose_keys", then_raise)
    with pytest.raises(Exception, match="injected"):
        node.identities.rotate("agent", now=NOW + 10)
    assert [label for label in token_retirements(node) if label.endswith(old.key_id)]
    forget()
    with pytest.raises(KeyNotFound):
        node.vault.public_key(old)
