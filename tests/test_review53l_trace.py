"""Review 53l: what review 53c and 53i left in traces.

Tools 1: since review 53c an MCP tool is its server's (`Tool::"X" in Server::"NAME"`,
`ToolCall.server`, `ToolGate(server=)`), but the signed record of an allowed or denied call
named the tool alone: a record of `refund` did not say which server's refund the gate let
through. Fixed: the gate's server is the record's `tool.server` (a version 3 record,
docs/formats.md, "Trace records": the version rule), shown by `troth trace show` and the
OTel export (`troth.tool.server`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.gates import T, lookup_order, make_world, refund
from tests.support.traces import NOW, Held, open_log, recorder
from troth.clock import FixedClock
from troth.gates import ListRecorder, Tool, ToolGate
from troth.trace.adapters import decision_content
from troth.trace.record import HASHED_VERSION
from troth.trace.signing import open_envelope


def _gated(server: str | None, arguments: Any) -> Any:
    world = make_world()
    decisions = ListRecorder()
    point = world.point(world.store(world.bundle()), decisions)
    caller = world.credential(world.support_chain, world.support)
    gate = ToolGate(
        point,
        [Tool.from_function(f) for f in (lookup_order, refund)],
        clock=FixedClock(T + 10),
        server=server,
    )
    gate.invoke(caller, "refund", arguments)
    (decision,) = decisions.records
    content, _chain = decision_content(decision, world.support.identifier)
    return content


@pytest.mark.xfail(
    strict=True, reason="review 53l, tools 1: a record of a gated call names no server"
)
@pytest.mark.parametrize("arguments", [{"order_id": "o1", "amount": 20}, "not an object"])
def test_a_record_of_a_gated_call_names_its_server(tmp_path: Path, arguments: Any) -> None:
    content = _gated("payments", arguments)
    assert content.tool is not None
    assert getattr(content.tool, "server", None) == "payments"
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "log.db", clock)
    gate = Held()
    signed = recorder(log, gate, clock).record(content)
    record = open_envelope(log.find(signed.record, gate.identifier).envelope)[0]
    assert getattr(record.tool, "server", None) == "payments"
    assert record.version == HASHED_VERSION
