"""Review 35d, access: whose attributes a service's rule and its handler's `Request` rely on."""

from __future__ import annotations

import asyncio

import pytest

import troth

SUPPORT = troth.Attributes({"agents.team": "support"})
LOOPBACK = ("127.0.0.1", 0)


def test_a_rule_pinned_to_an_authority_refuses_the_same_attributes_from_another() -> None:
    """Access 1: a node trusts every authority it enrolls with (to use another party's
    services, say), and `RequireAttributes` was met by a credential from any of them: the
    other party's authority grants `agents.team: support` to whomever it likes, and they pass
    the desk's rule, its handler reading the same attribute from a credential it never meant
    to honour. A rule names the authority whose attributes it requires (`authority=`):
    another's credential is refused with a reason naming both. Was a strict xfail until
    `RequireAttributes` took `authority=`."""
    seen: list[troth.Request] = []

    async def test() -> None:
        with (
            troth.Node.open("acme") as acme_hub,
            troth.Node.open("globex") as globex_hub,
            troth.Node.open("desk") as desk_node,
            troth.Node.open("member") as member,
            troth.Node.open("outsider") as outsider,
        ):
            acme = acme_hub.create_authority()
            globex = globex_hub.create_authority()
            desk_node.enroll(acme.ticket({"agents.team": "desk"}))
            desk_node.enroll(globex.ticket({"globex.customer": "desk"}))  # a client of globex
            member.enroll(acme.ticket(SUPPORT))
            outsider.enroll(globex.ticket(SUPPORT))  # globex's to give, as far as globex knows
            pinned = troth.Service("pinned")

            @pinned.method("ask", allow=troth.RequireAttributes(SUPPORT, authority=acme.identifier))
            async def ask(request: troth.Request) -> str:
                seen.append(request)
                return f"heard {sorted(request.attribute('agents.team'))}"

            async with desk_node.serve(listen=LOOPBACK, services=[pinned]) as running:
                at = running.address
                async with member.connect(at, expect=running.identifier) as channel:
                    assert await channel.call("pinned", "ask") == "heard ['support']"
                async with outsider.connect(at, expect=running.identifier) as channel:
                    with pytest.raises(troth.Denied) as denied:
                        await channel.call("pinned", "ask")
                (reason,) = denied.value.reasons
                assert "no credential from " + str(acme.identifier) in reason
                assert str(globex.identifier) in reason
            (request,) = seen
            assert request.credential is not None
            assert request.credential.authority == acme.identifier

    asyncio.run(asyncio.wait_for(test(), 60))


def test_members_only_pinned_to_an_authority_refuses_another_authoritys_members() -> None:
    """Access 2: as access 1, for `MembersOnly`: a member of any authority the node enrolled
    with, and that authority's own identity, passed it. `MembersOnly(authority=...)` admits
    that authority's members (and it) only. Was a strict xfail until `MembersOnly` took
    `authority=`."""

    async def test() -> None:
        with (
            troth.Node.open("acme") as acme_hub,
            troth.Node.open("globex") as globex_hub,
            troth.Node.open("desk") as desk_node,
            troth.Node.open("member") as member,
            troth.Node.open("outsider") as outsider,
        ):
            acme = acme_hub.create_authority()
            globex = globex_hub.create_authority()
            desk_node.enroll(acme.ticket({"agents.team": "desk"}))
            desk_node.enroll(globex.ticket({"globex.customer": "desk"}))
            member.enroll(acme.ticket(SUPPORT))
            outsider.enroll(globex.ticket(SUPPORT))
            pinned = troth.Service("pinned")

            @pinned.method("ask", allow=troth.MembersOnly(authority=acme.identifier))
            async def ask(request: troth.Request) -> str:
                return "heard"

            async with (
                desk_node.serve(listen=LOOPBACK, services=[pinned]) as running,
                globex_hub.serve() as globex_running,
            ):
                at = running.address
                async with member.connect(at, expect=running.identifier) as channel:
                    assert await channel.call("pinned", "ask") == "heard"
                callers: tuple[troth.Node | troth.RunningNode, ...] = (outsider, globex_running)
                for caller in callers:
                    async with caller.connect(at, expect=running.identifier) as channel:
                        with pytest.raises(troth.Denied) as denied:
                            await channel.call("pinned", "ask")
                    (reason,) = denied.value.reasons
                    assert "no credential from " + str(acme.identifier) in reason

    asyncio.run(asyncio.wait_for(test(), 60))
