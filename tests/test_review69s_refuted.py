"""Review 69s (wave2): attacks on this session's fixes (69m bounded trace reads, 69n's
argument-value limit, 69o's compromised rotations) that found nothing, pinned as properties.

- 69m: an envelope stored as INTEGER or REAL, or as TEXT of 4-byte characters whose
  `length()` (characters) is within the bound while its bytes are past it: refused at its
  record, MALFORMED, never taken as bytes.
- 69n: a flat call of MAX_TOOL_ARGUMENT_VALUES + 1 names is denied for its count (the
  `len(args)` path) with the reason that says so; a direct caller's list, tuple or dict
  subclass hiding its items from the counter (`__iter__`, `values`) is denied, never judged
  (the schema's checks take exact types); a mapping that is not a dict is counted as the dict
  it becomes.
- 69o: after a compromised rotation in another process (node.db written beside the outbox),
  the agent's next record is queued at once (nothing waits on the rows set aside) and sent
  chained on the log's head, not on a row set aside; a delivered answer for a row a
  compromised rotation set aside in flight removes no other row (matched by position, agent,
  and its bytes or id); a store error while the broker reads the revocations due refuses
  every caller only until the next sweep reads them again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

import troth
from tests import test_review67f_secrets as review67f
from tests.support.gates import T, make_world
from tests.support.public_api import Agents
from tests.support.traces import db, log_of
from tests.test_review69a_outbox import _node_agent
from tests.test_trace_service import NOW, tool
from troth import limits
from troth.errors import StorageError, TraceError, TraceFailure
from troth.gates import Outcome, ToolCall, compile_policies
from troth.gates.engine import PolicyEngine
from troth.node.rotation_revoke import due_identities
from troth.node.services import broker as broker_service
from troth.node.services.broker import local_broker
from troth.trace.dsse import parse_envelope
from troth.trace.record_decode import decode_payload
from troth.trace.submit import Head, Receipts, Status, SubmitResult
from troth.trace.verify import verify_log

# -- 69m ----------------------------------------------------------------------------------------


_WIDE = chr(0x1F600) * (limits.MAX_TRACE_ENVELOPE_BYTES // 2)
"""TEXT within the envelope's bound counted in characters, twice past it in bytes."""


@pytest.mark.parametrize("value", [12345, 1.5, _WIDE])
def test_an_envelope_of_another_type_is_malformed(tmp_path: Path, value: object) -> None:
    log = log_of(tmp_path / "log.db", 3)
    raw = db(log)
    raw.execute("UPDATE leaves SET envelope = ? WHERE idx = 1", (value,))
    raw.close()
    with pytest.raises(TraceError) as refused:
        verify_log(log)
    assert (refused.value.reason, refused.value.index) == (TraceFailure.MALFORMED, 1)
    log.close()


# -- 69n ----------------------------------------------------------------------------------------

_NESTED = {
    "type": "object",
    "properties": {
        "x": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
        "s": {"type": "array", "items": {"type": "string"}},
    },
}


def _engine() -> tuple[PolicyEngine, Any]:
    world = make_world()
    member = world.credential(world.support_chain, world.support)
    policies = '@id("all") permit(principal, action, resource);\n'
    schemas = {"nested": _NESTED, "open": {"type": "object"}}
    return PolicyEngine(compile_policies(policies, "", schemas)), member


class _Hidden(list[Any]):
    def __iter__(self) -> Any:
        return iter(())


class _HiddenTuple(tuple[Any, ...]):
    def __iter__(self) -> Any:
        return iter(())


class _HiddenDict(dict[str, Any]):
    def values(self) -> Any:
        return []


def test_a_flat_call_past_the_limit_is_denied_for_its_count() -> None:
    engine, member = _engine()
    most = limits.MAX_TOOL_ARGUMENT_VALUES
    flat = {f"k{i}": i for i in range(most + 1)}
    denied = engine.decide(member, ToolCall("open", flat), now=T + 10)
    assert (denied.allowed, denied.outcome) == (False, Outcome.ARGUMENTS)
    assert f"more than {most} values" in denied.reason


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("nested", {"x": _Hidden([[i] for i in range(20_000)]), "s": []}),
        ("nested", {"x": _HiddenTuple([i] for i in range(20_000)), "s": []}),
        ("open", {"a": _Hidden([[i] for i in range(20_000)])}),
        ("open", {"a": _HiddenDict({str(i): [i] for i in range(20_000)})}),
    ],
)
def test_a_container_hiding_its_items_from_the_count_is_denied(
    tool: str, args: dict[str, Any]
) -> None:
    engine, member = _engine()
    denied = engine.decide(member, ToolCall(tool, args), now=T + 10)
    assert (denied.allowed, denied.outcome) == (False, Outcome.ARGUMENTS)


def test_a_mapping_that_is_not_a_dict_is_counted_as_one() -> None:
    engine, member = _engine()
    many = MappingProxyType({"x": [[i] for i in range(10_000)], "s": []})
    denied = engine.decide(member, ToolCall("nested", many), now=T + 10)
    assert denied.reason.startswith("denied: the arguments hold more than")


# -- 69o ----------------------------------------------------------------------------------------


def test_a_record_after_a_compromised_rotation_elsewhere_is_sent_on_the_logs_head(
    tmp_path: Path,
) -> None:
    node, outbox = _node_agent(tmp_path)
    try:
        node.identities.rotate("agent", now=NOW + 10, compromised=True)  # node.db, not outbox
        queued = outbox.add(tool("after", n=3), now=NOW + 20)
        assert not queued.done  # returned at once: nothing waited on the rows set aside
        batch = outbox.next_batch(NOW + 21)
        assert batch is not None
        assert [item.record for item in batch.items] == [queued.record]
        record = decode_payload(parse_envelope(batch.submission.records[0].envelope).payload)
        assert (record.seq, record.prev) == (0, None)  # the log holds none of the agent's
    finally:
        outbox.close()
        node.close()


def test_a_row_set_aside_in_flight_answered_delivered_removes_no_other(tmp_path: Path) -> None:
    node, outbox = _node_agent(tmp_path)
    try:
        agent = outbox.identifier.digest
        batch = outbox.next_batch(NOW + 5)  # in flight
        assert batch is not None
        node.identities.rotate("agent", now=NOW + 10, compromised=True)  # both set aside
        later = outbox.add(tool("after", n=3), now=NOW + 20)  # may take a freed position
        last = batch.items[-1]
        delivered = tuple(SubmitResult(Status.APPENDED, n) for n in range(len(batch.items)))
        outbox.answered(Receipts(delivered, Head(1, last.hash, NOW + 2)), now=NOW + 21)
        assert [row.record for row in outbox.store.first(agent, 10)] == [later.record]
    finally:
        outbox.close()
        node.close()


world = review67f.world  # the fixture: acme's hub brokering `payments` to its members


def test_a_store_error_reading_the_revocations_due_is_read_again_at_the_sweep(
    world: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker's read of the rows due failing (node.db changed, then busy): every caller
    refused (deny when in doubt), served again once a sweep reads them."""
    real = due_identities
    failures = [StorageError("the store is busy")]

    def once(node: Any) -> Any:
        if failures:
            raise failures.pop()
        return real(node)

    async def main() -> None:
        async with world.hub.serve(listen=("127.0.0.1", 0)) as running:
            at, hub = running.address, running.identifier
            service = local_broker(running._runtime)
            await world.agents.secrets.lease(
                "payments", holder="support", broker=at, expect=hub, scope=["refunds"]
            )
            monkeypatch.setattr(broker_service, "due_identities", once)
            world.hub.identities.create("elsewhere")  # node.db changed beside the broker
            with pytest.raises(troth.TrothError, match="compromised rotation"):
                await world.agents.secrets.lease(
                    "payments", holder="support", broker=at, expect=hub, scope=["refunds"]
                )
            await service.sweep()
            assert service.status()["revocations_due"] == 0
            await world.agents.secrets.lease(
                "payments", holder="support", broker=at, expect=hub, scope=["refunds"]
            )

    asyncio.run(main())
