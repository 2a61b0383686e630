"""Review 68p (cache): a long-lived process holding a node open after ANOTHER process rotated
one of its identities (`troth identity rotate` beside a running node or a Python program).
Attacks that did not work (each a real attempt, failing if the defence it names broke): the
long-lived handle re-reads each local identity's row per call (`IdentityService.get`, its
verified copy reused only while the stored bytes are equal), its channel identity is dropped
once the vault no longer holds the key it shows (`ShownIdentity._still_held`), and a trace
recorder asks its signer source again when a rotation elsewhere deleted the cached key
(`TraceRecorder._signed`, KeyNotFound), and a record a cached signer signed under the history
before the rotation (a token's retired key, still in it) is refused by the log, which reads
the newest change the node holds (ATTESTATION_STALE), and signed again under the new one
(`TraceRecorder`'s retry)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import troth
from tests import test_review67f_secrets as review67f
from tests.conftest import SoftHsm
from tests.support.killed import killed_after
from tests.support.public_api import READ, Agents
from tests.support.traces import tool_call
from tests.test_review47f_restart import hsm_agent
from troth.clock import SystemClock
from troth.faults import CRASH_EXIT_CODE
from troth.node import open_node
from troth.node.trace_checks import verify_trace
from troth.node.traces import traced_as

world = review67f.world  # acme's hub brokering `payments` to its members


def _rotate_elsewhere(node: str, who: str, *, compromised: bool = False) -> None:
    """`who` rotated on node `node` by another process (forked, run whole)."""

    def work() -> None:
        with troth.Node.open(node) as other:
            other.identities.rotate(who, compromised=compromised)

    assert killed_after(0, work) == 0


async def leased(node: troth.Node, holder: str, running: troth.RunningNode) -> str:
    """`holder` of `node` leases `payments` (scope refunds) at the broker `running`: the
    lease's state."""
    at, hub = running.address, running.identifier
    issued = await node.secrets.lease(
        "payments", holder=holder, broker=at, expect=hub, scope=["refunds"]
    )
    return issued.lease.state.name


@pytest.mark.parametrize("compromised", [False, True])
def test_the_serving_handle_leases_as_a_member_another_process_rotated(
    world: Agents, compromised: bool
) -> None:
    """`ops` (hosted on the hub) leases through the hub's serving handle, another process
    rotates it, and the same handle leases again: under the new history (the stored row read
    per call), not refused as superseded."""
    ops = world.hub.identities.create("ops")
    world.hub.enroll(world.acme.ticket(READ), identity=ops)

    async def main() -> None:
        async with world.hub.serve(listen=("127.0.0.1", 0)) as running:
            assert await leased(world.hub, "ops", running) == "ACTIVE"
            before = world.hub.identities.get(ops).changes
            _rotate_elsewhere("acme", "ops", compromised=compromised)
            assert world.hub.identities.get(ops).changes == before + 1 + compromised
            assert await leased(world.hub, "ops", running) == "ACTIVE"

    asyncio.run(main())


def test_a_running_agent_node_leases_after_its_identity_rotated_elsewhere(
    world: Agents,
) -> None:
    """The agents node running (as a daemon does), `support` rotated twice by another process
    (routine, then compromised): each lease through the running node is granted."""

    async def main() -> None:
        async with (
            world.hub.serve(listen=("127.0.0.1", 0)) as running,
            world.agents.serve(listen=("127.0.0.1", 0)),
        ):
            for compromised in (None, False, True):
                if compromised is not None:
                    _rotate_elsewhere("agents", "support", compromised=compromised)
                assert await leased(world.agents, "support", running) == "ACTIVE"

    asyncio.run(main())


def test_a_long_lived_recorder_signs_under_the_new_history_after_a_rotation_elsewhere(
    world: Agents,
) -> None:
    """A recorder held open (the signer cached for _REFRESH_EVERY s) records, another process
    rotates its identity (deleting the signing key), it records again: under the new history
    (never the retired key), and the whole log verifies."""
    clock = SystemClock()
    with open_node("agents") as node, traced_as(node, "support", clock=clock) as recorder:
        recorder.record(tool_call("before"))
        before = world.agents.identities.get("support").changes
        _rotate_elsewhere("agents", "support")
        recorder.record(tool_call("after"))
        entries = world.agents.traces.show(world.support.identifier)
    assert world.agents.identities.get("support").changes == before + 1
    assert len(entries) == 2
    world.agents.traces.verify()  # raises TraceError on a record signed with a retired key


CRASH = "identity.retired-keys.before-delete"


def _rotate_agent() -> None:
    with open_node("hsm") as node:
        node.identities.rotate("agent", now=SystemClock().now())


def test_a_recorder_on_a_token_signs_with_no_key_a_rotation_elsewhere_retired(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, troth_home: Path
) -> None:
    """A PKCS#11 node: the retired keys leave the token only after the rotation's commit, and
    a `troth identity rotate` killed between the two leaves them there (review 47f). A
    recorder held open across it (its signer cached, the retired key still signing) has its
    record refused by the log as signed under an older change, and appends it signed under
    the new history; the log verifies."""
    hsm_agent(softhsm, monkeypatch)
    clock = SystemClock()
    with open_node("hsm") as node, traced_as(node, "agent", clock=clock) as recorder:
        recorder.record(tool_call("before"))
        first = recorder.agent
        before = node.identities.get("agent", now=clock.now()).identity.change_count
        assert killed_after(0, _rotate_agent, CRASH) == CRASH_EXIT_CODE
        assert node.identities.store.retired_keys(16) != []  # left in the token, recorded
        recorder.record(tool_call("after"))
        assert recorder.agent == first
        assert node.identities.get("agent", now=clock.now()).identity.change_count == before + 1
        verify_trace(node, kept=None, file=None, clock=clock)
