"""Review 62h: the Python API surface (troth.*) held to the CLI's and the node's guarantees.

api 1: a closed `Node` kept installing and showing policy bundles (`node.policies` reopened the
node by its path), where docs/python.md says every call through a closed node is a
StorageError.
api 2: `Node.open` opened a node in a home others can write in, or reached through another
user's symlink, which every command (`troth.cli.common.home`) and `troth node start` refuse.
api 3: a clock of a `SystemClock` subclass was taken unchecked: a reading of text failed deep
inside with a bare TypeError, a float with a DecodeError, where the API promises an
ArgumentError.
api 4: two `serve` blocks of one `Node` entered together both ran (the "already serves" check
came before the first `await`, the mark after it), and the first to end left the other
serving unmarked: `node.connect` then ran a third runtime beside it. Was a strict xfail until
review 62j gave each handle one runtime (troth._api.handle_runtime: `serve` claims it before
its first await; `connect` blocks and leases outside `serve` share one; tests in
tests/test_review62j_serve.py).
(Two `connect` blocks outside `serve` entered together must keep working: a fix of api 4 that
marks the node before the first await refused the second with that RuntimeError.)
api 5: `PolicyBundle.from_row` of a mapping that is not a row raises a bare KeyError.
api 6: a relative `home` stayed relative: after a chdir, `node.policies` (which reopens the node
by its path) installed into, and decided by, another home's node of the same name.
api 7: a `Node` closed inside its `serve` block went on answering requests from what it held
in memory: a caller revoked meanwhile was answered (the revocation could not reach its closed
store, only a warning was logged).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import troth
from tests.support.gates import POLICIES
from tests.support.policy_world import TOOLS
from tests.support.public_api import READ, acme_and_agents, greet
from troth.clock import SystemClock


def test_api1_a_closed_nodes_policies_refuse_every_call() -> None:
    with acme_and_agents() as world:
        bundle = world.hub.policies.sign(policies=POLICIES, tools=TOOLS, revision=1)
    calls: dict[str, Callable[[], object]] = {
        "install": lambda: world.agents.policies.install(bundle),
        "show": world.agents.policies.show,
        "resign": lambda: world.hub.policies.resign("00" * 32),
    }
    for what, call in calls.items():
        with pytest.raises(troth.StorageError, match="is closed"):
            call()
        print(what, "refused")
    with troth.Node.open("agents") as again:
        assert again.policies.show() == []  # nothing was installed through the closed handle
    assert repr(world.agents) == "Node('agents')"  # its name stays readable


def test_api2_a_home_others_can_write_in_is_refused_as_the_cli_refuses(tmp_path: Path) -> None:
    home = tmp_path / "shared"
    troth.Node.open("agents", home=home).close()
    os.chmod(home, 0o777)  # noqa: S103 - the attack: a home anyone may plant files in
    try:
        with pytest.raises(troth.ConfigError, match="writable by others"):
            troth.Node.open("agents", home=home)
    finally:
        os.chmod(home, 0o700)
    troth.Node.open("agents", home=home).close()  # the user's own 0700 home opens


@pytest.mark.skipif(os.geteuid() != 0, reason="making a link of another user needs root")
def test_api2_a_home_through_another_users_symlink_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "mine"
    troth.Node.open("agents", home=home).close()
    link = tmp_path / "planted"
    link.symlink_to(home)
    os.lchown(link, 65534, 65534)  # another user's link: it chooses where the home is
    with pytest.raises(troth.ConfigError):
        troth.Node.open("agents", home=link)


class _Reading(SystemClock):
    """A system clock whose reading is `value`: a subclass, as an offset clock would be."""

    def __init__(self, value: object) -> None:
        self.value = value

    def now(self) -> int:
        return self.value  # type: ignore[return-value]  # the attack: no whole number


def test_api3_a_system_clock_subclass_reading_no_time_is_an_argument_error() -> None:
    with acme_and_agents() as world:
        for reading in ("soon", 1.5e9, float("nan"), -1):
            verifier = troth.Verifier(
                trust=[world.acme.identifier], feeds=world.acme, clock=_Reading(reading)
            )
            with pytest.raises(troth.ArgumentError, match="clock"):
                verifier.verify(world.member, presenter=world.support)
            with (
                troth.Node.open("agents", clock=_Reading(reading)) as agents,
                pytest.raises(troth.ArgumentError, match="clock"),
            ):
                agents.identities.create("late")


def test_api4_two_serve_blocks_of_one_node_entered_together_are_refused() -> None:
    async def both(node: troth.Node) -> list[str]:
        entered = asyncio.Event()
        release = asyncio.Event()

        async def block() -> str:
            try:
                async with node.serve():
                    entered.set()
                    await release.wait()
                    return "served"
            except RuntimeError:
                release.set()
                return "refused"

        tasks = [asyncio.create_task(block()) for _ in range(2)]
        await entered.wait()
        release.set()
        return sorted(await asyncio.gather(*tasks))

    with troth.Node.open("agents") as agents:
        assert agents.identity.name == "agents"
        assert asyncio.run(both(agents)) == ["refused", "served"]


def test_api5_policy_bundle_from_a_mapping_that_is_no_row_is_a_troth_error() -> None:
    with pytest.raises(troth.TrothError):
        troth.PolicyBundle.from_row({"revision": 1})


def test_api6_a_relative_home_stays_the_one_opened_after_a_chdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    with (
        troth.Node.open("acme", home="home") as hub,
        troth.Node.open("agents", home="home") as agents,
    ):
        acme = hub.create_authority()
        agents.enroll(acme.ticket({"orders.access": "read"}))
        bundle = hub.policies.sign(policies=POLICIES, tools=TOOLS, revision=1)
        monkeypatch.chdir(second)
        troth.Node.open("agents", home="home").close()  # a decoy of the same name there
        assert agents.policies.install(bundle).revision == 1  # the node opened, not the decoy
        assert [held.revision for held in agents.policies.show()] == [1]
    with troth.Node.open("agents", home=second / "home") as decoy:
        assert decoy.policies.show() == []


def test_api4_two_connect_blocks_outside_serve_entered_together_both_answer() -> None:
    """What a fix of api 4 must keep: `Node.connect` outside `serve` runs the node for its
    block, and two such blocks entered together both get their answer."""

    async def both(agents: troth.Node, hub: troth.Node) -> list[object]:
        async with hub.serve(listen=("127.0.0.1", 0), services=[greet]) as running:

            async def one() -> object:
                async with agents.connect(running.address, expect=running.identifier) as channel:
                    return await channel.call("greet", "hi")

            return list(await asyncio.gather(one(), one()))

    with acme_and_agents() as world:
        world.agents.enroll(world.acme.ticket(READ))
        assert asyncio.run(both(world.agents, world.hub)) == ["hi", "hi"]


_desk = troth.Service("desk")


@_desk.method("ask", allow=troth.MembersOnly())
async def _ask(request: troth.Request) -> str:
    """Answers any member."""
    return "yes"


def test_api7_a_node_closed_while_it_serves_answers_no_revoked_caller() -> None:
    async def scene(desk: troth.Node, agents: troth.Node) -> object:
        async with (
            desk.serve(listen=("127.0.0.1", 0), services=[_desk]) as running,
            agents.connect(running.address, expect=running.identifier) as channel,
        ):
            assert await channel.call("desk", "ask") == "yes"
            desk.close()
            with troth.Node.open("acme") as hub:
                hub.authority().revoke_identity(agents.identity)
            with pytest.raises(troth.Denied):
                await channel.call("desk", "ask")
            with pytest.raises(troth.ConfigError):
                running.address  # noqa: B018 - every use of the running node is refused
        return None

    with acme_and_agents() as world, troth.Node.open("desk") as desk:
        desk.enroll(world.acme.ticket(READ))
        world.agents.enroll(world.acme.ticket(READ))
        asyncio.run(scene(desk, world.agents))
