"""Review 55t: attacks on this session's preview sets and budgets (review 55n) and on the
channels' identity pins (review 55q) that did not work.

Each is a real attempt: a forbid narrowed away from a tool it hides (an action written another
way, a list with duplicates or a group, an action the schema fragment declares under a tool's),
a member's budget renewed by pushing the active bundle again, a pin count driven below zero or
pinned twice by a refresh of the same peer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.gates import T, make_world
from tests.test_review55n_preview import ALL, _delegates, _wrapper_only, evaluations
from tests.test_review55q_pins import Counted, _flood, _known, _rotated
from troth.channel import VerifiedPeer
from troth.gates import PolicyEngine
from troth.gates.policies import compile_policies
from troth.node.channel_pins import ChannelPins

__all__ = ["evaluations"]  # the fixture

_PERMIT = '@id("p") permit(principal, action, resource);\n'


@pytest.mark.parametrize(
    ("forbid", "fragment"),
    [
        # the tool's action in an `in` list twice, with annotations and an `unless`
        (
            '@id("f") @note("x") forbid(principal, action in [Action::"invoke:a", '
            'Action::"invoke:a"], resource) unless { false };',
            "",
        ),
        # the action's id written with an escape
        ('@id("f") forbid(principal, action == Action::"invoke\\u{3a}a", resource);', ""),
        # an action the fragment declares under the tool's (the tool's action a group)
        (
            '@id("f") forbid(principal, action in Action::"invoke:a", resource);',
            'action "invoke:c" in [Action::"invoke:a"];',
        ),
        ('@id("f") forbid(principal, action in Action::"invoke:a", resource);', 'action "y";'),
    ],
)
def test_a_forbid_named_another_way_still_hides_its_tool(forbid: str, fragment: str) -> None:
    """A forbid whose action scope names tool `a` (escaped, twice, beside a fragment's action
    under it) stays in `a`'s preview set: `a` is hidden, `b` shown, as the whole policy set
    through cedarpy's public function shows them."""
    world = make_world()
    caller = world.credential(world.support_chain, world.support)
    tools = {name: {"type": "object"} for name in ("a", "b")}
    compiled = compile_policies(_PERMIT + forbid, fragment, tools)
    assert set(compiled.tool_sets) == {"b"}  # narrowed: `b` alone leaves the forbid out
    shown = PolicyEngine(compiled).visible_tools(caller)
    with _wrapper_only():
        before = PolicyEngine(replace(compiled, tool_sets={}, preview_work=0))
        assert shown == before.visible_tools(caller) == {"b"}


def test_a_forbid_in_a_list_with_a_group_hides_every_tool() -> None:
    """`action in [Action::"invoke:a", Action::"invoke"]`: the group makes it apply to every
    tool (not narrowed to `a`): both hidden."""
    world = make_world()
    caller = world.credential(world.support_chain, world.support)
    forbid = (
        '@id("f") forbid(principal, action in [Action::"invoke:a", Action::"invoke"], resource);'
    )
    compiled = compile_policies(_PERMIT + forbid, "", {n: {"type": "object"} for n in "ab"})
    assert PolicyEngine(compiled).visible_tools(caller) == frozenset()


def test_pushing_the_active_bundle_again_does_not_renew_a_members_budget(
    evaluations: Counter[str],
) -> None:
    """The active bundle's bytes accepted again (anyone may pass them on) keep its engine, so a
    member past its preview budget stays past it (a new engine would start every budget full)."""
    world = make_world()
    data = world.bundle()
    store = world.store(data)
    point = world.point(store)
    subs = _delegates(world, 6)
    assert [point.visible_tools(d, now=T + 10) for d in subs[:4]] == [ALL] * 4
    spent = evaluations["all"]
    for sub in subs[4:]:
        store.accept(data, feeds=world.feeds(), now=T + 10)
        assert point.visible_tools(sub, now=T + 10) == frozenset()
    assert evaluations["all"] == spent


def test_unpins_without_pins_never_leave_a_count_below_zero(tmp_path: Path) -> None:
    """Unpinned twice first, then pinned once: the digest is pinned (the count did not go to
    -2 and the pin to -1), its rotation survives the eviction; one unpin releases it."""
    known = _known(tmp_path / "n.db")
    old, _ = _rotated(known)
    digest = old.identifier.digest
    known.unpin(digest)
    known.unpin(digest)
    known.pin(digest)
    assert known.pinned() == 1
    _flood(known)
    assert known.outgrown(old)
    known.unpin(digest)
    assert known.pinned() == 0


def test_a_refresh_of_the_same_peer_pins_once_and_a_second_release_is_a_no_op(
    tmp_path: Path,
) -> None:
    """The same peer admitted again on one channel (a refresh) holds one pin, a second channel
    of it another; each channel's release (twice: a close racing the node's stop) unpins its
    own once (`Counted` fails an unpin without its pin)."""
    known = _known(tmp_path / "n.db")
    identity, _ = _rotated(known)
    peer = VerifiedPeer(identity, ())
    counted = Counted(known)
    pins = ChannelPins(counted)
    for _ in range(3):
        pins.hold("one", peer)
    pins.hold("two", peer)
    assert counted.held == {identity.identifier.digest: 2}
    for channel in ("one", "one", "two", "two"):
        pins.release(channel)
    assert not counted.held
    assert known.pinned() == 0
    assert len(pins) == 0


def test_an_erring_policy_of_one_tool_is_left_out_of_the_others_exactly() -> None:
    """A forbid of tool `a` whose condition always errs (an overflow: an erring answer hides a
    tool) is left out of `b`'s set: `b`, previewed without it, is shown, as the whole set shows it
    (Cedar never evaluates the condition of a policy whose action scope does not match)."""
    world = make_world()
    caller = world.credential(world.support_chain, world.support)
    policies = _PERMIT + (
        '@id("f") forbid(principal, action == Action::"invoke:a", resource)'
        " when { 9223372036854775807 + 1 > 0 };"
    )
    compiled = compile_policies(policies, "", {n: {"type": "object"} for n in "ab"})
    assert set(compiled.tool_sets) == {"b"}
    shown = PolicyEngine(compiled).visible_tools(caller)
    with _wrapper_only():
        before = PolicyEngine(replace(compiled, tool_sets={}, preview_work=0))
        assert shown == before.visible_tools(caller) == {"b"}
