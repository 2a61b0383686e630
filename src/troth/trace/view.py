"""The trace as a tree: who did what, under whose authority, which policy (`troth trace show`).

Records are linked to their parent by the parent record (`links.parent` of the agent
`links.parent_agent` names, or of the record's own agent: ids are unique per agent, so another
agent's record under the id is never taken for the parent; a version 1 record's parent, named
by id alone, is the signer's own record under it, else the one record under it before it,
else (none before it) the one after it, else none: `parent_record`) or, for records
made from OpenTelemetry spans, by the parent span in the same trace (`links.trace` and
`links.parent_span`; a span's identity is its trace id and span id): the record of that span
by the same agent, else the one record of it, else none (review 30c: records of other agents
claiming one span id, which a member signing its own records may do, cannot say which is the
parent). Records whose parent is not in the log are roots. Decoded, not verified: `troth
trace verify` says whether to trust what is shown.

A tree is drawn (`pieces`, `TraceNode.to_json`) without recursion and at most
MAX_TRACE_SHOW_DEPTH levels deep: the records below a record that deep are drawn as trees of
their own, each naming the record it is under (review 38b, view 2: one level per record, so an
agent whose every record names the one before made a tree its records deep, a RecursionError).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from troth import limits
from troth.credentials.format import CredentialBody, CredentialChain
from troth.errors import DecodeError, TraceError
from troth.identity import Identifier
from troth.trace.log import TraceLog
from troth.trace.record import TraceRecord
from troth.trace.record_decode import id_holders, parent_record
from troth.trace.signing import open_envelope

__all__ = ["TraceNode", "pieces", "trace_tree"]


@dataclass
class TraceNode:
    """One record in the tree, with what it is about and its children."""

    index: int
    record: TraceRecord
    authority: list[Identifier] | None
    children: list[TraceNode] = field(default_factory=list)

    def to_json(
        self, names: Mapping[Identifier, str], *, depth: int = limits.MAX_TRACE_SHOW_DEPTH
    ) -> dict[str, Any]:
        """This record and the ones under it, `depth` levels of them (built without
        recursion): a record at that depth lists no children and says how many it has
        (`continued`), drawn as trees of their own (`pieces`)."""
        top = self.summary(names)
        stack = [(self, top, 0)]
        while stack:
            node, value, level = stack.pop()
            children: list[dict[str, Any]] = []
            value["children"] = children
            if node.children and level >= depth:
                value["continued"] = len(node.children)
                continue
            for child in node.children:
                item = child.summary(names)
                children.append(item)
                stack.append((child, item, level + 1))
        return top

    def summary(self, names: Mapping[Identifier, str]) -> dict[str, Any]:
        """This record's fields, without its children (identifiers named by `names`)."""
        record = self.record

        def who(identifier: Identifier) -> str:
            return names.get(identifier, str(identifier))

        value: dict[str, Any] = {
            "index": self.index,
            "id": record.id,
            "agent": who(record.agent),
            "kind": record.kind.value,
            "time": record.time,
        }
        if record.tool is not None:
            value["tool"] = record.tool.name
            if record.tool.call is not None:
                value["call"] = record.tool.call
            if record.tool.server is not None:
                value["server"] = record.tool.server
        if record.decision is not None:
            value["decision"] = record.decision.outcome
            value["policies"] = list(record.decision.policies)
            value["bundle"] = record.decision.bundle
        if self.authority is not None:
            value["authority"] = who(self.authority[0])
            value["delegated_by"] = [who(i) for i in self.authority[1:]]
        elif record.authority is not None:
            value["chain"] = record.authority.chain.hex()
        if record.escalation_to is not None:
            value["escalated_to"] = who(record.escalation_to)
        if record.digests:
            value["committed"] = sorted(record.digests)
        return value


def pieces(
    roots: list[TraceNode], *, depth: int = limits.MAX_TRACE_SHOW_DEPTH
) -> list[tuple[TraceNode, TraceNode | None]]:
    """The trees to draw, each at most `depth` levels deep (`TraceNode.to_json`): every root,
    each followed by the subtrees below its records `depth` levels down, as trees of their own
    with the record they are under (None for a root), in the order drawn."""
    drawn: list[tuple[TraceNode, TraceNode | None]] = []
    for root in roots:
        found: list[tuple[TraceNode, TraceNode | None]] = []
        waiting: deque[tuple[TraceNode, TraceNode | None]] = deque([(root, None)])
        while waiting:
            top, under = waiting.popleft()
            found.append((top, under))
            stack = [(top, 0)]
            while stack:
                node, level = stack.pop()
                if level >= depth:
                    waiting.extend((child, node) for child in node.children)
                else:
                    stack.extend((child, level + 1) for child in node.children)
        drawn.append(found[0])
        drawn.extend(sorted(found[1:], key=lambda piece: piece[0].index))
    return drawn


def _issuers(chain: bytes | None) -> list[Identifier] | None:
    """The chain's authority and every delegator after it (its issuers, root first)."""
    if chain is None:
        return None
    try:
        decoded = CredentialChain.decode(chain)
        return [CredentialBody.decode(c.body).issuer for c in decoded.credentials]
    except DecodeError:
        return None


def trace_tree(log: TraceLog, *, agent: Identifier | None = None) -> list[TraceNode]:
    """The log's records as trees (roots in log order); with `agent`, only the subtrees that
    contain one of its records, from their root."""
    nodes: dict[tuple[Identifier, str], TraceNode] = {}
    by_span: dict[tuple[str | None, str], _Claims] = {}
    order: list[TraceNode] = []
    issuers: dict[bytes, list[Identifier] | None] = {}
    for entry in log.stored():
        index, record = entry.index, open_envelope(entry.envelope)[0]
        authority = None
        if record.authority is not None:
            digest = record.authority.chain
            if digest not in issuers:
                issuers[digest] = _issuers(log.chain(digest))
            authority = issuers[digest]
        node = TraceNode(index, record, authority)
        nodes[(record.agent, record.id)] = node  # ids are unique per agent
        if record.links.span is not None:
            by_span.setdefault((record.links.trace, record.links.span), _Claims()).add(node)
        order.append(node)
    roots: list[TraceNode] = []
    parents: dict[int, TraceNode] = {}
    named_at = ((agent, record_id, node.index) for (agent, record_id), node in nodes.items())
    holders = id_holders(named_at, (node.record for node in order))
    for node in order:
        links = node.record.links
        try:
            named = parent_record(node.record, holders, index=node.index)
        except TraceError:  # an ambiguous version 1 link names no record (the verifier
            named = None  # reports it)
        parent = nodes.get(named) if named is not None else None
        if parent is None and links.parent_span is not None:
            claims = by_span.get((links.trace, links.parent_span))
            parent = None if claims is None else claims.parent_of(node)
        if parent is None or parent is node:
            roots.append(node)
        else:
            parent.children.append(node)
            parents[node.index] = parent
    seen: set[int] = set()
    for root in roots:
        _mark(root, seen)
    for node in order:  # records in a parent cycle would be shown nowhere: cut the cycle
        if node.index not in seen:
            parents[node.index].children.remove(node)
            roots.append(node)
            _mark(node, seen)
    roots.sort(key=lambda root: root.index)
    for node in order:
        node.children.sort(key=lambda child: child.index)
    if agent is None:
        return roots
    return [root for root in roots if _contains(root, agent)]


class _Claims:
    """The records claiming one span (one trace id and span id): the first of each agent, and
    how many in all; a child's parent among them is found with one lookup, however many a
    member signed (review 32b, view 1: a scan of them all for each child was quadratic)."""

    __slots__ = ("count", "first", "own")

    def __init__(self) -> None:
        self.own: dict[Identifier, TraceNode] = {}
        self.first: TraceNode | None = None
        self.count = 0

    def add(self, node: TraceNode) -> None:
        self.own.setdefault(node.record.agent, node)
        if self.first is None:
            self.first = node
        self.count += 1

    def parent_of(self, child: TraceNode) -> TraceNode | None:
        """The parent of `child` among these records (module docstring): its agent's first
        record of the span, else the one record of it, else none."""
        own = self.own.get(child.record.agent)
        if own is not None:
            return own
        return self.first if self.count == 1 else None


def _mark(node: TraceNode, seen: set[int]) -> None:
    stack = [node]
    while stack:
        current = stack.pop()
        seen.add(current.index)
        stack.extend(child for child in current.children if child.index not in seen)


def _contains(node: TraceNode, agent: Identifier) -> bool:
    stack = [node]
    while stack:
        current = stack.pop()
        if current.record.agent == agent:
            return True
        stack.extend(current.children)
    return False
