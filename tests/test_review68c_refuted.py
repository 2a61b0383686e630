"""Review 68c: attacks on the leases a compromised rotation revokes (67f/67l/67q:
troth.node.rotation_revoke, `broker_revoke_due`) that did not work (each a real attempt,
failing if the defence it names broke)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path
from typing import Any

import troth
from tests import test_review67f_secrets as review67f
from tests.conftest import NOW
from tests.support.killed import killed_after
from tests.support.public_api import READ, Agents
from tests.test_review67l_refuted import leased
from troth.faults import CRASH_EXIT_CODE
from troth.node.rotation_revoke import finish_due
from troth.node.services.broker import open_broker
from troth.secrets.lease import LIVE_STATES, LeaseState
from troth.secrets.sweep import BATCH_REVOKE_SECONDS

world = review67f.world  # the fixture: acme's hub brokering `payments` to its members

_DUE = "SELECT identity, changes FROM broker_revoke_due"


def _ops(world: Agents) -> troth.Identity:
    """`ops`, a member hosted on the hub (its chain outlives its own rotations), leasing."""
    ops = world.hub.identities.create("ops")
    world.hub.enroll(world.acme.ticket(READ), identity=ops)
    leased(world, (world.hub, "ops"))
    return ops


def _rotate_ops() -> None:
    with troth.Node.open("acme") as hub:
        hub.identities.rotate("ops", compromised=True)


def _steps(trace: Path) -> list[int]:
    """A compromised rotation of ops run whole in a forked child, each SQLite statement it
    ran written to `trace`: the numbers of those at a step (the row's, a lease's state
    written, each killed as it starts), and of those right after the rotation's commit and
    the row's deletion (killed once they committed)."""
    pid = os.fork()
    if pid == 0:  # the child: no pytest cleanup, no return
        try:
            with trace.open("w") as out:
                connect = sqlite3.connect

                def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
                    conn: sqlite3.Connection = connect(*args, **kwargs)
                    conn.set_trace_callback(lambda sql: out.write(" ".join(sql.split()) + "\n"))
                    return conn

                sqlite3.connect = traced  # type: ignore[assignment]  # the child's own module
                _rotate_ops()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    steps: list[int] = []
    commits = 0
    ran = trace.read_text().splitlines()
    for number, sql in enumerate(ran, 1):
        commits += sql == "COMMIT"
        if commits == 2 and sql == "COMMIT":  # the rotation's
            steps.append(number + 1)
        elif "broker_revoke_due" in sql or sql.startswith("UPDATE secret_leases SET state"):
            steps.append(number)
        if sql.startswith("DELETE FROM broker_revoke_due"):
            done = [number + 2] if number + 2 <= len(ran) else []  # then: the announcement
            return [*sorted(set(steps)), *done]
    raise AssertionError("the rotation never finished its revocation")


def test_a_compromised_rotation_killed_at_each_step_leaves_no_stolen_lease_live(
    world: Agents, tmp_path: Path
) -> None:
    """SIGKILL at each step of a compromised rotation of ops (its row recorded due, the
    rotation's commit, the leases' revocation, the row deleted): whenever the rotation
    committed, ops's lease is ended or recorded due, and the broker's finish then ends it and
    deletes the row; a rotation that did not commit ended nothing (ops's lease still live)."""
    ops = _ops(world)
    steps = _steps(tmp_path / "trace")
    assert len(steps) >= 7  # the child ran the rotation whole: its steps found
    node = world.hub._stored
    broker = open_broker(node, now=NOW)

    def live() -> int:
        return len(broker.store.leases_in(LIVE_STATES, identity=ops.identifier, limit=None))

    async def main() -> None:
        async with world.hub.serve(listen=("127.0.0.1", 0)) as running:
            at, hub = running.address, running.identifier
            kills = 0
            for step in steps:
                if not live():  # ops's history as stored now (the children rotated it)
                    with troth.Node.open("acme") as fresh:
                        await fresh.secrets.lease(
                            "payments", holder="ops", broker=at, expect=hub, scope=["refunds"]
                        )
                before = world.hub.identities.get(ops).changes
                code = killed_after(step, _rotate_ops)  # 0: it ran whole (a step moved)
                assert code in (CRASH_EXIT_CODE, 0), step
                kills += code == CRASH_EXIT_CODE
                after = world.hub.identities.get(ops).changes
                due = [changes for _, changes in node.db.fetch_all(_DUE) if changes < after]
                assert after == before or due or not live(), step  # committed: ended, or due
                finish_due(node, broker, NOW)
                assert [row for row in node.db.fetch_all(_DUE) if row[1] < after] == [], step
                assert live() == (0 if after > before else 1), step  # no more, no less
            assert kills >= len(steps) // 2  # killed at its steps, mostly

    try:
        asyncio.run(main())
    finally:
        broker.close()


def _finish(world: Agents, *, fail: bool = False, clock_step: float = 0.0) -> tuple[int, int]:
    """The broker's finish of what is due (`finish_due`, as its start and maintenance rounds
    run it), its engine failing each upstream revocation if `fail`, its monotonic clock
    moving `clock_step` seconds per read: (how many rows it finished, engine calls made)."""
    node = world.hub._stored
    broker = open_broker(node, now=NOW)
    calls: list[object] = []

    def revoke_ref(spec: object, ref: object) -> None:
        calls.append(ref)
        if fail:
            raise troth.SecretError(troth.SecretFailure.ENGINE_FAILED, "the server is gone")

    ticks = iter(range(1_000_000))
    broker._revoke_ref = revoke_ref  # type: ignore[method-assign]
    if clock_step:
        broker.monotonic = lambda: next(ticks) * clock_step
    try:
        return finish_due(node, broker, NOW), len(calls)
    finally:
        broker.close()


def _states(world: Agents, ops: troth.Identity) -> list[str]:
    broker = open_broker(world.hub._stored, now=NOW)
    try:
        leases = broker.store.leases_in(list(LeaseState), identity=ops.identifier, limit=None)
        return sorted(lease.state.name for lease in leases)
    finally:
        broker.close()


def test_the_new_keys_leases_outlive_the_finished_rotation_and_a_routine_one(
    world: Agents,
) -> None:
    """A lease of the NEW key revoked wrongly: ops rotated as compromised (its revocation
    done), leases again under its new key: the broker's next finish revokes nothing; a
    second compromised rotation ends that lease, a routine one after it ends nothing."""
    ops = _ops(world)
    world.hub.identities.rotate(ops, compromised=True)
    leased(world, (world.hub, "ops"))  # under the new key
    assert _finish(world) == (0, 0)
    assert _states(world, ops) == ["ACTIVE", "REVOKED"]
    world.hub.identities.rotate(ops, compromised=True)  # back to back
    assert _states(world, ops) == ["REVOKED", "REVOKED"]
    leased(world, (world.hub, "ops"))
    world.hub.identities.rotate(ops)  # routine
    assert _finish(world) == (0, 0)
    assert _states(world, ops) == ["ACTIVE", "REVOKED", "REVOKED"]


def test_an_engine_failing_during_the_finish_leaves_no_lease_live_and_retries_it(
    world: Agents,
) -> None:
    """The engine fails each upstream revocation while the broker finishes a rotation killed
    before its revocation: ops's lease is out of use at once (REVOKING, its row done: the
    sweep's retries own it now), and the sweep, the engine back, revokes it upstream."""
    ops = _ops(world)
    assert killed_after(0, _rotate_ops, "identity.rotate.after-commit") == CRASH_EXIT_CODE
    assert _finish(world, fail=True) == (1, 1)
    assert world.hub._stored.db.fetch_all(_DUE) == []
    assert _states(world, ops) == ["REVOKING"]
    broker = open_broker(world.hub._stored, now=NOW)
    try:
        broker.sweep(NOW + 3600)  # past its backoff
    finally:
        broker.close()
    assert _states(world, ops) == ["REVOKED"]


def test_many_leases_due_cost_one_budget_of_engine_time_per_finish(world: Agents) -> None:
    """Very many leases due (each upstream call as slow as a whole budget here): one finish
    makes one engine call, not one per lease, and still ends every lease at once (REVOKING:
    the sweep's budgets take the rest), its row done."""
    ops = _ops(world)
    leased(world, *[(world.hub, "ops")] * 4)
    assert killed_after(0, _rotate_ops, "identity.rotate.after-commit") == CRASH_EXIT_CODE
    finished, calls = _finish(world, clock_step=float(BATCH_REVOKE_SECONDS))
    assert (finished, calls) == (1, 1)
    assert _states(world, ops).count("REVOKING") == 4  # one revoked, the rest left due
    assert "ACTIVE" not in _states(world, ops)
