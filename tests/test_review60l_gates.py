"""Review 60l, gates 1: `cedar_call._read` (review 60c, perf 2 sets a `CedarAnswer`'s slots
directly after it) promises `UNREADABLE` for an answer of another shape, but a decision that
is no text and cannot be hashed (a list, an object) raised a bare TypeError out of
`gates.decide` and the caveat check instead (`decision not in _DECISIONS`, a frozenset).
Now a decision that is no `str` is unreadable first."""

from __future__ import annotations

from typing import Any

import pytest

from troth.gates.cedar_call import UNREADABLE, _read


@pytest.mark.parametrize("decision", [["Allow"], {"Allow": 1}])
def test_an_unhashable_decision_is_unreadable(decision: Any) -> None:
    answer = {"decision": decision, "diagnostics": {"reason": [], "errors": []}}
    assert _read(answer) is UNREADABLE
