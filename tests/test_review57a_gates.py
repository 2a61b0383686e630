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
"""

from __future__ import annotations

import errno
import subprocess
from typing import Any

import pytest

from tests.support.gates import T, make_world
from tests.test_gates_services import (
    FORBID_READ,
    RULES,
    SERVICE_POLICIES,
    SERVICES,
    Scene,
    ask,
)
from troth.gates import BundleStore
from troth.node.access import GatedPolicy, RulesPolicy


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
