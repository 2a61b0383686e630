"""Review 30, busy 1: a `busy` answer for a request dropped on a congested way on named the
connection it was dropped at (`Congested`'s text: "tcp 10.0.0.4:... is not reading"), so any
caller whose request met a congested hop learned the network address of the node behind it:
behind a relay, the relayed node's address, which the relay otherwise keeps to itself
(docs/protocols.md, "Services": `busy` says the request did not run, and nothing more).

Was a strict xfail until the channel manager answered `busy` with a fixed text, the
connection named only in its own (rate-limited) log.
"""

from __future__ import annotations

import pytest

from tests.test_channel_manager import ECHO, HUB, Net, run
from tests.test_review27c_congested import ONWARD, congested_way_on
from troth.errors import Busy
from troth.node.services import call
from troth.routing import RoutedMessage, parse_route


def test_a_busy_answer_names_no_hop_behind_the_node(monkeypatch: pytest.MonkeyPatch) -> None:
    async def test(net: Net) -> None:
        refused: list[RoutedMessage] = []
        await congested_way_on(net, monkeypatch, refused)
        a = net.peer("10.0.0.2")
        end = await a.manager.open(parse_route(HUB))
        with pytest.raises(Busy) as caught:
            await call(a.router, (end.enc, ONWARD, ECHO), "echo", "x", timeout=1)
        assert refused  # it was dropped at b's connection (10.0.0.4)
        assert "10.0.0.4" not in str(caught.value)
        assert "congested" in str(caught.value)

    run(test)
