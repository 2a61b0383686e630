"""A signed policy bundle decides an agent's tool calls; the broker lends it a scoped secret.

acme, an authority on this machine, signs the shop's Cedar policies into a bundle: a support
agent may refund up to 1000, and may lease a `payments` token for refunds. The agents' node
installs the bundle and decides calls under it: a small refund is allowed, a large one
forbidden by the cap, an undeclared tool denied, and a copy of the bundle with the cap raised
refused as tampered. acme's hub, a broker, lends the agent a short-lived token; a wider
scope is denied, and once acme's operator revokes the agent's leases its lease is dead.

    TROTH_HOME=$(mktemp -d) python examples/gates.py
"""

from __future__ import annotations

import asyncio

import troth

SHOP = """\
@id("refund") permit(principal, action == Action::"invoke:refund", resource)
  when { principal.hasTag("orders.access") && principal.getTag("orders.access").contains("write") };
@id("refund-cap") forbid(principal, action == Action::"invoke:refund", resource)
  unless { context.args.amount <= 1000 };
@id("support-refunds") permit(principal, action == Action::"lease", resource == Secret::"payments")
  when { principal.hasTag("orders.access") && ["refunds"].containsAll(context.scope)
         && context.ttl <= 300 };
"""
PAYMENTS = {"scopes": ["refunds", "charges"], "ttl": 120, "max_ttl": 600, "audience": "payments"}


def refund(order_id: str, amount: int) -> str:
    """Refund part of an order."""
    return f"refunded {amount} on {order_id}"


def lookup_order(order_id: str) -> str:
    """Look up an order."""
    return f"order {order_id}: 2 items, paid"


def gates(hub: troth.Node, agents: troth.Node) -> None:
    """The bundle signed, installed, and deciding."""
    tools = {"refund": refund, "lookup_order": lookup_order}
    bundle = hub.policies.sign(policies=SHOP, tools=tools, revision=1)
    hub.policies.install(bundle)
    held = agents.policies.install(bundle)
    print(f"agents hold revision {held.revision}: policies {', '.join(held.policies)}")
    for tool, arguments in (
        ("refund", {"order_id": "4471", "amount": 20}),
        ("refund", {"order_id": "4471", "amount": 5000}),
        ("drop_database", {}),
    ):
        decision = agents.policies.decide("support-agent", tool, arguments)
        print(f"{tool} {arguments}: {decision.reason}")
        if tool == "drop_database" and decision.allowed:
            raise SystemExit("an undeclared tool allowed (this must never happen)")
    try:
        agents.policies.install(bundle.replace(b"amount <= 1000", b"amount <= 9999"))
    except troth.PolicyError as exc:
        print(f"the bundle with the cap raised is refused: {exc.reason.value}")
    else:
        raise SystemExit("a tampered bundle installed (this must never happen)")


async def leases(hub: troth.Node, agents: troth.Node) -> None:
    """A token leased, a wider scope denied, the holder's leases revoked."""
    hub.secrets.put("payments", engine="token", config=PAYMENTS)
    async with hub.serve(listen=("127.0.0.1", 0)) as running:
        at, expect = running.address, running.identifier
        issued = await agents.secrets.lease(
            "payments", holder="support-agent", broker=at, expect=expect, scope=["refunds"]
        )
        print(f"leased payments {list(issued.lease.scope)}: {issued.credential}")
        try:
            await agents.secrets.lease(
                "payments", holder="support-agent", broker=at, expect=expect, scope=["charges"]
            )
        except troth.SecretError as exc:
            print(f"a lease for charges is refused: {exc.reason.value}")
        hub.secrets.revoke_holder(agents.identities.get("support-agent"))
        try:
            await agents.secrets.renew(
                issued.lease_id.text(), holder="support-agent", broker=at, expect=expect
            )
        except troth.SecretError as exc:
            print(f"after the operator revoked its leases, renewing is refused: {exc.reason.value}")
        else:
            raise SystemExit("a revoked lease renewed (this must never happen)")


def main() -> None:
    with troth.Node.open("acme") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        agents.identities.create("support-agent")
        agents.enroll(acme.ticket({"orders.access": ["read", "write"]}), identity="support-agent")
        gates(hub, agents)
        asyncio.run(leases(hub, agents))


if __name__ == "__main__":
    main()
