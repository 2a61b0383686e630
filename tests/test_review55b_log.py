"""Review 55b, log 1: a trace log remembered, in its process, the head and the history summary
of every agent that ever appended to it (`TraceLog._heads`, `_histories`, caches that save a
read per commit), forgotten only when another process appended or a checkpoint was signed. A
member mints delegate identities freely (each a member of its own, its credential a chain from
the member's), and each one's single record added an entry for as long as the node ran, so
the node's memory grew with the number of agents, not bounded as docs/traces.md says the
log's memory is ("the memory it needs does not grow with it"; review 51g, caches 1 bounded
the keys and chains only). Both caches now hold at most TRACE_LOG_KNOWN_CACHE agents and start
again past it: what they forget is read again from the log."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth import limits
from troth.clock import FixedClock
from troth.trace.verify import verify_log

_AGENTS = 20


def test_many_agents_do_not_grow_the_logs_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "TRACE_LOG_KNOWN_CACHE", 8)
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    agents = [recorder(log, Held(), clock) for _ in range(_AGENTS)]
    for agent in agents:  # one record each (a delegate a member minted for it)
        agent.record(tool_call())
    # what the log remembers in its process (white box: the memory itself is the finding)
    assert len(log._heads) <= 8
    assert len(log._histories) <= 8
    for agent in agents:  # a forgotten head is read again: each chain goes on
        assert agent.record(tool_call()).index >= _AGENTS
    log.checkpoint()
    assert verify_log(log).size == 2 * _AGENTS
    log.close()
