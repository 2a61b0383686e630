"""Review 45h (limits end to end), relays: the longest relay name a holder may claim, and the
relay state files at their limits.

1. `NodeRuntime.create_relay(name, at)` took any `at` of up to MAX_ROUTE_LENGTH hops and kept the
   relay's route, `at` + `/relay/NAME`, in `<node dir>/own-relays.json` (troth.node.own_relays:
   `kept_relays`). At an `at` of MAX_ROUTE_LENGTH hops that route has one hop more than a route
   may have: a name no sender can address (`parse_route` refuses the route), and a book the
   node writes but refuses to read back (`OwnRelays.load`: ConfigError), so the node did not
   start again. Was a strict xfail until `kept_relays` refused (RoutingError) a relay route
   that is not one (`parse_route`: at most MAX_ROUTE_LENGTH hops, a valid name);
   `create_relay` asks it before anything is sent.

The passing tests pin what holds: a name of MAX_ADDRESS_TEXT characters (what a `troth.relay`
attribute of MAX_ATTRIBUTE_TEXT holds) is created at the hub and reached through it, and
relays.json and own-relays.json at their most entries of their longest keys read back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, run_memnet
from troth import limits
from troth.errors import RoutingError
from troth.identity import Identifier
from troth.node.links import Links
from troth.node.own_relays import OwnRelays, kept_relays
from troth.node.services.relay import RelayBook
from troth.routing import parse_route

LONGEST = "r" * limits.MAX_ADDRESS_TEXT
"""The longest relay name (and the longest `troth.relay` attribute value)."""
WHO = Identifier(bytes(range(32)))


def _hop(n: int) -> str:
    """A relay hop of the longest value, numbered."""
    return "/relay/" + f"{n:04d}".rjust(limits.MAX_ADDRESS_TEXT, "x")


def test_the_longest_relay_name_is_created_and_reached(tmp_path: Path) -> None:
    assert limits.MAX_ADDRESS_TEXT <= limits.MAX_ATTRIBUTE_TEXT  # the attribute holds it

    async def test(net: MemNet) -> None:
        b = await net.node("b")
        await b.enroll(net.ticket(**{"troth.relay": LONGEST}), "b")
        created = await b.create_relay(LONGEST, HUB)
        assert created["route"] == f"{HUB}/relay/{LONGEST}"
        a = await net.member("a")
        assert await a.send_message(f"{HUB}/relay/{LONGEST}/service/echo", "hi") == "hi"
        hub = net.hub
        assert hub is not None
        assert LONGEST in RelayBook(hub.node.path / "relays.json").load()
        assert f"{HUB}/relay/{LONGEST}" in OwnRelays(b.node.path / "own-relays.json").load()

    run_memnet(test, tmp_path / "home", budget=60)


def test_relays_json_at_its_limits_reads_back(tmp_path: Path) -> None:
    """What a relay node may hold: 2 x MAX_RELAYS names (past MAX_RELAYS, shares), each of
    MAX_ADDRESS_TEXT characters, within MAX_RELAY_FILE_BYTES."""
    book = RelayBook(tmp_path / "relays.json")
    names = {
        f"{n:05d}".rjust(limits.MAX_ADDRESS_TEXT, "x"): WHO for n in range(2 * limits.MAX_RELAYS)
    }
    book.save(names)
    assert (tmp_path / "relays.json").stat().st_size <= limits.MAX_RELAY_FILE_BYTES
    assert book.load() == names


def test_own_relays_json_at_its_limits_reads_back(tmp_path: Path) -> None:
    """MAX_OWN_RELAYS relay routes of MAX_ROUTE_LENGTH hops, every value at MAX_ADDRESS_TEXT:
    within MAX_OWN_RELAYS_FILE_BYTES, read back."""
    book = OwnRelays(tmp_path / "own-relays.json")
    at = "".join(_hop(n) for n in range(limits.MAX_ROUTE_LENGTH - 2))
    routes = {
        f"/tcp/{'h' * (limits.MAX_ADDRESS_TEXT - 5)}:4000{at}{_hop(n)}": WHO
        for n in range(limits.MAX_OWN_RELAYS)
    }
    assert all(len(parse_route(r)) == limits.MAX_ROUTE_LENGTH for r in routes)
    book.save(routes)
    assert (tmp_path / "own-relays.json").stat().st_size <= limits.MAX_OWN_RELAYS_FILE_BYTES
    assert book.load() == routes


async def _nothing(_: object) -> None:
    return None


def test_a_relay_route_past_the_longest_route_is_refused_before_it_is_kept(
    tmp_path: Path,
) -> None:
    """Relays 1: the book's maker refuses a relay route of MAX_ROUTE_LENGTH + 1 hops (a link at
    MAX_ROUTE_LENGTH hops), typed, rather than writing what `OwnRelays.load` refuses."""
    links = Links(_nothing)
    at = "/tcp/hub:4000" + "".join(_hop(n) for n in range(limits.MAX_ROUTE_LENGTH - 1))
    assert len(parse_route(at)) == limits.MAX_ROUTE_LENGTH
    with pytest.raises(RoutingError):
        kept_relays(links, adding=f"{at}/relay/b")
    with pytest.raises(RoutingError):
        kept_relays(links, adding=f"{HUB}/relay/not a name")
    assert kept_relays(links, adding=f"{at[: at.rindex('/relay/')]}/relay/b") == {}


def test_create_relay_at_the_longest_route_is_refused_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    """Relays 1, through the node: `create_relay` at an `at` of MAX_ROUTE_LENGTH hops is refused
    (RoutingError, naming the hops) before a channel is opened or a file written."""

    async def test(net: MemNet) -> None:
        b = await net.node("b")
        at = HUB + "".join(_hop(n) for n in range(limits.MAX_ROUTE_LENGTH - 1))
        with pytest.raises(RoutingError, match="hops"):
            await b.create_relay("b", at)
        assert not (b.node.path / "own-relays.json").exists()
        assert not b.links.links

    run_memnet(test, tmp_path / "home", budget=30)
