"""Review 39b: attacks on review 38b's trace fixes and review 38a's MCP fix that found
nothing, pinned as properties.

- An agent's export (`troth trace export --agent`), verified offline: one flipped byte of
  any line is refused; its lines in any order verify alike; a line left out is not
  detected (an export may be filtered: docs/traces.md), but the report counts what it
  verified.
- `troth trace show` (`trace_tree`, `pieces`, `TraceNode.to_json`) of a hostile log: two
  records of two agents naming each other as parent, a record naming itself, a record
  naming a later record, two spans each the other's parent: every record is drawn exactly
  once, as a tree of nothing but records; a parent of 100,000 children and a chain of
  100,000 records are drawn, every record once, the chain in pieces of
  MAX_TRACE_SHOW_DEPTH + 1 levels.
- A member's `prove` limit is the node's, not a lockout: a checkpoint signed for one
  member covers every record before it, so another member's proof of its own earlier
  record is served at once; a member asking for another agent's record under the limit
  is told only `not found`, never that the limit holds it back, nor its index.
- A server published on a node hosting none that trusts several authorities then is
  granted by none (`grantable_by: []`), as review 37c, mcp 1 decided. (Publications are
  not stored: a restarted node's servers are published again, and their grantors worked out
  again, from what the node trusts then; `mcp.serve`'s answer says which.)
"""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import pytest

from tests.support.mcp_orders import orders_server
from tests.support.nodes import MemNet, globex_over_tcp, run_memnet
from tests.support.parties import Party
from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from tests.test_mcp_channels import support_bundle
from tests.test_review27t_collect import NOW as SERVED
from tests.test_review27t_collect import _batch, _collector
from tests.test_review37a_mcp import enroll_with_globex
from tests.test_review38a_mcp import refund_as
from troth import limits
from troth.clock import FixedClock
from troth.errors import NotFound, TraceError, TraceFailure
from troth.node.services.mcp import publish_upstream
from troth.trace.export import export_jsonl, verify_bundle, verify_export
from troth.trace.log import TraceLog
from troth.trace.record import Kind, Links
from troth.trace.signing import RecordContent, open_envelope, sign_record
from troth.trace.view import TraceNode, pieces, trace_tree


def _agent_export(log: TraceLog, agent: Held) -> list[bytes]:
    out = io.StringIO()
    export_jsonl(log, out, agent=agent.identifier)
    return [line.encode() for line in out.getvalue().splitlines()]


def test_an_agents_export_detects_a_flipped_byte_not_the_line_order(tmp_path: Path) -> None:
    """Five records of one agent among another's: its export verifies in any order; one
    byte flipped in a line's envelope is refused naming that line's index; a line left out
    verifies (exports may be filtered) and the report counts one record fewer."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    agent, other = Held(), Held()
    mine, theirs = recorder(log, agent, clock), recorder(log, other, clock)
    for n in range(5):
        mine.record(tool_call(args={"n": n}))
        theirs.record(tool_call(args={"n": n}))
    lines = _agent_export(log, agent)
    assert verify_export(lines).records == 5
    assert verify_export(list(reversed(lines))).records == 5
    target = lines[2]
    at = target.index(b'"envelope":"') + len(b'"envelope":"') + 20
    flipped = target[:at] + bytes([target[at] ^ 0x01]) + target[at + 1 :]
    with pytest.raises(TraceError) as caught:
        verify_export([*lines[:2], flipped, *lines[3:]])
    assert caught.value.index == 4  # the agent's third record, between the other's
    assert verify_export(lines[:2] + lines[3:]).records == 4


def _sign(held: Held, seq: int, prev: bytes | None, content: RecordContent) -> bytes:
    """`held`'s record; its hash (the next one's prev)."""
    return sign_record(held.signer(NOW), content, seq=seq, prev=prev, time=NOW).hash


def test_show_draws_every_record_of_a_hostile_log_once(tmp_path: Path) -> None:
    """A and B name each other's record as parent; C's record names itself; C's next names
    a record C signs after it; two spans of D claim each other as parent span. Every record
    is drawn once (no cycle kept, none dropped)."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    a, b, c, d = Held(), Held(), Held(), Held()
    ids = [f"{n:x}".rjust(32, "0") for n in range(1, 6)]

    def step(links: Links, record_id: str) -> RecordContent:
        return RecordContent(
            Kind.TOOL_INVOCATION, values={"result": "x"}, links=links, id=record_id
        )

    signed = [
        sign_record(
            a.signer(NOW),
            step(Links(parent=ids[1], parent_agent=b.identifier), ids[0]),
            seq=0,
            prev=None,
            time=NOW,
        ),
        sign_record(
            b.signer(NOW),
            step(Links(parent=ids[0], parent_agent=a.identifier), ids[1]),
            seq=0,
            prev=None,
            time=NOW,
        ),
        sign_record(c.signer(NOW), step(Links(parent=ids[2]), ids[2]), seq=0, prev=None, time=NOW),
    ]
    signed.append(
        sign_record(
            c.signer(NOW), step(Links(parent=ids[4]), ids[3]), seq=1, prev=signed[2].hash, time=NOW
        )
    )
    signed.append(
        sign_record(c.signer(NOW), step(Links(), ids[4]), seq=2, prev=signed[3].hash, time=NOW)
    )
    first = sign_record(
        d.signer(NOW),
        step(Links(trace="t", span="s1", parent_span="s2"), "a" * 32),
        seq=0,
        prev=None,
        time=NOW,
    )
    second = sign_record(
        d.signer(NOW),
        step(Links(trace="t", span="s2", parent_span="s1"), "b" * 32),
        seq=1,
        prev=first.hash,
        time=NOW,
    )
    for record in [*signed, first, second]:
        log.append(record)
    roots = trace_tree(log)
    drawn = [value for top, _ in pieces(roots) for value in _flatten(top.to_json({}))]
    assert sorted(drawn) == list(range(7))
    (later,) = [root for root in roots if root.index == 4]
    assert [child.index for child in later.children] == [3]


def _flatten(value: dict[str, object]) -> list[int]:
    out: list[int] = []
    stack = [value]
    while stack:
        item = stack.pop()
        out.append(int(item["index"]))  # type: ignore[call-overload]
        stack.extend(item["children"])  # type: ignore[arg-type]
    return out


def _nodes(count: int, tmp_path: Path) -> list[TraceNode]:
    """`count` nodes of one record (the tree functions read only `index` and `children`)."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    recorder(log, Held(), clock).record(tool_call())
    record = open_envelope(next(iter(log.stored())).envelope)[0]
    return [TraceNode(index, record, None) for index in range(count)]


def test_show_draws_a_wide_and_a_long_tree_of_100k(tmp_path: Path) -> None:
    """One parent of 99,999 children: one piece, every child under it. A chain of 100,000:
    pieces of MAX_TRACE_SHOW_DEPTH + 1 records, each record drawn once, in order."""
    count = 100_000
    nodes = _nodes(count, tmp_path)
    chain = [TraceNode(node.index, node.record, None) for node in nodes]
    nodes[0].children = nodes[1:]
    ((top, under),) = pieces([nodes[0]])
    assert (top, under) == (nodes[0], None)
    assert len(top.to_json({})["children"]) == count - 1
    for parent, child in itertools.pairwise(chain):
        parent.children = [child]
    per = limits.MAX_TRACE_SHOW_DEPTH + 1
    drawn = pieces([chain[0]])
    assert len(drawn) == -(-count // per)
    assert [top.index for top, _ in drawn] == list(range(0, count, per))
    assert [under.index if under else None for _, under in drawn][1:] == [
        i - 1 for i in range(per, count, per)
    ]
    order = [i for top, _ in drawn for i in _flatten(top.to_json({}))]
    assert order == list(range(count))


def test_one_members_checkpoint_serves_another_members_proof(tmp_path: Path) -> None:
    """Two members submit a record each; the first's proof signs a checkpoint covering both:
    the second's proof, asked in the same second, is served from it (not refused). A member
    asking for the other's record within the limit is told `not found`, as for an id the
    log does not hold: nothing of the limit, nor the record's index."""
    world, log, collector = _collector(tmp_path)
    members = (world.support, world.admin)

    def submitted(member: Party) -> str:
        submission = _batch(collector, member.signer, RecordContent(Kind.TOOL_INVOCATION))
        (result,) = collector.submit(submission, submitter=None, now=SERVED).results
        assert result.delivered, result.detail
        return open_envelope(submission.records[0].envelope)[0].id

    first, second = submitted(members[0]), submitted(members[1])
    assert verify_bundle(collector.prove(first, requester=members[0].identifier, now=SERVED))
    third = submitted(members[0])
    proved = collector.prove(second, requester=members[1].identifier, now=SERVED)
    assert verify_bundle(proved).index == 1
    with pytest.raises(TraceError) as limited:
        collector.prove(third, requester=members[0].identifier, now=SERVED)
    assert limited.value.reason is TraceFailure.OVER_LIMIT
    with pytest.raises(NotFound) as hidden:
        collector.prove(third, requester=members[1].identifier, now=SERVED)
    assert "limit" not in str(hidden.value)
    assert "2" not in str(hidden.value).replace(third, "")
    assert len(log.checkpoints()) == 1


def test_a_server_published_on_a_node_trusting_two_grants_nothing(tmp_path: Path) -> None:
    """A node hosting none that trusts acme and globex when it publishes `orders` naming no
    authority answers `grantable_by: []` and its server is granted by none: acme's writer,
    under acme's bundle, is shown no tool and denied (deny by default; review 37c, mcp 1)."""

    async def test(net: MemNet) -> None:
        tools = await net.node("tools", listen=("tools", 4000))
        await tools.enroll(net.ticket(), "tools")
        _globex_node, globex, _ticket = await globex_over_tcp(net)
        await enroll_with_globex(net, tools, globex)
        now = net.clock.now()
        assert net.hub is not None
        signer = net.hub.node.identities.signer("hub", now=now)
        tools.policies.accept(support_bundle(signer, net.authority.identifier, now), now=now)
        published = await publish_upstream(tools, "orders", orders_server())
        assert published["grantable_by"] == []
        writer = await net.member("writer", **{"orders.access": "write"})
        shown, answer = await refund_as(writer, "writer")
        assert shown == []
        assert answer.endswith("denied: no policy bundle")

    run_memnet(test, tmp_path)
