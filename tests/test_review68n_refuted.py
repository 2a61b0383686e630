"""Review 68n: attacks on 68c's and 68g's fixes and on review 68n's own that did not work
(each a real attempt, failing if the defence it names broke)."""

from __future__ import annotations

from typing import Any

import pytest

import troth
from tests import test_review67f_secrets as review67f
from tests.conftest import NOW
from tests.support.channels import T, closed, make_world, pump
from tests.support.public_api import Agents
from tests.test_review67l_refuted import leased
from tests.test_review68n_expiry import ANYONE, LONG, _open, _party
from troth._api import node as api_node
from troth.channel import ChannelTrust, Received, verify_peer
from troth.channel.claims import ClaimCache
from troth.errors import ChannelError, ChannelFailure
from troth.node.authorities import announce_here
from troth.node.rotation_revoke import finish_due, mark_due
from troth.node.services.broker import open_broker
from troth.vault import SoftwareVault

world = review67f.world  # the fixture: acme's hub brokering `payments` to its members

_OLD_TABLE = (
    "CREATE TABLE broker_revoke_due (identity BLOB PRIMARY KEY, changes INTEGER NOT NULL) STRICT"
)


def _finish(node: Any) -> int:
    """The broker's round on `node`: how many due revocations it finished."""
    broker = open_broker(node, now=NOW)
    try:
        return finish_due(node, broker, NOW)
    finally:
        broker.close()


def test_two_handles_adding_the_marked_column_add_it_once(world: Agents) -> None:
    """68c's ALTER TABLE on first use, raced: a second handle on node.db (another process's
    connection) that read the old table before the first added `marked` adds nothing again
    (no `duplicate column`): `_with_marked` reads the columns inside BEGIN IMMEDIATE, after
    the other's commit."""
    node = world.hub._stored
    node.db.execute(_OLD_TABLE)
    ops = world.hub.identities.create("ops")
    with troth.Node.open("acme") as other:
        stored = other._stored
        assert stored.db.fetch_all("SELECT * FROM broker_revoke_due") == []  # schema read
        assert mark_due(node, "ops") == ops.identifier.digest  # this one adds the column
        assert mark_due(stored, "ops") == ops.identifier.digest  # the other's: no ALTER
    columns = [str(row[1]) for row in node.db.fetch_all("PRAGMA table_info(broker_revoke_due)")]
    assert columns == ["identity", "changes", "marked"]


def test_a_row_an_older_version_wrote_beside_the_column_is_finished(world: Agents) -> None:
    """A downgrade after 68c (the table has `marked`, an older troth inserts without it:
    marked -1) and an upgrade again: the row, once the rotation committed, is revoked and
    deleted, not left due forever nor kept by its -1."""
    leased(world, (world.agents, "support"))
    node = world.hub._stored
    mark_due(node, world.hub.identity.name or "")  # the column made
    node.db.execute("DELETE FROM broker_revoke_due")
    changes = world.hub.identity.changes
    node.db.execute(  # what 67l's code writes
        "INSERT INTO broker_revoke_due (identity, changes) VALUES (?, ?) ON CONFLICT DO NOTHING",
        (world.hub.identity.identifier.digest, changes - 1),  # a rotation committed since
    )
    assert _finish(node) == 1
    assert node.db.fetch_all("SELECT * FROM broker_revoke_due") == []
    assert world.hub.secrets.revoke_holder(world.support) == []  # ended by the finish


def test_a_ctrl_c_inside_the_revocation_leaves_it_due_and_still_announces(
    world: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Identities.rotate(..., compromised=True)` interrupted inside the revocation itself:
    the announcement (68c's `finally`) still runs, the KeyboardInterrupt reaches the caller,
    and the row stays due: the broker's next round revokes support's lease."""
    leased(world, (world.agents, "support"))
    announced: list[str] = []
    real = announce_here

    def counted(*args: Any, **kwargs: Any) -> Any:
        announced.append("yes")
        return real(*args, **kwargs)

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(api_node, "announce_here", counted)
    monkeypatch.setattr(type(world.hub.secrets), "revoke_holder", interrupted)
    with pytest.raises(KeyboardInterrupt):
        world.hub.identities.rotate(world.hub.identity, compromised=True)
    assert announced == ["yes"]
    monkeypatch.undo()
    node = world.hub._stored
    assert len(node.db.fetch_all("SELECT * FROM broker_revoke_due")) == 1  # due
    assert _finish(node) == 1
    assert world.hub.secrets.revoke_holder(world.support) == []


def test_a_refresh_cannot_carry_a_channel_past_its_attestations_expiry() -> None:
    """68n expiry 1's date is the handshake's: a CREDENTIALS refresh before the expiry
    (accepted) does not move it, and the re-check after it still closes the channel."""
    vault = SoftwareVault()
    alice = _party(vault, key_ttl=100, valid_for=LONG)
    bob = _party(vault, key_ttl=LONG // 2, valid_for=LONG)
    a, b = _open(alice, bob)
    a.send_credentials(())
    pump(a, b, T + 50)
    assert b.peer is not None
    assert b.peer.key_expires_at == T + 100  # kept through the refresh
    assert closed(b.check_peer(T + 100)).reason is ChannelFailure.PEER_INVALID


def test_a_kept_claim_does_not_outlive_its_attestation() -> None:
    """The handshake's claim cache (68g's resumed path) keeps a verified claim until the
    earlier of its two dates only: a reconnection after the attestation's expiry showing the
    same bytes is refused (verified in full, `purpose-key attestation expired`)."""
    vault = SoftwareVault()
    alice = _party(vault, key_ttl=100, valid_for=LONG)
    claims = ClaimCache()
    trust = ChannelTrust(policy=ANYONE.policy, claims=claims)
    verify_peer(trust, alice.claim(), (), T + 1)
    assert len(claims) == 1
    with pytest.raises(ChannelError) as refused:
        verify_peer(trust, alice.claim(), (), T + 100)
    assert refused.value.reason is ChannelFailure.PEER_INVALID
    assert "expired" in str(refused.value)


def test_a_held_message_and_a_small_one_keep_their_order_and_arrive() -> None:
    """68n channel 1 seals held messages before any later frame: away from the end of the
    nonce space the peer still receives every message, in the order sent."""
    w = make_world()
    alice, bob = w.initiator(), w.responder()
    pump(alice, bob)
    alice.send(b"a" * 300)  # held
    alice.send(b"b")  # small: sealed at once, after the held one now
    alice.send(b"c" * 300)
    seen = [e for packet in alice.outgoing() for e in bob.receive(packet, T + 2)]
    got = [bytes(e.payload) for e in seen if isinstance(e, Received)]
    assert got == [b"a" * 300, b"b", b"c" * 300]
