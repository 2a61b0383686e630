"""Review 63y2: attacks on the fixes of review 63v2 (stop 1-3) that did not work, each a
test that fails if the defence it names breaks.

1. An MCP session's task (`run_session`, as the node runs it) cancelled (`Task.cancel`, as
   an MCP close cut short by a node's stop cancels it: review 63v2, stop 2) while a gated
   call's allowed record is being written on its worker thread: the SDK's server serves the
   call in its task group, whose shielded wait for the deciding thread holds; the call then
   either reaches the upstream (it ran: ALLOWED, or UNANSWERED after it if cut there) or is
   recorded UNANSWERED after its ALLOWED record, never left allowed only without running.
   (A `Task.cancel` of the call's own task is not held by that wait, and leaves the call
   allowed only: nothing on the node's path cancels a call so.)
2. A broker call left running on its abandoned thread (review 63v2, stop 3) after the node's
   stop closed its trace log (the trace client's stage comes after the services'): the lease
   it issues is audited into the closed log, which refuses the record, and the issue fails
   closed (AUDIT_FAILED, its transaction rolled back): no lease is issued unaudited.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from tests.conftest import NOW as LEASE_NOW
from tests.support.brokers import PAYMENTS
from tests.support.gates import T
from tests.support.leases import KEK
from tests.support.leases import make_world as lease_world
from tests.support.traces import Held, open_log, recorder
from tests.test_review54g_refuted import Asked, _everything, _point, _Slow
from tests.test_review55s_mcp import raw
from tests.test_review58f_mcp import HELLO
from troth import limits
from troth.clock import FixedClock
from troth.errors import SecretError, SecretFailure
from troth.gates import Outcome
from troth.integrations.mcp.channel import new_session, run_session
from troth.integrations.mcp.gate import McpGate, gate_server
from troth.secrets import AllowListPolicy, Broker
from troth.storage import SqliteDatabase, SqliteKeyStore
from troth.trace.adapters import TraceAuditSink
from troth.vault import SoftwareVault


def test_a_session_cancelled_while_its_call_is_decided_records_it_unanswered() -> None:
    """1: the session served as the node serves it, its task cancelled mid-decision."""
    asked: Asked = []
    recorder = _Slow()
    point, caller = _point(recorder)

    async def main() -> None:
        async with Client(_everything(asked), cache=None) as upstream:
            gate = McpGate(point, upstream, clock=FixedClock(T + 10))
            inbound, read = anyio.create_memory_object_stream[Any](limits.MAX_MCP_QUEUE)

            async def send(frame: bytes) -> bool:
                return True

            task = asyncio.get_running_loop().create_task(
                run_session(gate_server(gate, caller), read, new_session(), send)
            )
            for message in (
                {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": HELLO},
                {"jsonrpc": "2.0", "method": "notifications/initialized"},
                {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "tools/call",
                    "params": {"name": "lookup_order", "arguments": {"order_id": "o1"}},
                },
            ):
                inbound.send_nowait(raw(message))
                for _ in range(8):
                    await asyncio.sleep(0)
            await asyncio.to_thread(recorder.deciding.wait, 30)
            task.cancel()  # the MCP service's close, cut short by the node's stop
            await asyncio.sleep(0)
            recorder.go.set()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    outcomes = [record.decision.outcome for record in recorder.records]
    if [name for name, _ in asked if name == "tools/call"]:  # it reached the upstream: it
        assert outcomes in ([Outcome.ALLOWED], [Outcome.ALLOWED, Outcome.UNANSWERED])  # ran
    else:  # never forwarded: recorded so, never left allowed only
        assert outcomes == [Outcome.ALLOWED, Outcome.UNANSWERED]
    assert recorder.records[0].decision.outcome == Outcome.ALLOWED


def test_a_lease_issued_after_the_trace_log_closed_fails_closed(tmp_path: Path) -> None:
    """2: the broker audits into the node's log (no trace service), closed under it."""
    world = lease_world(LEASE_NOW)
    db = SqliteDatabase(tmp_path / "node.db")
    clock = FixedClock(LEASE_NOW)
    log = open_log(tmp_path / "trace.db", clock)
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    sink = TraceAuditSink(recorder(log, Held(), clock))
    vault = SoftwareVault(SqliteKeyStore(db), KEK)
    broker = Broker(db, vault, now=LEASE_NOW, policy=policy, audit=sink)
    broker.put_secret("payments", "token", PAYMENTS, b"", now=LEASE_NOW)
    try:
        log.close()  # NodeTraces.close, while the broker's thread runs on
        with pytest.raises(SecretError) as raised:
            broker.issue(world.credential_a(), "payments", scope=["refunds"], now=LEASE_NOW)
        assert raised.value.reason is SecretFailure.AUDIT_FAILED
        assert broker.leases(world.agent_a.identifier, include_ended=True) == []
    finally:
        broker.close()
        db.close()
