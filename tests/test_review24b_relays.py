"""Review 24b (today's code under hostile peers: relays).

1. the relay re-decision of every maintenance round (7373b43, `RelayService._recheck`) logs a
   WARNING for each relay it stops ("relay NAME no longer forwards") and an INFO for each it
   forwards again, a line per name per change, outside any lines-a-minute bound. What it
   decides on is what the owner's channel shows now, and the owner chooses that: an in-band
   refresh with no chain (a stranger, refused) and one with its chain again (allowed), up to
   8 back to back and one a second after that. So a member with troth.relay=* and its 16
   names (MAX_RELAYS_PER_OWNER) writes 16 lines to the hub's log every maintenance round
   (30 s), for as long as it likes: 32 lines a minute from one member, every member as many.

The test asserts the secure behaviour and was a strict xfail until its fix. Fixed: the
re-check's lines go through the relay service's own rate-limited log (LOG_LINES_PER_MINUTE,
the rest counted and summarised in the next line).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_reconnect import until
from troth import limits

ROUNDS = 3


def test_an_owner_flipping_its_credentials_writes_a_bounded_number_of_relay_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """b (troth.relay=*) holds its 16 relay names at the hub, then shows no chain and its
    chain again in turn, a maintenance round after each: every name stops and forwards again
    each time, and the hub logs a few lines a minute of it, not a line per name each round."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        b = await net.member("b", **{"troth.relay": "*"})
        names = [f"b{n}" for n in range(limits.MAX_RELAYS_PER_OWNER)]
        for name in names:
            await b.create_relay(name, HUB)
        to_hub = await b.channel_to(route(HUB))
        (theirs,) = [e for e in hub.channels.ends.values() if e.peer_route and e.caller]
        credentials = (await b._renew_identity()).credentials
        relays = hub.host.services["relay"]
        caplog.clear()
        with caplog.at_level(logging.INFO):
            for _ in range(ROUNDS):
                await to_hub.present(())  # a stranger's channel: may create no relay
                await until(
                    lambda: theirs.caller is not None and not theirs.caller.peer.credentials
                )
                await hub.maintain()
                assert relays.status()[names[0]]["state"] != "up"
                await to_hub.present(credentials)  # its chain again: it may
                await until(
                    lambda: theirs.caller is not None and bool(theirs.caller.peer.credentials)
                )
                await hub.maintain()
                assert relays.status()[names[0]]["state"] == "up"
        lines = [r for r in caplog.records if r.name == "troth.node.relay"]
        assert len(lines) <= 20, f"{len(lines)} lines for {ROUNDS} rounds of one member"

    run_memnet(test, tmp_path / "home", budget=60)
