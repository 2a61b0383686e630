"""Review 45i, secrets 2: a lease whose request timed out on the agent's side.

`RemoteLeases` waits for the broker's answer at most `timeout` seconds, then cancels its side
of the request (review 26c, gate 3); a request already sent is still carried out at the broker,
so the lease it issued stayed live, held by no one, until its TTL, spending one place of the
agent's quota (with a quota of one, the agent could lease nothing more until then).

Now an issue may carry a `LeaseRequest` (a random id the agent chose and the attempt number):
a retry (same id, next attempt) first revokes the lease an earlier attempt was issued, and an
attempt older than one already served is refused. `RemoteLeases` keeps the request of a need
whose answer timed out and retries it at that need's next issue.

Strict xfails until the broker honoured the request and `RemoteLeases` retried it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.leases import RemoteStub, make_world, open_broker
from troth.credentials import VerifiedCredential
from troth.errors import SecretError, SecretFailure
from troth.node.services.broker import RemoteLeases
from troth.secrets import AllowListPolicy, LeaseState
from troth.secrets.broker import Broker, IssuedLease
from troth.secrets.endpoint import BrokerCaller, BrokerEndpoint
from troth.secrets.lease import LeaseRequest
from troth.secrets.toolgate import SecretNeed
from troth.secrets.wire import IssueArgs, decode_issued, raise_refusal


def _broker(tmp_path: Path, *, quota: int = 1) -> tuple[Broker, RemoteStub, Any]:
    world = make_world(NOW)
    policy = AllowListPolicy(
        {world.agent_a.identifier: {"s": None}, world.agent_b.identifier: {"s": None}}
    )
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy, quota=quota)
    engine = RemoteStub()
    broker.engines[engine.kind] = engine
    broker.put_secret("s", engine.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)
    return broker, engine, world


def _live(broker: Broker, credential: VerifiedCredential) -> list[bytes]:
    return [
        lease.handle.digest
        for lease in broker.leases(credential)
        if lease.state in (LeaseState.PENDING, LeaseState.ACTIVE, LeaseState.REVOKING)
    ]


def test_a_retry_of_a_request_whose_answer_was_lost_leaves_one_live_lease(
    tmp_path: Path,
) -> None:
    """The first attempt's answer is lost (the agent gave up); its retry revokes that lease
    (upstream too) and issues one: one lease open, the quota of one is not exceeded."""
    broker, engine, world = _broker(tmp_path, quota=1)
    agent = world.credential_b()
    request = LeaseRequest.new()
    lost = broker.issue(agent, "s", now=NOW, request=request)
    again = broker.issue(agent, "s", now=NOW + 1, request=request.retry())
    assert _live(broker, agent) == [again.lease.handle.digest]
    gone = broker.book.lease(lost.lease.handle)
    assert gone is not None
    assert gone.state is LeaseState.REVOKED
    assert engine.revoked == [lost.lease.engine_ref]


def test_an_earlier_attempt_that_arrives_late_is_refused(tmp_path: Path) -> None:
    """Attempt 2 was served; attempt 1 arriving after it (another path) issues nothing and
    leaves the served lease alone."""
    broker, _engine, world = _broker(tmp_path, quota=5)
    agent = world.credential_b()
    request = LeaseRequest.new()
    served = broker.issue(agent, "s", now=NOW, request=request.retry())
    with pytest.raises(SecretError) as caught:
        broker.issue(agent, "s", now=NOW + 1, request=request)
    assert caught.value.reason is SecretFailure.BAD_REQUEST
    assert _live(broker, agent) == [served.lease.handle.digest]


def test_another_agents_request_with_the_same_id_names_none_of_its_leases(
    tmp_path: Path,
) -> None:
    """The request is filed per identity: agent a reusing agent b's id, with an earlier
    attempt then a later one, is neither refused nor revokes b's lease (only its own)."""
    broker, _engine, world = _broker(tmp_path, quota=5)
    a, b = world.credential_a(), world.credential_b()
    request = LeaseRequest.new()
    of_b = broker.issue(b, "s", now=NOW, request=request.retry())
    broker.issue(a, "s", now=NOW + 1, request=request)  # under b's served attempt: a's own
    of_a = broker.issue(a, "s", now=NOW + 2, request=request.retry().retry())
    assert _live(broker, b) == [of_b.lease.handle.digest]
    assert _live(broker, a) == [of_a.lease.handle.digest]


def test_the_issue_request_travels_on_the_wire_and_stays_optional() -> None:
    request = LeaseRequest.new().retry()
    args = IssueArgs("s", ("x",), 60, request)
    assert IssueArgs.from_wire(args.to_wire()) == args
    assert "request" not in IssueArgs("s").to_wire()  # what an older broker reads
    assert IssueArgs.from_wire({"secret": "s", "scope": None, "ttl": None}) == IssueArgs("s")


# -- RemoteLeases (the agent's side) ------------------------------------------------------------


class _LostFirstAnswer:
    """A broker client over `endpoint` whose answers are lost while `hold`: the request reaches
    the broker (kept in `sent`, served later by the test) but the answer never comes back."""

    def __init__(self, endpoint: BrokerEndpoint, caller: BrokerCaller) -> None:
        self.endpoint = endpoint
        self.caller = caller
        self.hold = True
        self.sent: list[Any] = []

    async def issue(
        self,
        secret: str,
        *,
        scope: tuple[str, ...] | None = None,
        ttl: int | None = None,
        request: LeaseRequest | None = None,
    ) -> IssuedLease:
        wire = IssueArgs(secret, scope, ttl, request).to_wire()
        if self.hold:
            self.sent.append(wire)
            await asyncio.Event().wait()  # the answer never comes
        return decode_issued(raise_refusal(self.endpoint.handle("issue", wire, self.caller, NOW)))


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    thread = threading.Thread(target=running.run_forever, daemon=True)
    thread.start()
    yield running
    running.call_soon_threadsafe(running.stop)
    thread.join(10)
    running.close()


def test_remote_leases_retries_a_timed_out_request_leaving_one_live_lease(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    """The gate's lease request times out, the broker serves it anyway (its answer lost); the
    gate's next lease of the same need is a retry of that request: one live lease, within a
    quota of one."""
    broker, _engine, world = _broker(tmp_path, quota=1)
    agent = world.credential_b()
    endpoint = BrokerEndpoint(broker)
    client = _LostFirstAnswer(endpoint, BrokerCaller(agent.actor, (agent,)))
    leases = RemoteLeases(client, agent.actor, loop, timeout=0.05)  # type: ignore[arg-type]
    need = SecretNeed("s")
    with pytest.raises(TimeoutError):
        leases.issue(agent, need, NOW)
    assert len(client.sent) == 1
    raise_refusal(endpoint.handle("issue", client.sent[0], client.caller, NOW))  # served, lost
    client.hold = False
    issued = leases.issue(agent, need, NOW + 1)
    assert _live(broker, agent) == [issued.lease.handle.digest]
