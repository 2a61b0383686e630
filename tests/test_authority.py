"""The authority over real SQLite: tickets (atomic, one-time, hashed), roles, enrollment,
refresh, member removal, and revocation by upstream issuers only."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import NOW
from troth import limits
from troth.authority import ADMIN, ENROLLER, Authority, Ticket
from troth.authority.client import (
    authority_pin_of,
    check_ticket,
    enroll_request,
    refresh_request,
    revoke_request,
    rotated_request,
)
from troth.authority.requests import make_request
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialBody,
    CredentialChain,
    TrustPolicy,
    VerifiedFeed,
    chain_actor,
    delegate,
    verify_feed,
)
from troth.errors import (
    AuthorityError,
    AuthorityFailure,
    CredentialError,
    CredentialFailure,
    IdentityError,
    IdentityFailure,
)
from troth.identity import Identifier, verify_history
from troth.node import Node, init_node, open_node

A = AuthorityFailure
ORDERS = Attributes({"orders.access": frozenset({"read", "write"}), "orders.customer": "4471"})


@dataclass
class Setup:
    authority_node: Node
    agents: Node
    authority: Authority

    def ticket(self, **kwargs: object) -> Ticket:
        args: dict[str, object] = {
            "creator": self.authority.identifier,
            "attributes": ORDERS,
            "address": "node:auth",
            "now": NOW,
        }
        args.update(kwargs)
        return self.authority.create_ticket(**args)  # type: ignore[arg-type]

    def enroll(self, name: str, ticket: Ticket, now: int = NOW) -> CredentialChain:
        if name not in {r.name for r in self.agents.identities.list_local()}:
            self.agents.identities.create(now=NOW, name=name)
        request = enroll_request(self.agents.identities, name, ticket, now=now)
        return self.authority.enroll(request, now=now)

    def id(self, name: str) -> Identifier:
        return self.agents.identities.get(name, now=NOW).identifier

    def revoke_request(
        self, by: str, credential_hash: bytes, chain: bytes, reason: str = "", now: int = NOW
    ) -> bytes:
        return revoke_request(
            self.agents.identities,
            by,
            self.authority.identifier,
            credential_hash=credential_hash,
            chain=chain,
            reason=reason,
            now=now,
        )

    def revoke_link(
        self, by: str, credential_hash: bytes, chain: bytes, reason: str = "", now: int = NOW
    ) -> int:
        request = self.revoke_request(by, credential_hash, chain, reason, now)
        return self.authority.revoke_link(request, now=now)

    def feed_length(self) -> int:
        return self.authority.store.revocation_tip()[0]


@pytest.fixture
def setup(troth_home: Path) -> Iterator[Setup]:
    init_node("auth")
    init_node("agents")
    with open_node("auth") as authority_node, open_node("agents") as agents:
        yield Setup(authority_node, agents, authority_node.create_authority("acme", now=NOW))


def test_enroll_issues_a_member_credential(setup: Setup) -> None:
    chain = setup.enroll("alice", setup.ticket())
    body = CredentialBody.decode(chain.credentials[0].body)
    assert body.subject == setup.id("alice")
    assert body.issuer == setup.authority.identifier
    assert body.attributes == ORDERS
    assert body.expires_at - body.created_at == 3600  # default TTL: 1 h
    assert setup.authority.member(setup.id("alice")).attributes == ORDERS
    checked = setup.agents.wallet.hold("alice", chain.encode(), now=NOW)
    assert checked.actor == setup.id("alice")


def test_ticket_string_round_trip_and_secrecy(setup: Setup) -> None:
    ticket = setup.ticket()
    parsed = Ticket.parse(str(ticket))
    assert parsed == ticket
    assert ticket.code.hex() not in repr(ticket)
    for path in (setup.authority_node.path).iterdir():
        assert ticket.code not in path.read_bytes(), f"ticket code in clear in {path.name}"


def test_ticket_is_one_time_and_expires(setup: Setup) -> None:
    ticket = setup.ticket()
    setup.enroll("alice", ticket)
    with pytest.raises(AuthorityError) as caught:
        setup.enroll("bob", ticket)
    assert caught.value.reason is A.TICKET_UNKNOWN
    short = setup.ticket(ttl=60)
    with pytest.raises(AuthorityError) as caught:
        setup.enroll("carol", short, now=NOW + 60)
    assert caught.value.reason is A.TICKET_UNKNOWN
    setup.enroll("carol", setup.ticket(ttl=60), now=NOW + 59)


@pytest.mark.parametrize("uses", [1, 3])
def test_ticket_race(setup: Setup, uses: int) -> None:
    """20 threads, each with its own SQLite connection, redeem one ticket at once."""
    ticket = setup.ticket(uses=uses)
    names = [f"racer-{n}" for n in range(20)]
    requests = []
    for name in names:
        setup.agents.identities.create(now=NOW, name=name)
        requests.append(enroll_request(setup.agents.identities, name, ticket, now=NOW))
    barrier = threading.Barrier(len(requests))
    winners: list[int] = []
    losers: list[BaseException] = []

    def redeem(index: int) -> None:
        barrier.wait()
        try:
            setup.authority.enroll(requests[index], now=NOW)
            winners.append(index)
        except AuthorityError as exc:
            losers.append(exc)

    threads = [threading.Thread(target=redeem, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == uses
    assert len(losers) == 20 - uses
    assert all(isinstance(e, AuthorityError) and e.reason is A.TICKET_UNKNOWN for e in losers)
    assert len(setup.authority.members()) == uses


def test_roles(setup: Setup) -> None:
    setup.enroll("enroller", setup.ticket(role=ENROLLER, attributes=Attributes()))
    setup.enroll("plain", setup.ticket())
    enroller, plain = setup.id("enroller"), setup.id("plain")
    assert setup.authority.roles_of(enroller) == {ENROLLER}
    assert setup.authority.roles_of(setup.authority.identifier) == {ADMIN}
    # an enroller creates member tickets, nothing more
    member_ticket = setup.ticket(creator=enroller)
    setup.enroll("newcomer", member_ticket)
    for kwargs, reason in (
        ({"role": ENROLLER}, A.RESERVED_ATTRIBUTE),
        ({"attributes": Attributes({"troth.relay": "*"})}, A.RESERVED_ATTRIBUTE),
    ):
        with pytest.raises(AuthorityError) as caught:
            setup.ticket(creator=enroller, **kwargs)
        assert caught.value.reason is reason
    # a plain member or a stranger creates nothing
    for creator in (plain, Identifier(b"\x09" * 32)):
        with pytest.raises(AuthorityError) as caught:
            setup.ticket(creator=creator)
        assert caught.value.reason is A.ROLE_REQUIRED
    # admins may grant admin; an admin member may create enroller tickets
    setup.enroll("second-admin", setup.ticket(role=ADMIN, attributes=Attributes()))
    setup.ticket(creator=setup.id("second-admin"), role=ENROLLER)
    with pytest.raises(AuthorityError) as raised:
        setup.ticket(role="root")
    assert raised.value.reason is AuthorityFailure.REQUEST_INVALID


def test_reenroll_merges_attributes(setup: Setup) -> None:
    setup.enroll("alice", setup.ticket())
    chain = setup.enroll("alice", setup.ticket(attributes=Attributes({"support.tier": "gold"})))
    attributes = CredentialBody.decode(chain.credentials[0].body).attributes
    assert attributes == ORDERS.merged(Attributes({"support.tier": "gold"}))


def test_refresh_and_requests_are_bound(setup: Setup) -> None:
    setup.enroll("alice", setup.ticket())
    request = refresh_request(
        setup.agents.identities, "alice", setup.authority.identifier, now=NOW + 3000
    )
    chain = setup.authority.refresh(request, now=NOW + 3000)
    assert CredentialBody.decode(chain.credentials[0].body).expires_at == NOW + 3000 + 3600
    with pytest.raises(AuthorityError) as caught:  # a request is only good near its time
        setup.authority.refresh(request, now=NOW + 3000 + 301)
    assert caught.value.reason is A.CLOCK_SKEW  # review 48s, skew 1
    with pytest.raises(AuthorityError) as caught:  # and only for its own kind
        setup.authority.enroll(request, now=NOW + 3000)
    assert caught.value.reason is A.REQUEST_INVALID
    setup.agents.identities.create(now=NOW, name="stranger")
    stranger = refresh_request(
        setup.agents.identities, "stranger", setup.authority.identifier, now=NOW
    )
    with pytest.raises(AuthorityError) as caught:
        setup.authority.refresh(stranger, now=NOW)
    assert caught.value.reason is A.NOT_A_MEMBER
    other = Identifier(b"\x03" * 32)
    misaddressed = make_request(
        setup.agents.identities.signer("alice", now=NOW), "refresh", other, [], now=NOW
    )
    with pytest.raises(AuthorityError) as raised:
        setup.authority.refresh(misaddressed, now=NOW)
    assert raised.value.reason is AuthorityFailure.REQUEST_INVALID


def verifier_for(setup: Setup, now: int) -> tuple[ChainVerifier, dict[Identifier, VerifiedFeed]]:
    feed = verify_feed(
        setup.authority.feed(now=now),
        authority=setup.authority.identifier,
        now=now,
        max_staleness=300,
    )
    return ChainVerifier(TrustPolicy(frozenset({setup.authority.identifier}))), {
        setup.authority.identifier: feed
    }


def test_remove_member_revokes_its_credentials(setup: Setup) -> None:
    chain = setup.enroll("alice", setup.ticket())
    verifier, feeds = verifier_for(setup, NOW + 1)
    verifier.verify(chain.encode(), presenter=setup.id("alice"), feeds=feeds, now=NOW + 1)
    revoked = setup.authority.remove_member(setup.id("alice"), now=NOW + 2)
    assert revoked == [chain.credentials[0].hash]
    verifier, feeds = verifier_for(setup, NOW + 3)
    with pytest.raises(CredentialError) as caught:
        verifier.verify(chain.encode(), presenter=setup.id("alice"), feeds=feeds, now=NOW + 3)
    assert caught.value.reason is CredentialFailure.REVOKED
    with pytest.raises(AuthorityError) as raised:
        setup.authority.issue_member_credential(setup.id("alice"), now=NOW + 3)
    assert raised.value.reason is AuthorityFailure.NOT_A_MEMBER


def test_revoke_link_only_upstream(setup: Setup) -> None:
    wallet = setup.agents.wallet
    chain = setup.enroll("customer", setup.ticket())
    wallet.hold("customer", chain.encode(), now=NOW)
    for name in ("support", "sub", "sibling"):
        setup.agents.identities.create(now=NOW, name=name)
    read = Attributes({"orders.access": "read", "orders.customer": "4471"})
    to_support = wallet.delegate(
        "customer",
        to=setup.id("support"),
        attributes=read,
        now=NOW,
        ttl=1800,
        purpose="complaint 123",
    )
    wallet.hold("support", to_support, now=NOW)
    to_sub = wallet.delegate(
        "support", to=setup.id("sub"), attributes=read, now=NOW, ttl=600, purpose="history"
    )
    to_sibling = wallet.delegate(
        "customer", to=setup.id("sibling"), attributes=read, now=NOW, ttl=600, purpose="other"
    )
    middle = CredentialChain.decode(to_sub).credentials[1].hash

    # the sub-agent is downstream of the middle link: it may not revoke it
    with pytest.raises(AuthorityError) as caught:
        setup.revoke_link("sub", middle, to_sub)
    assert caught.value.reason is A.NOT_UPSTREAM
    # the customer issued it: it may
    setup.revoke_link("customer", middle, to_sub, reason="resolved")
    verifier, feeds = verifier_for(setup, NOW + 1)
    with pytest.raises(CredentialError) as revoked:
        verifier.verify(to_sub, presenter=setup.id("sub"), feeds=feeds, now=NOW + 1)
    assert revoked.value.reason is CredentialFailure.REVOKED
    assert revoked.value.link == 1
    verifier.verify(to_sibling, presenter=setup.id("sibling"), feeds=feeds, now=NOW + 1)
    entry = verify_feed(
        setup.authority.feed(now=NOW + 1),
        authority=setup.authority.identifier,
        now=NOW + 1,
        max_staleness=60,
    ).new_entries[-1]
    assert entry.revoked_by == setup.id("customer")
    assert entry.reason == "resolved"


def test_revoke_identity_is_permanent(setup: Setup) -> None:
    chain = setup.enroll("alice", setup.ticket())
    setup.authority.revoke_identity(setup.id("alice"), now=NOW + 1, reason="compromised")
    with pytest.raises(AuthorityError) as raised:
        setup.authority.member(setup.id("alice"))
    assert raised.value.reason is AuthorityFailure.NOT_A_MEMBER
    verifier, feeds = verifier_for(setup, NOW + 2)
    with pytest.raises(CredentialError) as caught:
        verifier.verify(chain.encode(), presenter=setup.id("alice"), feeds=feeds, now=NOW + 2)
    assert caught.value.reason is CredentialFailure.REVOKED
    with pytest.raises(AuthorityError) as raised:
        setup.authority.revoke_identity(setup.authority.identifier, now=NOW)
    assert raised.value.reason is AuthorityFailure.REQUEST_INVALID


def test_one_authority_per_node(setup: Setup) -> None:
    with pytest.raises(AuthorityError) as raised:
        setup.authority_node.create_authority("again", now=NOW)
    assert raised.value.reason is AuthorityFailure.REQUEST_INVALID
    assert setup.authority_node.authority().identifier == setup.authority.identifier


def test_a_member_cannot_revoke_someone_elses_credential(setup: Setup) -> None:
    """Credential serial ids are chosen by their issuers: revocations name the credential's
    hash, so copying a victim's serial into one's own delegation revokes only that delegation."""
    victim = setup.enroll("victim", setup.ticket())
    attacker = setup.enroll("mallory", setup.ticket())
    setup.agents.wallet.hold("mallory", attacker.encode(), now=NOW)
    setup.agents.identities.create(now=NOW, name="throwaway")
    victim_serial = CredentialBody.decode(victim.credentials[0].body).id
    forged = delegate(
        setup.agents.identities.signer("mallory", now=NOW),
        attacker,
        subject=setup.id("throwaway"),
        attributes=Attributes({"orders.customer": "4471"}),
        now=NOW,
        ttl=60,
        purpose="impersonate a serial",
        credential_id=victim_serial,
    )
    setup.revoke_link("mallory", forged.credentials[1].hash, forged.encode())
    verifier, feeds = verifier_for(setup, NOW + 1)
    verifier.verify(victim.encode(), presenter=setup.id("victim"), feeds=feeds, now=NOW + 1)
    with pytest.raises(
        AuthorityError
    ) as raised:  # and the victim's own hash is not in the forged chain
        setup.revoke_link("mallory", victim.credentials[0].hash, forged.encode())
    assert raised.value.reason is AuthorityFailure.REQUEST_INVALID


# -- rotations: the authority learns the newest history and publishes supersessions -------------


def steal_and_rotate(setup: Setup, troth_home: Path, name: str) -> Node:
    """Copy the agents node (a stolen backup), then rotate `name` on the real node."""
    shutil.copytree(troth_home / "nodes" / "agents", troth_home / "nodes" / "stolen")
    setup.agents.identities.rotate(name, now=NOW + 10)
    return open_node("stolen")


def supersession_of(setup: Setup, identifier: Identifier, now: int) -> tuple[int, bytes] | None:
    feed = verify_feed(
        setup.authority.feed(now=now),
        authority=setup.authority.identifier,
        now=now,
        max_staleness=60,
    )
    found = feed.supersession(identifier)
    return None if found is None else (found.changes, found.change_hash)


def test_rotated_publishes_a_supersession_once(setup: Setup, troth_home: Path) -> None:
    setup.enroll("alice", setup.ticket())
    alice = setup.id("alice")
    request = rotated_request(setup.agents.identities, "alice", setup.authority.identifier, now=NOW)
    assert setup.authority.rotated(request, now=NOW) is None  # one change: nothing superseded
    rotated = setup.agents.identities.rotate("alice", now=NOW + 10)
    announce = rotated_request(
        setup.agents.identities, "alice", setup.authority.identifier, now=NOW + 10
    )
    seq = setup.authority.rotated(announce, now=NOW + 10)
    assert seq is not None
    length = setup.feed_length()
    assert supersession_of(setup, alice, NOW + 10) == (2, rotated.identity.current_change_hash)
    again = rotated_request(
        setup.agents.identities, "alice", setup.authority.identifier, now=NOW + 11
    )
    assert setup.authority.rotated(again, now=NOW + 11) == seq
    assert setup.feed_length() == length
    setup.agents.identities.create(now=NOW, name="stranger")
    stranger = rotated_request(
        setup.agents.identities, "stranger", setup.authority.identifier, now=NOW
    )
    with pytest.raises(AuthorityError) as caught:
        setup.authority.rotated(stranger, now=NOW)
    assert caught.value.reason is A.NOT_A_MEMBER
    with_arguments = make_request(
        setup.agents.identities.signer("alice", now=NOW + 12),
        "rotated",
        setup.authority.identifier,
        [1],
        now=NOW + 12,
    )
    with pytest.raises(AuthorityError) as caught:
        setup.authority.rotated(with_arguments, now=NOW + 12)
    assert caught.value.reason is A.REQUEST_INVALID


def test_refresh_and_enroll_teach_the_newest_history(setup: Setup) -> None:
    setup.agents.identities.create(now=NOW, name="early")
    rotated = setup.agents.identities.rotate("early", now=NOW + 1)
    setup.enroll("early", setup.ticket(), now=NOW + 2)  # enrolls with two changes
    assert supersession_of(setup, setup.id("early"), NOW + 2) == (
        2,
        rotated.identity.current_change_hash,
    )
    setup.enroll("late", setup.ticket())
    again = setup.agents.identities.rotate("late", now=NOW + 3)
    request = refresh_request(
        setup.agents.identities, "late", setup.authority.identifier, now=NOW + 4
    )
    setup.authority.refresh(request, now=NOW + 4)
    assert supersession_of(setup, setup.id("late"), NOW + 4) == (
        2,
        again.identity.current_change_hash,
    )


def test_k0_fork_and_rollback_refused_by_the_authority(setup: Setup, troth_home: Path) -> None:
    """A stolen backup's rotation (a fork of the owner's) and its old history (a rollback)
    are refused once the authority knows the owner's rotation."""
    setup.agents.wallet.hold("alice", setup.enroll("alice", setup.ticket()).encode(), now=NOW)
    authority = setup.authority.identifier
    with steal_and_rotate(setup, troth_home, "alice") as stolen:
        real = rotated_request(setup.agents.identities, "alice", authority, now=NOW + 20)
        setup.authority.rotated(real, now=NOW + 20)
        rollback = refresh_request(stolen.identities, "alice", authority, now=NOW + 20)
        with pytest.raises(AuthorityError) as caught:
            setup.authority.refresh(rollback, now=NOW + 20)
        assert caught.value.reason is A.REQUEST_INVALID
        assert "older than the stored copy" in str(caught.value)
        stolen.identities.rotate("alice", now=NOW + 30)
        fork = rotated_request(stolen.identities, "alice", authority, now=NOW + 30)
        with pytest.raises(AuthorityError) as caught:
            setup.authority.rotated(fork, now=NOW + 30)
        assert caught.value.reason is A.REQUEST_INVALID
        assert "fork" in str(caught.value)
        # the stolen copy still delegates with the old key: stateless verifiers refuse it
        stolen.identities.create(now=NOW, name="accomplice")
        chain = stolen.wallet.delegate(
            "alice",
            to=stolen.identities.get("accomplice", now=NOW).identifier,
            attributes=ORDERS,
            now=NOW + 30,
            ttl=60,
            purpose="theft",
        )
    verifier, feeds = verifier_for(setup, NOW + 30)
    with pytest.raises(CredentialError) as refused:
        verifier.verify(chain, presenter=chain_actor(chain), feeds=feeds, now=NOW + 30)
    assert refused.value.reason is CredentialFailure.SUPERSEDED
    assert refused.value.link == 1


def test_the_100001_entry_cliff(setup: Setup) -> None:
    """At 100,001 entries the v1 feed no longer verified and could not be repaired. Now the
    feed appends, a holder syncs it page by page into its store, and it verifies."""
    chain = setup.enroll("alice", setup.ticket())
    setup.authority.revoke_credentials([n.to_bytes(32, "big") for n in range(100_000)], now=NOW)
    setup.authority.revoke_credential(chain.credentials[0].hash, now=NOW + 1, reason="cliff")
    authority = setup.authority.identifier
    feed = setup.agents.wallet.sync_feed(
        authority, lambda since: setup.authority.feed(now=NOW + 1, since=since), now=NOW + 1
    )
    assert feed.count == 100_001
    assert setup.agents.wallet.feed(authority, now=NOW + 2, max_staleness=60) is feed
    verifier = ChainVerifier(TrustPolicy(frozenset({authority})))
    with pytest.raises(CredentialError) as caught:
        verifier.verify(
            chain.encode(), presenter=setup.id("alice"), feeds={authority: feed}, now=NOW + 2
        )
    assert caught.value.reason is CredentialFailure.REVOKED


def test_the_authoritys_own_view_of_its_feed(setup: Setup) -> None:
    """What the hosting node verifies against: read from the store, grown incrementally, the
    same entries a holder verifies from the signed pages."""
    setup.agents.identities.create(now=NOW, name="early")
    setup.agents.identities.rotate("early", now=NOW + 1)
    setup.enroll("early", setup.ticket(), now=NOW + 2)
    setup.authority.revoke_credentials([b"\x01" * 32, b"\x02" * 32], now=NOW + 2)
    own = setup.authority.held_feed(now=NOW + 3)
    assert (own.count, own.complete, own.issued_at) == (3, True, NOW + 3)
    setup.authority.revoke_identity(setup.id("early"), now=NOW + 4)
    grown = setup.authority.held_feed(now=NOW + 5, previous=own)
    synced = verify_feed(
        setup.authority.feed(now=NOW + 5),
        authority=setup.authority.identifier,
        now=NOW + 5,
        max_staleness=60,
    )
    assert (grown.count, grown.head) == (synced.count, synced.head) == (4, synced.head)
    assert set(grown.revoked_credentials) == set(synced.revoked_credentials)
    assert set(grown.revoked_identities) == {setup.id("early").digest}
    assert grown.supersession(setup.id("early")) == synced.supersession(setup.id("early"))
    assert grown.supersession(setup.id("early")) is not None
    assert setup.id("early").digest not in own.revoked_identities


# -- crash-safe enrollment: one redemption, one credential (issue 9) ------------------------------


def issued_to(setup: Setup, name: str, now: int = NOW) -> list[bytes]:
    return setup.authority.store.unexpired_issued(setup.id(name).digest, now)


def test_a_repeated_enrollment_gets_the_credential_already_issued(setup: Setup) -> None:
    """The answer to an enrollment was lost (a crash on either side): the member enrolls again
    with the same ticket, now used up, and gets the same credential. Repeating it 100 times
    takes no use and issues nothing."""
    ticket = setup.ticket()
    first = setup.enroll("alice", ticket)
    for step in range(1, 101):
        assert setup.enroll("alice", ticket, now=NOW + step).encode() == first.encode()
    assert issued_to(setup, "alice") == [first.credentials[0].hash]
    assert setup.authority.store.count_redemptions(setup.id("alice").digest) == 1
    with pytest.raises(AuthorityError) as caught:  # the code is used up for anyone else
        setup.enroll("bob", ticket)
    assert caught.value.reason is A.TICKET_UNKNOWN
    assert setup.authority.store.count_redemptions(setup.id("bob").digest) == 0


def test_a_repeat_takes_no_second_use_of_a_multi_use_ticket(setup: Setup) -> None:
    ticket = setup.ticket(uses=2)
    setup.enroll("alice", ticket)
    setup.enroll("alice", ticket)  # a repeat
    setup.enroll("bob", ticket)  # the second use is still there
    with pytest.raises(AuthorityError) as caught:
        setup.enroll("carol", ticket)
    assert caught.value.reason is A.TICKET_UNKNOWN


def test_after_the_tickets_window_only_its_redeemer_is_answered(setup: Setup) -> None:
    """After the window a repeat by the member that redeemed the ticket is answered as its
    refresh would be (review 38c, enroll 1: a holder resuming late was stranded); anyone
    else is refused."""
    ticket = setup.ticket(ttl=60, uses=2)
    setup.enroll("alice", ticket, now=NOW + 59)
    again = setup.enroll("alice", ticket, now=NOW + 60)
    assert CredentialBody.decode(again.credentials[0].body).subject == setup.id("alice")
    with pytest.raises(AuthorityError) as caught:
        setup.enroll("bob", ticket, now=NOW + 60)
    assert caught.value.reason is A.TICKET_UNKNOWN


def test_a_removed_member_cannot_repeat_its_enrollment(setup: Setup) -> None:
    ticket = setup.ticket()
    setup.enroll("alice", ticket)
    setup.authority.remove_member(setup.id("alice"), now=NOW)
    with pytest.raises(AuthorityError) as caught:
        setup.enroll("alice", ticket, now=NOW + 1)
    assert caught.value.reason is A.NOT_A_MEMBER


def test_a_repeat_teaches_the_members_newer_history(setup: Setup) -> None:
    ticket = setup.ticket()
    first = setup.enroll("alice", ticket)
    rotated = setup.agents.identities.rotate("alice", now=NOW + 1)
    assert setup.enroll("alice", ticket, now=NOW + 2).encode() == first.encode()
    assert supersession_of(setup, setup.id("alice"), NOW + 2) == (
        2,
        rotated.identity.current_change_hash,
    )


def test_a_delegation_never_extends_a_revoked_chain(setup: Setup) -> None:
    """The wallet chooses a parent among chains no held feed revokes, even the one that
    expires last (found by the gates review: a revoked parent made a dead delegation)."""
    wallet = setup.agents.wallet
    wallet.hold("customer", setup.enroll("customer", setup.ticket()).encode(), now=NOW)
    for name in ("support", "sub"):
        setup.agents.identities.create(now=NOW, name=name)
    read = Attributes({"orders.access": "read", "orders.customer": "4471"})
    kept, revoked = (
        wallet.delegate(
            "customer", to=setup.id("support"), attributes=read, now=NOW, ttl=ttl, purpose=p
        )
        for ttl, p in ((600, "kept"), (601, "revoked, and expiring last"))
    )
    for chain in (kept, revoked):
        wallet.hold("support", chain, now=NOW)
    setup.revoke_link("customer", CredentialChain.decode(revoked).credentials[1].hash, revoked)
    authority = setup.authority
    wallet.sync_feed(
        authority.identifier, lambda since: authority.feed(now=NOW + 1, since=since), now=NOW + 1
    )
    to_sub = wallet.delegate(
        "support", to=setup.id("sub"), attributes=read, now=NOW + 1, ttl=60, purpose="history"
    )
    parent = CredentialChain.decode(to_sub).credentials[1].hash
    assert parent == CredentialChain.decode(kept).credentials[1].hash


def test_a_pin_that_does_not_match_the_ticket_says_which_part_differs(setup: Setup) -> None:
    """A pin is checked even for a full-history ticket: another identifier is another
    authority; the same identifier with another key is, most often, a ticket made before the
    authority rotated (the pin given is today's), and the error says so."""
    ticket = setup.ticket()
    setup.agents.identities.create(now=NOW, name="newbie")
    with open_node("auth") as again:
        again.identities.rotate(str(setup.authority.identifier), now=NOW + 10)
        today = authority_pin_of(again.identities.get("acme", now=NOW + 10).identity)
    with pytest.raises(IdentityError, match="rotated since it made this ticket") as older:
        check_ticket(setup.agents.identities, ticket, now=NOW + 20, authority_pin=today)
    assert older.value.reason is IdentityFailure.UNATTESTED_CHECKPOINT
    other = f"{Identifier(bytes(32))}:{today.rpartition(':')[2]}"
    with pytest.raises(IdentityError, match="not from the authority you confirmed"):
        check_ticket(setup.agents.identities, ticket, now=NOW + 20, authority_pin=other)
    pin = authority_pin_of(verify_history(ticket.authority_history, now=NOW))
    assert check_ticket(setup.agents.identities, ticket, now=NOW + 20, authority_pin=pin) == (
        setup.authority.identifier
    )


def test_a_ticket_whose_credential_would_be_over_the_limit_is_refused(setup: Setup) -> None:
    """64 attributes of 256 characters each are within MAX_ATTRIBUTES and MAX_ATTRIBUTE_TEXT,
    but a credential granting them is over MAX_CREDENTIAL_BYTES, which every verifier refuses:
    the ticket is refused when it is made (review 22b, finding 5), not when it is redeemed."""
    wide = Attributes({f"orders.k{n}": "x" * limits.MAX_ATTRIBUTE_TEXT for n in range(64)})
    with pytest.raises(AuthorityError) as caught:
        setup.ticket(attributes=wide)
    assert caught.value.reason is A.REQUEST_INVALID
    assert "MAX_CREDENTIAL_BYTES" in str(caught.value)
    setup.enroll("alice", setup.ticket())  # an ordinary ticket still works
