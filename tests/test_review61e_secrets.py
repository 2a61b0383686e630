"""Review 61e, the secrets broker and its leases.

secrets 1: the served broker refused a caller holding no current credential — an agent whose
credential its authority revoked or that expired, still holding its channel — before the book
saw the request (`BrokerCaller.credential_list`): issue, renew and forward answered DENIED and
wrote no audit record, though docs/secrets.md says every refusal is audited (the lease policy's,
a forward's). The revoked agent asking again is the refusal an operator most wants to see. They
are now audited as the book's own refusals are, within the denial budget
(troth.secrets.denials: per caller, and all uncredentialed callers sharing one account).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tests.conftest import NOW
from tests.support.leases import make_world, open_broker
from troth.identity import Identifier
from troth.node.services.broker import BrokerService
from troth.secrets import AllowListPolicy, Broker
from troth.secrets.audit import UNCREDENTIALED, AuditEvent, AuditKind
from troth.secrets.endpoint import BrokerCaller, BrokerEndpoint
from troth.secrets.engines.http_inject import HttpRequest
from troth.secrets.lease import LeaseId
from troth.secrets.wire import ForwardArgs, IssueArgs, LeaseArgs

WHY = "holds no current credential (revoked by its authority)"


class _Sink:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def append(self, event: AuditEvent) -> None:
        self.events.append(event)


def _broker(tmp_path: Path) -> tuple[Broker, _Sink, Identifier]:
    """A broker lending token secret `payments` to agent b, audited into a list; b's id."""
    world = make_world(NOW)
    sink = _Sink()
    policy = AllowListPolicy({world.agent_b.identifier: {"payments": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, audit=sink, policy=policy)
    broker.put_secret("payments", "token", {"audience": "payments"}, b"", now=NOW)
    return broker, sink, world.agent_b.identifier


def _denials(sink: _Sink, since: int) -> list[AuditEvent]:
    return [event for event in sink.events[since:] if event.kind is AuditKind.DENY]


def _check_audited(sink: _Sink, since: int, who: Identifier, answer: Any) -> None:
    assert answer == {"refused": "DENIED", "detail": WHY}  # still answered as before
    denials = _denials(sink, since)
    assert len(denials) == 1, "the refusal was not audited"
    assert denials[0].identity == who
    assert denials[0].member == UNCREDENTIALED  # the uncredentialed callers' one share
    assert WHY in denials[0].detail


def test_issue_without_a_current_credential_is_audited(tmp_path: Path) -> None:
    """secrets 1: a revoked agent asking for a lease is refused, and the refusal recorded."""
    broker, sink, agent = _broker(tmp_path)
    endpoint = BrokerEndpoint(broker)
    since = len(sink.events)
    answer = endpoint.handle(
        "issue",
        IssueArgs("payments", None, None, None).to_wire(),
        BrokerCaller(agent, refused=WHY),
        NOW,
    )
    _check_audited(sink, since, agent, answer)
    assert _denials(sink, since)[0].secret == "payments"


def test_renew_without_a_current_credential_is_audited(tmp_path: Path) -> None:
    """secrets 1: a revoked agent renewing (its lease id in hand) is refused and recorded."""
    broker, sink, agent = _broker(tmp_path)
    endpoint = BrokerEndpoint(broker)
    since = len(sink.events)
    lease_id = LeaseId.new(NOW)
    answer = endpoint.handle(
        "renew", LeaseArgs(lease_id).to_wire(), BrokerCaller(agent, refused=WHY), NOW
    )
    _check_audited(sink, since, agent, answer)
    assert _denials(sink, since)[0].lease == lease_id.handle


def test_served_forward_without_a_current_credential_is_audited(tmp_path: Path) -> None:
    """secrets 1: the node's forward refuses an uncredentialed caller before the forward pool
    (it holds no lease to forward under); that refusal is recorded too."""
    broker, sink, agent = _broker(tmp_path)
    trust = SimpleNamespace(feed_hooks=[], own_authorities=None, hosted=None)
    policies = SimpleNamespace(decision_point=lambda: None)
    node = SimpleNamespace(db=None, name="hub")
    clock = SimpleNamespace(now=lambda: NOW)
    service = BrokerService(node, trust, clock, policies=policies)  # type: ignore[arg-type]
    endpoint = BrokerEndpoint(broker)
    service.broker, service.endpoint = broker, endpoint
    lease_id = LeaseId.new(NOW)
    request = ForwardArgs(lease_id, HttpRequest("GET", "/v1/refunds")).to_wire()
    since = len(sink.events)

    async def forward() -> Any:
        try:
            caller = BrokerCaller(agent, refused=WHY)
            answer = await service._forward(endpoint, request, caller)
            await asyncio.gather(*service._tasks)  # the record, written on the broker's thread
            return answer
        finally:
            await service.close()

    answer = asyncio.run(forward())
    _check_audited(sink, since, agent, answer)
    assert _denials(sink, since)[0].lease == lease_id.handle
