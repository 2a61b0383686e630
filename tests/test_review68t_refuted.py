"""Review 68t (expiry): attacks on the mid-channel expiry of review 68n that did not work.

- A peer whose clock is off within the skew is cut neither earlier nor later than a handshake
  at the same time would refuse it: the handshake and the re-check read the same two dates
  with the same bound (`now < expires_at` for the channel key's attestation, `now <=
  valid_until` for the current key), in the verifier's clock, no skew added to either: a
  channel admitted at `t` is kept by a re-check at `t`, and one a re-check closes at `t` a new
  handshake at `t` refuses too (so a reconnect never lands on a key the re-check would cut).
- The close is one typed failure (ChannelError-coded `peer invalid` in a Closed event, told to
  the peer as such), its detail naming the date that passed, not a generic refusal.
"""

from __future__ import annotations

import pytest

from tests.support.channels import T, closed, pump
from tests.support.parties import ChannelParty, make_channel_party
from troth.channel import AnyAuthenticatedIdentity, ChannelTrust, Event, SecureChannel
from troth.errors import ChannelFailure
from troth.vault import SoftwareVault

ANYONE = ChannelTrust(policy=AnyAuthenticatedIdentity())
LONG = 10 * 365 * 86_400


def _handshake(
    alice: ChannelParty, bob: ChannelParty, now: int
) -> tuple[SecureChannel, list[Event]]:
    a = SecureChannel.initiate(me=alice.me(), trust=ANYONE)
    b = SecureChannel(initiator=False, me=bob.me(), trust=ANYONE)
    _, seen_b = pump(a, b, now)
    return b, seen_b


@pytest.mark.parametrize(("key_ttl", "valid_for"), [(100, LONG), (LONG // 2, 100)])
def test_the_recheck_cuts_exactly_where_a_handshake_at_the_same_time_refuses(
    key_ttl: int, valid_for: int
) -> None:
    vault = SoftwareVault()
    alice = make_channel_party(vault, now=T, key_ttl=key_ttl, valid_for=valid_for)
    bob = make_channel_party(vault, now=T, key_ttl=LONG // 2, valid_for=LONG)
    # the last second a handshake admits alice (attestation: now < T+100; key: now <= T+100)
    last = T + 99 if key_ttl == 100 else T + 100
    b, seen = _handshake(alice, bob, last)
    assert b.peer is not None, seen
    assert b.check_peer(last) == []  # kept through the same second
    refused, seen = _handshake(alice, bob, last + 1)
    assert refused.peer is None
    by_handshake = closed(seen)
    by_recheck = closed(b.check_peer(last + 1))
    assert by_handshake.reason is by_recheck.reason is ChannelFailure.PEER_INVALID
    word = "attestation expired" if key_ttl == 100 else "outside its validity"
    assert word in by_handshake.detail
    assert word in by_recheck.detail
