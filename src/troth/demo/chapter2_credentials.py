"""Chapter 2: credentials. acme's hub hosts the authority acme; the customer enrolls with a
one-time ticket; it delegates a narrow, time-boxed part of what it holds to the support
agent, which narrows it again for a sub-agent; a verifier that trusts only acme sees the
whole chain; passing on more than is held is refused; revoking the sub-agent's link stops its
chain while the support agent's stays valid."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from troth.authority import Authority
from troth.authority.client import enroll_request, revoke_request
from troth.cli.text import attributes, duration, timestamp
from troth.clock import Clock
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialBody,
    CredentialChain,
    Delegation,
    SignedCredential,
    TrustPolicy,
    VerifiedCredential,
    VerifiedFeed,
    verify_feed,
)
from troth.demo.story import Story
from troth.errors import CredentialError
from troth.identity import Identifier
from troth.node import Node, init_node, open_node

CUSTOMER = Attributes({"orders.access": frozenset({"read", "write"}), "orders.customer": "4471"})
READ = Attributes({"orders.access": "read", "orders.customer": "4471"})
WRITE = Attributes({"orders.access": "write", "orders.customer": "4471"})
CAVEAT = 'context.complaint == "123"'

Feeds = Callable[[], dict[Identifier, VerifiedFeed]]


def run(story: Story, home: Path, clock: Clock) -> None:
    story.chapter(2, "Credentials: attributes, delegation that only narrows, real revocation")
    now = clock.now()
    for name in ("acme", "customer", "support-agent"):
        init_node(name, home=home)
    with (
        open_node("acme", home=home) as hub,
        open_node("customer", home=home) as customer,
        open_node("support-agent", home=home) as support,
    ):
        authority = hub.create_authority("acme", now=now)
        story.say(f"acme's hub hosts the authority {story.meet('acme', authority.identifier)}:")
        story.say(
            "  it enrolls members with one-time tickets and publishes a signed revocation feed"
        )
        _cast(story, customer, support, now)

        ticket = authority.create_ticket(
            creator=authority.identifier, attributes=CUSTOMER, address="node:acme", now=now
        )
        request = enroll_request(customer.identities, "customer", ticket, now=now)
        member = authority.enroll(request, now=now)
        customer.wallet.hold("customer", member.encode(), now=now)
        story.say("the customer redeems a one-time ticket (a 256-bit code; acme keeps only its")
        story.say("  SHA-256 hash, so a copy of acme's database enrolls no one):")
        body = CredentialBody.decode(member.credentials[0].body)
        lasts = duration(body.expires_at - body.not_before)
        story.say(f"  member credential: {attributes(CUSTOMER.to_json())}, valid for {lasts}")
        story.proved("a one-time ticket makes the customer a member, with a credential from acme")

        to_support = _pass_on(
            customer,
            "customer",
            support,
            "support-agent",
            now=now,
            ttl=1800,
            purpose="resolve complaint 123",
            caveats=[CAVEAT],
        )
        story.say("the customer delegates to the support agent only what complaint 123 needs:")
        story.say(f"  {attributes(READ.to_json())} (read, not write), for 30m,")
        story.say(f"  only if {CAVEAT}")
        story.say("  (a caveat is a Cedar condition: the gates enforce it on every call)")
        to_sub = _pass_on(
            support,
            "support-agent",
            support,
            "sub-agent",
            now=now,
            ttl=600,
            purpose="look up order history",
        )
        story.say("the support agent passes the same on to its sub-agent, for 10m")

        verifier = ChainVerifier(TrustPolicy(frozenset({authority.identifier})))

        def feeds() -> dict[Identifier, VerifiedFeed]:
            feed = verify_feed(
                authority.feed(now=now), authority=authority.identifier, now=now, max_staleness=300
            )
            return {authority.identifier: feed}

        story.say("a verifier that trusts only acme, with acme's signed revocation feed, checks")
        story.say("the chain the sub-agent presents:")
        sub_id = _id(support, "sub-agent")
        verified = verifier.verify(to_sub, presenter=sub_id, feeds=feeds(), now=now)
        _show(story, verified)
        story.proved("a verifier trusting only acme sees who acts, for whom, with what, how long")

        _amplify(story, support, verifier, feeds, to_sub, verified, now)
        story.proved("delegation only narrows: write is refused, by the wallet and by verifiers")

        _revoke(story, customer, support, authority, verifier, feeds, to_support, to_sub, now)
        story.proved("revoking a link stops every chain through it; the chain above stays valid")


def _id(node: Node, name: str) -> Identifier:
    return Identifier(node.identities.find(name).identifier)


def _pass_on(giver: Node, name: str, taker: Node, to: str, *, now: int, **link: Any) -> bytes:
    """`name` delegates READ to `to` (`link`: ttl, purpose, caveats); `to` holds the chain."""
    chain = giver.wallet.delegate(name, to=_id(taker, to), attributes=READ, now=now, **link)
    taker.wallet.hold(to, chain, now=now)
    return chain


def _cast(story: Story, customer: Node, support: Node, now: int) -> None:
    """The customer's agent on its own node; the support agent and its sub-agent on theirs."""
    made = customer.identities.create(now=now, name="customer")
    story.say(f"customer 4471's agent, on its own node: {story.meet('customer', made.identifier)}")
    for name in ("support-agent", "sub-agent", "helper"):
        support.identities.create(now=now, name=name)
    story.say(
        f"on the support agent's node: {story.meet('support-agent', _id(support, 'support-agent'))}"
    )
    story.say(
        f"  and the sub-agent it starts: {story.meet('sub-agent', _id(support, 'sub-agent'))}"
    )


def _show(story: Story, verified: VerifiedCredential) -> None:
    story.say(f"  who acts:  {verified.actor}, for authority {verified.authority}")
    for link in verified.links:
        why = "member credential" if link.index == 0 else f'"{link.purpose}"'
        story.say(f"  link {link.index}:    {link.issuer} -> {link.subject}: {why}")
        story.say(
            f"             {attributes(link.attributes.to_json())}, "
            f"for {duration(link.expires_at - link.not_before)}"
        )
    story.say(f"  may:       {attributes(verified.attributes.to_json())}")
    for caveat in verified.caveats:
        story.say(f"  only if:   {caveat} (from link 1: every link's caveats apply)")
    window = verified.expires_at - verified.not_before
    story.say(f"  valid:     {timestamp(verified.not_before)} .. {timestamp(verified.expires_at)}")
    story.say(
        f"             {duration(window)}: while every link is valid (link 2 is the shortest)"
    )


def _amplify(
    story: Story,
    support: Node,
    verifier: ChainVerifier,
    feeds: Feeds,
    to_sub: bytes,
    verified: VerifiedCredential,
    now: int,
) -> None:
    helper = _id(support, "helper")
    story.say(f"the sub-agent starts a helper, {story.meet('helper', helper)}, and tries to")
    story.say("give it orders.access=write:")
    held = verified.attributes.values_of("orders.access")
    try:
        support.wallet.delegate(
            "sub-agent",
            to=helper,
            attributes=WRITE,
            now=now,
            ttl=60,
            purpose="amplify",
            credential_hash=verified.links[-1].hash,
        )
        story.say("  issued (this must never happen)")
    except CredentialError as exc:
        story.say(f"  its wallet refuses, link {exc.link}: {exc.reason.value}:")
        story.say(f"  the sub-agent holds orders.access={','.join(sorted(held))}, not write")
    forged = _hand_built_amplification(support, to_sub, helper, now)
    story.say("it signs such a link by hand, bypassing its wallet:")
    try:
        verifier.verify(forged, presenter=helper, feeds=feeds(), now=now)
        story.say("  a verifier accepts it (this must never happen)")
    except CredentialError as exc:
        story.say(f"  the verifier refuses it, link {exc.link}: {exc.reason.value}:")
        story.say(
            f"  it grants orders.access=write; link 2 holds orders.access={','.join(sorted(held))}"
        )


def _revoke(
    story: Story,
    customer: Node,
    support: Node,
    authority: Authority,
    verifier: ChainVerifier,
    feeds: Feeds,
    to_support: bytes,
    to_sub: bytes,
    now: int,
) -> None:
    link = CredentialChain.decode(to_sub).credentials[2]
    request = revoke_request(
        customer.identities,
        "customer",
        authority.identifier,
        credential_hash=link.hash,
        chain=to_sub,
        reason="order history sent",
        now=now,
    )
    seq = authority.revoke_link(request, now=now)
    story.say("the order history is sent: the customer revokes the sub-agent's link (an issuer")
    story.say(f"may revoke any link below its own); acme publishes it as entry {seq} of its")
    story.say("signed revocation feed, and the verifier, with that feed, finds:")
    for name, chain in (("sub-agent", to_sub), ("support-agent", to_support)):
        presenter = _id(support, name)
        try:
            verifier.verify(chain, presenter=presenter, feeds=feeds(), now=now)
            story.say(f"  {name}'s chain: still valid")
        except CredentialError as exc:
            story.say(f"  {name}'s chain: refused, link {exc.link}: {exc.reason.value}")


def _hand_built_amplification(node: Node, chain: bytes, to: Identifier, now: int) -> bytes:
    """What a malicious holder would build by hand: a link granting more than it holds."""
    signer = node.identities.signer("sub-agent", now=now)
    parent = CredentialChain.decode(chain)
    body = CredentialBody(
        id=os.urandom(16),
        subject=to,
        issuer=signer.identity.identifier,
        attributes=WRITE,
        created_at=now,
        not_before=now,
        expires_at=now + 60,
        depth=0,
        delegation=Delegation(parent.credentials[-1].hash, "amplify", ()),
    )
    encoded = body.encode()
    link = SignedCredential(encoded, signer.sign(encoded), signer.attestation)
    return parent.extended(link, signer.identity.history).encode()
