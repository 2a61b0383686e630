"""Review 70y (the weighing of MCP requests held by a session, area weighing), findings.

Weighing 1. `HeldRequests.hold` walked every value of a tools/call's arguments to weigh them,
given up only past MAX_MCP_SESSION_HELD of weight: a frame of ~500,000 values over
MAX_TOOL_ARGUMENT_VALUES (denied at once anyway) cost ~0.1-0.3 s on the event loop, about
twice the CPU its value charge (MCP_VALUE_CHARGE, counted up to one past the limit) pays
for. The walk now stops one value past MAX_TOOL_ARGUMENT_VALUES, as the charge's count does,
and such a call weighs `held.DENSEST` per byte of its frame (the most any measured shape
weighed or held per byte: below).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from tests.test_review70u_mcpheld import call_frame, decoded_call
from tests.test_review70u_refuted import _SHAPES
from troth import limits

_OVER = limits.MAX_TOOL_ARGUMENT_VALUES * 20


def _dense(over: int) -> dict[str, dict[str, Any]]:
    """The densest shapes measured, of `over` values (a quarter as many objects of an object)."""
    return {
        "zeros": {"x": [0] * over},
        "empty lists": {"x": [[] for _ in range(over)]},
        "one-member objects": {"x": [{"": 0} for _ in range(over)]},
        "objects of an object": {"x": [{"": {}} for _ in range(over // 4)]},
        "wide": {f"{i:x}": [] for i in range(over)},
    }


_DENSE = _dense(_OVER)
_WALKED = 4 * limits.MAX_TOOL_ARGUMENT_VALUES
"""The walk tests' size: their bound is exact at any size well past the limit. At 4x the whole
walk (before weighing 1) visits over 1.4 times the bound in every shape (objects of an object,
the fewest: 3 visits for each of its 16,384 objects; the others at least 1 for each of 65,536
values); building and encoding 20x frames was most of their time (73f ci). The weights
(tracemalloc against the frame's bytes) are still measured at 20x (`_DENSE`)."""


def visits(monkeypatch: pytest.MonkeyPatch, frame: bytes) -> tuple[int, bool]:
    """How many sizes `HeldRequests.hold` takes of the message `frame` decoded (each value and
    key it visits: one each), and whether a session holding nothing holds it."""
    from types import SimpleNamespace

    from troth.integrations.mcp import held as module
    from troth.integrations.mcp.channel import decode_message

    item = decode_message(frame)
    seen = [0]

    def size(value: object) -> int:
        seen[0] += 1
        return sys.getsizeof(value)

    monkeypatch.setattr(module, "sys", SimpleNamespace(getsizeof=size))
    holds = module.HeldRequests(limits.MAX_MCP_SESSION_HELD)
    taken = holds.hold(item, len(frame))
    return seen[0], taken


@pytest.mark.parametrize("shape", sorted(_DENSE))
def test_weighing_1_an_over_limit_calls_walk_is_bounded(
    monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    """70y weighing 1: a tools/call of ~330,000 values (over MAX_TOOL_ARGUMENT_VALUES) was
    weighed value by value, all of them (~twice the CPU its charge pays for); its walk now
    visits at most one value past the limit, each with its key (and the rest of the request)."""
    seen, taken = visits(monkeypatch, call_frame(_dense(_WALKED)[shape]))
    assert taken  # one of any weight when the session holds none
    assert seen <= 2 * (limits.MAX_TOOL_ARGUMENT_VALUES + 2) + 16


@pytest.mark.parametrize("shape", sorted({**_DENSE, **_SHAPES}))
def test_weighing_1_an_over_limit_call_weighs_at_least_what_it_holds(shape: str) -> None:
    """70y weighing 1: weighed by its frame's bytes, a call over the value limit still weighs
    at least what tracemalloc measures of it served (the request, the SDK's typed params and
    the gate's dict) and at least the full walk's weight, for the densest shapes measured and
    70u's refuted ones."""
    from troth.integrations.mcp.held import HeldRequests, message_weight

    arguments = _DENSE.get(shape) or {"x": _SHAPES[shape]}
    item, served = decoded_call(arguments, serve=True)
    holds = HeldRequests(1 << 40)
    assert holds.hold(item, len(call_frame(arguments)))
    assert holds.total >= served
    assert holds.total >= message_weight(item, 1 << 40)


def test_weighing_1_a_call_within_the_limit_is_weighed_as_before() -> None:
    """70y weighing 1: a call within MAX_TOOL_ARGUMENT_VALUES is still weighed value by value
    (its frame's bytes play no part)."""
    from troth.integrations.mcp.held import HeldRequests

    arguments = {"x": list(range(limits.MAX_TOOL_ARGUMENT_VALUES - 1))}
    item, _ = decoded_call(arguments)
    small, large = HeldRequests(1 << 40), HeldRequests(1 << 40)
    assert small.hold(item, 1)
    assert large.hold(item, len(json.dumps(arguments)) << 10)
    assert small.total == large.total


def test_weighing_1_an_array_of_arguments_is_walked_no_further() -> None:
    """70y weighing 1: a tools/call whose arguments are an array of ~330,000 values (charged
    nothing for its values, refused by the SDK as it is served) was walked whole too."""
    with pytest.MonkeyPatch.context() as patch:
        seen, taken = visits(patch, call_frame([0] * _WALKED))
    assert taken
    assert seen <= 2 * (limits.MAX_TOOL_ARGUMENT_VALUES + 2) + 16
