"""Review 32b, the trace tree (`troth.trace.view.trace_tree`, `troth trace show`).

1. Review 30c kept, for each (trace id, span id), the list of every record claiming that span,
   and looked a record's parent up by scanning that list for a record of the child's agent:
   a member that submits N records claiming one span of an agent's trace (it signs its own
   span ids: docs/traces.md), made each of that agent's records whose parent is that span
   compare its agent with all N, N x (records) comparisons where the tree was linear before,
   so `troth trace show` of a log a member shares stalls on a few thousand records.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, open_log, recorder
from troth.clock import FixedClock
from troth.identity import Identifier
from troth.trace import Kind
from troth.trace.record import Links
from troth.trace.signing import RecordContent
from troth.trace.view import trace_tree

_CLAIMS = 200
_TRACE = "ab" * 16
_SPAN = "cd" * 8


def test_records_claiming_one_span_do_not_make_the_tree_quadratic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """View 1: 200 records of one member claiming a span, 200 records of another agent whose
    parent is that span: the tree compares agents a few times per record, not 200 per
    child, and still links none of them under a record of another agent's span (two claim
    it). Was a strict xfail until the tree kept each span's claims by agent (`_Claims`)."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    claim = RecordContent(Kind.MESSAGE, links=Links(trace=_TRACE, span=_SPAN))
    recorder(log, Held(), clock).record_many([claim] * _CLAIMS)
    child = RecordContent(Kind.MESSAGE, links=Links(trace=_TRACE, parent_span=_SPAN))
    recorder(log, Held(), clock).record_many([child] * _CLAIMS)
    # every comparison of agents reads their digests, whatever compares them (`==`, a hash,
    # their text): the reads are counted (73m blind 1: `Identifier.__eq__` was counted, and
    # never called: the records decoded share one Identifier per agent, which a dict finds
    # by identity; a scan comparing digests or text was not seen)
    compared = 0
    digest = Identifier.__dict__["digest"]  # the slot's descriptor

    def counted(self: Identifier) -> bytes:
        nonlocal compared
        compared += 1
        read: bytes = digest.__get__(self, Identifier)
        return read

    monkeypatch.setattr(Identifier, "digest", property(counted))
    roots = trace_tree(log)
    monkeypatch.undo()
    assert len(roots) == 2 * _CLAIMS  # no parent: records of another agent claim the span
    assert compared >= 2 * _CLAIMS  # the probe sees each record's agent looked up
    assert compared < 4 * 2 * _CLAIMS, f"{compared} reads of agents for {2 * _CLAIMS}"
