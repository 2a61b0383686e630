"""Adversarial review, round 2 (task R2): node access, relays, the authority service,
credentials and CLI inputs. Each test asserts the secure behaviour; each one marked xfail
(strict) fails on main because of the bug its reason names (the lead removes the mark with
the fix)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests.conftest import NOW
from tests.support.gates import ADMIN, TOOLS, T
from tests.support.gates import make_world as make_gates_world
from tests.support.mcp_orders import names, orders_server
from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.support.parties import make_party
from tests.test_mcp_channels import install
from troth.authority import Authority, Ticket
from troth.authority.client import enroll_request, revoke_request
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    TrustPolicy,
    delegate,
    issue_credential,
    verify_feed,
)
from troth.errors import (
    AuthorityError,
    AuthorityFailure,
    CredentialError,
    CredentialFailure,
    PolicyError,
    PolicyFailure,
    RemoteError,
)
from troth.gates import bundles, create_bundle
from troth.identity import Identifier, LocalIdentity
from troth.integrations.mcp.connect import connect
from troth.node import Node, init_node, open_node
from troth.node.access import AnyAuthenticated
from troth.node.runtime import NodeRuntime
from troth.node.services.authority import FEED_REUSE
from troth.node.services.base import Method, RequestContext
from troth.node.services.mcp import publish_upstream

ORDERS = Attributes({"orders.access": frozenset({"read", "write"})})


@dataclass
class World:
    """An authority (node "auth") and the agents' node ("agents") holding its members."""

    agents: Node
    authority: Authority

    def id(self, name: str) -> Identifier:
        return self.agents.identities.get(name, now=NOW).identifier

    def member(self, name: str) -> None:
        """Enroll `name` (a new identity) with a one-time ticket; its wallet holds the chain."""
        ticket: Ticket = self.authority.create_ticket(
            creator=self.authority.identifier, attributes=ORDERS, address="node:auth", now=NOW
        )
        self.agents.identities.create(now=NOW, name=name)
        request = enroll_request(self.agents.identities, name, ticket, now=NOW)
        chain = self.authority.enroll(request, now=NOW)
        self.agents.wallet.hold(name, chain.encode(), now=NOW)

    def delegate(self, by: str, to: str, *, purpose: str = "job", hold: bool = True) -> bytes:
        """`by` delegates ORDERS to `to` (created when new); the chain (held by `to`)."""
        if to not in {r.name for r in self.agents.identities.list_local()}:
            self.agents.identities.create(now=NOW, name=to)
        chain = self.agents.wallet.delegate(
            by, to=self.id(to), attributes=ORDERS, now=NOW, ttl=3600, purpose=purpose
        )
        if hold:
            self.agents.wallet.hold(to, chain, now=NOW)
        return chain

    def revoke(self, by: str, chain: bytes, *, now: int = NOW) -> int:
        """`by` asks the authority to revoke the last link of `chain`."""
        target = CredentialChain.decode(chain).credentials[-1].hash
        request = revoke_request(
            self.agents.identities,
            by,
            self.authority.identifier,
            credential_hash=target,
            chain=chain,
            reason="",
            now=now,
        )
        return self.authority.revoke_link(request, now=now)


@pytest.fixture
def world(troth_home: Path) -> Iterator[World]:
    init_node("auth")
    init_node("agents")
    with open_node("auth") as authority_node, open_node("agents") as agents:
        yield World(agents, authority_node.create_authority("acme", now=NOW, revocation_quota=5))


# -- the authority: revocation requests and the quota ---------------------------------------------


def test_a_delegate_cannot_spend_the_quota_its_delegator_needs_to_revoke_it(
    world: World,
) -> None:
    """The customer delegates to an agent it later needs to revoke. The agent, seeing it coming,
    delegates to throwaway identities and revokes those links (offline signing, one request
    each): every entry is charged to the customer. Then the customer's revocation of the
    agent is refused for an hour: the compromised agent keeps its credential."""
    world.member("customer")
    to_agent = world.delegate("customer", "agent")
    for n in range(5):  # the quota (5 here, 100 by default)
        world.revoke("agent", world.delegate("agent", f"throwaway-{n}", hold=False), now=NOW + n)
    world.revoke("customer", to_agent, now=NOW + 10)  # QUOTA_EXCEEDED on main
    now = NOW + 11
    anchor = world.authority.identifier
    feed = verify_feed(world.authority.feed(now=now), authority=anchor, now=now, max_staleness=60)
    assert CredentialChain.decode(to_agent).credentials[-1].hash in feed.revoked_credentials


def test_a_revoked_delegate_cannot_write_to_the_feed(world: World) -> None:
    """The customer revokes its rogue delegate's link (the ordinary way to cut a delegate
    off; the rogue's identity is not revoked, so a node's decision point still admits it to
    the authority service). The rogue goes on signing revoke requests for links it issued
    below its dead link: each one appends a feed entry charged to the customer, a revoked
    delegate growing the feed and burning its former delegator's quota, hour after hour."""
    world.member("customer")
    to_rogue = world.delegate("customer", "rogue")
    below = world.delegate("rogue", "accomplice", hold=False)
    world.revoke("customer", to_rogue)
    length = world.authority.store.revocation_tip()[0]
    with pytest.raises(AuthorityError) as refused:
        world.revoke("rogue", below, now=NOW + 1)
    assert refused.value.reason is AuthorityFailure.NO_STANDING
    assert world.authority.store.revocation_tip()[0] == length


# -- identities: the authority's own rotation ------------------------------------------------------


def _stolen_authority_issues(world: World, troth_home: Path) -> tuple[bytes, LocalIdentity]:
    """A thief copies the authority's node directory, the authority rotates, and the thief
    issues itself an admin credential with the old key: the chain, and the rotation."""
    shutil.copytree(troth_home / "nodes" / "auth", troth_home / "nodes" / "stolen")
    rotated = world.authority.identities.rotate(world.authority.config.name, now=NOW + 10)
    world.agents.identities.create(now=NOW, name="thief")
    with open_node("stolen") as stolen:
        signer = stolen.authority().signer(NOW + 20)
        forged = issue_credential(
            signer,
            subject=world.id("thief"),
            attributes=Attributes({"troth.role": "admin", **ORDERS}),
            now=NOW + 20,
            ttl=600,
            depth=4,
        )
        return CredentialChain((forged,), (signer.identity.history,)).encode(), rotated


def test_a_stolen_authority_key_stops_issuing_once_the_authority_rotates(
    world: World, troth_home: Path
) -> None:
    """A thief copies the authority's node directory (a backup). The authority notices and
    rotates its identity. The thief issues itself an admin credential with the old key (the
    chain carries the old history, as any chain carries its issuers' histories): a verifier
    holding the real authority's fresh feed, signed under the new key, must refuse it."""
    chain, _ = _stolen_authority_issues(world, troth_home)
    now = NOW + 30
    anchor = world.authority.identifier
    feed = verify_feed(world.authority.feed(now=now), authority=anchor, now=now, max_staleness=60)
    verifier = ChainVerifier(TrustPolicy(frozenset({anchor})))
    with pytest.raises(CredentialError) as raised:
        verifier.verify(chain, presenter=world.id("thief"), feeds={anchor: feed}, now=now)
    assert raised.value.reason is CredentialFailure.SUPERSEDED


def test_a_stolen_authority_key_cannot_sign_the_feed_once_the_authority_rotates(
    world: World, troth_home: Path
) -> None:
    """The thief also signs feed pages with the old key: the real feed's entries (public), so
    the page looks complete, but signed under the history the feed's own newest entries say is
    superseded. A verifier must refuse the page."""
    shutil.copytree(troth_home / "nodes" / "auth", troth_home / "nodes" / "stolen")
    world.authority.identities.rotate(world.authority.config.name, now=NOW + 10)
    now = NOW + 30
    anchor = world.authority.identifier
    real = verify_feed(world.authority.feed(now=now), authority=anchor, now=now, max_staleness=60)
    assert real.supersession(anchor) is not None  # the rotation is published by the feed
    with open_node("stolen") as stolen:  # the signer's vault lives while the node is open
        old_signer = stolen.authority().signer(now)
        forged = world.authority.revocations.page(old_signer, since=0, now=now)
    with pytest.raises(CredentialError) as refused:
        verify_feed(forged, authority=anchor, now=now, max_staleness=60)
    assert refused.value.reason is CredentialFailure.FEED_INVALID


# -- the node: what a stranger's handshake costs it ----------------------------------------------


def test_strangers_cannot_fill_an_authority_nodes_store(tmp_path: Path) -> None:
    """ChannelTrust's promise ("stored only after admission, so strangers cannot fill the
    store") holds only where admission means membership. An authority node admits everyone
    (newcomers enroll), so a stranger with no credential makes fresh identities (a key pair
    each) and opens one channel with each: every history is stored for good in the
    authority node's database, without bound."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        now = net.clock.now()
        stranger = await net.node(  # knows the authority (as a ticket tells), holds nothing
            "stranger",
            prepare=lambda node: node.wallet.trust(net.authority.identifier, HUB, now=now),
        )
        names = [f"s{n}" for n in range(20)]
        made = [stranger.node.identities.create(now=now, name=name) for name in names]
        for name in names:
            await stranger.channel_as(name, route(HUB))
        stored = [i for i in made if hub.node.identities.store.get_history(i.identifier.digest)]
        assert stored == []

    run_memnet(test, tmp_path)


# -- the MCP service: its session limits ---------------------------------------------------------


def throwaway_delegate(
    member: NodeRuntime, name: str, attributes: dict[str, str], caveats: tuple[str, ...] = ()
) -> None:
    """`member` (its node's default identity) makes local identity `name` and delegates
    `attributes` to it, offline: what minting a delegate costs a member."""
    now = member.clock.now()
    throwaway = member.node.identities.create(now=now, name=name).identifier
    chain = member.node.wallet.delegate(
        member.name,
        to=throwaway,
        attributes=Attributes(attributes),
        now=now,
        ttl=600,
        purpose="a throwaway delegate",
        caveats=caveats,
    )
    member.node.wallet.hold(name, chain, now=now)


def test_one_member_cannot_hold_every_mcp_session_through_its_delegates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The published server takes MAX_MCP_SESSIONS sessions, MAX_MCP_SESSIONS_PER_PEER per
    peer (here 2 and 1, so the test stays small: the default 256 / 8 needs 32 delegates).
    Member `desk` delegates, offline, to throwaway identities with a caveat that lets them
    call nothing; each opens one session and keeps it. An honest member is then refused."""
    from troth import limits

    monkeypatch.setattr(limits, "MAX_MCP_SESSIONS", 2)
    monkeypatch.setattr(limits, "MAX_MCP_SESSIONS_PER_PEER", 1)

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        install(net)  # the support desk's bundle (tests/support/gates), revision 1
        await publish_upstream(hub, "orders", orders_server())
        orders = f"{HUB}/service/mcp.orders"
        desk = await net.member("desk", **{"orders.access": "read"})
        async with contextlib.AsyncExitStack() as held:
            for n in range(2):
                name = f"throwaway-{n}"
                # a caveat that never allows a call: the session is all it is for
                throwaway_delegate(desk, name, {"orders.access": "read"}, ("context.now < 0",))
                transport = await held.enter_async_context(connect(desk, name, orders))
                if n == 1:  # the second counts against desk, which holds one already
                    with pytest.raises(ExceptionGroup) as refused:
                        async with Client(transport, mode="legacy", cache=None) as session:
                            await session.list_tools()
                    assert "its delegates' included (the most)" in repr(refused.value.exceptions)
                    continue
                session = await held.enter_async_context(
                    Client(transport, mode="legacy", cache=None)
                )
                await session.list_tools()
            honest = await net.member("honest", **{"orders.access": "read"})
            async with (
                connect(honest, "honest", orders) as transport,
                Client(transport, mode="legacy", cache=None) as agent,
            ):
                assert await names(agent) == ["lookup_order"]

    run_memnet(test, tmp_path)


# -- gates: a caveated delegation of policy-admin ------------------------------------------------


def test_a_caveated_delegation_of_policy_admin_cannot_sign_bundles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The policy-admin hands a helper agent its attributes under a caveat (a Cedar condition:
    here, refunds up to 100), meaning the helper to act only within it. Caveats can only
    remove authority, and nothing evaluates them on a bundle signature, so the only safe
    reading is the access point's: a caveated credential satisfies no built-in rule (fail
    closed). The helper instead signs "permit everything" as the next revision, and every
    node accepts it."""
    world = make_gates_world()
    helper = make_party(world.vault, now=T)
    chain = delegate(
        world.admin.signer,
        CredentialChain.decode(world.admin_chain),
        subject=helper.identifier,
        attributes=ADMIN,
        now=T,
        ttl=7 * 86_400,
        purpose="refunds up to 100",
        caveats=("context.args.amount <= 100",),
    ).encode()
    store = world.store(world.bundle(revision=1))

    def sign() -> bytes:
        return create_bundle(
            helper.signer,
            authority=world.authority.identifier,
            policies='@id("all") permit(principal, action, resource);',
            schema="",
            tools=TOOLS,
            revision=2,
            now=T + 60,
            ttl=86_400,
            chain=chain,
        )

    with pytest.raises(PolicyError) as refused:
        sign()
    assert refused.value.reason is PolicyFailure.NOT_POLICY_ADMIN
    # signed with a tool that skips create_bundle's check: the store refuses it the same way
    monkeypatch.setattr(bundles, "_check_admin_chain", lambda *_: 2**62)
    forged = sign()
    with pytest.raises(PolicyError) as refused:
        store.accept(forged, feeds=world.feeds(), now=T + 60)
    assert refused.value.reason is PolicyFailure.NOT_POLICY_ADMIN


# -- the node: who answers at an authority's route -----------------------------------------------


class _Swallow:
    """Mallory's stand-in `authority` service: answers every `rotated` announcement "done"."""

    name = "authority"
    oneway: Method | None = None

    def __init__(self) -> None:
        self.swallowed = 0
        self.methods = {"rotated": Method(self.rotated, AnyAuthenticated())}

    async def rotated(self, arguments: Any, context: RequestContext) -> int:
        self.swallowed += 1
        return 0

    async def maintain(self, now: int) -> None:
        """Nothing."""

    def status(self) -> dict[str, Any]:
        return {}


def test_a_rotation_is_announced_only_to_the_authority_itself(tmp_path: Path) -> None:
    """Authority acme has no open port: it is reached as /relay/acme on the hub. While acme is
    down past the relay grace period, mallory (a member holding troth.relay=*) takes the name
    and answers there. The victim rotates its identity (say its key leaked) and announces it:
    the announcement goes to mallory, who says "done", so the victim marks acme as told and
    never retries. acme publishes no supersession, and the thief's old-history credentials
    keep verifying for every stateless verifier."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        now = net.clock.now()

        def host_acme(node: Node) -> None:
            node.create_authority("acme", now=now)

        acme = await net.node("acme", prepare=host_acme)
        await acme.enroll(net.ticket(**{"troth.relay": "acme"}), "acme")
        await acme.create_relay("acme", HUB)
        authority = acme.node.authority()
        ticket = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"agents.team": "support"}),
            address=f"{HUB}/relay/acme",
            now=now,
        )
        victim = await net.member("victim")
        await victim.enroll(str(ticket), "victim")
        # mallory: a hub member holding troth.relay=*, and an ordinary member of acme too
        mallory = await net.member("mallory", **{"troth.relay": "*"})
        insider = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"agents.team": "sales"}),
            address=f"{HUB}/relay/acme",
            now=now,
        )
        await mallory.enroll(str(insider), "mallory")
        swallow = _Swallow()
        mallory.add_service(swallow)

        await acme.stop()  # acme goes down; after the grace period its relay name is free
        net.runtimes.remove(acme)
        net.clock.advance(hub.relay_grace + 1)
        await hub.maintain()
        await mallory.create_relay("acme", HUB)

        victim.node.identities.rotate("victim", now=net.clock.now())
        await victim.reload()  # the running node presents the rotated history from now on
        await victim.announce_rotations("victim")
        assert swallow.swallowed == 0
        _, pending = victim.node.wallet.unannounced("victim")
        assert authority.identifier in pending  # acme was never told: still to announce

    run_memnet(test, tmp_path, relay_grace=5)


def test_a_verifier_with_a_store_refuses_a_stolen_authority_keys_credentials(
    world: World, troth_home: Path
) -> None:
    """The same theft as above, judged by a node: it stored the authority's newer history (a
    feed sync or channel does), so the chain's older root history is refused, even with a
    feed fetched before the rotation (which publishes no supersession yet)."""
    anchor = world.authority.identifier
    feed = verify_feed(world.authority.feed(now=NOW), authority=anchor, now=NOW, max_staleness=60)
    assert feed.supersession(anchor) is None
    chain, rotated = _stolen_authority_issues(world, troth_home)
    now = NOW + 30
    store = world.agents.identities
    store.import_history(rotated.identity.history, now=now)  # what the node has seen
    verifier = ChainVerifier(TrustPolicy(frozenset({anchor})), known=store.check_known)
    with pytest.raises(CredentialError) as refused:
        verifier.verify(chain, presenter=world.id("thief"), feeds={anchor: feed}, now=now)
    assert "older than the stored copy" in str(refused.value)


def test_a_members_delegates_share_its_relay_names(tmp_path: Path) -> None:
    """A holder of `troth.relay=*` delegates the attribute to throwaway identities, each of
    which creates names: they count against the member, so one member cannot take the node's
    relay names (MAX_RELAYS) through delegates."""
    from troth import limits
    from troth.node.services import call, service_address

    async def test(net: MemNet) -> None:
        mallory = await net.member("mallory", **{"troth.relay": "*"})
        for n in range(limits.MAX_RELAYS_PER_OWNER - 1):
            await mallory.create_relay(f"name-{n}", HUB)
        refusals: list[str] = []
        created = []
        for n in range(2):
            name = f"throwaway-{n}"
            throwaway_delegate(mallory, name, {"troth.relay": "*"})
            end = await mallory.channel_as(name, route(HUB))
            try:
                await call(mallory.router, (end.enc, service_address("relay")), "create", name)
                created.append(name)
            except RemoteError as exc:
                refusals.append(str(exc))
        assert created == ["throwaway-0"]  # the member's 16th name; the 17th is refused
        assert len(refusals) == 1
        assert "the most one member may hold" in refusals[0]

    run_memnet(test, tmp_path)


def test_a_new_node_syncs_a_feed_of_more_pages_than_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signing budget must not stop an honest sync: a new node walks a long feed page by
    page (each page starting where the last ended), more pages than the per-peer burst; those
    pages are charged to the node's budget only. (Pages of ~4 KiB here, so that the feed of
    1,000 entries is many pages.)"""
    from troth import limits

    monkeypatch.setattr(limits, "MAX_FEED_PAGE_BYTES", 4096)

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        targets = [n.to_bytes(2, "big") * 16 for n in range(1000)]
        net.authority.revoke_credentials(targets, now=net.clock.now())
        await hub.maintain()
        fresh = await net.member("fresh")
        end = await fresh.channel_to(route(HUB))
        feed = await fresh.sync_feed(net.authority.identifier, end)
        assert feed.count >= 1000
        assert feed.complete

    run_memnet(test, tmp_path)


def test_a_peer_cycling_feed_pages_is_held_to_its_signing_budget(tmp_path: Path) -> None:
    """Every `feed [since]` with a new `since` made the hosted authority read and sign a page:
    a member (or any identity: the service is open to all) cycling values made it sign without
    end. Past its burst it is answered "busy"; a page already signed is still served, to it and
    to everyone else."""
    from troth import limits
    from troth.node.services import call, service_address

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        wanted = limits.FEED_PAGE_SIGNS_PER_CALLER_BURST + 5
        targets = [bytes([n]) * 32 for n in range(wanted)]  # each `since` up to it is valid
        net.authority.revoke_credentials(targets, now=net.clock.now())
        await hub.maintain()
        mallory = await net.member("mallory")
        honest = await net.member("honest")
        feed = service_address("authority")
        end = await mallory.channel_to(route(HUB))
        refusals: list[str] = []
        # a new page each time: each ask is a signing (the page from 0 was signed for her
        # sync when she joined — as a member: her enrollment's channel shows her credential
        # before the sync — and charged to her; it is served again, from the cache)
        for since in range(1, wanted):
            try:
                await call(mallory.router, (end.enc, feed), "feed", [since])
            except RemoteError as exc:
                refusals.append(str(exc))
        assert len(refusals) == wanted - 1 - (limits.FEED_PAGE_SIGNS_PER_CALLER_BURST - 1)
        assert all("busy" in text for text in refusals)
        honest_end = await honest.channel_to(route(HUB))
        assert await call(honest.router, (honest_end.enc, feed), "feed", [0])  # signed: served
        net.clock.advance(FEED_REUSE)  # the rate refills mallory's budget over time
        assert await call(mallory.router, (end.enc, feed), "feed", [wanted - 1])

    run_memnet(test, tmp_path)
