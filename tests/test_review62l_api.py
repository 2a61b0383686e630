"""Review 62l: the Python API fixes of review 62h (api 1-7) and the lead's, looked at again.

api 1 (fixed by the lead: a `Channel` knows its running node): a `Node` closed inside a
`connect` block (or a `serve` block) kept calling out over the channel it had open, as its
identity, where docs/python.md says every use of a closed node is refused (review 62h, api 7
closed the node's decision point only: a `Channel` never looks at the node).
api 2 (now a StorageError from `serve`, nothing served: review 62j's running node reads the
closed handle's store at once): a `Node` closed while `serve` was starting (before it
marked the node running: `runtime.start`, its first awaits) was served as if open: review 62h's
`_closed` was never called, the running node answered every use and its decision point was the
one it held in memory, as before that fix.
api 3: `troth.Node(stored)` (the documented wrapper of an open `troth.node.Node`) of a node
opened by a relative home kept that relative path: after a chdir, `node.policies` (which
reopens the node by its path) installed into another home's node of the same name, review
62h api 6 for every node not opened through `Node.open`.
api 4: `Node.open` of a relative home from a working directory that was removed raised a bare
FileNotFoundError (review 62h api 6's `Path.absolute()`), where it was a ConfigError before,
as every other failure to reach a home.
api 5: a `SystemClock` whose `now` was replaced on the instance (`clock.now = ...`, as a test's
monkeypatch does), before it was given or after, was read unchecked, since review 62h (api 3)
took any instance of that exact class as troth's own: a float reading failed deep inside, not
with the promised ArgumentError.
api 6 (fixed by the lead: the decision point itself refuses, `GatedPolicy.refusing`): a node
closed inside its `serve` block kept forwarding a relay name for an owner revoked meanwhile:
its relay service decides with the decision point it held (`runtime.access`, taken at
composition), not the host's, which review 62h's `_closed` swapped; the revocation could not
reach it (its store closed), where an open node stops.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import troth
from tests.support.gates import POLICIES
from tests.support.policy_world import TOOLS
from tests.support.public_api import READ, acme_and_agents, greet
from troth.clock import SystemClock
from troth.node.node import open_node
from troth.node.runtime import NodeRuntime


def test_api1_a_node_closed_inside_its_connect_block_calls_nothing_over_its_channel() -> None:
    async def scene(agents: troth.Node, hub: troth.Node) -> None:
        async with (
            hub.serve(listen=("127.0.0.1", 0), services=[greet]) as running,
            agents.connect(running.address, expect=running.identifier) as channel,
        ):
            assert await channel.call("greet", "hi") == "hi"
            agents.close()
            with pytest.raises(troth.TrothError):  # (it answered "hi", as the node)
                await channel.call("greet", "hi")

    with acme_and_agents() as world:
        world.agents.enroll(world.acme.ticket(READ))
        asyncio.run(scene(world.agents, world.hub))


def test_api2_a_node_closed_while_serve_starts_is_served_as_one_closed_inside(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start: Callable[..., Any] = NodeRuntime.start
    closing: list[troth.Node] = []

    async def start_then_close(self: NodeRuntime, listen: Any = None) -> None:
        await start(self, listen)
        closing.pop().close()  # another task closes it now: serve has not marked it yet

    monkeypatch.setattr(NodeRuntime, "start", start_then_close)

    async def scene(desk: troth.Node) -> None:
        closing.append(desk)
        with pytest.raises(troth.StorageError, match="is closed"):  # (it was served as open)
            async with desk.serve(listen=("127.0.0.1", 0)):
                pytest.fail("a node closed while serve started is served")

    with troth.Node.open("desk") as desk:
        asyncio.run(scene(desk))


def test_api3_a_node_wrapped_from_a_relative_home_reopens_no_other_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was a strict xfail until `Node(stored)` refused a node opened by a relative home."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    with troth.Node.open("acme", home="home") as hub:
        acme = hub.create_authority()
        bundle = hub.policies.sign(policies=POLICIES, tools=TOOLS, revision=1)
        with troth.Node.open("agents", home="home") as agents:
            agents.enroll(acme.ticket(READ))
    stored = open_node("agents", home=Path("home"))
    try:
        wrapped = troth.Node(stored)
    except troth.ArgumentError:  # refused: never reopened by a path the cwd changes
        stored.close()
        return
    monkeypatch.chdir(second)
    troth.Node.open("agents", home="home").close()  # a decoy of the same name there
    with wrapped:  # (PolicyError: the decoy took it, and trusts no authority)
        assert wrapped.policies.install(bundle).revision == 1
    with troth.Node.open("agents", home=second / "home") as decoy:
        assert decoy.policies.show() == []


def test_api4_a_relative_home_from_a_removed_working_directory_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was a strict xfail until `Node.open` made `Path.absolute()`'s OSError a ConfigError."""
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()  # the process's working directory, removed under it
    for create in (True, False):
        with pytest.raises(troth.ConfigError):
            troth.Node.open("agents", home="home", create=create)


def _reads(value: object) -> Callable[[], int]:
    """A now() reading `value` (the attack: no whole number of seconds)."""
    return lambda: value  # type: ignore[return-value]


def test_api5_a_system_clock_with_its_now_replaced_reads_nothing_but_a_time() -> None:
    """Was a strict xfail until a `SystemClock` was read through `CheckedClock` too (its now()
    replaced before it is given, or after)."""
    with acme_and_agents() as world:
        for reading, before in itertools.product(("soon", 1.5e9, -1), (True, False)):
            clock = SystemClock()
            if before:
                clock.now = _reads(reading)  # type: ignore[method-assign]
            verifier = troth.Verifier(trust=[world.acme.identifier], feeds=world.acme, clock=clock)
            clock.now = _reads(reading)  # type: ignore[method-assign]
            with pytest.raises(troth.ArgumentError, match="clock"):
                verifier.verify(world.member, presenter=world.support)


def _relays_after_revoking_its_owner(*, closed: bool) -> bool:
    """Whether acme's hub forwards relay name `agent-b` once its owner is revoked (through
    another handle) and the hub ran a maintenance round, the hub `closed` inside its serve
    block first or not."""

    async def scene(hub_node: troth.Node, b_node: troth.Node, acme: troth.Authority) -> bool:
        async with hub_node.serve(listen=("127.0.0.1", 0)) as hub, b_node.serve() as b:
            await b.enroll(acme.ticket({"troth.relay": "agent-b"}, at=hub.address))
            await b.relay("agent-b", at=hub.address)
            runtime = hub._runtime
            if closed:
                hub_node.close()
            with troth.Node.open("acme") as again:
                again.authority().revoke_identity(b.identifier)
            await runtime.maintain()
            forwarded = runtime.relays.get("agent-b")
            return forwarded is not None and forwarded.lost_at is None

    with troth.Node.open("acme") as hub_node, troth.Node.open("agent-b") as b_node:
        return asyncio.run(scene(hub_node, b_node, hub_node.create_authority()))


def test_api6_a_node_closed_inside_serve_relays_for_no_owner_revoked_meanwhile() -> None:
    assert not _relays_after_revoking_its_owner(closed=True)


def test_api6_an_open_node_relays_for_no_owner_revoked_meanwhile() -> None:
    """What api 6's test asks of a closed node, an open one does (the contrast)."""
    assert not _relays_after_revoking_its_owner(closed=False)
