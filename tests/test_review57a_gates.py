"""Review 57a, gates: the gates' control plane and per-call decision, adversarially.

Gates 1. A node service a policy bundle declares is decided by Cedar AND its built-in rule; a
service no active bundle declares by its built-in rule alone (docs/policy.md, "Services").
"Active" was only the bundles that loaded: a node restarted once its bundle had expired, or
while its bundle's policies could not be checked (the validating child did not start: EAGAIN
on a loaded machine, PolicyNotChecked), held its table's bundle inactive, so nothing declared
the service and every member met the built-in rule alone: a call the bundle forbade, denied
before the restart (`expired`, or the forbid), was allowed after it. A bundle a restored copy
brings back was already kept active for this reason ("a service it declares stays under
Cedar", review 54p); a stored bundle that does not load now keeps the services it declares
under Cedar too (`BundleStore.declares`, troth.gates.dormant), which denies while no bundle
of its authority is in force. Both tests were strict xfails until then.

Gates 2. A running node holding revision 1 reloads its table after `troth policy push` (another
process) verified and stored revision 2 there. When revision 2 did not load at that reload —
its policies not checked (the validating child did not start, PolicyNotChecked; it is tried
again after a backoff of up to 15 minutes, for as long as the child fails), or refused for any
other reason — the node went on deciding by revision 1, which the table says revision 2
replaced: whatever revision 2 took away stayed allowed. The store now holds the active revision
out of force while its table holds a higher one that did not load (`BundleStore.engine`,
`DormantBundles.check_active`): denied, saying why the newer one did not load. Was a strict
xfail until then.

Gates 3. That node handed the older revision to others: a member's node pulling (`get`) was
answered revision 1, and decided by it, unaware of revision 2, until the node holding both
could check revision 2. The policy service now offers no bundle its table replaced
(`NodePolicies.offered`): the puller is answered nothing (deny when in doubt) and the node pulls
any revision itself. Was a strict xfail until then.

Gates 4. `troth policy show` listed the active bundles only: a node whose table bundle did not
load (gates 1) said it held no policy bundle, while every call of the services it declares was
denied. It lists such a bundle too, by its claims, not in force, saying why it did not load
(`NodePolicies.show`). Was a strict xfail until then.
"""

from __future__ import annotations

import asyncio
import errno
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.gates import POLICIES, TOOLS, T, make_world
from tests.test_gates_services import (
    FORBID_READ,
    RULES,
    SERVICE_POLICIES,
    SERVICES,
    Scene,
    ask,
)
from troth.clock import FixedClock
from troth.gates import BundleStore, SqliteBundleTable, ToolCall, create_bundle
from troth.node import init_node, open_node
from troth.node.access import GatedPolicy, LocalCaller, RulesPolicy
from troth.node.services.base import RequestContext
from troth.node.services.node_policies import NodeFeeds, NodePolicies
from troth.node.services.policy import PolicyService, install_bundle, stored_bundles


def _restarted(scene: Scene, *, now: int) -> GatedPolicy:
    """The node's access decision after a restart: a new store on the same table, reloaded
    at `now`, deciding which services are under Cedar by what it declares."""
    store = BundleStore(scene.world.verifier, scene.store.table)
    store.reload(now=now)
    rules = RulesPolicy("hub", RULES, scene.standing)
    return GatedPolicy(rules, scene.world.point(store), store.declares)


def test_a_service_of_a_bundle_expired_at_a_restart_stays_under_cedar() -> None:
    world = make_world()
    data = world.bundle(policies=SERVICE_POLICIES + FORBID_READ, services=SERVICES, ttl=600)
    scene = Scene(world, world.store(data))
    support = scene.peer(world.support_chain, "support")
    assert not scene.policy().decide(ask(support, "orders", "read")).allowed  # the forbid
    world.refresh_feed(T + 700)
    running = GatedPolicy(
        RulesPolicy("hub", RULES, scene.standing), world.point(scene.store), scene.store.declares
    )
    assert not running.decide(ask(support, "orders", "read", T + 700)).allowed  # expired
    decision = _restarted(scene, now=T + 700).decide(ask(support, "orders", "read", T + 700))
    assert not decision.allowed, decision.reasons


def test_a_service_of_a_bundle_not_checked_at_a_restart_stays_under_cedar(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = make_world()
    big = "// " + "x" * 40_000 + "\n" + SERVICE_POLICIES + FORBID_READ  # validated in a child
    scene = Scene(world, world.store(world.bundle(policies=big, services=SERVICES)))
    support = scene.peer(world.support_chain, "support")
    assert not scene.policy().decide(ask(support, "orders", "read")).allowed  # the forbid

    def no_process(*args: Any, **kwargs: Any) -> Any:
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    decision = _restarted(scene, now=T + 10).decide(ask(support, "orders", "read"))
    assert not decision.allowed, decision.reasons


# -- gates 2: a newer bundle stored but not loaded left the older one deciding ----------------

NO_LOOKUP = (
    '@id("no-lookup") forbid(principal, action == Action::"invoke:lookup_order", resource);\n'
)


def _no_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every validating child fails to start (EAGAIN): PolicyNotChecked, no verdict."""

    def no_process(*args: Any, **kwargs: Any) -> Any:
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(subprocess, "Popen", no_process)


def test_a_newer_bundle_not_checked_here_does_not_leave_the_older_deciding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The running node holds revision 1, which permits lookups; `troth policy push` (another
    process, its store on the same table) verified and stored revision 2, which forbids them.
    The node's reload cannot check revision 2 (its validating child does not start): it must
    not decide by revision 1, which the table says revision 2 replaced."""
    world = make_world()
    running = world.store(world.bundle(revision=1))
    member = world.credential(world.support_chain, world.support)
    call = ToolCall("lookup_order", {"order_id": "o"})
    assert world.point(running).decide(member, call, now=T + 10).allowed
    tighter = "// " + "x" * 40_000 + "\n" + POLICIES + NO_LOOKUP  # validated in a child
    pushed = BundleStore(world.verifier, running.table)  # the CLI's store
    pushed.accept(world.bundle(revision=2, policies=tighter), feeds=world.feeds(), now=T + 6)
    assert not world.point(pushed).decide(member, call, now=T + 10).allowed
    _no_child(monkeypatch)
    assert running.reload(now=T + 10) == []  # not checked: tried again after a backoff
    decision = world.point(running).decide(member, call, now=T + 10)
    assert not decision.allowed, decision.reason


# -- gates 3: such an older revision was handed to other nodes ---------------------------------


def test_a_node_hands_no_one_the_revision_its_table_replaced(
    troth_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Node acme decides by revision 1; `troth policy push` stored revision 2 in its table,
    which acme's reload cannot check. A member node pulling (`get`, any revision) is not handed
    revision 1: it would decide by it, unaware of revision 2, until acme could check that."""
    now = int(time.time())
    init_node("acme", home=troth_home)
    clock = FixedClock(now + 5)
    with open_node("acme", home=troth_home) as node:
        authority = node.create_authority("acme", now=now).identifier
        signer = node.identities.signer("acme", now=now)

        def signed(revision: int, policies: str) -> bytes:
            return create_bundle(
                signer,
                authority=authority,
                policies=policies,
                schema="",
                tools=TOOLS,
                revision=revision,
                now=now,
                ttl=3600,
            )

        older = signed(1, POLICIES)
        newer = signed(2, "// " + "x" * 40_000 + "\n" + POLICIES + NO_LOOKUP)
        running = NodePolicies(node, NodeFeeds(node, clock))
        running.trust(frozenset({authority}), now=clock.now())
        running.accept(older, now=clock.now())
        install_bundle(troth_home, "acme", newer, clock=clock)  # the CLI: checked, stored
        _no_child(monkeypatch)
        assert running.reload(now=clock.now()) == []
        assert SqliteBundleTable(node.db).stamps()[authority.digest][0] == 2
        service = PolicyService(
            running,
            worker=Any,  # type: ignore[arg-type]
            router=Any,  # type: ignore[arg-type]
            routes=dict,
            hosted=lambda: authority,
            channel_to=Any,  # type: ignore[arg-type]
            find_channel=lambda channel: None,
            clock=clock.now,
            standing=Any,  # type: ignore[arg-type]
        )
        context = RequestContext(LocalCaller(), None, None, clock.now())  # type: ignore[arg-type]
        answer = asyncio.run(service.get([authority.digest, 0], context))
    assert answer != older


# -- gates 4: `troth policy show` said nothing of a bundle that did not load ----------------------


def test_policy_show_names_a_stored_bundle_that_did_not_load(troth_home: Path) -> None:
    """Node acme's table holds its bundle, expired: every call it governed is denied, and
    `troth policy show` says which bundle is held and why it is not in force, not that the node
    holds none."""
    now = int(time.time())
    init_node("acme", home=troth_home)
    with open_node("acme", home=troth_home) as node:
        authority = node.create_authority("acme", now=now).identifier
        signer = node.identities.signer("acme", now=now)
        data = create_bundle(
            signer,
            authority=authority,
            policies=POLICIES,
            schema="",
            tools=TOOLS,
            revision=3,
            now=now,
            ttl=60,
        )
    install_bundle(troth_home, "acme", data, clock=FixedClock(now + 1))
    rows = stored_bundles(troth_home, "acme", clock=FixedClock(now + 120))
    assert [(row["revision"], row["in_force"]) for row in rows] == [(3, False)]
    assert "expired" in str(rows[0]["not_in_force"])
