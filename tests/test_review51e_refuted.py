"""Review 51e: attacks on the public Python API that the code withstood (kept as tests)."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import troth
from troth._api.network import runtimes_here
from troth.clock import FixedClock


@dataclass
class Scene:
    hub: troth.Node
    agents: troth.Node
    acme: troth.Authority
    member: troth.Credential
    sub: troth.Identity
    chain: troth.Credential


@pytest.fixture
def scene(clock: FixedClock) -> Iterator[Scene]:
    with (
        troth.Node.open("hub", clock=clock) as hub,
        troth.Node.open("agents", clock=clock) as agents,
    ):
        acme = hub.create_authority()
        member = agents.enroll(acme.ticket({"orders.access": ["read", "write"]}))
        sub = agents.identities.create("sub-agent")
        chain = agents.delegate(
            agents.identity, to=sub, attributes={"orders.access": "read"}, ttl=600, purpose="p"
        )
        yield Scene(hub, agents, acme, member, sub, chain)


def _(value: object) -> Any:
    return value


def test_a_credential_whose_fields_lie_verifies_as_its_bytes_say(
    scene: Scene, clock: FixedClock
) -> None:
    """A `Credential` is a plain dataclass: one made with the sub-agent's fields around the
    member's chain is verified by its bytes alone (the member's chain, for its holder), never
    by the fields that claim otherwise."""
    forged = dataclasses.replace(scene.chain, chain=scene.member.chain)
    verifier = troth.Verifier(trust=[scene.acme.identifier], feeds=scene.acme, clock=clock)
    with pytest.raises(troth.CredentialError) as refused:
        verifier.verify(forged, presenter=scene.sub)
    assert refused.value.reason is troth.CredentialFailure.WRONG_SUBJECT
    verified = verifier.verify(forged, presenter=scene.agents.identity)
    assert verified.attributes.to_json() == {"orders.access": ["read", "write"]}


def test_a_revocation_of_an_id_the_chain_does_not_hold_revokes_nothing(
    scene: Scene, clock: FixedClock
) -> None:
    forged = dataclasses.replace(scene.chain, id=b"\x00" * 32)  # no link of its chain
    with pytest.raises(troth.AuthorityError):
        scene.agents.revoke(forged, by=scene.agents.identity)
    verifier = troth.Verifier(trust=[scene.acme.identifier], feeds=scene.acme, clock=clock)
    verifier.verify(scene.member, presenter=scene.agents.identity)


def test_a_verifier_fed_by_a_node_is_shared_across_threads(scene: Scene, clock: FixedClock) -> None:
    """Verifier's docstring says it is safe to reuse: six threads verifying through one fed by
    a node (its SQLite store) meet no sqlite3 error and no wrong answer."""
    verifier = troth.Verifier(trust=[scene.acme.identifier], feeds=scene.agents, clock=clock)
    failures: list[BaseException] = []

    def run() -> None:
        for _n in range(10):
            try:
                verifier.verify(scene.chain, presenter=scene.sub)
            except BaseException as exc:  # any is a failure of the claim
                failures.append(exc)

    threads = [threading.Thread(target=run) for _n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_values_a_call_cannot_carry_are_typed_errors_and_a_handlers_bug_stays_home(
    scene: Scene,
) -> None:
    desk = troth.Service("desk")

    @desk.method("boom", allow=troth.MembersOnly())
    async def boom(request: troth.Request) -> None:
        raise ValueError("a detail of the handler's own")

    async def run() -> list[str]:
        seen = []
        async with scene.hub.serve(listen=("127.0.0.1", 0), services=[desk]) as running:
            at, peer = running.address, running.identifier
            async with scene.agents.connect(at, expect=peer) as channel:
                for value in (object(), {1, 2}, 1.5, 1 << 80, {b"k": 1}):
                    with pytest.raises(troth.DecodeError):
                        await channel.call("echo", "echo", value)
                try:
                    await channel.call("desk", "boom")
                except troth.RemoteError as exc:
                    seen.append(str(exc))
        return seen

    assert asyncio.run(run()) == ["internal error"]


def test_serve_that_fails_or_whose_block_raises_leaves_the_node_free(scene: Scene) -> None:
    """A `serve` whose start fails (its port taken) or whose block raises leaves no runtime
    behind: the node serves again, and no runtime of it is left registered."""

    async def run() -> None:
        async with scene.hub.serve(listen=("127.0.0.1", 0)) as running:
            port = int(running.address.rsplit(":", 1)[1])
            with pytest.raises(troth.ConfigError):
                async with scene.agents.serve(listen=("127.0.0.1", port)):
                    pass
        assert runtimes_here(scene.agents) == []
        with pytest.raises(KeyError):
            async with scene.agents.serve():
                raise KeyError("the block fails")
        assert runtimes_here(scene.agents) == []
        async with scene.agents.serve() as again:
            assert again.identifier == scene.agents.identity.identifier

    asyncio.run(run())


def test_a_home_that_is_a_file_and_a_timeout_of_inf_are_typed(tmp_path: Path) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("")
    with pytest.raises(troth.ConfigError):
        troth.Node.open("n", home=taken)
    with pytest.raises(troth.ArgumentError):
        troth.Node.open("n", home=_(5))


def test_a_chain_for_another_identity_is_not_held(scene: Scene) -> None:
    with pytest.raises(troth.CredentialError):
        scene.agents.hold(scene.agents.identity, scene.chain)
    assert scene.chain.id not in {c.id for c in scene.agents.credentials()}
