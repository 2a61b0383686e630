"""Review 56w, relay tags (review 56s's letters, review 56m's four digits).

Tags 1: a relay of before review 56m — every relay there is: review 56m and review 56s landed
in one session, so no relay ever named a network in its tag's first four hex digits — tags the
host alone (`/worker/tcp-h<8 hex: a keyed hash of the host>-<random>`), and the node behind it
read those four digits as the sender's network (`network_of_tag`): the hosts behind such a
relay shared enroll budgets and half-open handshake shares in 65,536 buckets whatever their
networks. A party with an IPv6 /48 (65,536 /64s, each a host to the relay) holds a bucket of
most other senders' (about two thirds of all values): spending its budgets spends theirs, where
directly its /48 is one network, and before review 56m each host behind the relay was its own.
Without the relay's letters a relayed sender's network is its host (the tag whole), as before
review 56m. Was a strict xfail until `relayed_network` counted a sender by the letters alone.
"""

from __future__ import annotations

import asyncio
import re
from hashlib import sha256
from pathlib import Path

import pytest

import troth.transport.connection
from tests.test_review56s_tags import _relayed
from troth.node.channel_sources import source_network_of as _source_network
from troth.routing import Address, Router
from troth.transport.connection import _accepted_address
from troth.transport.tcp import TcpConnection, TcpTransport


def relayed_by_a_relay_of_before(hosts: list[str], key: bytes = bytes(16)) -> list[str]:
    """The origin keys at a node of senders from `hosts` (as `source_host` gives them) relayed
    to it over its connection to a relay of before review 56m: its address for each, the host's
    keyed hash alone (review 29b's `_accepted_address`)."""

    async def keys() -> list[str]:
        to_relay = TcpConnection(TcpTransport(Router()), outgoing=True, listener=None, peer="r:1")
        hops = [
            Address("worker", f"tcp-h{sha256(key + host.encode()).hexdigest()[:8]}-{n:016x}")
            for n, host in enumerate(hosts)
        ]
        return [to_relay.origin((to_relay.address, hop)) for hop in hops]

    return asyncio.run(keys())


def test_tags1_a_party_behind_a_relay_of_before_shares_no_other_networks_budget() -> None:
    """Sixteen senders of sixteen networks and a party's 65,536 /64s of one /48, all behind a
    relay of before: no network of the party's is counted as one of the sixteen."""
    party = [f"2001:db8:7:{n:x}::/64" for n in range(2**16)]
    keys = relayed_by_a_relay_of_before([f"10.{n}.0.1" for n in range(16)] + party)
    theirs = {_source_network(key) for key in keys[:16]}
    assert len(theirs) == 16
    assert not theirs.intersection(_source_network(key) for key in keys[16:])


def test_tags1_the_relays_letters_still_count_a_network_as_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A relay of now names the network in letters: the party's /64s are one network there."""
    monkeypatch.setattr(troth.transport.connection, "_HOST_KEY", bytes(16))
    keys = _relayed([f"2001:db8:7:{n:x}::/64" for n in range(256)])
    assert len({_source_network(key) for key in keys}) == 1


def test_the_documented_form_is_the_relays() -> None:
    """Docs 1: docs/formats.md gives the address a node names an accepted connection by, and
    the one of a connection it opened: both are what it writes (it gave neither: a strict
    xfail until it did)."""
    text = (Path(__file__).parent.parent / "docs" / "formats.md").read_text()
    assert "`/worker/<kind><letters>-h<tag>-<16 hex>` (41 characters for `tcp`)" in text
    accepted = _accepted_address("tcp", "10.1.1.1").value
    assert re.fullmatch(r"tcp[a-z]{11}-h[0-9a-f]{8}-[0-9a-f]{16}", accepted)
    assert len(accepted) == 41

    async def opened() -> str:
        node = TcpTransport(Router())
        return TcpConnection(node, outgoing=True, listener=None, peer="r:1").address.value

    assert re.fullmatch(r"tcp-[0-9a-f]{16}", asyncio.run(opened()))
