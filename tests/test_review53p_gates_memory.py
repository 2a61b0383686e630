"""Review 53p, memory 1: the Cedar entities an engine keeps across the chains it has cached.

The engine keeps, per verified chain, the chain's Cedar entities; parsed against the bundle's
schema they hold the schema's every action too (MAX_TOOLS tools: 515 entities, ~130 KiB a chain,
measured), and the cache was bounded by count only (CACHE_ENTRIES, 4,096 chains: ~500 MB). A
member mints delegates for free, each a chain of its own, so one member filled it. Was a strict
xfail until the cache was bounded by the entities it holds (MAX_CACHED_CHAIN_ENTITIES, each
chain weighing its entity count; the caveated chains' cache by its entities' estimated bytes
too): an evicted chain's entities are built again at its next call (a cost, never a denial).
The measure is the entity count (deterministic): the entities live in cedarpy's native heap,
which tracemalloc does not see.
"""

from __future__ import annotations

import pytest

from tests.support.gates import TOOLS, T, make_world
from tests.test_review41d_caveats import caveated_callers
from troth import limits
from troth.gates import ToolCall
from troth.gates.engine import PolicyEngine

POLICIES = '@id("all") permit(principal, action, resource);\n'
CHAINS = 12
BOUND_CHAINS = 4  # the budget set below holds this many chains' entities


def _engine(point: object, caller: object) -> PolicyEngine:
    found = [x for x in point._engine(caller, T + 10) if isinstance(x, PolicyEngine)]  # type: ignore[attr-defined]
    return found[0]


def test_many_chains_keep_at_most_the_entity_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    world = make_world()
    names = [f"t{i:03d}" + "x" * (limits.MAX_TOOL_NAME - 4) for i in range(limits.MAX_TOOLS)]
    tools = {name: {"type": "object"} for name in names}
    # one chain's entities: its subject and the schema's actions (`invoke` and one per tool,
    # the services' and `lease`): at least MAX_TOOLS
    budget = BOUND_CHAINS * (limits.MAX_TOOLS + 8)
    monkeypatch.setattr(limits, "MAX_CACHED_CHAIN_ENTITIES", budget, raising=False)
    point = world.point(world.store(world.bundle(policies=POLICIES, tools=tools)))
    callers = [world.member_credential(*world.new_member()) for _ in range(CHAINS)]
    call = ToolCall(names[0], {}, None, None)
    for caller in callers:
        assert point.decide(caller, call, now=T + 10).allowed
    engine = _engine(point, callers[0])
    held = sum(
        len(p.entities)
        for cache in (engine._principals, engine._caveated)
        for p in cache.values()
        if p.entities is not None
    )
    assert held <= budget, f"{held} entities kept for {CHAINS} chains (budget {budget})"
    # an evicted chain is decided as before: its entities are built again
    assert point.decide(callers[0], call, now=T + 10).allowed


def test_many_caveated_chains_keep_at_most_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caveated chains' cache was bounded by its policy text only: under a small bundle of
    MAX_TOOLS tools it kept its every entry's ~130 KiB of entities uncounted."""
    world = make_world()
    names = [f"t{i:03d}" + "x" * (limits.MAX_TOOL_NAME - 4) for i in range(limits.MAX_TOOLS - 3)]
    tools = {**TOOLS, **{name: {"type": "object"} for name in names}}
    entity_bytes = 256  # limits.CEDAR_ENTITY_BYTES
    budget = BOUND_CHAINS * (limits.MAX_TOOLS + 8) * entity_bytes
    monkeypatch.setattr(limits, "MAX_CAVEATED_POLICY_TEXT", budget)
    point = world.point(world.store(world.bundle(tools=tools)))
    callers = caveated_callers(world, CHAINS, ('context.args.order_id != "x"',))
    lookup = ToolCall("lookup_order", {"order_id": "4471"})
    for caller in callers:
        assert point.decide(caller, lookup, now=T + 10).allowed
    engine = _engine(point, callers[0])
    held = sum(len(p.entities) for p in engine._caveated.values() if p.entities is not None)
    assert held * entity_bytes <= budget, f"{held} entities kept for {CHAINS} chains"
    assert point.decide(callers[0], lookup, now=T + 10).allowed
