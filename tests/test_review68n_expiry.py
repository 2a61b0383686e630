"""Review 68n (expiry: what the re-check of an open channel's peer checks) findings.

expiry 1 (medium): an open channel's peer stayed admitted after its channel-key attestation
   expired, or after its identity's current key passed `valid_until`: the handshake checks
   both dates, but `SecureChannel.check_peer` (the node's periodic re-check, every 30 s) and
   an in-band refresh re-verified only the stored copy, the chains, the feeds and the policy.
   A credential's expiry mid-channel closed it (`credential invalid`); these two dates did
   not, so a channel opened with a key the identity let lapse (or one about to) stayed open
   for as long as the peer kept it alive. Now every re-check and refresh checks both dates
   too, as the handshake does, and closes the channel `peer invalid`, the detail naming which
   date passed (docs/protocols.md, "Continuous evaluation").
"""

from __future__ import annotations

from pathlib import Path

from tests.support.channels import T, closed, pump
from tests.support.parties import ChannelParty, make_channel_party
from troth.channel import AnyAuthenticatedIdentity, ChannelTrust, SecureChannel, VerifiedPeer
from troth.errors import ChannelFailure
from troth.node import init_node, open_node
from troth.node.trust import NodeTrust
from troth.vault import SoftwareVault

ANYONE = ChannelTrust(policy=AnyAuthenticatedIdentity())


def _party(vault: SoftwareVault, *, key_ttl: int, valid_for: int) -> ChannelParty:
    """A channel party whose channel-key attestation expires `key_ttl` s after T and whose
    identity's (first, current) key is valid for `valid_for` s from T."""
    return make_channel_party(vault, now=T, key_ttl=key_ttl, valid_for=valid_for)


def _open(alice: ChannelParty, bob: ChannelParty) -> tuple[SecureChannel, SecureChannel]:
    a = SecureChannel.initiate(me=alice.me(), trust=ANYONE)
    b = SecureChannel(initiator=False, me=bob.me(), trust=ANYONE)
    pump(a, b, T + 1)
    assert a.peer is not None
    assert b.peer is not None
    return a, b


LONG = 10 * 365 * 86_400


def test_the_recheck_closes_a_channel_whose_peers_channel_key_attestation_expired() -> None:
    vault = SoftwareVault()
    alice = _party(vault, key_ttl=100, valid_for=LONG)
    bob = _party(vault, key_ttl=LONG // 2, valid_for=LONG)
    a, b = _open(alice, bob)
    assert b.check_peer(T + 99) == []  # still valid (now < expires_at)
    found = closed(b.check_peer(T + 100))
    assert found.reason is ChannelFailure.PEER_INVALID
    assert "attestation" in found.detail
    assert "expired" in found.detail
    assert b.check_peer(T + 101) == []  # closed once
    seen_a, _ = pump(a, b, T + 100)
    assert closed(seen_a).reason is ChannelFailure.PEER_INVALID
    assert closed(seen_a).by_peer
    assert a.check_peer(T + 100) == []  # alice's own view: bob's key is still valid


def test_the_recheck_closes_a_channel_whose_peers_current_key_passed_valid_until() -> None:
    vault = SoftwareVault()
    alice = _party(vault, key_ttl=LONG // 2, valid_for=200)
    bob = _party(vault, key_ttl=LONG // 2, valid_for=LONG)
    _, b = _open(alice, bob)
    assert b.check_peer(T + 200) == []  # valid through valid_until (now <= valid_until)
    found = closed(b.check_peer(T + 201))
    assert found.reason is ChannelFailure.PEER_INVALID
    assert "valid" in found.detail
    assert str(T + 200) in found.detail


def test_a_refresh_after_the_attestation_expired_closes_the_channel() -> None:
    """The in-band refresh (a CREDENTIALS frame) re-verifies the peer as the re-check does:
    after the attestation's expiry it cannot keep the channel going either."""
    vault = SoftwareVault()
    alice = _party(vault, key_ttl=100, valid_for=LONG)
    bob = _party(vault, key_ttl=LONG // 2, valid_for=LONG)
    a, b = _open(alice, bob)
    a.send_credentials(())
    _, seen_b = pump(a, b, T + 150)
    assert closed(seen_b).reason is ChannelFailure.PEER_INVALID


def test_a_nodes_standing_refuses_an_expired_peer_between_rechecks(troth_home: Path) -> None:
    """Between re-checks (every 30 s) the node judges each request by the peer's standing,
    which re-verifies its credentials' windows: the peer's own two dates count there too."""
    vault = SoftwareVault()
    alice = _party(vault, key_ttl=100, valid_for=200)
    init_node("desk")
    with open_node("desk") as node:
        trust = NodeTrust(node, None)
        trust.reload(T)
        peer = VerifiedPeer(alice.party.identity, (), key_expires_at=T + 100)
        assert trust.standing(peer, T + 99).problem is None
        problem = trust.standing(peer, T + 100).problem
        assert problem is not None
        assert "attestation expired" in problem
        shown = VerifiedPeer(alice.party.identity, ())  # not from a handshake: no key date
        assert trust.standing(shown, T + 200).problem is None
        problem = trust.standing(shown, T + 201).problem
        assert problem is not None
        assert "outside its validity" in problem
