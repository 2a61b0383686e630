"""The authority over real SQLite: tickets (atomic, one-time, hashed), roles, enrollment,
refresh, member removal, and revocation by upstream issuers only."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import NOW
from troth.authority import ADMIN, ENROLLER, Authority, Ticket
from troth.authority.client import enroll_request, refresh_request, revoke_request
from troth.authority.requests import make_request
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialBody,
    CredentialChain,
    TrustPolicy,
    VerifiedFeed,
    delegate,
    verify_feed,
)
from troth.errors import AuthorityError, AuthorityFailure, CredentialError, CredentialFailure
from troth.identity import Identifier
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

    def revoke_link(self, by: str, credential_hash: bytes, chain: bytes, reason: str = "") -> int:
        request = revoke_request(
            self.agents.identities,
            by,
            self.authority.identifier,
            credential_hash=credential_hash,
            chain=chain,
            reason=reason,
            now=NOW,
        )
        return self.authority.revoke_link(request, now=NOW)


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
    with pytest.raises(AuthorityError):
        setup.ticket(role="root")


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
    assert caught.value.reason is A.REQUEST_INVALID
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
    with pytest.raises(AuthorityError):
        setup.authority.refresh(misaddressed, now=NOW)


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
    with pytest.raises(AuthorityError):
        setup.authority.issue_member_credential(setup.id("alice"), now=NOW + 3)


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
    with pytest.raises(AuthorityError):
        setup.authority.member(setup.id("alice"))
    verifier, feeds = verifier_for(setup, NOW + 2)
    with pytest.raises(CredentialError) as caught:
        verifier.verify(chain.encode(), presenter=setup.id("alice"), feeds=feeds, now=NOW + 2)
    assert caught.value.reason is CredentialFailure.REVOKED
    with pytest.raises(AuthorityError):
        setup.authority.revoke_identity(setup.authority.identifier, now=NOW)


def test_one_authority_per_node(setup: Setup) -> None:
    with pytest.raises(AuthorityError):
        setup.authority_node.create_authority("again", now=NOW)
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
    with pytest.raises(AuthorityError):  # and the victim's own hash is not in the forged chain
        setup.revoke_link("mallory", victim.credentials[0].hash, forged.encode())
