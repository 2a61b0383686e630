"""Review 43b, gates: review 41d's range check of integer tool arguments (docs/policy.md,
"Tool arguments"; src/troth/gates/toolschema.py).

gates 1: the check of an `int` subclass compared it with its own operators: a subclass whose
comparisons say "in range" (a caller's numeric wrapper, a proxy) carried 2^53 + 1 past the
check, and JSON encodes its int value, so Cedar judged and permitted a number outside I-JSON
where the plain integer is denied. Was a strict xfail until `toolschema._safe_integer`
compared the integer's value (`int.__int__`), not the subclass.
"""

from __future__ import annotations

from typing import Any

from tests.support.gates import T
from tests.test_review41d_gates import BIG, _setup
from troth.gates import Outcome, ToolCall


class Agreeable(int):
    """An int subclass whose comparisons always say yes."""

    def __le__(self, other: Any) -> bool:
        return True

    def __ge__(self, other: Any) -> bool:
        return True

    def __lt__(self, other: Any) -> bool:
        return True

    def __gt__(self, other: Any) -> bool:
        return True


def test_an_int_subclass_with_its_own_comparisons_is_range_checked_by_its_value() -> None:
    """2^53 + 1 as `Agreeable` is denied as the arguments (as the plain integer is); 5 as
    `Agreeable` is decided by Cedar as 5."""
    point, caller = _setup()
    sub = point.decide(caller, ToolCall("t", {"n": Agreeable(BIG)}), now=T + 10)
    assert (sub.allowed, sub.outcome) == (False, Outcome.ARGUMENTS)
    small = point.decide(caller, ToolCall("t", {"n": Agreeable(5)}), now=T + 10)
    assert (small.allowed, small.policies) == (True, ("small",))
