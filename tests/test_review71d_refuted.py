"""Review 71d (area: outbox): attacks tried on the outbox's signing again at a rotation and the
collector's ALREADY answer that did not work, kept as passing tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_review69a_outbox import _node_agent
from tests.test_trace_service import NOW
from troth import limits


def test_a_compromised_rotation_is_never_refused_by_the_resigning_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried: keep a compromised key current by queueing more rows than a rotation signs again
    (an unreachable trace service, or a writer of node.db): the bound at 0, two rows queued,
    a `--compromised` rotation still commits (it signs none again: both set aside)."""
    monkeypatch.setattr(limits, "MAX_ROTATION_RESIGNED_RECORDS", 0, raising=False)
    node, outbox = _node_agent(tmp_path)
    try:
        agent = outbox.identifier.digest
        before = node.identities.get("agent", now=NOW + 5).identity.change_count
        node.identities.rotate("agent", now=NOW + 10, compromised=True)
        assert node.identities.get("agent", now=NOW + 20).identity.change_count > before
        assert outbox.store.first(agent, 10) == []
        assert len(outbox.store.refused(agent=agent, limit=10)) == 2
    finally:
        outbox.close()
        node.close()
