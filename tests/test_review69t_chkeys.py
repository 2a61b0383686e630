"""Review 69t (chkeys: a node's channel key replaced by its renewal) findings.

chkeys 1 (medium: handshakes fail at each channel key renewal; the event loop held by a slow
  HSM's sign) `IdentityService._purpose_key` deleted the channel key a renewal replaced at
  once (in the renewal's transaction; a token's right after its commit). A handshake that had
  taken the node's channel identity just before (its own, or `channel_as`'s, or one in flight
  while the maintenance round renewed) did its DH with that key after the renewal and failed:
  `ChannelError: handshake failed (a local failure (KeyNotFound: no key software:x25519:…))`.
  So the node could not show its cached identity while a renewal ran (review 69j, gaps 1,
  narrowed by the lead: a handshake waited for the renewal, and one finding the cache past its
  time renewed on the event loop, an HSM's slow sign holding it). Now a replaced channel key
  is recorded retired with a time (`limits.RETIRED_CHANNEL_KEY_GRACE` on) in the renewal's
  commit and deleted by the first `forget_retired` past it (the maintenance round's), whatever
  the vault: a crash orphans no key, a rollback keeps it in use; new handshakes are shown the
  renewed attestation from the commit on (69j's off-loop renewal shows the cached one while
  the renewal runs, `test_review69j_gaps`; not once the cached key's channels are due for
  replacement, `key_renewal.replace_from`, as a channel opened showing it was closed at the
  next round: 69k's relay-move tests). A rotation of the identity deletes its kept keys in its
  transaction. Kept keys go only at a time the caller gives (the maintenance round's clock):
  deleted in a token commit's follow-up at the service's own clock, a node whose clock was
  not the service's lost them at once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import NOW, agent_node_fixture  # noqa: F401  (the fixture `node`)
from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_review68v_renewal import _short_keys
from troth import limits
from troth.channel import ChannelIdentity
from troth.errors import KeyNotFound
from troth.identity.service import PURPOSE_KEY_TTL
from troth.node import Node, open_node
from troth.vault import KeyHandle, KeyPurpose
from troth.vault.ephemeral import VaultDhKey

GRACE = limits.RETIRED_CHANNEL_KEY_GRACE


def test_chkeys1_a_handshake_holding_the_identity_across_a_renewal_completes(
    tmp_path: Path,
) -> None:
    async def test(net: MemNet) -> None:
        b = await net.node("b", prepare=_short_keys)  # every renewal makes a new channel key
        await b.enroll(net.ticket(), "b")
        held = b.channels.me()  # a handshake took the node's identity
        renewed = await b._renew_identity()  # the maintenance round renews it meanwhile
        assert renewed.attestation != held.attestation
        assert b.channels.me().attestation == renewed.attestation  # new ones: the renewed
        end = await b.channels.open(route(HUB), me=held)  # its DH, after the renewal
        assert end.channel.me.attestation == held.attestation
        await end.close()
        # the replaced key goes once its grace is over (the maintenance round), not before
        await b.maintain()
        assert b.node.vault.public_key(_handle(held)) == held.static.public_key
        net.clock.advance(GRACE)
        await b.maintain()
        with pytest.raises(KeyNotFound):
            b.node.vault.public_key(_handle(held))
        now = b.channels.me()  # (short keys: each round renews it again)
        assert b.node.vault.public_key(_handle(now)) == now.static.public_key

    run_memnet(test, tmp_path)


def _handle(identity: ChannelIdentity) -> KeyHandle:
    """The handle of the channel key `identity` shows (a node's: in its vault)."""
    static = identity.static
    assert isinstance(static, VaultDhKey)
    return static.handle


def _renewed_channel_key(node: Node) -> tuple[KeyHandle, KeyHandle, int]:
    """The agent's channel key, then its renewal's (a day before its expiry), and when (in the
    software vault beside the token: SoftHSM2 has no X25519, troth.vault.composite)."""
    old, _ = node.identities.purpose_key("agent", KeyPurpose.SECURE_CHANNEL, now=NOW)
    later = NOW + PURPOSE_KEY_TTL - 3600
    new, _ = node.identities.purpose_key("agent", KeyPurpose.SECURE_CHANNEL, now=later)
    assert new != old
    return old, new, later


def test_chkeys1_a_replaced_token_channel_key_kept_its_grace_then_destroyed(
    softhsm: SoftHsm, node: Node
) -> None:
    """The same in a PKCS#11 node (its composite vault): the replaced key is recorded retired
    with its time in the renewal's commit, does DH until the grace ends, then is deleted."""
    old, new, later = _renewed_channel_key(node)
    vault = node.vault
    peer = vault.public_key(new)
    assert node.identities.forget_retired(now=later + GRACE - 1) == 0
    assert vault.dh(old, peer) != vault.dh(new, peer)  # the handshake that took it before
    assert node.identities.forget_retired(now=later + GRACE) == 1
    with pytest.raises(KeyNotFound):
        vault.dh(old, peer)
    vault.dh(new, peer)


def test_chkeys1_a_replaced_channel_key_is_deleted_by_the_next_process(
    softhsm: SoftHsm, node: Node
) -> None:
    """Recorded in node.db with its time, not in memory: a process ending in its grace leaves
    it to the next `forget_retired` past it, another process's (none orphaned)."""
    old, _new, later = _renewed_channel_key(node)
    assert node.identities.forget_retired(now=later) == 0
    with open_node("hsm") as again:
        assert again.identities.forget_retired(now=later + GRACE) == 1
        with pytest.raises(KeyNotFound):
            again.vault.public_key(old)


def test_chkeys1_a_grace_further_off_than_its_length_is_over(softhsm: SoftHsm, node: Node) -> None:
    """A renewal dated ahead (the clock set back since) keeps its key no longer than the
    grace from now: no key kept for good."""
    old, _new, later = _renewed_channel_key(node)
    assert node.identities.forget_retired(now=later - 1) == 1
    with pytest.raises(KeyNotFound):
        node.vault.public_key(old)


def test_chkeys1_a_rotation_ends_its_identitys_grace(softhsm: SoftHsm, node: Node) -> None:
    """A rotation (a compromised one) leaves no key of the old history in the vault: the
    replaced channel key kept for its grace goes with the others at the commit."""
    old, _new, later = _renewed_channel_key(node)
    node.identities.rotate("agent", now=later + 1, compromised=True)
    with pytest.raises(KeyNotFound):
        node.vault.public_key(old)
    assert node.identities.store.retired_keys(16) == []
