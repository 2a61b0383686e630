"""Review 60l, gates 1: `cedar_call._read` (review 60c, perf 2 sets a `CedarAnswer`'s slots
directly after it) promises `UNREADABLE` for an answer of another shape, but a decision that
is no text and cannot be hashed (a list, an object) raised a bare TypeError out of
`gates.decide` and the caveat check instead (`decision not in _DECISIONS`, a frozenset).
Now a decision that is no `str` is unreadable first.

Review 60l, gates 2: review 60c's one C encoder for the tool arguments (`engine._json_text`)
keeps no markers (made once, they would be shared by threads), so it refused a circular value
by following it until RecursionError, not at once as the stdlib's check does: under a raised
recursion limit (`sys.setrecursionlimit`, as some frameworks set it) that ran past the C stack
and the process died (SIGSEGV) where `gates.decide` denied. The shared encoder now writes only
a flat object of exact scalars (nothing to follow); anything else goes the stdlib way."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from troth.gates.cedar_call import UNREADABLE, _read


@pytest.mark.parametrize("decision", [["Allow"], {"Allow": 1}])
def test_an_unhashable_decision_is_unreadable(decision: Any) -> None:
    answer = {"decision": decision, "diagnostics": {"reason": [], "errors": []}}
    assert _read(answer) is UNREADABLE


CIRCULAR = """
import sys
sys.setrecursionlimit(1_000_000)
from troth.gates.engine import _json_text
value = {"order_id": "o-1"}
value["amount"] = [value]
try:
    _json_text(value)
except (ValueError, RecursionError):
    print("refused")
"""


def test_a_circular_argument_under_a_raised_recursion_limit_is_refused_not_a_crash() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CIRCULAR], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "refused")
