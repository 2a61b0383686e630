"""Policy bundles distributed between running nodes (the policy service), and the node's
decision point deciding agent-to-agent requests with them: a bundle installed on the hub
reaches a subscribed node by push and an unsubscribed one on its next round; an old revision
pushed over the wire is refused; a Cedar forbid denies the next request of an open channel; a
rotated authority's bundle replaces a stolen top-revision one by push and by pull."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.gates import TOOLS
from tests.support.nodes import HUB, MemNet, route, run_memnet
from troth.errors import Denied, PolicyError, PolicyFailure, RemoteError
from troth.gates import create_bundle
from troth.identity import Identifier
from troth.node.access import MembersOnly
from troth.node.control import perform
from troth.node.runtime import NodeRuntime
from troth.node.services import Method, RequestContext, call, service_address
from troth.node.services.node_policies import NodeFeeds, NodePolicies
from troth.node.services.policy import POLICY

ORDERS = service_address("orders")
READ = '@id("orders-read") permit(principal, action == Action::"read", resource);\n'
FORBID = '@id("no-read") forbid(principal, action == Action::"read", resource);\n'


class OrdersService:
    """A service of the hub's own (not infrastructure): `read` for members."""

    name = "orders"
    oneway: Method | None = None

    def __init__(self) -> None:
        self.methods: Mapping[str, Method] = {"read": Method(self.read, MembersOnly())}

    async def read(self, arguments: Any, context: RequestContext) -> str:
        return "order 4471: paid"

    async def maintain(self, now: int) -> None:
        """Nothing."""

    def status(self) -> dict[str, Any]:
        return {}


def bundle(net: MemNet, revision: int, policies: str = READ, *, ttl: int = 3600) -> bytes:
    hub = net.hub
    assert hub is not None
    now = net.clock.now()
    return create_bundle(
        hub.node.identities.signer("hub", now=now),
        authority=net.authority.identifier,
        policies=policies,
        schema="",
        tools=TOOLS,
        services={"orders": ["read"]},
        revision=revision,
        now=now,
        ttl=ttl,
    )


async def install_on_hub(net: MemNet, data: bytes) -> Any:
    """What `troth policy push FILE --node hub` does: store through the node's table (as the
    CLI's process would), then have the running node take it up (control: policy.reload)."""
    hub = net.hub
    assert hub is not None
    feeds = NodeFeeds(hub.node, net.clock)
    other = NodePolicies(hub.node, feeds)
    other.trust(feeds.anchors(), now=net.clock.now())
    other.accept(data, now=net.clock.now())
    return await perform(hub, "policy.reload", {})


def revision_of(runtime: NodeRuntime, authority: Identifier) -> int:
    held = runtime.policies.held(authority)
    return 0 if held is None else held.bundle.body.revision


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def test_a_bundle_reaches_subscribers_by_push_and_others_on_their_next_round(
    tmp_path: Path,
) -> None:
    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        b = await net.member("agent-b")
        c = await net.member("agent-c")
        await b.maintain()  # pulls (nothing yet) and subscribes
        reloaded = await install_on_hub(net, bundle(net, 1))
        assert [r["revision"] for r in reloaded] == [1]
        await until(lambda: revision_of(b, authority) == 1)  # pushed
        assert revision_of(c, authority) == 0  # not subscribed: no push
        await c.maintain()
        assert revision_of(c, authority) == 1  # its next round pulled it
        await install_on_hub(net, bundle(net, 2))
        await until(lambda: revision_of(b, authority) == 2 and revision_of(c, authority) == 2)
        hub = net.hub
        assert hub is not None
        service = hub.host.services["policy"]
        await until(lambda: service.status()["pushed"] == 3)  # rev 1 to b; rev 2 to b and c
        assert service.status()["subscribers"] == 2
        await asyncio.sleep(0.2)
        assert service.status()["pushed"] == 3  # once per revision and subscriber

    run_memnet(test, tmp_path)


def test_a_rollback_pushed_over_the_wire_is_refused(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        b = await net.member("agent-b")
        old, new = bundle(net, 1), bundle(net, 2)
        await install_on_hub(net, new)
        end = await b.channel_to(route(HUB))
        with pytest.raises(RemoteError) as refused:
            await call(b.router, (end.enc, POLICY), "push", [old])
        assert "not newer" in str(refused.value)
        assert revision_of(net.hub, net.authority.identifier) == 2  # type: ignore[arg-type]
        same = await call(b.router, (end.enc, POLICY), "push", [new])  # the active bytes again
        assert same == {
            "authority": str(net.authority.identifier),
            "revision": 2,
            "accepted": False,
        }

    run_memnet(test, tmp_path)


def test_a_cedar_forbid_denies_the_next_request_on_an_open_channel(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        hub.add_service(OrdersService())
        b = await net.member("agent-b")
        end = await b.channel_to(route(HUB))
        # no bundle declares orders yet: the built-in rule (members) decides
        assert await call(b.router, (end.enc, ORDERS), "read", None) == "order 4471: paid"
        await install_on_hub(net, bundle(net, 1))
        assert await call(b.router, (end.enc, ORDERS), "read", None) == "order 4471: paid"
        await install_on_hub(net, bundle(net, 2, READ + FORBID))
        with pytest.raises(Denied) as denied:  # the same open channel, no round in between
            await call(b.router, (end.enc, ORDERS), "read", None)
        assert "denied by policy no-read" in denied.value.reasons[0]
        assert b.channel_rows()[0]["id"] == end.id

    run_memnet(test, tmp_path)


def test_a_declared_service_without_a_permit_is_denied(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        hub.add_service(OrdersService())
        await install_on_hub(
            net, bundle(net, 1, '@id("none") forbid(principal, action, resource) when { false };\n')
        )
        b = await net.member("agent-b")
        end = await b.channel_to(route(HUB))
        with pytest.raises(Denied) as denied:
            await call(b.router, (end.enc, ORDERS), "read", None)
        assert "no policy permits this request" in denied.value.reasons[0]

    run_memnet(test, tmp_path)


def test_a_stranger_cannot_push_and_replays_cost_only_a_decoding(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        new, old = bundle(net, 2), bundle(net, 1)
        await install_on_hub(net, new)
        stranger = await net.node("stranger")  # authenticated, but holds no credential
        hub_id = frozenset({net.authority.identifier})
        end = await stranger.channel_to(route(HUB), also_trust=hub_id)  # admitted (to enroll)
        with pytest.raises(Denied) as denied:
            await call(stranger.router, (end.enc, POLICY), "push", [new])
        assert "holds no credential" in denied.value.reasons[0]
        with pytest.raises(Denied, match=r"it holds no credential from an authority hub trusts"):
            await call(stranger.router, (end.enc, POLICY), "get", [b"\0" * 32, 0])
        for _ in range(10_000):  # a replayed old revision, at the library: refused each time
            with pytest.raises(PolicyError) as refused:
                hub.policies.accept(old, now=net.clock.now())
            assert refused.value.reason is PolicyFailure.ROLLBACK
        assert revision_of(hub, net.authority.identifier) == 2

    run_memnet(test, tmp_path)


def test_subscriptions_are_bounded_and_pulls_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from troth import limits

    monkeypatch.setattr(limits, "MAX_POLICY_SUBSCRIBERS", 1)

    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        b = await net.member("agent-b")
        c = await net.member("agent-c")
        await b.maintain()  # subscribes: the one place
        await c.maintain()  # over the limit: pulls only
        await install_on_hub(net, bundle(net, 1))
        await until(lambda: revision_of(b, authority) == 1)
        assert revision_of(c, authority) == 0
        await c.maintain()
        assert revision_of(c, authority) == 1

    run_memnet(test, tmp_path)


def test_malformed_policy_requests_are_refused(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        b = await net.member("agent-b")
        end = await b.channel_to(route(HUB))
        for method, arguments, why in (
            ("push", ["not bytes"], "bundle: expected a byte string"),
            ("push", [b"\xa0"], "signed bundle: expected an array"),  # not a bundle
            ("get", [b"short", 0], "authority: expected 32 bytes, got 5"),
            ("get", "no array", "get arguments: expected an array"),
            # review 42b's held digest: 32 bytes or nothing, and no fourth element
            ("get", [bytes(32), 0, b"short"], "digest: expected 32 bytes, got 5"),
            ("get", [bytes(32), 0, "a digest"], "digest: expected a byte string"),
            ("get", [bytes(32), 0, bytes(32), 1], "expected [authority, revision, digest?]"),
            ("get", [bytes(32)], "expected [authority, revision, digest?]"),
        ):
            with pytest.raises(RemoteError, match=re.escape(why)):
                await call(b.router, (end.enc, POLICY), method, arguments)

    run_memnet(test, tmp_path)


def test_a_rotated_authority_replaces_a_stolen_top_revision_bundle_on_every_node(
    tmp_path: Path,
) -> None:
    """A thief with the authority's key installs a top-revision bundle; it reaches a subscriber
    by push and another node by hand. The authority rotates (its feed supersedes the old
    history) and installs a fresh bundle at revision 2: the hub replaces the thief's bundle,
    pushes the replacement to its subscriber, and the other node, whose bundle its own feed
    now says is out of force, pulls it with revision 0."""
    from troth import limits

    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        top = limits.MAX_POLICY_REVISION
        b = await net.member("agent-b")
        c = await net.member("agent-c")
        await b.maintain()  # subscribes
        stolen = bundle(net, top)
        await install_on_hub(net, stolen)
        await until(lambda: revision_of(b, authority) == top)
        await c.worker.run(c.policies.accept, stolen, now=net.clock.now())  # not subscribed

        hub = net.hub
        assert hub is not None
        hub.node.identities.rotate(net.authority.config.name, now=net.clock.now())
        await hub.reload()
        await c.refresh_feeds()
        assert c.feeds[authority].supersession(authority) is not None
        await b.maintain()  # its feed says the rotation; a channel to the rotated hub; it pulls
        assert revision_of(b, authority) == top  # nothing in force to pull yet
        net.clock.advance(61)  # a replacement is dated past the clock skew (review 35c, gates 1)
        await install_on_hub(net, bundle(net, 2))
        assert revision_of(hub, authority) == 2
        await until(lambda: revision_of(b, authority) == 2)  # pushed
        assert revision_of(c, authority) == top
        await c.maintain()
        assert revision_of(c, authority) == 2  # pulled with revision 0

    run_memnet(test, tmp_path)
