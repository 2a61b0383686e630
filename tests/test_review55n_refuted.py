"""Review 55n: attacks on the preview budget (preview 1) that did not work.

Each is a real attempt to get past one member's budget of uncached previews; under the small
budget of tests/test_review55n_preview.py (four fresh previews), counted, not timed.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.support.gates import T
from tests.test_review55n_preview import ALL, TOOLS, _delegates, _mint, _world, evaluations
from troth.credentials import CredentialChain
from troth.gates import cedar_call

__all__ = ["evaluations"]  # the fixture


def test_delegating_deeper_does_not_make_a_new_member(evaluations: Counter[str]) -> None:
    """Delegates of a delegate (a chain one link longer, its own presenter) count against the
    member at the chain's root: after the member's budget is spent through four delegates,
    their own delegates are shown nothing and run no partial evaluation."""
    world, point = _world()
    subs = _delegates(world, 4)
    assert all(point.visible_tools(sub, now=T + 10) == ALL for sub in subs)
    spent = evaluations["all"]
    data, middle = _mint(world.support, CredentialChain.decode(world.support_chain), world)
    for credential in _delegates(world, 3, (middle, CredentialChain.decode(data))):
        assert len(credential.links) == 3
        assert point.visible_tools(credential, now=T + 10) == frozenset()
    assert evaluations["all"] == spent


def test_asking_under_many_server_names_is_charged_each_time(evaluations: Counter[str]) -> None:
    """One chain's preview under another MCP server name is another preview (cached apart):
    each is charged, so naming servers does not get past the budget."""
    world, point = _world()
    (sub,) = _delegates(world, 1)
    shown = [point.visible_tools(sub, now=T + 10, server=f"s{n}") for n in range(8)]
    assert shown.count(frozenset()) == 8 - 4
    assert evaluations["all"] <= 4 * TOOLS


@pytest.mark.parametrize(
    "answer",
    [
        '{"decision":"Allow","diagnostics":{}}',
        '{"decision":"Maybe","diagnostics":{"errors":[]}}',
        "[]",
    ],
)
def test_a_partial_answer_of_another_shape_shows_no_tool(
    answer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read directly, an answer without its errors list, with an unknown decision, or not an
    object hides the tool (the wrapper read a missing errors list as none)."""
    monkeypatch.setattr(cedar_call, "_native_partial", lambda *args: answer)
    world, point = _world()
    (sub,) = _delegates(world, 1)
    assert point.visible_tools(sub, now=T + 10) == frozenset()
