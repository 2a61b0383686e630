"""Review 64t: attacks on the fixes merged in session 64 that did not work (each test would
fail if the defence it names broke).

64p, the hub's re-revoke in one transaction (troth.node.trust `_revoke_again`):
1. a failure part way (a `StorageError` as a full disk gives, an `AuthorityError`), at the
   second identity, the last identity or the credentials: nothing of the re-revoke is stored
   (the inner transactions of `revoke_identity`/`revoke_credentials` only count depth: the
   outer one rolls back all), the rollback guard is not raised past node.db (no commit counted
   a write), None is answered (the hub keeps the feed it held), and the next re-revoke writes
   every entry once;
2. a failure raised by the first `revoke_identity` (an authority cannot revoke itself: its own
   identifier is left out, so no such raise comes): the hosted authority's own revocation in
   the held feed is skipped, the others re-revoked.

64o, a caveated caller's refusal answered as `channels.unserved`'s (GatedPolicy
`_members_refusal`):
3. the decision recorder (issue 13's traces: "the policies that applied") still receives
   Cedar's own decision, its policies and reason, whatever the caller is told;
4. a delegate holding caveated chains of two authorities, one governed by the bundle and one
   not (`governs`): the served declared service's refusal is the made-up name's, the same
   reasons, one of them (not one per chain);
5. a member of another trusted authority (no caveat) beside the caveated chain, refused by the
   method's rule pinned to the first authority: not substituted (UNSERVED admits it, so it is
   told `no-route` for a made-up name): the rule's and Cedar's reasons stand;
6. a decision point that raises (a bug in Cedar's point) raises out of `decide` for the served
   declared service as before, so the host answers it as any failing request; nothing in
   `_members_refusal` turns it into an allow.

lead 64 transport 1 (a close's linger timer):
7. a connection closed twice keeps one linger (not re-armed: no second count) and its peer,
   not reading, is dropped and counted once;
8. a peer that resets its connection during the linger is not counted as not reading.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.backups import feed_gone_back
from tests.support.gates import POLICIES, T, make_world
from tests.test_review64e_refuted import serve, until
from tests.test_review64o_access import FAILS, SERVICES, delegate, gated
from tests.test_review64t_transport import fill, stuck_peer
from troth.channel import VerifiedPeer
from troth.credentials import RevocationKind
from troth.errors import AuthorityError, AuthorityFailure, StorageError
from troth.gates import ListRecorder, Outcome
from troth.identity import Identifier
from troth.node import init_node, open_node
from troth.node.access import (
    UNSERVED,
    AccessRequest,
    GatedPolicy,
    MembersOnly,
    PeerCaller,
    RulesPolicy,
    Standing,
)
from troth.node.trust import _revoke_again
from troth.routing import RoutedMessage
from troth.storage.rollback import decode_guard, guard_path
from troth.transport import TcpSettings, TcpTransport

# -- 64p: the re-revoke in one transaction ----------------------------------------------------


def gone_back(authority: Any, identities: int, credentials: int) -> tuple[Any, Any, Any]:
    """`authority`'s store gone back past `identities` identities' and `credentials`
    credentials' revocations: (the feed held, the feed now, the guard's path)."""
    start = authority.held_feed(now=NOW)
    authority.revocations.revoke_many(
        RevocationKind.IDENTITY,
        [os.urandom(32) for _ in range(identities)],
        by=authority.identifier,
        now=NOW,
    )
    if credentials:
        authority.revoke_credentials([os.urandom(32) for _ in range(credentials)], now=NOW)
    held = authority.held_feed(now=NOW, previous=start)
    store = feed_gone_back(authority, start.count)
    return held, authority.held_feed(now=NOW), guard_path(store._db.path)


@pytest.mark.parametrize(
    ("where", "error"),
    [
        ("identity", StorageError("disk full")),
        ("last identity", AuthorityError(AuthorityFailure.REQUEST_INVALID, "no")),
        ("credentials", StorageError("disk full")),
    ],
)
def test_a_re_revoke_failing_part_way_stores_nothing_and_is_whole_next_time(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch, where: str, error: Exception
) -> None:
    """1: the third revocation of the re-revoke raises, after two were written."""
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        held, gone, guard = gone_back(authority, 3, 2)
        tip, counted = authority.store.revocation_tip(), decode_guard(guard.read_bytes())[1]
        calls: list[RevocationKind] = []
        real = authority.revocations.revoke_many
        fail_at = {"identity": 2, "last identity": 3, "credentials": 4}[where]

        def failing(kind: RevocationKind, targets: Any, **named: Any) -> list[int]:
            calls.append(kind)
            if len(calls) == fail_at:
                raise error
            return real(kind, targets, **named)

        monkeypatch.setattr(authority.revocations, "revoke_many", failing)
        assert _revoke_again(authority, held, gone, NOW) is None
        assert len(calls) == fail_at
        assert authority.store.revocation_tip() == tip  # nothing of it stored
        assert decode_guard(guard.read_bytes())[1] == counted  # no commit counted
        monkeypatch.setattr(authority.revocations, "revoke_many", real)
        again = _revoke_again(authority, held, authority.held_feed(now=NOW), NOW)
        assert again is not None
        assert again.count == held.count  # every entry once
        assert all(again.identity_revoked(d) for d in held.revoked_identities)
        assert all(again.credential_revoked(h) for h in held.revoked_credentials)


def test_the_hosted_authoritys_own_revocation_is_left_out_not_raised(troth_home: Path) -> None:
    """2: a held feed naming the authority itself revoked (its own store cannot make that
    entry again: `revoke_identity` refuses): skipped, the rest re-revoked, in one commit."""
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        start = authority.held_feed(now=NOW)
        other = os.urandom(32)
        authority.revocations.revoke_many(
            RevocationKind.IDENTITY,
            [authority.identifier.digest, other],
            by=authority.identifier,
            now=NOW,
        )
        held = authority.held_feed(now=NOW, previous=start)
        feed_gone_back(authority, start.count)
        again = _revoke_again(authority, held, authority.held_feed(now=NOW), NOW)
        assert again is not None
        assert again.identity_revoked(other)
        assert not again.identity_revoked(authority.identifier.digest)


# -- 64o: the unserved refusal in Cedar's place -----------------------------------------------


def test_the_recorder_keeps_cedars_decision_when_the_caller_is_told_unserved() -> None:
    """3: the caller's reasons are UNSERVED's; the record handed to the recorder is Cedar's
    denial (its reason names the bundle's decision, not the members-only rule)."""
    world = make_world(sub_caveats=FAILS)
    store = world.store(world.bundle(policies=POLICIES, services=SERVICES))
    recorder = ListRecorder()
    rules = {("orders", "read"): MembersOnly(), UNSERVED: MembersOnly()}
    policy = GatedPolicy(
        RulesPolicy("hub", rules, lambda p, _n: Standing(p.credentials)),
        world.point(store, recorder),
        store.declares,
    )
    caller = PeerCaller(delegate(world), "c")
    decision = policy.decide(AccessRequest(caller, "orders", "read", None, T + 10))
    assert not decision.allowed
    assert decision == policy.decide(AccessRequest(caller, *UNSERVED, None, T + 10))
    (record,) = recorder.records
    assert not record.decision.allowed
    assert record.decision.outcome is Outcome.FORBIDDEN, record.decision
    assert "only a Cedar policy bundle" not in record.decision.reason
    assert record.decision.reason not in decision.reasons[0]


def test_chains_of_two_authorities_one_governed_answer_as_a_made_up_name() -> None:
    """4: the free chain's refusal and Cedar's both give way to UNSERVED's one reason."""
    world = make_world(sub_caveats=FAILS)
    other = make_world(sub_caveats=FAILS)
    store = world.store(world.bundle(policies=POLICIES, services=SERVICES))
    mine = world.credential(world.sub_chain, world.sub)
    theirs = other.credential(other.sub_chain, other.sub)
    peer = VerifiedPeer(world.sub.identity, (theirs, mine))
    authority = world.authority.identifier

    def governs(_service: str, of: Identifier) -> bool:
        return of == authority

    policy = gated(world, store, governs=governs)
    caller = PeerCaller(peer, "c")
    served = policy.decide(AccessRequest(caller, "orders", "read", None, T + 10))
    unserved = policy.decide(AccessRequest(caller, *UNSERVED, None, T + 10))
    assert not served.allowed
    assert served == unserved
    assert len(served.reasons) == 1


def test_a_member_of_another_authority_keeps_the_rules_and_cedars_reasons() -> None:
    """5: a member's refusal is not replaced (UNSERVED admits it)."""
    world = make_world(sub_caveats=FAILS)
    other = make_world()
    store = world.store(world.bundle(policies=POLICIES, services=SERVICES))
    mine = world.credential(world.sub_chain, world.sub)
    member = other.credential(other.support_chain, other.support)
    peer = VerifiedPeer(world.sub.identity, (member, mine))
    authority = world.authority.identifier

    def governs(_service: str, of: Identifier) -> bool:
        return of == authority

    rules = {("orders", "read"): MembersOnly(authority=authority), UNSERVED: MembersOnly()}
    policy = GatedPolicy(
        RulesPolicy("hub", rules, lambda p, _n: Standing(p.credentials)),
        world.point(store),
        store.declares,
        governs=governs,
    )
    caller = PeerCaller(peer, "c")
    decision = policy.decide(AccessRequest(caller, "orders", "read", None, T + 10))
    assert not decision.allowed
    assert policy.decide(AccessRequest(caller, *UNSERVED, None, T + 10)).allowed
    assert len(decision.reasons) == 2
    assert "do not count" in decision.reasons[0]
    assert "orders.read" in decision.reasons[1]
    assert "(bundle revision 1)" in decision.reasons[1]


class Raising:
    """A decision point with a bug."""

    def decide(self, *_args: Any, **_named: Any) -> Any:
        raise RuntimeError("a bug in the decision point")


def test_a_decision_point_that_raises_is_no_allow() -> None:
    """6: the raise leaves `decide` (the host answers it as a failed request, logged)."""
    world = make_world(sub_caveats=FAILS)
    store = world.store(world.bundle(policies=POLICIES, services=SERVICES))
    rules = {("orders", "read"): MembersOnly(), UNSERVED: MembersOnly()}
    policy = GatedPolicy(
        RulesPolicy("hub", rules, lambda p, _n: Standing(p.credentials)),
        Raising(),  # type: ignore[arg-type]
        store.declares,
    )
    caller = PeerCaller(delegate(world), "c")
    with pytest.raises(RuntimeError):
        policy.decide(AccessRequest(caller, "orders", "read", None, T + 10))


# -- lead 64 transport 1: the close's linger --------------------------------------------------


def test_a_connection_closed_twice_lingers_once_and_is_counted_once() -> None:
    """7: the second close re-arms nothing."""

    async def test(transport: TcpTransport, port: int, arrived: list[RoutedMessage]) -> None:
        stuck = stuck_peer(port)
        await until(lambda: len(arrived) == 1)
        (connection,) = transport.connections()
        await fill(connection, arrived)
        await connection.close()
        linger = connection._linger
        assert linger is not None
        await connection.close()
        assert connection._linger is linger
        await until(lambda: connection.buffered() == 0)
        await asyncio.sleep(0.05)
        assert transport.counters.closed_not_reading == 1
        stuck.close()

    serve(test, TcpSettings(write_timeout=0.2))


def test_a_peer_that_resets_during_the_linger_is_not_counted() -> None:
    """8: connection_lost ends the linger (and the write timer) before they come due."""

    async def test(transport: TcpTransport, port: int, arrived: list[RoutedMessage]) -> None:
        stuck = stuck_peer(port)
        await until(lambda: len(arrived) == 1)
        (connection,) = transport.connections()
        await fill(connection, arrived)
        await connection.close()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        stuck.close()  # a reset
        await until(lambda: connection._socket is None)
        assert connection._linger is None
        assert connection._write_timer is None
        await asyncio.sleep(0.3)  # past both timers' deadlines
        assert transport.counters.closed_not_reading == 0

    serve(test, TcpSettings(write_timeout=0.2))
