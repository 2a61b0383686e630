"""Review 56s: attacks on reviews 56m (a relay's host tag names the sender's network) and 56n
(the recorder's retry in the log's chain turn, `<log>.chains`) that did not work. Each is a real
attempt that would fail if the defence broke."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

import troth.limits
from tests.support.traces import tool_call
from tests.test_review56n_concurrency import _interloped
from troth.errors import StorageError, TrothError
from troth.node.channel_sources import source_network_of as _source_network
from troth.routing import Address, Router
from troth.routing.message import RoutedMessage
from troth.storage.peers import Turns
from troth.trace.verify import verify_log
from troth.transport.connection import _accepted_address, host_tag
from troth.transport.tcp import TcpConnection, TcpTransport

# -- 56m: the relay's host tag -------------------------------------------------------------------


def test_a_sender_cannot_name_its_own_tag_in_the_return_route() -> None:
    """mallory sends through the relay a message whose return route already holds the tag the
    relay gave carol's host: the node behind the relay counts it by the tag the relay put in
    front (mallory's host's), each hop prepending the connection it came on."""

    async def test() -> None:
        carol = _accepted_address("tcp", "10.9.9.9")
        mallory = _accepted_address("tcp", "10.6.6.6")
        sent = RoutedMessage((Address("relay", "acme"),), (carol,), b"enroll")
        at_relay = RoutedMessage.arrived(sent.encode(), mallory)  # the relay's connection
        node = TcpTransport(Router())
        to_relay = TcpConnection(node, outgoing=True, listener=None, peer="relay:4000")
        at_node = RoutedMessage.arrived(at_relay.stepped().encode(), to_relay.address)
        key = to_relay.origin(at_node.return_route)
        assert key == to_relay.relayed_sender((to_relay.address, mallory))
        assert f" via host {host_tag(mallory)}" in key
        assert _source_network(key) != _source_network(to_relay.origin((to_relay.address, carol)))

    asyncio.run(test())


def test_an_ipv6_network_is_one_directly_and_through_a_relay() -> None:
    """Two /64s of one /48 are one network whether they reach the node directly or through
    a relay (and two sources either way); a /64 of the next /48 is another network."""

    async def test() -> None:
        hosts = ("2001:db8:1:1::/64", "2001:db8:1:2::/64", "2001:db8:2:1::/64")
        node = TcpTransport(Router())
        direct = []
        for host in hosts:
            accepted = TcpConnection(node, outgoing=False, listener=None, peer="?")
            accepted.set_peer(host.partition("/")[0] + "1", 40000)
            direct.append(accepted.origin(()))
        to_relay = TcpConnection(node, outgoing=True, listener=None, peer="relay:4000")
        relayed = [
            to_relay.origin((to_relay.address, _accepted_address("tcp", host))) for host in hosts
        ]
        for keys in (direct, relayed):
            one, same, other = (_source_network(key) for key in keys)
            assert one == same != other
            assert len(set(keys)) == 3

    asyncio.run(test())


# -- 56n: the log's chain turn ---------------------------------------------------------------------


def test_a_chain_turn_held_elsewhere_fails_the_retry_at_the_deadline_and_no_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process of the node holds `trace.db.chains` and never lets go: a record refused
    once (another writer's record came first) waits for the turn until the deadline, then
    fails with a StorageError (a TrothError: a revocation's caller says it stands but is not
    recorded); nothing hangs, the log is intact, and the next record goes in."""
    monkeypatch.setattr(troth.limits, "MAX_TRACE_CHAIN_RETRY_SECONDS", 0.2)
    path = tmp_path / "trace.db"
    recording, interloped = _interloped(monkeypatch, path, 1)
    holder = Turns(path.with_name("trace.db.chains"), 60)
    try:
        with holder.turn(), pytest.raises(StorageError) as refused:
            recording.record(tool_call())
    finally:
        holder.close()
    assert isinstance(refused.value, TrothError)
    assert "trace.db.chains" in str(refused.value)
    assert interloped == [1]
    assert recording.record(tool_call()).index == 2  # (0 its own, 1 the other's)
    verify_log(recording.log)


def test_the_chain_turns_file_is_private_under_an_open_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under umask 000 the chain turn's lock file is made 0600: no other user opens it to
    hold the turn."""
    old = os.umask(0)
    try:
        recording, _ = _interloped(monkeypatch, tmp_path / "trace.db", 1)
        recording.record(tool_call())  # (refused once: signed again in the chain turn)
    finally:
        os.umask(old)
    chains = tmp_path / "trace.db.chains"
    assert stat.S_IMODE(chains.lstat().st_mode) == 0o600


def test_a_link_planted_at_the_chain_turns_path_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A symbolic link at `trace.db.chains` (to a file that does not exist yet): the retry
    fails with a StorageError naming it, and no file is made where it points."""
    target = tmp_path / "elsewhere"
    (tmp_path / "trace.db.chains").symlink_to(target)
    recording, _ = _interloped(monkeypatch, tmp_path / "trace.db", 1)
    with pytest.raises(StorageError, match=r"trace\.db\.chains"):
        recording.record(tool_call())
    assert not target.exists()
