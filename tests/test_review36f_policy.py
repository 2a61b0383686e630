"""Review 36f, policy: the policy service of a node trusting two authorities (the hub hosts
acme and enrolled with globex, tests/support/cotrust.py's pair on running nodes) serves and
takes each authority's bundles for that authority's own members, the authority itself and
local callers only (docs/policy.md, "Distribution"; docs/protocols.md, "Policy service")."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import HUB, MemNet, globex_over_tcp, route, run_memnet
from tests.test_gates_distribution import bundle, install_on_hub, revision_of, until
from tests.test_node_runtime import delegated
from tests.test_review36c_services import globex_member
from troth.authority import Authority
from troth.credentials import Attributes, CredentialChain
from troth.errors import Denied, RemoteError
from troth.node.access import AnyAuthenticated
from troth.node.runtime import NodeRuntime
from troth.node.services import Method, RequestContext, call
from troth.node.services.policy import POLICY, PolicyService

MADE_UP = b"\x5a" * 32


class Recorder:
    """What an attacker's node serves at `/service/policy` in place of the real service: it
    keeps every bundle pushed to it (what reached the attacker)."""

    name = "policy"
    oneway: Method | None = None

    def __init__(self) -> None:
        self.pushed: list[bytes] = []
        self.methods: Mapping[str, Method] = {"push": Method(self.push, AnyAuthenticated())}

    async def push(self, arguments: Any, context: RequestContext) -> dict[str, Any]:
        self.pushed.append(arguments[0])
        return {"authority": "", "revision": 0, "accepted": True}

    async def maintain(self, now: int) -> None:
        """Nothing."""

    def status(self) -> dict[str, Any]:
        return {}


async def co_trusted(net: MemNet) -> tuple[NodeRuntime, NodeRuntime, Authority]:
    """The hub (hosting acme, holding acme's bundle revision 1) enrolled with globex: the
    hub, globex's node and authority."""
    hub = net.hub
    assert hub is not None
    await install_on_hub(net, bundle(net, 1))
    globex_node, globex, ticket = await globex_over_tcp(net)
    await hub.enroll(ticket, "hub")
    assert globex.identifier in hub.trust.anchors
    return hub, globex_node, globex


async def ask(node: NodeRuntime, method: str, arguments: Any) -> Any:
    end = await node.channel_to(route(HUB))
    return await call(node.router, (end.enc, POLICY), method, arguments)


async def recording(
    net: MemNet, name: str, globex: Authority | None
) -> tuple[NodeRuntime, Recorder]:
    """A node serving a `Recorder` as its policy service: globex's member when `globex` is
    given, else acme's."""
    node = await net.node(name, services=("echo",))
    recorder = Recorder()
    node.add_service(recorder)
    if globex is None:
        await node.enroll(net.ticket(), name)
    else:
        invite = globex.create_ticket(
            creator=globex.identifier,
            attributes=Attributes({"globex.team": "desk"}),
            address="/tcp/globex:4000",
            now=net.clock.now(),
        )
        await node.enroll(str(invite), name)
    return node, recorder


def test_a_co_trusted_authoritys_member_cannot_get_the_hosts_bundle(tmp_path: Path) -> None:
    """Policy 1. The hub hosts acme and holds acme's bundle (its Cedar text: internal roles, tool
    names, thresholds); it trusts globex too. A globex member, and globex's own node (an anchor of
    the hub), ask the hub's policy service for acme's bundle: it was served to any member or anchor
    of any authority the hub trusts. Now the answer is null, the same as for an authority no bundle
    is held of (no oracle), while acme's own member still gets it. Was a strict xfail until
    `PolicyService.speaks_for` bounded `get` to the authorities the caller speaks for."""

    async def test(net: MemNet) -> None:
        hub, globex_node, globex = await co_trusted(net)
        acme = net.authority.identifier
        held = hub.policies.held(acme)
        assert held is not None
        honest = await net.member("honest")
        assert await ask(honest, "get", [acme.digest, 0]) == held.bundle.data
        mallory = await globex_member(net, globex, "mallory")
        assert await ask(mallory, "get", [MADE_UP, 0]) is None
        assert await ask(mallory, "get", [acme.digest, 0]) is None
        assert await ask(globex_node, "get", [acme.digest, 0]) is None

    run_memnet(test, tmp_path)


def test_a_co_trusted_authoritys_member_is_not_pushed_the_hosts_bundles(
    tmp_path: Path,
) -> None:
    """Policy 2. A globex member's `get` of acme's bundle subscribed its channel to acme's later
    bundles, so each new acme revision was pushed to it as well. Now only acme's own member is
    subscribed: acme's revision 2 reaches it and not the globex member. Was a strict xfail until
    `get` subscribed only a caller speaking for the authority (`PolicyService.speaks_for`)."""

    async def test(net: MemNet) -> None:
        hub, _globex_node, globex = await co_trusted(net)
        acme = net.authority.identifier
        mallory, stolen = await recording(net, "mallory", globex)
        honest, kept = await recording(net, "honest", None)
        await ask(mallory, "get", [acme.digest, 1])
        await ask(honest, "get", [acme.digest, 1])
        await install_on_hub(net, bundle(net, 2))
        await until(lambda: bool(kept.pushed))
        service = hub.host.services["policy"]
        assert isinstance(service, PolicyService)
        await until(lambda: service.status()["pushed"] >= 1)
        await asyncio.sleep(0)
        assert stolen.pushed == []
        assert kept.pushed == [bundle_of(hub, acme)]
        assert service.status()["subscribers"] == 1

    run_memnet(test, tmp_path)


def bundle_of(hub: NodeRuntime, authority: Any) -> bytes:
    held = hub.policies.held(authority)
    assert held is not None
    return held.bundle.data


def test_a_co_trusted_authoritys_member_cannot_push_the_hosts_bundle(tmp_path: Path) -> None:
    """Policy 3. A globex member pushes acme's bundles to the hub (copies of genuine ones): the hub
    took them from any member, and its answer told the globex member what acme holds — `the revision
    is not newer than the active bundle's (1 <= 2)` for an older one, `accepted: false` for the
    bytes held. Now the push of another authority's bundle is refused before anything held is looked
    at, with the same answer for either; acme's member still pushes acme's. Was a strict xfail until
    `push` took a bundle only of an authority the caller speaks for, judged on its claimed authority
    before the store (`PolicyService._accept_from`)."""

    async def test(net: MemNet) -> None:
        hub, _globex_node, globex = await co_trusted(net)
        acme = net.authority.identifier
        old, held = bundle(net, 2), bundle(net, 3)
        await install_on_hub(net, held)
        mallory = await globex_member(net, globex, "mallory")
        answers = []
        for data in (old, held, bundle(net, 4)):
            with pytest.raises(Denied) as denied:
                await ask(mallory, "push", [data])
            answers.append(denied.value.reasons)
        assert answers[0] == answers[1] == answers[2]
        assert "only from its own members" in answers[0][0]
        assert revision_of(hub, acme) == 3
        honest = await net.member("honest")
        with pytest.raises(RemoteError, match="not newer"):
            await ask(honest, "push", [old])
        assert (await ask(honest, "push", [bundle(net, 4)]))["accepted"] is True

    run_memnet(test, tmp_path)


def test_a_subscriber_that_no_longer_speaks_for_the_authority_is_pushed_nothing(
    tmp_path: Path,
) -> None:
    """Policy 4. A member of both acme and globex subscribes to acme's bundles (it may); acme then
    revokes its acme credential, and its channel stays open (its globex credential still verifies).
    Each later acme revision was still pushed to it: the subscription was checked when it was made
    only. Now the subscriber's standing is checked again before each push, and one that no longer
    speaks for the authority is pushed nothing more. Was a strict xfail until `_push_to` checked the
    subscriber's standing again (`PolicyService.speaks_for`) before each push."""

    async def test(net: MemNet) -> None:
        hub, _globex_node, globex = await co_trusted(net)
        acme = net.authority.identifier
        dual, stolen = await recording(net, "dual", globex)
        await dual.enroll(net.ticket(), "dual")
        honest, kept = await recording(net, "honest", None)
        await ask(dual, "get", [acme.digest, 1])
        await ask(honest, "get", [acme.digest, 1])
        (held,) = [h for h in dual.node.wallet.held("dual") if h.authority == acme.digest]
        credential = CredentialChain.decode(held.chain).credentials[-1]
        net.authority.revoke_credential(credential.hash, now=net.clock.now())
        hub.trust.refresh_hosted(net.clock.now())
        await install_on_hub(net, bundle(net, 2))
        await until(lambda: bool(kept.pushed))
        service = hub.host.services["policy"]
        assert isinstance(service, PolicyService)
        await until(lambda: service.status()["pushed"] >= 1)
        assert stolen.pushed == []
        assert service.status()["subscribers"] == 1
        assert await ask(dual, "get", [acme.digest, 0]) is None  # its globex chain only

    run_memnet(test, tmp_path)


class Answering:
    """What a node serves at `/service/policy` in place of the real service: `get` answers
    `data`, whatever is asked."""

    name = "policy"
    oneway: Method | None = None

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.methods: Mapping[str, Method] = {"get": Method(self.get, AnyAuthenticated())}

    async def get(self, arguments: Any, context: RequestContext) -> bytes:
        return self.data

    async def maintain(self, now: int) -> None:
        """Nothing."""

    def status(self) -> dict[str, Any]:
        return {}


def test_a_pull_takes_a_bundle_of_the_authority_asked_only(tmp_path: Path) -> None:
    """Policy 5. The hub pulls globex's bundle from globex's node (an anchor of the hub, but it
    speaks for globex only). Globex answers with a bundle of acme's instead (a genuine one, of a
    higher revision than the hub holds, which acme has not given it): the hub took it as acme's new
    bundle — another authority chose which of acme's bundles the hub decides acme's members with, as
    a push of it from globex could not (policy 3). Now a pull takes a bundle of the authority asked
    only; acme's own distribution is untouched. Was a strict xfail until `pull` accepted an answer
    only through `PolicyService._accept_from` with the authority asked."""

    async def test(net: MemNet) -> None:
        hub, globex_node, _globex = await co_trusted(net)
        acme = net.authority.identifier
        globex_node.router.unregister(POLICY)
        globex_node.add_service(Answering(bundle(net, 2)))
        service = hub.host.services["policy"]
        assert isinstance(service, PolicyService)
        assert await service.pull() == []
        assert revision_of(hub, acme) == 1
        await install_on_hub(net, bundle(net, 3))  # acme's own, as before
        assert revision_of(hub, acme) == 3

    run_memnet(test, tmp_path)


def test_a_delegate_of_an_acme_member_still_pulls_acmes_bundle(tmp_path: Path) -> None:
    """Pinned beside policy 1: the members an authority's bundle is served to include their
    delegates (a chain rooted at the authority, without caveats: the `MembersOnly` reading;
    docs/policy.md, "Distribution"). A node holding only a delegation from an acme member
    pulls acme's bundle from the hub (which trusts globex too) on its round, as acme's members
    do; the hub answers a globex member's pull of it with nothing."""

    async def test(net: MemNet) -> None:
        hub, _globex_node, globex = await co_trusted(net)
        acme = net.authority.identifier
        alice = await net.member("alice", **{"troth.relay": "*"})
        dave, _ = await delegated(net, alice, "dave")
        await dave.maintain()
        assert revision_of(dave, acme) == 1
        assert await ask(dave, "get", [acme.digest, 0]) == bundle_of(hub, acme)
        mallory = await globex_member(net, globex, "mallory")
        assert await ask(mallory, "get", [acme.digest, 0]) is None

    run_memnet(test, tmp_path)
