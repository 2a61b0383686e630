"""A verifier service: a node serves `orders.lookup` to callers whose credential carries
orders.access=read, and answers only for the customer that credential names.

acme (an authority on this machine) enrolls three nodes: the orders service, a support agent
allowed to read customer 4471's orders, and a billing agent without orders access. The
service listens on loopback TCP; the node's access decision point checks every caller's
credential before the handler runs, and the handler sees the credential that let it in.

    TROTH_HOME=$(mktemp -d) python examples/service.py
"""

from __future__ import annotations

import asyncio

import troth

ORDERS = {"4471": ["2026-09-01 headphones 59.00 EUR", "2026-09-14 cable 9.99 EUR"]}


def orders_service(acme: troth.Identifier) -> troth.Service:
    """The orders service, open to holders of orders.access=read granted by acme (the node
    trusts every authority it enrolls with: only acme's word counts on orders)."""
    orders = troth.Service("orders")
    reader = troth.RequireAttributes(troth.Attributes({"orders.access": "read"}), authority=acme)

    @orders.method("lookup", allow=reader)
    async def lookup(request: troth.Request) -> list[str]:
        """The orders of the customer asked for, if the caller's credential names them."""
        customer = str(request.arguments)
        allowed = request.attribute("orders.customer")
        if customer not in allowed:
            held = ", ".join(sorted(allowed)) or "none"
            raise troth.Denied(
                (f"orders refused customer {customer}: the credential names {held}",)
            )
        return ORDERS.get(customer, [])

    return orders


async def main() -> None:
    with (
        troth.Node.open("acme") as hub,
        troth.Node.open("orders") as service,
        troth.Node.open("support-agent") as support,
        troth.Node.open("billing-agent") as billing,
    ):
        acme = hub.create_authority()
        service.enroll(acme.ticket({"orders.service": "lookup"}))
        support.enroll(acme.ticket({"orders.access": "read", "orders.customer": "4471"}))
        billing.enroll(acme.ticket({"billing.access": "read"}))

        orders = orders_service(acme.identifier)
        async with service.serve(listen=("127.0.0.1", 0), services=[orders]) as running:
            print(f"orders service {running.identifier} at {running.address}")
            expect = running.identifier
            async with support.connect(running.address, expect=expect) as channel:
                answer = await channel.call("orders", "lookup", "4471")
                print(f"support-agent reads the orders of 4471: {answer}")
                try:
                    await channel.call("orders", "lookup", "9999")
                    raise SystemExit("another customer's orders were read (must never happen)")
                except troth.Denied as exc:
                    print(f"support-agent asks for 9999: denied by the handler: {exc.reasons[0]}")
            async with billing.connect(running.address, expect=expect) as channel:
                try:
                    await channel.call("orders", "lookup", "4471")
                    raise SystemExit("billing-agent read orders (this must never happen)")
                except troth.Denied as exc:
                    print(f"billing-agent asks: denied by the node: {'; '.join(exc.reasons)}")


if __name__ == "__main__":
    asyncio.run(main())
