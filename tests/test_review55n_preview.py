"""Review 55n, preview 1: one member's fresh delegates made every preview cost the node a
partial evaluation of the bundle's policies per tool, unbounded.

Gate 1's preview (`visible_tools`: what `available_tools` and an MCP gate's tools/list show, and
what a denied call's visibility lookup reads) partially evaluates the bundle's policies (and the
chain's caveats) once per tool of the bundle for each chain it has not seen, the GIL held
throughout: measured (review 55f), ~5-6 s of CPU for one fresh chain under a bundle of
MAX_TOOLS (512) tools and one permit each, ~9 s under load, about half of it cedarpy's Python
wrapper parsing a ~100 KB answer per tool. A member mints delegates for free, each a chain of
its own: each delegate's first preview stalled the node (every member's calls, channels and
feeds) for seconds, with no bound on how many a member could ask for.

Now a preview of a chain the engine has not cached is charged to its member (the credential's
authority and the subject of its root link, so every delegate of one member shares one
budget): `PREVIEW_WORK_BURST` units of work (one unit: one policy in one tool's partial
evaluation), refilled at `PREVIEW_WORK_RATE` a second. Past it the member's uncached previews
are refused: its callers see no tool, and its denied calls are told why
(`preview-budget`), the same for every name; other members keep their own budget. These tests
count partial evaluations (no timing assertions), under a small budget set for the test. Both
were strict xfails until the budget (troth.gates.preview_budget) was charged.
"""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import cedarpy
import pytest

from tests.support.gates import GatesWorld, T, make_world
from tests.support.parties import Party, make_party
from troth import limits
from troth.credentials import Attributes, CredentialChain, VerifiedCredential, delegate
from troth.errors import PolicyError
from troth.gates import DecisionPoint, Outcome, PolicyEngine, ToolCall, cedar_call
from troth.gates.policies import compile_policies

PER_PREVIEW = 4
"""The work of one fresh preview in the gate tests' world: 3 tools, each evaluated against the
policies that can apply to it, 4 in all (preview 2; 3 x 4 before)."""
TOOLS = 3
"""Partial evaluations of one fresh preview there."""
BURST = 4 * PER_PREVIEW
"""The member's budget in these tests: four fresh previews."""
ALL = frozenset({"lookup_order", "refund"})  # what the support agent's delegates (read+write)
# are shown: export needs the dpo role


@pytest.fixture
def evaluations(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """The partial evaluations run (`all`; `wrapper`: through cedarpy's public function,
    `bytes`: the answers' length through its native one), under a budget of BURST units
    refilled at one a second."""
    monkeypatch.setattr(limits, "PREVIEW_WORK_BURST", BURST, raising=False)
    monkeypatch.setattr(limits, "PREVIEW_WORK_RATE", 1, raising=False)
    count: Counter[str] = Counter()
    partial = cedarpy.is_authorized_partial
    native = getattr(cedar_call, "_native_partial", None)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        count.update(("all", "wrapper"))
        return partial(*args, **kwargs)

    def direct(*args: Any) -> str:
        assert native is not None
        answer: str = native(*args)
        count.update(all=1, bytes=len(answer))
        return answer

    monkeypatch.setattr(cedarpy, "is_authorized_partial", wrapper)
    monkeypatch.setattr(cedar_call, "_native_partial", direct, raising=False)
    return count


def _delegates(
    world: GatesWorld, count: int, by: tuple[Party, CredentialChain] | None = None
) -> list[VerifiedCredential]:
    """`count` delegates the support agent mints (free), each with the support's tags (`by`:
    another delegator and its chain)."""
    signer, chain = by or (world.support, CredentialChain.decode(world.support_chain))
    return [world.credential(*_mint(signer, chain, world)) for _ in range(count)]


def _mint(by: Party, chain: CredentialChain, world: GatesWorld) -> tuple[bytes, Party]:
    """A delegate of `by` (whose chain is `chain`): its chain's bytes and the delegate."""
    party = make_party(world.vault, now=T)
    sub = delegate(
        by.signer,
        chain,
        subject=party.identifier,
        attributes=Attributes({"orders.access": frozenset({"read", "write"})}),
        now=T,
        ttl=3600,
        purpose="one preview",
    )
    return sub.encode(), party


def _world() -> tuple[GatesWorld, DecisionPoint]:
    world = make_world()
    return world, world.point(world.store(world.bundle()))


def test_one_members_fresh_delegates_cannot_preview_past_its_budget(
    evaluations: Counter[str],
) -> None:
    """Twelve fresh delegates of one member preview at once: four are shown their tools (the
    budget), the others none, and the node ran at most the budget's partial evaluations
    (before: all twelve, 36). Another member, previewing after, is unaffected."""
    world, point = _world()
    shown = [point.visible_tools(d, now=T + 10) for d in _delegates(world, 12)]
    assert shown[:4] == [ALL] * 4
    assert shown[4:] == [frozenset()] * 8
    assert evaluations["all"] <= 4 * TOOLS
    other = world.member_credential(*world.new_member())
    assert point.visible_tools(other, now=T + 10) == ALL


def test_a_member_past_its_budget_is_told_so_for_every_denied_name(
    evaluations: Counter[str],
) -> None:
    """Past the budget a fresh delegate's denied calls (a real tool whose cap forbids these
    arguments, a made-up name) are told the same budget denial, without a partial evaluation;
    its allowed call is still allowed (decided, never previewed); a chain already previewed
    keeps its cached preview; once the budget refills, a fresh delegate is shown its tools."""
    world, point = _world()
    first, *rest = _delegates(world, 6)
    assert point.visible_tools(first, now=T + 10) == ALL
    for sub in rest[:3]:
        point.visible_tools(sub, now=T + 10)
    spent = evaluations["all"]
    late = rest[3]
    for call in (ToolCall("refund", {"order_id": "o", "amount": 5000}), ToolCall("nope", {})):
        _, told = point.judge_tool(late, call, now=T + 10)
        assert told.outcome is Outcome.PREVIEW_BUDGET
        assert "preview" in told.reason
    assert evaluations["all"] == spent
    assert point.decide(late, ToolCall("lookup_order", {"order_id": "1"}), now=T + 10).allowed
    assert point.visible_tools(first, now=T + 10) == ALL  # cached: no work, no charge
    assert point.visible_tools(rest[4], now=T + 10 + PER_PREVIEW) == ALL  # refilled


# -- preview 2: each tool evaluated against every policy, through the Python wrapper ---------
# (a strict xfail until each tool was evaluated against the policies that can apply to it, by
# cedarpy's native function: troth.gates.preview_sets, cedar_call.partial_shows)

WIDE = {f"t{i:02d}": {"type": "object"} for i in range(64)}
"""64 tools, one permit each (`WIDE_POLICIES`)."""
WIDE_POLICIES = "".join(
    f'@id("p{i:02d}") permit(principal, action == Action::"invoke:t{i:02d}", resource)\n'
    '  when { principal.hasTag("orders.access") };\n'
    for i in range(64)
)


def test_a_fresh_preview_evaluates_each_tool_against_the_policies_that_can_apply(
    evaluations: Counter[str],
) -> None:
    """A fresh chain's preview under 64 tools of one permit each: every tool is shown, the
    answers Cedar writes stay about one policy's each (before: the 64 policies' residuals for
    each tool, ~64 times as much, parsed by cedarpy's Python wrapper), and the wrapper is not
    called (cedarpy's native function is, its answer read once)."""
    world = make_world()
    point = world.point(world.store(world.bundle(policies=WIDE_POLICIES, tools=WIDE)))
    assert point.visible_tools(world.member_credential(*world.new_member()), now=T + 10) == set(
        WIDE
    )
    assert (evaluations["all"], evaluations["wrapper"]) == (64, 0)
    assert 0 < evaluations["bytes"] < 64 * 2048


_NAMES = ("t0", "t1", "t2", "t3")
_SCOPES = (
    "action",
    'action in Action::"invoke"',
    'action == Action::"invoke:{a}"',
    'action in Action::"invoke:{a}"',
    'action in [Action::"invoke:{a}", Action::"invoke:{b}"]',
    'action == Action::"invoke:t9"',
)
_RESOURCES = ("resource", 'resource in Server::"s"', 'resource == Tool::"{a}"')
_CONDITIONS = (
    "",
    ' when { principal.hasTag("orders.access") }',
    ' when { principal.hasTag("orders.access") && '
    'principal.getTag("orders.access").contains("write") }',
    " when { context.now > 5 }",
    " unless { context.now > 5 }",
    " when { false }",
    ' unless { principal.hasTag("troth.role") }',
)


def _random_policies(rng: random.Random) -> str:
    lines = []
    for n in range(rng.randint(1, 7)):
        a, b = rng.choice(_NAMES), rng.choice(_NAMES)
        scope = rng.choice(_SCOPES).format(a=a, b=b)
        resource = rng.choice(_RESOURCES).format(a=rng.choice(_NAMES))
        effect = rng.choice(("permit", "permit", "forbid"))
        condition = rng.choice(_CONDITIONS)
        lines.append(f'@id("r{n}") {effect}(principal, {scope}, {resource}){condition};')
    return "\n".join(lines)


def test_previews_by_tool_sets_answer_as_previews_of_every_policy() -> None:
    """Random bundles (action scopes of one tool, a list, a group, all, another action;
    resources in a server or one tool; conditions on tags and the context, forbids): every
    chain's preview, in no server and in one, is the one the whole policy set shows through
    cedarpy's public function (the preview before preview 2)."""
    rng = random.Random(55)
    world = make_world()
    callers = [
        world.credential(world.support_chain, world.support),
        world.credential(world.sub_chain, world.sub),
        world.credential(world.admin_chain, world.admin),
    ]
    compared = narrowed = shown_some = 0
    for _ in range(150):
        tools = {name: {"type": "object"} for name in rng.sample(_NAMES, rng.randint(1, 4))}
        try:
            compiled = compile_policies(_random_policies(rng), "", tools)
        except PolicyError:  # an impossible or ill-typed policy: refused, nothing to preview
            continue
        engine = PolicyEngine(compiled)
        narrowed += bool(compiled.tool_sets)
        before = PolicyEngine(replace(compiled, tool_sets={}, preview_work=0))
        for caller in callers:
            for server in (None, "s"):
                shown = engine.visible_tools(caller, server=server)
                with _wrapper_only():
                    assert shown == before.visible_tools(caller, server=server)
                shown_some += bool(shown)
        compared += 1
    assert compared >= 30, compared  # 40: enough bundles compiled, narrowed and shown to
    assert narrowed >= 20, narrowed  # 26: compare the two ways meaningfully
    assert shown_some >= 20, shown_some  # 142


@contextlib.contextmanager
def _wrapper_only() -> Iterator[None]:
    """Previews through cedarpy's public function, as before preview 2."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cedar_call, "_native_partial", None)
        yield
