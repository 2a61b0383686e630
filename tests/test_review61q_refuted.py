"""Review 61q, refuted: attacks on this session's later merges (61m, 61n, 61o, the lead's
fixes) that did not work. Each is a real attempt that fails if its defence breaks.

Gates (61o: decisions hand Cedar `{"type", "id"}` uids kept per tool and per chain, previews
still Cedar text):
- a policy naming one agent by its uid permits that agent only, decided and previewed alike,
  with two callers' calls interleaved (a kept principal dict handed to another caller, or a
  uid written differently in the two forms, would permit the wrong one or disagree);
- the kept uids survive a caller's hostile arguments and requests unchanged (a dict shared
  across callers, changed by one call, would name another entity at the next).
Home (61n / lead: `check_not_taken_over` in `init_node`): an existing empty directory others
can read, a symlink to one, and a readable home that already has `nodes` are taken as before
(made 0700).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.cedar_spy import spy_native
from tests.support.gates import TOOLS, T, make_world
from troth.gates import ToolCall
from troth.node.home import check_not_taken_over, secure_dir


def _only_for(agent: str) -> str:
    return (
        f'@id("only") permit(principal == Agent::"{agent}", '
        'action == Action::"invoke:lookup_order", resource);\n'
    )


def test_a_policy_naming_one_agent_permits_it_alone_decided_and_previewed() -> None:
    world = make_world()
    policies = _only_for(str(world.sub.identifier))
    store = world.store(world.bundle(policies=policies))
    point = world.point(store)
    engine = store.engine(world.authority.identifier, feed=world.feed, now=T + 10)
    sub = world.credential(world.sub_chain, world.sub)
    support = world.credential(world.support_chain, world.support)
    admin = world.credential(world.admin_chain, world.admin)
    call = ToolCall("lookup_order", {"order_id": "o"})
    for _ in range(2):  # interleaved, twice: the second round decided from the kept ones
        for credential, allowed in ((support, False), (sub, True), (admin, False)):
            decision = point.decide(credential, call, now=T + 10)
            assert decision.allowed is allowed
            shown = "lookup_order" in engine.visible_tools(credential)
            assert shown is allowed  # the text preview agrees with the uid decision


def test_kept_uids_are_not_changed_by_hostile_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    handed: list[dict[str, Any]] = spy_native(monkeypatch)
    world = make_world()
    point = world.point(world.store(world.bundle()))
    support = world.credential(world.support_chain, world.support)
    sub = world.credential(world.sub_chain, world.sub)
    hostile = [
        ToolCall("refund", {"order_id": 'o" || true', "amount": 5}),
        ToolCall("refund", {"order_id": "o\x00\n::", "amount": 5}, server="payments"),
        ToolCall("refund", {"order_id": "é" * 500, "amount": 5}),
        ToolCall("lookup_order", {"order_id": 'Agent::"x"'}),
    ]
    seen: list[tuple[str, dict[str, Any]]] = []
    for call in hostile:
        for credential in (support, sub):
            start = len(handed)
            point.decide(credential, call, now=T + 10)
            seen.extend((str(credential.actor), request) for request in handed[start:])
    assert {actor for actor, _ in seen} == {str(support.actor), str(sub.actor)}
    for actor, request in seen:  # each caller's own principal, the tools' own uids
        assert request["principal"] == {"type": "Agent", "id": actor}
        tool = request["action"]["id"].removeprefix("invoke:")
        assert request["action"] == {"type": "Action", "id": f"invoke:{tool}"}
        assert request["resource"] == {"type": "Tool", "id": tool}
        assert tool in {*TOOLS, "*"}
    # refund allowed for support (write) at 5, whatever the order id's text: decided as before
    again = point.decide(support, ToolCall("refund", {"order_id": "o", "amount": 5}), now=T + 10)
    assert again.allowed
    denied = point.decide(sub, ToolCall("refund", {"order_id": "o", "amount": 5}), now=T + 10)
    assert not denied.allowed


@pytest.mark.parametrize("layout", ["empty", "symlink", "has_nodes"])
def test_legitimate_homes_others_can_read_are_taken(tmp_path: Path, layout: str) -> None:
    real = tmp_path / "real"
    real.mkdir()
    os.chmod(real, 0o755)  # noqa: S103  # others can read it: what the check looks at
    if layout == "has_nodes":
        (real / "nodes").mkdir()
        (real / "other").write_text("x")
    home = real
    if layout == "symlink":
        home = tmp_path / "link"
        home.symlink_to(real)
    check_not_taken_over(home)  # no ConfigError
    secure_dir(home)
    assert os.stat(real).st_mode & 0o777 == 0o700
