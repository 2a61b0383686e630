"""Review 49d: attacks on the gates that failed (the code was right), kept as tests."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp_types import CallToolResult, ListToolsResult, TextContent

from tests.support.gates import POLICIES, T, lookup_order, make_world, refund
from tests.support.parties import hand_link
from troth.clock import FixedClock
from troth.credentials import Attributes, CredentialChain, RevocationKind, delegate
from troth.errors import CredentialError, PolicyError
from troth.gates import Outcome, Tool, ToolGate, check_caveat
from troth.integrations.mcp.gate import McpGate


def test_a_delegation_back_to_an_earlier_subject_is_refused() -> None:
    """support -> sub -> support again would give Cedar two `Agent` entities of one uid (the
    member's, with write access, and the delegate's, read only): the chain is refused when it
    is verified, so no decision sees it."""
    world = make_world()
    chain = CredentialChain.decode(world.sub_chain)
    read = Attributes({"orders.access": "read"})
    with pytest.raises(CredentialError, match="cycle"):  # refused when made (review 54q)
        delegate(
            world.sub.signer,
            chain,
            subject=world.support.identifier,
            attributes=read,
            now=T,
            ttl=86_400,
            purpose="loop",
        )
    back = hand_link(world.sub, chain, world.support.identifier, read, now=T, expires_at=T + 600)
    with pytest.raises(CredentialError, match="cycle"):  # and made by hand, when verified
        world.credential(back.encode(), world.support)


@pytest.mark.parametrize(
    "condition",
    ["!" * 1000 + "true", "-" * 1000 + "1 == 1", "!-" * 400 + "1 == 1", "ip(" * 100 + '"1"'],
)
def test_caveats_of_long_unary_chains_are_refused_in_process(condition: str) -> None:
    """Cedar's parser recurses per unary operator too: a caveat of ~1,000 of them is refused
    (typed) and the process lives on."""
    with pytest.raises(PolicyError):
        check_caveat(condition)


def test_caveats_cannot_displace_a_bundle_forbid() -> None:
    """Caveats are added to the bundle's policy set with Cedar renumbering their positional
    ids: a delegate with write access under three caveats that always hold is still held to
    the bundle's `refund-cap` forbid (no caveat replaces a bundle policy of its positional id)."""
    world = make_world()
    chain = delegate(
        world.support.signer,
        CredentialChain.decode(world.support_chain),
        subject=world.sub.identifier,
        attributes=Attributes({"orders.access": frozenset({"read", "write"})}),
        now=T,
        ttl=86_400,
        purpose="refunds",
        caveats=("true", "1 == 1", 'context has now || "a" == "a"'),
    )
    sub = world.credential(chain.encode(), world.sub)
    gate = ToolGate(
        world.point(world.store(world.bundle())),
        [Tool.from_function(refund), Tool.from_function(lookup_order)],
        clock=FixedClock(T + 10),
    )
    assert gate.invoke(sub, "refund", {"order_id": "o1", "amount": 50}).allowed
    denied = gate.invoke(sub, "refund", {"order_id": "o1", "amount": 5000})
    assert denied.decision.outcome is Outcome.FORBIDDEN
    assert denied.decision.policies == ("refund-cap",)


def test_an_mcp_listing_is_not_kept_across_a_revocation_or_a_bundle_change() -> None:
    """The MCP gate keeps the upstream's listing, never a caller's view of it: a tools/list
    after the caller's identity is revoked lists nothing, and one after a bundle of a higher
    revision that forbids a tool no longer lists it."""
    world = make_world()
    store = world.store(world.bundle())
    gate = McpGate(world.point(store), _Orders(), clock=FixedClock(T + 20))
    caller = world.credential(world.support_chain, world.support)

    async def names() -> list[str]:
        return [tool.name for tool in (await gate.list_tools(caller)).tools]

    assert anyio.run(names) == ["lookup_order", "refund"]
    stricter = world.bundle(
        revision=2,
        policies=POLICIES + '@id("no-refunds") forbid(principal, action, resource is Tool)\n'
        '  when { action == Action::"invoke:refund" };\n',
        now=T + 10,
    )
    store.accept(stricter, feeds=world.feeds(), now=T + 15)
    assert anyio.run(names) == ["lookup_order"]
    world.revoke(RevocationKind.IDENTITY, world.support.identifier.digest, now=T + 15)
    assert anyio.run(names) == []


class _Orders:
    """An MCP upstream listing the orders tools."""

    async def list_tools(self, *, cursor: str | None = None) -> ListToolsResult:
        tools = [Tool.from_function(f).to_json() for f in (lookup_order, refund)]
        return ListToolsResult.model_validate({"tools": tools})

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> CallToolResult:
        return CallToolResult(content=[TextContent(type="text", text="ran")])
