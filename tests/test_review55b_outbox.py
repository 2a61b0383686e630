"""Review 55b, outbox 1: a node's trace outbox signed again, with the agent's key, whatever
envelope a stale row held. `_resign` read the record from the row's envelope (decoded, never
verified) and sealed its content anew: a process that can write node.db but cannot sign as
the agent (a PKCS#11 vault's key without its PIN, a software vault's key file out of reach)
planted a row, or edited a queued one, marked it stale, and the node signed the content it
chose (a tool, a decision, a kind, links) and delivered it to its trace service as the
agent's own record. A row's envelope is now verified as the agent's (the key its attestation
names, the signature, the disclosures) before it is signed again; one that is not is set
aside, never signed."""

from __future__ import annotations

import dataclasses
import sqlite3

from tests.test_trace_outbox import (  # noqa: F401 - `outboxes` is a fixture
    Outboxes,
    logged,
    outboxes,
)
from tests.test_trace_service import (  # noqa: F401 - `service` is a fixture
    NOW,
    Service,
    service,
    tool,
)
from troth.errors import TraceFailure
from troth.trace import ToolCall
from troth.trace.dsse import encode_envelope
from troth.trace.record import PAYLOAD_TYPE
from troth.trace.signing import open_envelope


def _forged(envelope: bytes, tool_name: str) -> bytes:
    """`envelope`'s record with another tool, under its key, with a signature no key made."""
    record, *_ = open_envelope(envelope)
    forged = dataclasses.replace(record, tool=ToolCall(tool_name, "call_1"))
    return encode_envelope(PAYLOAD_TYPE, forged.encode(), record.key, bytes(64))


def test_a_stale_row_planted_in_node_db_is_never_signed_by_the_agent(
    service: Service,  # noqa: F811
    outboxes: Outboxes,  # noqa: F811
) -> None:
    outbox = outboxes.open()
    genuine = outbox.add(tool("refund"), now=NOW).record
    raw = sqlite3.connect(outboxes.path, isolation_level=None)  # a writer of node.db, no key
    (envelope,) = raw.execute("SELECT envelope FROM trace_outbox").fetchone()
    raw.execute(
        "UPDATE trace_outbox SET envelope = ?, stale = 1",
        (_forged(bytes(envelope), "wire_everything_out"),),
    )
    raw.close()
    assert outbox.claim()
    batch = outbox.next_batch(NOW)
    if batch is not None:  # (before: the forged content, signed by the agent, sent)
        receipts = service.submit(batch.submission, service.world.support)
        outbox.answered(receipts, now=NOW)
    tools = [open_envelope(envelope)[0].tool for _, _, envelope in logged(service)]
    assert all(t is None or t.name != "wire_everything_out" for t in tools)
    assert logged(service) == []
    refused = outbox.store.refused()
    assert [(r.record, r.reason) for r in refused] == [(genuine, TraceFailure.BAD_SIGNATURE.value)]
    assert outbox.pending() == 0
