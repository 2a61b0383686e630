"""Review 65l: attacks on review 65e's channel fixes (a local failure while a frame is read
closes the channel; a peer's CLOSE detail quoted as one line) that did not work. Each test is
the attack; it fails if the defence it names breaks."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import pytest

from tests.support.channels import T, World, closed, dropped, make_world, pump
from troth.channel import (
    ChannelIdentity,
    ChannelState,
    Closed,
    DropReason,
    SecureChannel,
    VerifiedPeer,
)
from troth.encoding import cbor
from troth.errors import ChannelError, ChannelFailure, DecodeError, StorageError, TrothError
from troth.identity import verify_history
from troth.node.forked_refusal import refused_as_fork
from troth.routing import RoutedMessage


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


def _with(**junk: bytes | tuple[bytes, ...]) -> Callable[[ChannelIdentity], ChannelIdentity]:
    return lambda me: dataclasses.replace(me, **junk)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (_with(history=b"\x00junk"), ChannelFailure.PEER_INVALID),
        (_with(history=b"\x9f\x9f\x9f"), ChannelFailure.PEER_INVALID),
        (_with(attestation=b"\xa1\x01\x02"), ChannelFailure.PEER_INVALID),
        (_with(credentials=(b"\x00junk",)), ChannelFailure.CREDENTIAL_INVALID),
    ],
)
def test_a_peers_malformed_message_3_is_its_refusal_not_a_local_failure(
    world: World, spoil: Callable[[ChannelIdentity], ChannelIdentity], reason: ChannelFailure
) -> None:
    """Attack: the initiator's message 3 holds bytes that fail to decode inside the checks
    (a history, an attestation, a chain), hoping the catch-all of review 65e (any TrothError
    while a frame is read) reports it as a failure of the responder's own, telling the
    initiator nothing it can act on and the responder's host a local fault. Defence: the
    checks map a peer's bytes to `ChannelError` (verification.py), so the refusal names the
    peer's fault on both ends."""
    me = spoil(world.alice.me((world.credential(world.alice),)))
    a, b = SecureChannel.initiate(me=me, trust=world.trust()), world.responder()
    seen_a, seen_b = pump(a, b)
    refusal = closed(seen_b)
    assert refusal.reason is reason
    assert "local failure" not in refusal.detail
    told = closed(seen_a)
    assert told.by_peer
    assert told.reason is reason
    assert "peer's own" not in told.detail


def test_message_3_again_after_a_failed_one_is_not_read_nor_answered(world: World) -> None:
    """Attack: message 3, the responder's store failing on it, sent again (a replay, or the
    initiator's retry), hoping for a second Closed event (the host's clean-up run twice) or a
    second CLOSE. Defence: `_failed_here` closes the state once; frames for a closed channel
    are dropped unread."""
    failing = dataclasses.replace(world.trust(), observe=_failing_store)
    a, b = world.initiator(), world.responder(trust=failing)
    for sent in a.outgoing():
        b.receive(sent, T + 1)
    for sent in b.outgoing():
        a.receive(sent, T + 1)
    (message_3,) = a.outgoing()
    events = b.receive(message_3, T + 1)
    assert [type(e) for e in events] == [Closed]
    assert b.state is ChannelState.CLOSED
    assert len(b.outgoing()) == 1  # its one CLOSE
    assert dropped(b.receive(message_3, T + 1)) == [DropReason.UNEXPECTED]
    assert not b.has_outgoing
    assert b.check_peer(T + 2) == []


def test_a_store_failing_at_a_refresh_sends_no_local_text(world: World) -> None:
    """Attack: the peer refreshes its credentials while the responder's store fails, to read
    the local error (a path, a database message) in the CLOSE it gets back. Defence: the
    CLOSE of `_failed_here` says only that the failure is the sender's own."""
    calls = 0

    def store(peer: VerifiedPeer) -> None:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise StorageError("/srv/troth/node.db: disk I/O error")

    a = world.initiator()
    b = world.responder(trust=dataclasses.replace(world.trust(), observe=store))
    pump(a, b)
    a.send_credentials((world.credential(world.alice),))
    seen_b = [e for p in a.outgoing() for e in b.receive(p, T + 2)]
    assert "node.db" in closed(seen_b).detail  # the host is told
    told = closed([e for p in b.outgoing() for e in a.receive(p, T + 2)])
    assert told.by_peer
    assert told.reason is ChannelFailure.PEER_INVALID
    assert "node.db" not in told.detail
    assert "disk" not in told.detail


def test_a_close_detail_of_c1_controls_is_one_line(world: World) -> None:
    """Attack: a peer's CLOSE detail of C1 controls (U+0085 NEL, a line break to
    `str.splitlines` and some log viewers; U+009B CSI, a terminal's escape) and DEL, hoping
    one survives `one_line_text` into the Closed event (and the node's log line). Defence:
    every control escaped."""
    a, b = world.initiator(), world.responder()
    pump(a, b)
    b.close(ChannelFailure.NORMAL, "x\u0085y\u009bz\x7f")
    events = [e for p in b.outgoing() for e in a.receive(p, T + 2)]
    assert closed(events).detail == "x\\x85y\\x9bz\\x7f"


def _failing_store(peer: VerifiedPeer) -> None:
    raise StorageError("database is locked")


def _texts(value: object) -> Iterator[tuple[object, ...]]:
    """The paths to every text in a decoded CBOR value (into nested CBOR byte strings)."""
    if isinstance(value, str):
        yield ()
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from ((i, *p) for p in _texts(item))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from ((key, *p) for p in _texts(item))
    elif isinstance(value, bytes):
        try:
            inner = cbor.decode(value)
        except DecodeError:
            return
        yield from ((_CBOR, *p) for p in _texts(inner))


_CBOR = object()


def _put(value: object, path: tuple[object, ...], text: str) -> object:
    if not path:
        return text
    head, rest = path[0], path[1:]
    if head is _CBOR:
        assert isinstance(value, bytes)
        return cbor.encode(_put(cbor.decode(value), rest, text))
    if isinstance(value, list):
        assert isinstance(head, int)
        return [_put(v, rest, text) if i == head else v for i, v in enumerate(value)]
    assert isinstance(value, dict)
    return {k: _put(v, rest, text) if k == head else v for k, v in value.items()}


def test_a_peers_texts_with_line_breaks_do_not_reach_the_refusal_as_lines(world: World) -> None:
    """Attack: every text of the chain and the history a peer presents (message 2 or 3, a
    refresh) in turn made a newline, a U+2028 and a terminal escape, hoping a decoder or a
    verifier quotes it into the refusal (the ChannelError detail that reaches the Closed
    event, the CLOSE sent back, `open()`'s error and the link's log line). Defence: the
    decoders refuse texts with control characters and the errors quote none of them (each
    refusal stays one line), and each is a TrothError, none another exception."""
    chain = world.credential(world.alice)
    me = world.alice.me((chain,))
    presenter = verify_history(me.history, now=T)
    trust = world.trust()
    verifier = trust.verifier
    assert verifier is not None

    def chain_check(data: bytes) -> None:
        verifier.verify(data, presenter=presenter, feeds=trust.feeds(), now=T)

    def history_check(data: bytes) -> None:
        verify_history(data, now=T)

    tried = 0
    for data, check in ((chain, chain_check), (me.history, history_check)):
        value = cbor.decode(data)
        for path in _texts(value):
            spoiled = cbor.encode(_put(value, path, "A\nB\u2028C\x1b[2J"))
            with pytest.raises(TrothError) as refused:
                check(spoiled)
            tried += 1
            assert str(refused.value).splitlines() == [str(refused.value)]
            assert "\x1b" not in str(refused.value)
    assert tried >= 4


def test_a_replayed_refresh_does_not_reach_a_failing_store(world: World) -> None:
    """Attack: someone on the path records the peer's genuine credential refresh, waits for
    the responder's store to fail (node.db locked by another process), and replays it, so that
    review 65e's close on a local failure ends a channel neither end wanted ended. Defence:
    only a frame that authenticates and is no replay reaches the checks (the replay window
    drops it first), so the store is not consulted and the channel stays open."""
    failing = False
    calls = 0

    def store(peer: VerifiedPeer) -> None:
        nonlocal calls
        calls += 1
        if failing:
            raise StorageError("database is locked")

    a = world.initiator()
    b = world.responder(trust=dataclasses.replace(world.trust(), observe=store))
    pump(a, b)
    a.send_credentials((world.credential(world.alice),))
    recorded = a.outgoing()
    for sent in recorded:
        b.receive(sent, T + 2)
    assert (b.state, calls) == (ChannelState.OPEN, 2)  # handshake, refresh
    failing = True
    events = [e for p in recorded for e in b.receive(p, T + 3)]
    assert dropped(events) == [DropReason.DUPLICATE]
    assert (b.state, calls) == (ChannelState.OPEN, 2)


def test_a_close_for_a_local_failure_is_not_read_as_a_fork_refusal(world: World) -> None:
    """Attack (on the member's side): the authority's node, its store failing at message 3,
    closes the member's handshake with `peer invalid`, the very code its fork refusal uses
    (forked_refusal.py); if the member's node read it as one, it would tell its owner to give
    up the identity ("retrying cannot help"). Defence: a fork refusal is recognised by its
    whole detail, and the CLOSE of a local failure says only that the failure is the
    sender's own."""
    failing = dataclasses.replace(world.trust(), observe=_failing_store)
    a, b = world.initiator(), world.responder(trust=failing)
    seen_a, _ = pump(a, b)
    told = closed(seen_a)
    assert told.by_peer
    error = ChannelError(told.reason, told.detail, by_peer=told.by_peer)  # as `open()` raises
    assert not refused_as_fork(error)
    assert refused_as_fork(  # (the defence's positive case: the authority's fork refusal)
        ChannelError(
            ChannelFailure.PEER_INVALID,
            "change 2: history forks from the stored copy",
            by_peer=True,
        )
    )


def test_a_routed_messages_addresses_with_line_breaks_reach_no_log_line() -> None:
    """Attack: a routed message (anyone's to send over a connection) whose route addresses
    hold a newline, a U+2028 or a terminal escape, hoping the transport's "dropped a malformed
    message: %s" line quotes it as it is. Defence: the route decoder refuses such an address,
    quoting it escaped (its `repr`)."""
    route = [["tcp", "hub:4000"], ["service", "echo"]]
    tried = 0
    for at in range(2):
        for part in range(2):
            for junk in ("a\nb", "a\u2028b", "\x1b[2J"):
                spoiled = [list(hop) for hop in route]
                spoiled[at][part] = junk
                header = cbor.encode([spoiled, route])
                data = len(header).to_bytes(2, "big") + header + b"payload"
                with pytest.raises(TrothError) as refused:
                    RoutedMessage.decode(data)
                tried += 1
                text = str(refused.value)
                assert text.splitlines() == [text]
                assert "\x1b" not in text
    assert tried == 12
