"""Review 68t (expiry: a node's own channels past its channel-key attestation) findings.

expiry 1 (medium): review 68n made every open channel close (`peer invalid`) once the
   attestation of the channel key its handshake proved expires (PURPOSE_KEY_TTL, 30 days). The
   node renews that attestation a day before (`IdentityService.purpose_key`, asked each
   maintenance round), but only new handshakes showed the renewed key: `channel_to` reused the
   open channel to a route (a link's, the one to its authority) with the old key until the
   peer's clock reached its expiry. Then the peer refused every request over it (its standing
   names the expired attestation: a denial, not a reconnect) until its next re-check closed it,
   and every channel the node opened with that key — all of them, one key a node — was cut in
   the same round, every link reconnecting at once. Now the maintenance round closes the
   node's channels that show a key whose attestation was since renewed, each at its own time
   within the last half day before the expiry (`troth.node.key_renewal`), and `channel_to`
   reuses none past its own time: the link reconnects with the renewed key well before any
   peer cuts it.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

from tests.support.channels import T
from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.support.parties import make_channel_party
from troth import limits
from troth.errors import ChannelFailure
from troth.identity.attestation import PurposeKeyAttestation
from troth.identity.service import PURPOSE_KEY_TTL
from troth.node import Node
from troth.node.channel_ends import ChannelEnd
from troth.node.key_renewal import KEY_REPLACE_MARGIN, KEY_REPLACE_WINDOW, replace_at
from troth.node.links import LinkState
from troth.vault import SoftwareVault

TTL = 400
"""The channel-key attestations' validity here (PURPOSE_KEY_TTL's 30 days, shortened: the
feeds stay fresh only while the clock moves in steps under FEED_STALENESS)."""
STEP = 20


def _short_keys(node: Node) -> None:
    node.identities.purpose_key_ttl = TTL


def _expires_at(end: ChannelEnd) -> int:
    return PurposeKeyAttestation.decode(end.channel.me.attestation).expires_at


def test_a_link_shows_the_renewed_channel_key_before_the_old_one_expires(
    tmp_path: Path,
) -> None:
    async def test(net: MemNet) -> None:
        a = await net.node("a", prepare=_short_keys)
        await a.enroll(net.ticket(), "a")
        first = await a.channel_to(route(HUB))
        expires_at = _expires_at(first)
        assert expires_at - net.clock.now() > TTL - 60
        while net.clock.now() < expires_at - TTL // 4:  # to its last replacement time
            net.clock.advance(STEP)
            for node in (net.hub, a):
                assert node is not None
                await node.maintain()
        await asyncio.sleep(0.01)  # the closes spawned
        now = await a.channel_to(route(HUB))
        assert now is not first
        assert _expires_at(now) - net.clock.now() > TTL // 2  # the renewed key's
        assert first.channel.closed
        assert first.channel.close_reason is ChannelFailure.NORMAL  # by a, not cut by the hub
        (row,) = a.link_rows()
        assert row.state is LinkState.CONNECTED

    run_memnet(test, tmp_path)


def test_a_nodes_channels_are_replaced_each_at_its_own_time_before_the_skew() -> None:
    """One key for every channel of a node: their replacement times spread over the window
    (no reconnect storm), each at least KEY_REPLACE_MARGIN (over the clock skew a peer may
    have) before the expiry; a short validity scales the window down within it."""
    vault = SoftwareVault()
    party = make_channel_party(vault, now=T, key_ttl=PURPOSE_KEY_TTL)
    attestation = party.me().attestation
    expires_at = PurposeKeyAttestation.decode(attestation).expires_at
    times = [replace_at(attestation, f"chan-{secrets.token_hex(8)}") for _ in range(200)]
    assert all(t is not None for t in times)
    at = [t for t in times if t is not None]
    assert min(at) >= expires_at - KEY_REPLACE_WINDOW
    assert max(at) < expires_at - KEY_REPLACE_MARGIN
    assert len(set(at)) > 150
    assert KEY_REPLACE_MARGIN > 2 * limits.MAX_CLOCK_SKEW_SECONDS  # either clock off
    short = make_channel_party(vault, now=T, key_ttl=400).me().attestation
    t = replace_at(short, "chan-0123456789abcdef")
    assert t is not None
    assert T + 200 <= t < T + 300
    assert replace_at(b"not an attestation", "chan-0") is None
