"""A node remembers whose chains it verified for an identity (troth.node.vouchers; docs/formats.md,
"Whose word counts on an identity"; docs/storage.md, "Vouchers"; review 20, finding 2): a peer
that later hides one of them is still judged by that authority's feed — at the handshake, at
every access decision, at the trace collector, and after a restart — while an authority that
never vouched for it here is still not heard (review 19, finding 5), and a peer that shows no
chain is a stranger, judged by every feed. The memory is bounded: a sweep forgets only rows
that can no longer change a judgment, and a full memory refuses the peer.

The channel-level cases call `verify_peer` (sans-IO) with a `Vouchers` over a database of
their own; the node-level one runs acme's hub, desk (trusting acme and globex) and a member
of both on the memory network."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.support.feeds import entries, pages
from tests.support.nodes import MemNet, route, run_memnet
from tests.support.parties import ChannelParty, Party, make_channel_party
from tests.test_attacks_review19 import local_authority
from tests.test_trace_node import signed_batch
from tests.test_trust_scope import NOW, REVOKE, SUPERSEDE, Two, feed_of, make_two
from troth import limits
from troth.channel import AnyAuthenticatedIdentity, ChannelTrust, VerifiedPeer, verify_peer
from troth.credentials import (
    Attributes,
    CredentialChain,
    RevocationKind,
    VerifiedCredential,
    VerifiedFeed,
    delegate,
    issue_credential,
    verify_page,
)
from troth.errors import ChannelError, ChannelFailure, Denied, TraceFailure
from troth.identity import Identifier
from troth.node import open_node
from troth.node.runtime import NodeRuntime
from troth.node.services import call, service_address
from troth.node.services.trace import TraceService
from troth.node.vouchers import LAPSE_MARGIN, Vouchers
from troth.storage import HeldCredential, SqliteDatabase, SqliteVoucherStore

_F = ChannelFailure
ECHO = service_address("echo")
EXPIRES = NOW - 1 + 3600  # `Two.chain`: issued at T, one hour
LAPSED = EXPIRES + LAPSE_MARGIN  # a feed issued then holds every word given meanwhile


class Memory:
    """A `Vouchers` over its own database, and the feeds it sweeps with."""

    def __init__(self, path: Path, feeds: dict[Identifier, VerifiedFeed]) -> None:
        self.path = path
        self.feeds = feeds
        self.stored: dict[Identifier, int] = {}
        self.db = SqliteDatabase(path)
        self.vouchers = self.open()

    def open(self) -> Vouchers:
        vouchers = Vouchers(
            SqliteVoucherStore(self.db),
            feeds=lambda: self.feeds,
            stored_changes=self.stored.get,
        )
        vouchers.load()
        return vouchers

    def trust(self, two: Two) -> ChannelTrust:
        return dataclasses.replace(
            two.trust(AnyAuthenticatedIdentity()),
            vouched=self.vouchers.of,
            vouch=lambda identity, chains: self.vouchers.vouch(identity.identifier, chains),
        )

    def rows(self) -> list[tuple[bytes, bytes, int, int]]:
        with sqlite3.connect(self.path) as conn:
            query = "SELECT identifier, authority, expires_at, kept FROM vouchers ORDER BY 1, 2"
            return [tuple(row) for row in conn.execute(query)]


@pytest.fixture
def two() -> Two:
    return make_two()


@pytest.fixture
def memory(two: Two, tmp_path: Path) -> Memory:
    return Memory(tmp_path / "node.db", two.feeds)


def verify(two: Two, memory: Memory, chains: tuple[bytes, ...]) -> VerifiedPeer:
    return verify_peer(memory.trust(two), two.alice.party.identity, chains, NOW)


def refusal(two: Two, memory: Memory, chains: tuple[bytes, ...]) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        verify(two, memory, chains)
    return caught.value


def feed_at(authority: Party, now: int, targets: Sequence[tuple[int, bytes]] = ()) -> VerifiedFeed:
    """`authority`'s feed as of `now` (complete), revoking / superseding `targets`."""
    made = entries(authority, targets, at=now)
    (page,) = pages(authority, made, now=now, per_page=max(1, len(made)))
    return verify_page(page, authority=authority.identifier, now=now)


# -- at the channel ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [REVOKE, SUPERSEDE], ids=["revoked", "superseded"])
def test_a_peer_cannot_hide_a_chain_this_side_verified_before(
    two: Two, memory: Memory, kind: RevocationKind
) -> None:
    """Alice showed acme's and globex's chains; acme refuses her: hiding acme's chain does not
    make globex her only judge — nor does a restart of the verifying side."""
    acme, globex = two.acme.identifier, two.globex.identifier
    both = (two.chain(two.acme), two.chain(two.globex))
    assert {c.authority for c in verify(two, memory, both).credentials} == {acme, globex}
    assert memory.vouchers.of(two.alice.identifier) == {acme, globex}
    two.feeds[acme] = feed_of(two.acme, [(kind, two.alice.identifier.digest)])
    expected = _F.REVOKED if kind is REVOKE else _F.PEER_INVALID
    hidden = (two.chain(two.globex),)
    assert refusal(two, memory, hidden).reason is expected
    memory.vouchers = memory.open()  # a restart: read back from the table
    assert memory.vouchers.of(two.alice.identifier) == {acme, globex}
    assert refusal(two, memory, hidden).reason is expected
    no_memory = two.trust(AnyAuthenticatedIdentity())  # what was served before
    assert verify_peer(no_memory, two.alice.party.identity, hidden, NOW).identifier is not None


@pytest.mark.parametrize("kind", [REVOKE, SUPERSEDE], ids=["revoked", "superseded"])
def test_an_authority_that_never_vouched_for_a_peer_is_still_not_heard(
    two: Two, memory: Memory, kind: RevocationKind
) -> None:
    """Review 19, finding 5: globex's word on acme's member counts nowhere, and revoking it
    puts globex in nobody's memory (only the roots of chains verified for it are kept)."""
    acme = two.acme.identifier
    two.feeds[two.globex.identifier] = feed_of(two.globex, [(kind, two.alice.identifier.digest)])
    for _ in range(2):
        peer = verify(two, memory, (two.chain(two.acme),))
        assert [c.authority for c in peer.credentials] == [acme]
    assert memory.vouchers.of(two.alice.identifier) == {acme}
    assert [row[1] for row in memory.rows()] == [acme.digest]


def test_a_peer_showing_no_chain_is_a_stranger_whatever_is_remembered(
    two: Two, memory: Memory
) -> None:
    """A stolen backup that shows no chain is judged by every held feed, remembered or not."""
    verify(two, memory, (two.chain(two.acme),))
    two.feeds[two.globex.identifier] = feed_of(two.globex, [(REVOKE, two.alice.identifier.digest)])
    assert refusal(two, memory, ()).reason is _F.REVOKED
    stranger = make_channel_party(two.vault, now=NOW)  # never seen: every feed too
    two.feeds[two.globex.identifier] = feed_of(two.globex, [(REVOKE, stranger.identifier.digest)])
    with pytest.raises(ChannelError) as caught:
        verify_peer(memory.trust(two), stranger.party.identity, (), NOW)
    assert caught.value.reason is _F.REVOKED


# -- bounds ----------------------------------------------------------------------------------


def credential(
    two: Two, memory: Memory, who: Party, authority: Party, ttl: int = 3600
) -> VerifiedCredential:
    """A chain of `authority` for `who`, verified (expires at EXPIRES by default)."""
    signed = issue_credential(
        authority.signer,
        subject=who.identifier,
        attributes=Attributes({"agents.team": "support"}),
        now=NOW - 1,
        ttl=ttl,
        depth=1,
    )
    chain = CredentialChain((signed,), (authority.identity.history,)).encode()
    verifier = two.trust(AnyAuthenticatedIdentity()).verifier
    assert verifier is not None
    return verifier.verify(chain, presenter=who.identity, feeds=two.feeds, now=NOW)


def test_a_full_memory_forgets_only_rows_that_cannot_change_a_judgment(
    two: Two, memory: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four identities fill a memory of four. A fifth is refused while acme's feed cannot show
    that the rows lapsed quietly (issued before a chain could no longer be shown, or not
    complete). Once it can, a sweep (one row at a time here) meets the rows whose chains expire
    first: the one acme revoked and the one whose stored history acme superseded are kept for
    good, it goes on past them and forgets a quiet one (its history is as new as acme's word);
    only as many as the newcomer needs: a sixth makes it forget the other quiet one (whose
    chain expires before the fifth's)."""
    monkeypatch.setattr(limits, "MAX_VOUCHED_IDENTITIES", 4)
    monkeypatch.setattr(limits, "VOUCHER_SWEEP_ROWS", 1)
    acme = two.acme
    quiet, revoked, rotated, current, fifth, sixth = (
        make_channel_party(two.vault, now=NOW).party for _ in range(6)
    )
    for who, ttl in ((quiet, 3500), (revoked, 3000), (rotated, 3100), (current, 3200)):
        assert memory.vouchers.vouch(who.identifier, [credential(two, memory, who, acme, ttl)])
    memory.stored.update({rotated.identifier: 1, current.identifier: 2})  # histories held
    fifths = [credential(two, memory, fifth, acme)]
    words = [(REVOKE, revoked.identifier.digest)]  # and supersessions naming 2 changes:
    words += [(SUPERSEDE, who.identifier.digest) for who in (rotated, current)]

    first = EXPIRES - 600 + LAPSE_MARGIN  # the first chain lapses then (`revoked`'s)
    memory.feeds[acme.identifier] = feed_at(acme, first - 1, words)  # too early
    assert not memory.vouchers.vouch(fifth.identifier, fifths)
    partial = verify_page(
        pages(acme, entries(acme, words, at=LAPSED), now=LAPSED, per_page=1)[0],
        authority=acme.identifier,
        now=LAPSED,
    )
    assert not partial.complete
    memory.feeds[acme.identifier] = partial  # entries may be missing
    assert not memory.vouchers.vouch(fifth.identifier, fifths)
    assert len(memory.rows()) == 4
    assert memory.vouchers.of(fifth.identifier) == set()

    memory.feeds[acme.identifier] = feed_at(acme, LAPSED, words)
    assert memory.vouchers.vouch(fifth.identifier, fifths)

    def remembered() -> set[Identifier]:
        return {Identifier(row[0]) for row in memory.rows()}

    assert remembered() == {who.identifier for who in (quiet, revoked, rotated, fifth)}
    kept = {Identifier(row[0]) for row in memory.rows() if row[3]}
    assert kept == {revoked.identifier, rotated.identifier}
    assert memory.vouchers.of(current.identifier) == set()
    assert memory.vouchers.of(revoked.identifier) == {acme.identifier}
    assert memory.vouchers.vouch(sixth.identifier, [credential(two, memory, sixth, acme)])
    assert remembered() == {who.identifier for who in (revoked, rotated, fifth, sixth)}
    assert len(memory.vouchers) == 4
    assert memory.open().of(quiet.identifier) == set()  # the table agrees
    assert memory.open().of(rotated.identifier) == {acme.identifier}


def test_an_identitys_own_bound_is_kept_the_same_way(
    two: Two, memory: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One authority per identity: alice's acme row blocks her globex one until acme's feed
    shows the row lapsed quietly; renewing a row never counts against the bound."""
    monkeypatch.setattr(limits, "MAX_VOUCHERS_PER_IDENTITY", 1)
    alice = two.alice.party
    assert memory.vouchers.vouch(alice.identifier, [credential(two, memory, alice, two.acme)])
    assert memory.vouchers.vouch(alice.identifier, [credential(two, memory, alice, two.acme)])
    globex = [credential(two, memory, alice, two.globex)]
    assert not memory.vouchers.vouch(alice.identifier, globex)
    with pytest.raises(ChannelError) as caught:
        verify(two, memory, (two.chain(two.globex),))
    assert caught.value.reason is _F.PEER_NOT_ALLOWED
    assert "cannot remember who vouches" in caught.value.detail
    memory.feeds[two.acme.identifier] = feed_at(two.acme, LAPSED)
    assert memory.vouchers.vouch(alice.identifier, globex)
    assert memory.vouchers.of(alice.identifier) == {two.globex.identifier}


def member_chain(two: Two, member: Party, ttl: int = 3600) -> bytes:
    """Acme's chain for `member`, which may delegate (issued just before NOW)."""
    signed = issue_credential(
        two.acme.signer,
        subject=member.identifier,
        attributes=Attributes({"agents.team": "support"}),
        now=NOW - 1,
        ttl=ttl,
        depth=2,
    )
    return CredentialChain((signed,), (two.acme.identity.history,)).encode()


def test_a_members_delegates_fill_only_that_members_share(
    two: Two, memory: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack: alice mints delegates offline for free and connects with each. Past
    MAX_VOUCHED_PER_MEMBER (2 here) her new delegates are refused — also after a restart — while
    bob's and carol's new peers are still vouched for and admitted. Once acme's feed shows her
    delegates' chains lapsed quietly, a sweep of her rows alone makes room (bob's, as old,
    stays)."""
    monkeypatch.setattr(limits, "MAX_VOUCHED_IDENTITIES", 4)
    monkeypatch.setattr(limits, "MAX_VOUCHED_PER_MEMBER", 2)
    alice, bob, carol = two.alice.party, *(make_channel_party(two.vault, now=NOW) for _ in "bc")
    parent = CredentialChain.decode(member_chain(two, alice))
    delegates = [make_channel_party(two.vault, now=NOW) for _ in range(4)]
    chains = [
        delegate(
            alice.signer,
            parent,
            subject=who.identifier,
            attributes=Attributes({"agents.team": "support"}),
            now=NOW - 1,
            ttl=3000,  # expires with bob's chain
            purpose="flood",
        ).encode()
        for who in delegates
    ]

    def admit(who: ChannelParty, chain: bytes) -> VerifiedPeer:
        return verify_peer(memory.trust(two), who.party.identity, (chain,), NOW)

    for who, chain in zip(delegates[:2], chains, strict=False):
        assert admit(who, chain).identifier == who.identifier
    for who, chain in zip(delegates[2:], chains[2:], strict=True):
        with pytest.raises(ChannelError) as caught:
            admit(who, chain)
        assert caught.value.reason is _F.PEER_NOT_ALLOWED
        assert memory.vouchers.of(who.identifier) == set()
    assert admit(bob, member_chain(two, bob.party, ttl=3000)).identifier == bob.identifier
    assert memory.vouchers.of(bob.identifier) == {two.acme.identifier}
    assert len(memory.rows()) == 3  # the global bound still has room: only alice's share is full

    memory.vouchers = memory.open()  # a restart: her share is counted from the table
    with pytest.raises(ChannelError) as raised:
        admit(delegates[2], chains[2])
    assert raised.value.reason is ChannelFailure.PEER_NOT_ALLOWED
    assert admit(carol, member_chain(two, carol.party)).identifier == carol.identifier

    verifier = two.trust(AnyAuthenticatedIdentity()).verifier
    assert verifier is not None
    third = verifier.verify(
        chains[2], presenter=delegates[2].party.identity, feeds=two.feeds, now=NOW
    )
    memory.feeds[two.acme.identifier] = feed_at(two.acme, LAPSED - 600)  # hers lapsed quietly
    assert memory.vouchers.vouch(delegates[2].identifier, [third])
    remembered = {Identifier(row[0]) for row in memory.rows()}
    assert remembered == {bob.identifier, carol.identifier, delegates[2].identifier}


# -- on nodes: acme's hub, desk (trusting acme and globex), a member of both -----------------


def test_a_node_judges_a_hidden_chain_per_request_at_its_collector_and_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Desk saw agent's acme chain once. A channel opened hiding it is served while acme says
    nothing; once acme revokes agent, each request on that channel is refused (the access
    decision's standing), desk's trace collector refuses agent's records sent with that
    channel's credentials, and after desk restarts a new hidden channel is refused too."""

    async def test(net: MemNet) -> None:
        globex, ticket = local_authority(net.home, "globex", net.clock.now())
        desk = await net.node("desk", listen=("desk", 4000))
        await desk.enroll(net.ticket(), "desk")
        await desk.worker.run(lambda: desk.node.identities.create(now=net.clock.now(), name="g"))
        await desk.enroll(ticket, "g")
        agent = await net.member("agent")
        with open_node("globex", home=net.home) as node:
            authority = node.authority()
            second = authority.create_ticket(
                creator=authority.identifier,
                attributes=Attributes({"globex.team": "desk"}),
                address="node:globex",
                now=net.clock.now(),
            )
        await agent.enroll(str(second), "agent")
        desk_route = route("/tcp/desk:4000")
        acme, agent_id = net.authority.identifier, net.identifier(agent)
        both = await agent.channel_as("agent", desk_route)
        assert await call(agent.router, (both.enc, ECHO), "echo", "both") == "both"
        assert desk.trust.vouchers.of(agent_id) == {acme, globex}
        await both.close()

        wallet = agent.node.wallet
        presentable = wallet.presentable

        def hiding(ref: str, *, now: int) -> list[HeldCredential]:
            return [h for h in presentable(ref, now=now) if h.authority != acme.digest]

        monkeypatch.setattr(wallet, "presentable", hiding)
        hidden = await agent.channel_as("agent", desk_route)
        assert await call(agent.router, (hidden.enc, ECHO), "echo", "hidden") == "hidden"
        (peer,) = [
            end.peer
            for end in desk.channels.ends.values()
            if end.peer is not None and end.peer.identifier == agent_id
        ]
        assert [c.authority for c in peer.credentials] == [globex]

        net.authority.revoke_identity(agent_id, now=net.clock.now())
        await desk.refresh_feeds()
        with pytest.raises(Denied, match=f"it is revoked by {acme}"):
            await call(agent.router, (hidden.enc, ECHO), "echo", "again")

        service = desk.host.services["trace"]
        assert isinstance(service, TraceService)
        now = net.clock.now()
        batch = await agent.worker.run(signed_batch, agent, "agent", now)
        receipts = await desk.worker.run(
            lambda: service.collector().submit(
                batch.submission, submitter=agent_id, now=now, credentials=peer.credentials
            )
        )
        assert [r.reason for r in receipts.results] == [TraceFailure.SIGNER_INVALID]
        assert f"revoked by {acme}" in receipts.results[0].detail

        await desk.stop()  # a restart: a new runtime over the same node directory
        net.runtimes.remove(desk)
        node = open_node("desk", home=net.home)
        net.opened.append(node)
        again = NodeRuntime(node, clock=net.clock, transport=net.transport("desk"))
        net.runtimes.append(again)
        await again.start(("desk", 4000))
        assert again.trust.vouchers.of(agent_id) == {acme, globex}
        with pytest.raises(ChannelError) as raised:
            end = await agent.channel_as("agent", desk_route)
            await call(agent.router, (end.enc, ECHO), "echo", "after")
        assert raised.value.reason is ChannelFailure.REVOKED

    run_memnet(test, tmp_path / "home")
