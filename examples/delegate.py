"""An agent delegates part of what it holds to a sub-agent; a verifier checks the chain.

acme, an authority on this machine, enrolls a customer with a one-time ticket. The customer
delegates read access to a support agent for one complaint (a caveat), and the support agent
narrows it again for a sub-agent. A verifier that trusts only acme accepts the sub-agent's
chain for complaint 123 (the caveat evaluated against the context the verifier passes),
refuses it for another complaint or with no context, refuses it from anyone else, refuses a
wider grant, and refuses the chain once the customer revokes its delegation.

    TROTH_HOME=$(mktemp -d) python examples/delegate.py
"""

from __future__ import annotations

from collections.abc import Callable

import troth


def refused(what: str, attempt: Callable[[], object]) -> None:
    """Show that `attempt` is refused with a CredentialError, and why."""
    try:
        attempt()
    except troth.CredentialError as exc:
        print(f"refused ({what}): {exc.reason.value}")
        return
    raise SystemExit(f"{what}: accepted (this must never happen)")


def main() -> None:
    with troth.Node.open("acme") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        print(f"authority acme: {acme.identifier} (hosted by node acme)")

        customer = agents.identities.create("customer")
        support = agents.identities.create("support-agent")
        sub = agents.identities.create("sub-agent")
        helper = agents.identities.create("helper")  # to whom the sub-agent would pass on write
        ticket = acme.ticket({"orders.customer": "4471", "orders.access": ["read", "write"]})
        member = agents.enroll(ticket, identity="customer")
        lasts = member.expires_at - member.not_before
        print(f"customer enrolled: {member.attributes.to_json()} for {lasts} s")

        to_support = agents.delegate(
            customer,
            to=support,
            attributes={"orders.customer": "4471", "orders.access": "read"},
            ttl=1800,
            purpose="resolve complaint 123",
            caveats=['context.complaint == "123"'],
        )
        agents.hold(support, to_support)
        to_sub = agents.delegate(
            support,
            to=sub,
            attributes={"orders.customer": "4471", "orders.access": "read"},
            ttl=600,
            purpose="look up order history",
        )

        verifier = troth.Verifier(trust=[acme.identifier], feeds=acme)
        complaint = {"complaint": "123"}  # what the sub-agent asks about: its caveats' context
        verified = verifier.verify(to_sub, presenter=sub, context=complaint)
        names = {i.identifier: i.name for i in agents.identities.all()}
        names[acme.identifier] = "acme"
        print(f"verified: {names[verified.actor]} may {verified.attributes.to_json()}")
        print(f"  checked: {' and '.join(verified.caveats)}")
        for link in verified.links:
            what = link.purpose or "member credential"
            print(f"  link {link.index}: {names[link.issuer]} -> {names[link.subject]} ({what})")

        refused(
            "for another complaint",
            lambda: verifier.verify(to_sub, presenter=sub, context={"complaint": "124"}),
        )
        refused("its caveat left unevaluated", lambda: verifier.verify(to_sub, presenter=sub))

        agents.hold(sub, to_sub)
        refused(
            "the support agent presents it",
            lambda: verifier.verify(to_sub, presenter=support, context=complaint),
        )
        refused(
            "the sub-agent passes on write",
            lambda: agents.delegate(
                sub, to=helper, attributes={"orders.access": "write"}, ttl=60, purpose="more"
            ),
        )

        agents.revoke(to_support, by=customer, reason="complaint resolved")
        print("the customer revokes its delegation to the support agent")
        refused(
            "the sub-agent presents it again",
            lambda: verifier.verify(to_sub, presenter=sub, context=complaint),
        )


if __name__ == "__main__":
    main()
