"""Review 57e, relink 1: a relayed member does not get back to a hub whose authority rotated.

The hub (authority and relay) stops, its operator rotates the authority's key, and it starts
again. Its feed publishes its own rotation first, so every chain issued under its older
history is superseded there: b's link to the hub presents b's credential, and the hub refuses
each handshake (`credential invalid ... superseded history`). The handshake showed b's node the
rotated history, so the credential is no longer presentable, but the node renews what it shows
only in its maintenance round (IDENTITY_CACHE, MAINTENANCE_SECONDS): until then the link kept
presenting the superseded chain, one refused handshake at the hub per attempt, and b's relay
stayed down. Measured with real daemons (b's backoff capped at 1 s): 58 refused handshakes, the
relay back 28 s after the hub's return, against the documented bound of the backoff cap plus
one handshake (docs/protocols.md, "Reconnecting"). Here the node's clock is fixed and no
maintenance round runs: the link never came back.

Fixed (was a strict xfail): `NodeRuntime._restore` renews what the node shows when the peer
refuses the attempt's handshake for its credential (`ChannelError.by_peer`,
`CREDENTIAL_INVALID`), so the next attempt, after the backoff, shows no superseded chain.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.nodes import MemNet, run_memnet
from tests.support.relayed import relayed_b
from tests.test_reconnect import crash_and_restart_hub, link_state, until
from troth.node.links import LinkState


def test_a_relayed_member_gets_back_to_a_hub_whose_authority_rotated(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        b = await relayed_b(net)
        hub_node = net.hub
        assert hub_node is not None

        async def rotate() -> None:
            hub_node.node.identities.rotate("hub", now=net.clock.now())

        await crash_and_restart_hub(net, down=rotate)
        await until(lambda: link_state(b) is LinkState.CONNECTED, timeout=10)
        assert net.hub is not None
        assert net.hub.status()["services"]["relay"]["b"]["state"] == "up"
        (held, *_) = b.node.wallet.held("b")
        assert held.authority == net.authority.identifier.digest

    run_memnet(test, tmp_path)
