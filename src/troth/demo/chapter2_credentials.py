"""Chapter 2: credentials. An authority enrolls a thousand agents with one-time tickets; a
customer delegates a narrow, time-boxed part of its authority to a support agent, which
narrows it again for a sub-agent; amplification is refused; revoking the middle link kills
the sub-agent's chain but not its sibling's."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from troth.authority.client import enroll_request, revoke_request
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

ORDERS_ALL = Attributes(
    {"orders.access": frozenset({"read", "write", "refund"}), "orders.customer": "4471"}
)
ORDERS_READ = Attributes({"orders.access": "read", "orders.customer": "4471"})


def _show(story: Story, verified: VerifiedCredential) -> None:
    story.say(f"  actor:     {verified.actor}")
    for link in verified.links:
        label = "issued by authority" if link.index == 0 else f"delegated ({link.purpose})"
        issuer, subject = str(link.issuer)[:17], str(link.subject)[:17]
        story.say(f"  link {link.index}:    {issuer}... -> {subject}...  {label}")
    story.say(f"  may:       {json.dumps(verified.attributes.to_json())}")
    for caveat in verified.caveats:
        story.say(f"  only if:   {caveat}")
    story.say(f"  window:    {verified.expires_at - verified.not_before} s")


def run(story: Story, home: Path, clock: Clock) -> None:
    story.chapter(2, "Credentials: attributes, delegation that only narrows, real revocation")
    now = clock.now()
    init_node("acme", home=home)
    init_node("agents", home=home)
    with open_node("acme", home=home) as acme, open_node("agents", home=home) as agents:
        authority = acme.create_authority("acme", now=now)
        story.say(f"authority acme: {authority.identifier}")

        count = 1000
        agents.identities.create_many(count, now=now, name_prefix="agent")
        start = time.perf_counter()
        for number in range(count):
            ticket = authority.create_ticket(
                creator=authority.identifier,
                attributes=Attributes({"support.queue": "orders"}),
                address="node:acme",
                now=now,
            )
            request = enroll_request(agents.identities, f"agent-{number}", ticket, now=now)
            agents.wallet.hold(
                f"agent-{number}", authority.enroll(request, now=now).encode(), now=now
            )
        elapsed = time.perf_counter() - start
        story.say(
            f"enrolled {count:,} agents with one-time tickets in {elapsed:.2f} s "
            f"({count / elapsed:,.0f}/s); each holds a 1 h member credential"
        )
        story.say("  (ticket codes are 256-bit, stored by the authority only as SHA-256 hashes)")

        agents.identities.create(now=now, name="customer-4471")
        support = agents.identities.get("agent-1", now=now)
        sub = agents.identities.get("agent-2", now=now)
        billing = agents.identities.get("agent-3", now=now)
        ticket = authority.create_ticket(
            creator=authority.identifier, attributes=ORDERS_ALL, address="node:acme", now=now
        )
        chain = authority.enroll(
            enroll_request(agents.identities, "customer-4471", ticket, now=now), now=now
        )
        agents.wallet.hold("customer-4471", chain.encode(), now=now)
        story.say(f"customer 4471 holds {json.dumps(ORDERS_ALL.to_json())}")

        to_support = agents.wallet.delegate(
            "customer-4471",
            to=support.identifier,
            attributes=ORDERS_READ,
            now=now,
            ttl=3600,
            purpose="resolve complaint 123",
            caveats=['context.complaint == "123"'],
        )
        agents.wallet.hold("agent-1", to_support, now=now)
        to_sub = agents.wallet.delegate(
            "agent-1",
            to=sub.identifier,
            attributes=Attributes({"orders.access": "read", "orders.customer": "4471"}),
            now=now,
            ttl=600,
            purpose="look up order history",
            caveats=['resource.kind == "order-history"'],
        )
        sibling = agents.wallet.delegate(
            "customer-4471",
            to=billing.identifier,
            attributes=Attributes({"orders.customer": "4471"}),
            now=now,
            ttl=600,
            purpose="check the invoice",
        )

        verifier = ChainVerifier(TrustPolicy(frozenset({authority.identifier})))

        def feeds() -> dict[Identifier, VerifiedFeed]:
            feed = verify_feed(
                authority.feed(now=now), authority=authority.identifier, now=now, max_staleness=300
            )
            return {authority.identifier: feed}

        story.say("the verifier (trusting only acme, with acme's signed revocation feed) sees:")
        verified = verifier.verify(to_sub, presenter=sub.identifier, feeds=feeds(), now=now)
        _show(story, verified)

        agents.wallet.hold("agent-2", to_sub, now=now)
        story.say("the sub-agent tries to pass on write access from the chain it received:")
        try:
            agents.wallet.delegate(
                "agent-2",
                to=billing.identifier,
                attributes=Attributes({"orders.access": "write", "orders.customer": "4471"}),
                now=now,
                ttl=60,
                purpose="amplify",
                credential_hash=verified.links[-1].hash,
            )
        except CredentialError as exc:
            story.say(f"  refused when issuing: {exc}")
        forged = _hand_built_amplification(agents, to_sub, billing.identifier, now)
        try:
            verifier.verify(forged, presenter=billing.identifier, feeds=feeds(), now=now)
            story.say("  a hand-built chain was accepted (this must never happen)")
        except CredentialError as exc:
            story.say(f"  a hand-built chain is refused by the verifier: {exc}")

        middle = CredentialChain.decode(to_sub).credentials[1]
        request = revoke_request(
            agents.identities,
            "customer-4471",
            authority.identifier,
            credential_hash=middle.hash,
            chain=to_sub,
            reason="complaint resolved",
            now=now,
        )
        seq = authority.revoke_link(request, now=now)
        story.say(f"the customer revokes its delegation to the support agent (feed entry {seq})")
        for name, data, who in (
            ("sub-agent", to_sub, sub),
            ("sibling (billing)", sibling, billing),
        ):
            try:
                verifier.verify(data, presenter=who.identifier, feeds=feeds(), now=now)
                story.say(f"  {name}: still valid")
            except CredentialError as exc:
                story.say(f"  {name}: {exc}")


def _hand_built_amplification(node: Node, chain: bytes, to: Identifier, now: int) -> bytes:
    """What a malicious holder would build by hand: a link granting more than it holds."""
    signer = node.identities.signer("agent-2", now=now)
    parent = CredentialChain.decode(chain)
    body = CredentialBody(
        id=os.urandom(16),
        subject=to,
        issuer=signer.identity.identifier,
        attributes=Attributes({"orders.access": "write", "orders.customer": "4471"}),
        created_at=now,
        not_before=now,
        expires_at=now + 60,
        depth=0,
        delegation=Delegation(parent.credentials[-1].hash, "amplify", ()),
    )
    encoded = body.encode()
    link = SignedCredential(encoded, signer.sign(encoded), signer.attestation)
    return parent.extended(link, signer.identity.history).encode()
