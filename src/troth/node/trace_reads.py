"""What a node's trace log says: its records as trees, one record's offline proof bundle, an
export of every record with its proof; the library calls of `troth trace show`, `prove` and
`export` and of `Node.traces` (verifying is `troth.node.trace_checks`).

An agent is named by its identifier, its identifier's text, or the name of one of the node's
identities (NotFound when none is); None: every agent's records.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from troth.clock import Clock
from troth.identity import Identifier
from troth.node.node import Node
from troth.node.verify import trace_checkpoints, trace_issuers, trace_known
from troth.trace.checkpoint import Checkpoint
from troth.trace.export import export_bundles, export_jsonl, prove
from troth.trace.log import TraceLog, open_node_log
from troth.trace.outbox_store import OutboxStore, outbox_exists
from troth.trace.verify import LogVerifier, log_material
from troth.trace.view import TraceNode, pieces, trace_tree

__all__ = [
    "TraceShown",
    "agent_of",
    "export_node_jsonl",
    "export_node_otel",
    "exported_bundles",
    "names_of",
    "prove_record",
    "show_trace",
]

AgentRef = Identifier | str | None
"""An agent: its identifier, its text, a local identity's name; None: every agent."""


def names_of(node: Node) -> dict[Identifier, str]:
    """The names of the node's identities, by identifier (what a trace shows in their place)."""
    return {
        Identifier(r.identifier): r.name for r in node.identities.list_local() if r.name is not None
    }


def agent_of(node: Node, ref: AgentRef) -> Identifier | None:
    """The agent `ref` names (None: every agent); NotFound for a name the node has not."""
    if ref is None or isinstance(ref, Identifier):
        return ref
    if Identifier.looks_like(ref):
        return Identifier.parse(ref)
    return Identifier(node.identities.find(ref).identifier)


@dataclass(frozen=True, slots=True)
class TraceShown:
    """The log's records as trees (of one agent's, or every agent's), and what the node's
    trace outbox holds for the trace service (None: nothing)."""

    roots: list[TraceNode]
    """The trees, roots in log order."""
    names: dict[Identifier, str]
    """The names of the node's identities, shown in place of their identifiers."""
    outbox: tuple[int, int] | None
    """Records queued in the node's trace outbox and records set aside (refused); None when
    it holds neither."""

    def pieces(self) -> list[tuple[TraceNode, TraceNode | None]]:
        """The trees to draw, each at most MAX_TRACE_SHOW_DEPTH levels deep, and the record
        each one drawn apart is under (`troth.trace.view.pieces`)."""
        return pieces(self.roots)

    def to_json(self) -> list[dict[str, Any]]:
        """The trees as `troth trace show --json` prints them: a subtree past
        MAX_TRACE_SHOW_DEPTH levels drawn apart, its `below` the index it is under."""
        shown = []
        for top, under in self.pieces():
            value = top.to_json(self.names)
            if under is not None:  # drawn apart: past MAX_TRACE_SHOW_DEPTH levels
                value["below"] = under.index
            shown.append(value)
        return shown


def show_trace(node: Node, agent: AgentRef = None, *, clock: Clock) -> TraceShown:
    """The node's trace log as trees: who did what, under whose authority, which policy;
    with `agent`, only the trees it is in."""
    with open_node_log(node, clock=clock) as log:
        names = names_of(node)
        roots = trace_tree(log, agent=agent_of(node, agent))
    outbox = None
    if outbox_exists(node.db):
        counts = OutboxStore(node.db).counts()
        queued, refused = sum(c[1] for c in counts), sum(c[3] for c in counts)
        outbox = (queued, refused) if queued or refused else None
    return TraceShown(roots, names, outbox)


def prove_record(node: Node, record_id: str, agent: AgentRef = None, *, clock: Clock) -> Any:
    """The offline proof bundle of record `record_id` (of `agent`: ids are unique per agent;
    needed when several agents have a record under the id) against a fresh checkpoint."""
    with open_node_log(node, clock=clock) as log:
        return prove(log, record_id, agent_of(node, agent))


@contextlib.contextmanager
def exported_bundles(
    node: Node, agent: AgentRef = None, *, clock: Clock
) -> Iterator[tuple[Checkpoint, Iterator[dict[str, Any]]]]:
    """A fresh checkpoint of the node's log and the proof bundle of each record (of `agent`)
    against it, read one at a time while the block lasts (`troth.trace.export.export_bundles`)."""
    with open_node_log(node, clock=clock) as log:
        yield export_bundles(log, agent=agent_of(node, agent))


def export_node_jsonl(
    node: Node, stream: IO[str], agent: AgentRef = None, *, clock: Clock
) -> Checkpoint:
    """Write the node's log (of `agent`) to `stream` as JSONL, each line a record with its
    inclusion proof and the checkpoint (an evaluation set); returns that checkpoint."""
    with open_node_log(node, clock=clock) as log:
        return export_jsonl(log, stream, agent=agent_of(node, agent))


def export_node_otel(node: Node, endpoint: str, agent: AgentRef = None, *, clock: Clock) -> int:
    """Send the node's log (of `agent`) to the OTLP/HTTP `endpoint` as OpenTelemetry spans;
    returns how many."""
    from troth.trace.otel import export_otel, otlp_exporter

    with open_node_log(node, clock=clock) as log:
        who = agent_of(node, agent)
        return export_otel(
            log,
            otlp_exporter(endpoint),
            agent=None if who is None else str(who),
            verifier=node_log_verifier(node, log, now=clock.now()),
        )


def node_log_verifier(node: Node, log: TraceLog, *, now: int) -> LogVerifier:
    """A verifier of `log`'s records with the histories `node` stores (forks refused, an
    extension stored), checkpointed histories attested and chains' issuer histories checked,
    as `troth trace verify` judges them: what the OTel export checks each record with before
    its span is sent (review 62k, traces 4: over the log's own material alone, a log that
    verifies with the node's stored histories was refused)."""
    return LogVerifier(
        log_material(log),
        known=trace_known(node),
        checkpoints=trace_checkpoints(node, now=now),
        rows=node.identities.window_around,
        issuers=trace_issuers(node),
    )
