"""Review 45k, the broker's new paths (review 45b denials, review 45i retried requests).

1. Refused forwards escape the denial budget. `Broker.prepare_forward` audits a request the
   secret's rules forbid (FORBIDDEN_REQUEST) with its own `deny` record, not through
   `LeaseBook._deny`, so the per-caller and per-account bound of review 45b (denials 4) never
   applied: an agent holding one http-inject lease wrote a trace record per forbidden request,
   for as long as it kept sending, and none of them reached the upstream (the cheapest records
   to make).

2. A lease request's whole history is read at each retry. `LeaseBook._request_leases` read
   every lease any attempt of the request was issued (ended ones too, kept 30 days), each
   parsed into a `Lease`: an agent retrying one request id over and over made each issue read
   all the attempts before it (quadratic in the attempts). Only the highest attempt can be live
   (each attempt's lease is written only once no earlier one is live, and a lease never comes
   back to life), so that one row, through the index on (request, attempt), is all it needs.

Strict xfails until the fixes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.leases import RemoteStub, make_world, open_broker
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy, HttpRequest, LeaseState
from troth.secrets import store as store_module
from troth.secrets.audit import AuditEvent, AuditKind
from troth.secrets.denials import DENIAL_WINDOW, DENIALS_PER_CALLER
from troth.secrets.lease import LeaseRequest

FORWARDS = 500
ATTEMPTS = 40


class _Sink:
    """An audit sink that keeps every record (the node's trace outbox stand-in)."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def append(self, event: AuditEvent) -> None:
        self.events.append(event)


def _http_config() -> dict[str, Any]:
    return {
        "scopes": ["orders:read"],
        "ttl": 120,
        "max_ttl": 600,
        "upstream": "http://127.0.0.1:9/api",  # never reached: every request here is forbidden
        "header": "Authorization",
        "rules": [{"methods": ["GET"], "path": "/v1/orders/*", "scope": "orders:read"}],
    }


def test_forbidden_forwards_write_a_bounded_number_of_records(tmp_path: Path) -> None:
    world = make_world(NOW)
    sink = _Sink()
    policy = AllowListPolicy({world.agent_a.identifier: {"api": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy, audit=sink)
    broker.put_secret("api", "http-inject", _http_config(), b"Bearer upstream", now=NOW)
    agent = world.credential_a()
    issued = broker.issue(agent, "api", now=NOW)
    forbidden = HttpRequest("GET", "/v1/admin")
    for _ in range(FORWARDS):
        with pytest.raises(SecretError) as caught:  # still refused, each time
            broker.prepare_forward(agent, issued.lease_id, forbidden, now=NOW)
        assert caught.value.reason is SecretFailure.FORBIDDEN_REQUEST
    denials = [e for e in sink.events if e.kind is AuditKind.DENY]
    assert 1 <= len(denials) <= DENIALS_PER_CALLER, len(denials)
    assert denials[0].identity == world.agent_a.identifier
    assert denials[0].lease == issued.lease.handle
    # the ones not recorded are counted once the window ended
    before = len(sink.events)
    broker.sweep(NOW + DENIAL_WINDOW)
    summaries = [e for e in sink.events[before:] if e.kind is AuditKind.DENY]
    assert len(summaries) == 1
    assert str(FORWARDS - len(denials)) in summaries[0].detail


def test_a_retried_request_reads_no_more_rows_for_a_long_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lease rows one retry reads (each parsed by `store._lease`) do not grow with the
    attempts the request made before: a retry after one attempt and one after ATTEMPTS read
    as many."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_b.identifier: {"s": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy, quota=2)
    engine = RemoteStub()
    broker.engines[engine.kind] = engine
    broker.put_secret("s", engine.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)
    agent = world.credential_b()
    parsed = 0
    parse = store_module._lease

    def counted(row: Any) -> Any:
        nonlocal parsed
        parsed += 1
        return parse(row)

    monkeypatch.setattr(store_module, "_lease", counted)

    def rows_read_by_a_retry_after(attempts: int) -> tuple[int, LeaseRequest]:
        nonlocal parsed
        request = LeaseRequest.new()
        for _ in range(attempts):
            broker.issue(agent, "s", now=NOW, request=request)
            request = request.retry()
        parsed = 0
        broker.issue(agent, "s", now=NOW + 1, request=request)
        return parsed, request

    short, _ = rows_read_by_a_retry_after(1)
    long, request = rows_read_by_a_retry_after(ATTEMPTS)
    assert long == short, (short, long)
    # one live lease of the request; a stale attempt still refused
    live = [
        lease
        for lease in broker.leases(agent)
        if lease.state in (LeaseState.PENDING, LeaseState.ACTIVE)
    ]
    assert len(live) == 2  # the last of each request
    with pytest.raises(SecretError) as caught:
        broker.issue(agent, "s", now=NOW + 2, request=LeaseRequest(request.id, 3))
    assert caught.value.reason is SecretFailure.BAD_REQUEST
