"""Review 45k, attacks on the code review 45 landed that did not hold (pinned).

- Retried lease requests (review 45i, secrets 2): a retry arriving while its first attempt is
  still at the engine (PENDING) revokes that lease, whose activation then fails and whose
  upstream object is revoked: one live lease, never two past the quota; a second copy of the
  same attempt at that moment is refused; an agent's request id names only its own leases.
- Denial budget (review 45b, denials 4): uncredentialed callers rotating identities crowd only
  their shared account (`UNCREDENTIALED`): a member's refusal under its own account is still
  recorded; accounts pushed out of the table hand back their unrecorded counts.
- Relay `beyond` (review 45e, relay 1): whatever return route an owner writes, the hub's route
  back to it starts with the connection its message came in on (`RoutedMessage.arrived`), and
  a relayed message leaves over that connection, the owner's hops carried inside it, read by
  the node at its other end: the hub routes none of them itself (no reflection to its own
  addresses, no loop inside the hub).
- Stale temporaries (review 45f, files 1): a symlink shaped like a killed writer's temporary,
  a live writer's, and a young one are left alone.
- Standing cache (review 45b, standings 3): `forget_peer` drops only the entries of the peer
  it names, even when a key it recorded was taken by another peer's entry since.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.leases import RemoteStub, make_world, open_broker
from troth.encoding import cbor
from troth.errors import SecretError, SecretFailure
from troth.identity import Identifier
from troth.node.home import STALE_TEMPORARY_AGE, write_private_file
from troth.node.services.relay import Relay, RelayService
from troth.node.trust import NodeTrust
from troth.routing import Address, RoutedMessage
from troth.secrets import AllowListPolicy, LeaseState
from troth.secrets.audit import UNCREDENTIALED
from troth.secrets.denials import DENIALS_PER_ACCOUNT, MAX_DENIAL_SOURCES, DenialBudget
from troth.secrets.lease import LeaseRequest

_LIVE = (LeaseState.PENDING, LeaseState.ACTIVE)


# -- retried lease requests -----------------------------------------------------------------------


def _remote_broker(tmp_path: Path, quota: int) -> tuple[Any, RemoteStub, Any]:
    world = make_world(NOW)
    policy = AllowListPolicy(
        {world.agent_a.identifier: {"s": None}, world.agent_b.identifier: {"s": None}}
    )
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy, quota=quota)
    engine = RemoteStub()
    broker.engines[engine.kind] = engine
    broker.put_secret("s", engine.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)
    return broker, engine, world


def test_a_retry_while_the_first_attempt_is_at_the_engine_leaves_one_live_lease(
    tmp_path: Path,
) -> None:
    broker, engine, world = _remote_broker(tmp_path, quota=1)
    agent = world.credential_b()
    request = LeaseRequest.new()
    retried: list[Any] = []
    refused: list[SecretFailure] = []

    def meanwhile() -> None:  # the engine works on attempt 1: attempt 2 arrives, then again
        engine.during_issue = lambda: None
        retried.append(broker.issue(agent, "s", now=NOW, request=request.retry()))
        try:
            broker.issue(agent, "s", now=NOW, request=request.retry())
        except SecretError as exc:
            refused.append(exc.reason)

    engine.during_issue = meanwhile
    with pytest.raises(SecretError) as caught:
        broker.issue(agent, "s", now=NOW, request=request)
    assert caught.value.reason is SecretFailure.REVOKED  # attempt 1 lost its race
    assert refused == [SecretFailure.BAD_REQUEST]  # a second copy of attempt 2
    live = [lease for lease in broker.leases(agent) if lease.state in _LIVE]
    assert [lease.handle for lease in live] == [retried[0].lease.handle]
    first = next(lease for lease in broker.leases(agent, include_ended=True) if lease not in live)
    assert first.state is LeaseState.REVOKED
    assert first.engine_ref in engine.revoked  # its upstream object revoked too


def test_a_request_never_passes_the_quota_nor_touches_another_agents_lease(
    tmp_path: Path,
) -> None:
    broker, _engine, world = _remote_broker(tmp_path, quota=1)
    a, b = world.credential_a(), world.credential_b()
    plain = broker.issue(b, "s", now=NOW)  # b's quota of one is spent
    request = LeaseRequest.new()
    for attempt in (request, request.retry()):
        with pytest.raises(SecretError) as caught:
            broker.issue(b, "s", now=NOW, request=attempt)
        assert caught.value.reason is SecretFailure.QUOTA_EXCEEDED
    # a's request with b's id, at every attempt, leaves b's lease alone
    for attempt in (request, request.retry(), request.retry().retry()):
        broker.issue(a, "s", now=NOW, request=attempt)
    assert [lease.handle for lease in broker.leases(b) if lease.state in _LIVE] == [
        plain.lease.handle
    ]
    assert len([lease for lease in broker.leases(a) if lease.state in _LIVE]) == 1


# -- the denial budget ----------------------------------------------------------------------------


def _identifier(n: int) -> Identifier:
    return Identifier(n.to_bytes(32, "big"))


def test_rotating_uncredentialed_callers_leave_a_members_refusals_recorded() -> None:
    budget = DenialBudget()
    recorded = sum(budget.admit(_identifier(n), UNCREDENTIALED, NOW)[0] for n in range(1, 5000))
    assert recorded == DENIALS_PER_ACCOUNT
    member = _identifier(10**6)
    assert budget.admit(member, member, NOW)[0]


def test_accounts_pushed_out_hand_back_their_unrecorded_counts() -> None:
    budget = DenialBudget()
    victim = _identifier(10**6)
    recorded = sum(budget.admit(victim, victim, NOW)[0] for _ in range(DENIALS_PER_ACCOUNT))
    handed: list[Any] = []
    for n in range(1, MAX_DENIAL_SOURCES + 1):
        handed += budget.admit(_identifier(n), _identifier(n), NOW)[1]
    assert [(s.account, s.count) for s in handed] == [(victim, DENIALS_PER_ACCOUNT - recorded)]


# -- relay `beyond` ----------------------------------------------------------------------------


def test_a_crafted_return_route_comes_after_the_connection_it_arrived_on() -> None:
    connection = Address("tcp", "10.0.0.7:4000")
    crafted = (Address("tcp", "victim:4000"), Address("relay", "x"), Address("worker", "w.dec"))
    header = cbor.encode([[], [[a.kind, a.value] for a in crafted]])
    body = len(header).to_bytes(2, "big") + header + b"m1"
    arrived = RoutedMessage.arrived(body, connection)
    assert arrived.return_route == (connection, *crafted)


class _Router:
    def __init__(self) -> None:
        self.routed: list[RoutedMessage] = []

    def add_transport(self, transport: object) -> None:
        pass

    async def route(self, message: RoutedMessage) -> None:
        self.routed.append(message)


def test_a_relayed_message_leaves_over_its_owners_connection_only() -> None:
    router = _Router()
    channels = SimpleNamespace(closed_hooks=[])
    service = RelayService(router, channels, me="hub", clock=lambda: NOW)  # type: ignore[arg-type]
    connection = Address("tcp", "10.0.0.7:4000")
    beyond = (Address("tcp", "victim:4000"), Address("relay", "x"))  # the owner's choice
    service.relays["x"] = Relay(_identifier(1), connection, "chan-1", beyond=beyond)
    onward = (Address("service", "echo"),)
    message = RoutedMessage(onward, (Address("tcp", "sender:1"),), b"payload")
    asyncio.run(service.send(Address("relay", "x"), message))
    assert [m.onward for m in router.routed] == [(connection, *beyond, *onward)]
    assert service.not_found == 0


# -- stale temporaries -------------------------------------------------------------------------


def test_a_symlink_a_live_writers_and_a_young_temporary_are_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "node.json"
    victim = tmp_path / "precious"
    victim.write_bytes(b"keep")
    old = time.time() - 10 * STALE_TEMPORARY_AGE
    link = tmp_path / f".node.json.999999.{'a' * 16}.tmp"
    link.symlink_to(victim)
    live = tmp_path / f".node.json.{os.getpid()}.{'b' * 16}.tmp"
    live.write_bytes(b"mine")
    young = tmp_path / f".node.json.999999.{'c' * 16}.tmp"
    young.write_bytes(b"young")
    for path in (live, young):
        stamp = old if path is live else time.time()
        os.utime(path, (stamp, stamp))
    os.utime(link, (old, old), follow_symlinks=False)
    write_private_file(target, b"x")
    assert link.is_symlink()
    assert victim.read_bytes() == b"keep"
    assert live.exists()
    assert young.exists()


# -- the standing cache ----------------------------------------------------------------------


def test_forget_peer_drops_only_the_entries_of_the_peer_it_names() -> None:
    trust = NodeTrust.__new__(NodeTrust)
    trust._standings_lock = threading.Lock()
    a, b = _identifier(1), _identifier(2)
    peer_b = SimpleNamespace(identifier=b)
    trust._standings = {7: (peer_b, (0, 0), NOW, "b's")}  # type: ignore[dict-item]
    trust._standing_keys = {a: {7}, b: {7}}  # a's key 7, taken by b's entry since
    trust.forget_peer(a)
    assert 7 in trust._standings
    trust.forget_peer(b)
    assert trust._standings == {}
