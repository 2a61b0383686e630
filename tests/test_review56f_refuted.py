"""Review 56f, refuted: attacks on signed traces, as an offline verifier sees them, that the
trace layer refused (each test fails if its defence breaks).

- any one change to one line of an export (a string's bytes, a number, a member or list item
  dropped, a list item repeated or moved), other than a disclosure left out (a redaction), is
  refused with TraceError: never accepted, never another exception (hypothesis);
- a line repeated, lines of two exports (two checkpoints) mixed, a proof one hash longer or
  shorter, a leaf's line presented as its parent node (the proof's first hash dropped, the
  index halved);
- RFC 9162 edge cases: every inclusion and consistency proof of trees of 1 to 2^k+1 leaves
  verifies, one hash more or less, a node hash as a leaf, the neighbour's index, and any
  consistency proof from the empty tree are refused.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.support.gates import T, make_world
from tests.support.parties import make_party
from tests.support.traces import Held, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace import Authority, Kind, RecordContent, ToolCall, TraceLog, TraceRecorder
from troth.trace.export import export_jsonl, verify_export
from troth.trace.merkle import (
    MemoryTree,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

_F = TraceFailure
_HEX = "0123456789abcdef"
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


class _Export:
    """A log of seven records (two agents, one of them rotated between its records; a chain
    kept at the log) and its export's lines."""

    def __init__(self, path: Path) -> None:
        world = make_world()
        owner = make_party(world.vault, now=T)
        self.clock = FixedClock(T + 10)
        self.log = TraceLog.open(path, clock=self.clock, signer=lambda now: owner.signer)
        support = TraceRecorder(self.log, lambda now: world.support.signer, clock=self.clock)
        chain = world.support_chain
        content = RecordContent(
            Kind.TOOL_INVOCATION,
            tool=ToolCall("refund"),
            authority=Authority.from_chain(chain),
            values={"args": {"order": "o1"}, "result": "ok"},
        )
        support.record(content, chain=chain)
        agent = Held(now=T)
        other = recorder(self.log, agent, self.clock)
        other.record(tool_call())
        other.record(tool_call())
        agent.rotate(T + 11)
        other.record(tool_call())
        support.record(content, chain=chain)
        other.record(tool_call())
        support.record(content, chain=chain)
        self.lines = self.export()
        self.anchor = self.log.latest_checkpoint().note

    def export(self) -> list[bytes]:
        out = io.StringIO()
        export_jsonl(self.log, out)
        return [line.encode() for line in out.getvalue().splitlines()]

    def refused(self, lines: list[bytes]) -> TraceError:
        with pytest.raises(TraceError) as caught:
            verify_export(lines, anchor=self.anchor)
        return caught.value


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> _Export:
    return _Export(tmp_path_factory.mktemp("56f") / "trace.db")


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if path:
        yield path
    if isinstance(value, dict | list):
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            yield from _paths(item, (*path, key))


def _respelled(text: str, at: int, alphabet: str) -> str:
    """`text` with its character `at` another of `alphabet` (the same bytes once decoded
    never: no case change of hex, no padding bits of base64's last characters)."""
    if text[at] in _HEX and all(c in _HEX for c in text):
        alphabet = _HEX
    elif at >= len(text) - 4:  # base64's last quantum may hold bits no decoder reads
        at = 0
    others = [c for c in alphabet if c != text[at]] or ["~"]
    return text[:at] + others[len(text) % len(others)] + text[at + 1 :]


def _mutated(line: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    changed = copy.deepcopy(line)
    path = data.draw(st.sampled_from(list(_paths(changed))))
    *above, key = path
    parent = changed
    for step in above:
        parent = parent[step]
    value = parent[key]
    what = data.draw(st.sampled_from(["drop", "repeat", "move", "edit"]))
    assume(path[0] != "disclosures" or what != "drop")  # a redaction: verifies, by design
    if what == "drop":
        del parent[key]
    elif what in ("repeat", "move") and isinstance(parent, list):
        assume(path[:2] != ("log", "attestations"))  # a set: one attestation twice is one
        if what == "repeat":
            parent.insert(key, copy.deepcopy(value))
        else:
            parent.insert(data.draw(st.integers(0, len(parent) - 1)), parent.pop(key))
    elif isinstance(value, str) and value:
        alphabet = _B64 if all(c in _B64 + "=" for c in value) else _B64 + '{}":,.'
        parent[key] = _respelled(value, data.draw(st.integers(0, len(value) - 1)), alphabet)
    elif isinstance(value, bool) or value is None:
        parent[key] = data.draw(st.sampled_from([0, 1, "", [], {}]))
    elif isinstance(value, int):
        parent[key] = value + data.draw(st.sampled_from([-1, 1, 2**64]))
    else:
        parent[key] = data.draw(st.sampled_from([None, 0, "", "x"]))
    assume(changed != line)
    return changed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.data_too_large])
@given(data=st.data())
def test_any_change_to_an_export_line_is_refused_with_a_trace_error(
    export: _Export, data: st.DataObject
) -> None:
    number = data.draw(st.integers(0, len(export.lines) - 1))
    line = json.loads(export.lines[number])
    changed = _mutated(line, data)
    lines = list(export.lines)
    lines[number] = json.dumps(changed).encode()
    export.refused(lines)  # TraceError, nothing else


def test_lines_repeated_mixed_or_proved_at_another_depth_are_refused(export: _Export) -> None:
    lines = export.lines
    assert verify_export(lines, anchor=export.anchor).records == len(lines)
    assert export.refused([*lines, lines[2]]).reason is _F.REPLAYED
    bundle = json.loads(lines[1])
    for proof in (bundle["proof"] + bundle["proof"][-1:], bundle["proof"][:-1]):
        assert export.refused([json.dumps({**bundle, "proof": proof}).encode()]).reason is (
            _F.PROOF_INVALID
        )
    # leaf 1 presented as the node over leaves 0 and 1: its line at index 0, one hash fewer
    parent = {**bundle, "index": 0, "proof": bundle["proof"][1:]}
    assert export.refused([json.dumps(parent).encode()]).reason is _F.PROOF_INVALID
    holder = Held(now=T)
    recorder(export.log, holder, export.clock).record(tool_call())  # the log grows: another
    later = export.export()  # checkpoint for the next export's lines
    mixed = export.refused([*lines[:3], *later[3:]])
    assert (mixed.reason, mixed.index) == (_F.MALFORMED, 3)


SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 32, 33]


@pytest.mark.parametrize("size", SIZES)
def test_merkle_inclusion_at_the_edges(size: int) -> None:
    data = [bytes([n]) for n in range(size)]
    tree = MemoryTree([leaf_hash(d) for d in data])
    root = tree.root()
    for index in range(size):
        proof = tree.inclusion_proof(index)
        leaf = leaf_hash(data[index])
        verify_inclusion(index, size, leaf, proof, root)
        wrong = [
            (index, size, leaf, [*proof, root]),  # one hash too many
            (index, size, data[index].rjust(32, b"\0"), proof),  # not the leaf's hash
        ]
        if proof:
            wrong.append((index, size, leaf, proof[:-1]))  # one too few
        if index ^ 1 < size:
            wrong.append((index ^ 1, size, leaf, proof))  # the neighbour's place
        if size & (size - 1) == 0 and size > 1:  # the two leaves' hashes as one leaf's data
            # one level up (RFC 9162's second preimage; refused by the 0x00 / 0x01 prefixes)
            pair = b"".join(tree.perfect(0, index & ~1 | n) for n in (0, 1))
            assert node_hash(pair[:32], pair[32:]) == tree.perfect(1, index // 2)
            wrong.append((index // 2, size // 2, leaf_hash(pair), proof[1:]))
        for index_, size_, leaf_, proof_ in wrong:
            with pytest.raises(TraceError) as caught:
                verify_inclusion(index_, size_, leaf_, proof_, root)
            assert caught.value.reason is _F.PROOF_INVALID


@pytest.mark.parametrize("size", SIZES)
def test_merkle_consistency_at_the_edges(size: int) -> None:
    tree = MemoryTree([leaf_hash(bytes([n])) for n in range(size)])
    for smaller in range(1, size + 1):
        proof = tree.consistency_proof(smaller)
        old, new = tree.root(smaller), tree.root()
        verify_consistency(smaller, size, old, new, proof)
        wrong = [(smaller, size, old, new, [*proof, new]), (0, size, tree.root(0), new, [])]
        if proof:
            wrong.append((smaller, size, old, new, proof[:-1]))
            wrong.append((smaller, size, new, old, proof))
        for args in wrong:
            with pytest.raises(TraceError) as caught:
                verify_consistency(*args)
            assert caught.value.reason is _F.PROOF_INVALID
