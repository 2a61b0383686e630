"""Review 45j, rotation cap: MAX_CHANGE_INDEX (2**32 - 1) bounds a change's index (a history's
checkpoint, a supersession's change count: MAX_CHANGE_INDEX + 1), but `rotate_identity` and the
identity service's `rotate` never checked it, so a history could be extended past it, and its
supersession (which names `index + 1` changes) could not be written. A rotation whose change
index would pass MAX_CHANGE_INDEX is refused now (IdentityError OVER_LIMIT), nothing written.

A history at the bound is built as a checkpointed history whose first presented change has
index MAX_CHANGE_INDEX (its checkpoint carries the start index), attested by the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import NOW
from troth import limits
from troth.crypto import KeyType, sha256
from troth.errors import IdentityError, IdentityFailure
from troth.identity import (
    Checkpoint,
    VerifiedIdentity,
    next_key_digest,
    rotate_identity,
    verify_history,
)
from troth.identity.change import ChangeBody, SignedChange, encode_history
from troth.node import Node, init_node, open_node
from troth.vault import KeyHandle, KeyPurpose, SoftwareVault, Vault

DAY = 86_400
AUTHORITY = b"a" * 32


@pytest.fixture
def node(troth_home: Path) -> Iterator[Node]:
    init_node("n")
    with open_node("n") as node:
        yield node


def at_index(vault: Vault, index: int) -> tuple[VerifiedIdentity, KeyHandle, KeyHandle]:
    """A history presented from change `index` (its checkpoint's start index), one change
    whose primary key and committed next key are in `vault`: the identity, its primary key
    and its next key."""
    primary = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    following = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    earlier = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    body = ChangeBody(
        index,
        b"p" * 32,
        vault.public_key(primary),
        next_key_digest(vault.public_key(following)),
        NOW,
        NOW,
        NOW + 365 * DAY,
    ).encode()
    signed = SignedChange(body, vault.sign(primary, body), vault.sign(earlier, body))
    history = encode_history([signed], Checkpoint(sha256(b"%d" % index), AUTHORITY, index))
    identity = verify_history(history, now=NOW, checkpoints=lambda checkpoint, change: True)
    assert identity.current.index == index
    return identity, primary, following


def test_rotate_identity_refuses_a_change_past_the_highest_index() -> None:
    """At MAX_CHANGE_INDEX - 1 a rotation makes change MAX_CHANGE_INDEX (whose supersession,
    MAX_CHANGE_INDEX + 1 changes, can be written); the next one is refused, OVER_LIMIT, before
    anything is made."""
    vault = SoftwareVault()
    identity, primary, following = at_index(vault, limits.MAX_CHANGE_INDEX - 1)
    held = rotate_identity(vault, identity, primary, following, now=NOW + 1, valid_for=DAY)
    assert held.identity.current.index == limits.MAX_CHANGE_INDEX
    with pytest.raises(IdentityError) as refused:
        rotate_identity(
            vault, held.identity, held.primary, held.next_key, now=NOW + 2, valid_for=DAY
        )
    assert refused.value.reason is IdentityFailure.OVER_LIMIT
    assert refused.value.change == limits.MAX_CHANGE_INDEX + 1
    assert str(limits.MAX_CHANGE_INDEX) in str(refused.value)


def test_the_service_refuses_a_rotation_past_the_highest_index(node: Node) -> None:
    """The identity service's `rotate`: at MAX_CHANGE_INDEX a rotation is refused, and a
    compromised rotation (two changes) at MAX_CHANGE_INDEX - 1 too (its second change would
    pass the bound): nothing is written, the stored history stays as it was."""
    service = node.identities
    bound = limits.MAX_CHANGE_INDEX
    for name, index in (("at-bound", bound), ("below", bound - 1)):
        identity, primary, following = at_index(node.vault, index)
        with service.store.transaction():
            service.store.add_locals(
                [
                    (
                        identity.identifier.digest,
                        identity.history,
                        name,
                        str(primary),
                        str(following),
                        NOW,
                    )
                ]
            )
            digest = identity.identifier.digest
            service.store.update_history(digest, identity.history, index + 1, 1, NOW)
        service._keep_verified(identity)  # its checkpoint: attested by the test
        with pytest.raises(IdentityError) as refused:
            service.rotate(name, now=NOW + 1, compromised=index < limits.MAX_CHANGE_INDEX)
        assert refused.value.reason is IdentityFailure.OVER_LIMIT
        assert service.find(name).history == identity.history
        assert service.get(name, now=NOW + 1).identity.current.index == index


def test_a_history_past_the_highest_index_is_refused_by_its_verifier(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review 45j left: `verify_history` bounded only a checkpoint's index, so a history made
    by another maker (here: troth with a raised bound) ending at MAX_CHANGE_INDEX + 1 verified,
    and its supersession could not be written. Each change's index is bounded now."""
    vault = SoftwareVault()
    identity, primary, following = at_index(vault, limits.MAX_CHANGE_INDEX)
    with monkeypatch.context() as raised:
        raised.setattr(limits, "MAX_CHANGE_INDEX", limits.MAX_CHANGE_INDEX + 1)
        held = rotate_identity(vault, identity, primary, following, now=NOW + 1, valid_for=DAY)
    with pytest.raises(IdentityError) as refused:
        verify_history(held.identity.history, now=NOW + 1, checkpoints=lambda c, h: True)
    assert refused.value.reason is IdentityFailure.OVER_LIMIT
    assert refused.value.change == limits.MAX_CHANGE_INDEX + 1
