"""Review 56g: attacks tried on the authority's enrollment that did not work (each test fails
if its defence breaks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.enroll import acme_and_agent, acme_ticket, enroll_in_process
from tests.support.nodes import HUB, MemNet, ask_authority, run_memnet
from troth.authority.client import enroll_request
from troth.authority.tickets import Ticket, code_hash, new_code
from troth.clock import FixedClock
from troth.errors import AuthorityError, AuthorityFailure, RemoteError
from troth.limits import ENROLL_REQUESTS_BURST, REDEMPTION_GRACE_SECONDS

NOW = 1_800_000_000
TTL = 3600


def test_a_ticket_whose_redemption_was_pruned_redeems_nothing_again(tmp_path: Path) -> None:
    """Redemptions 2's pruning against replay: agent redeems one use of a two-use ticket and
    repeats it within the window (answered with the credential recorded, no second use); past
    the expiry and the grace its redemption is deleted. Its repeat then, and at a clock set
    back into the ticket's window, is `ticket unknown` (the ticket went at its expiry, before
    its redemption could): no use, no member, no credential for anyone."""
    clock = FixedClock(NOW)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, member, _):
        ticket = acme_ticket(authority, NOW, uses=2, ttl=TTL)
        first = enroll_in_process(agent, "agent", authority, ticket, clock)
        again = enroll_in_process(agent, "agent", authority, ticket, clock)
        assert again.credential.links[-1].hash == first.credential.links[-1].hash
        authority.forget_expired_tickets(now=NOW + TTL + REDEMPTION_GRACE_SECONDS)
        assert not authority.store.redeemed(code_hash(ticket.code), member.digest)
        agent.identities.create(now=NOW, name="other")
        for when in (NOW + TTL + REDEMPTION_GRACE_SECONDS, NOW + 60):
            for ref in ("agent", "other"):
                with pytest.raises(AuthorityError) as refused:
                    enroll_in_process(agent, ref, authority, ticket, FixedClock(when))
                assert refused.value.reason is AuthorityFailure.TICKET_UNKNOWN
        assert [m.identifier for m in authority.members()] == [member]


def test_fresh_identities_on_one_network_share_its_enroll_budget(tmp_path: Path) -> None:
    """Budgets 1 against identities minted for free: mallory spends its source's budget of
    enroll requests from 10.9.9.1, then sends from a fresh identity on 10.9.9.2 (the same
    /24): refused at once, as rate limited. alice, on another /24, still enrolls."""

    async def test(net: MemNet) -> None:
        bogus = Ticket(new_code(), net.authority.history(), HUB)
        first = await net.node("mallory", listen=("10.9.9.1", 0))
        second = await net.node("mallory-2", listen=("10.9.9.2", 0))
        for node in (first, second):
            request = enroll_request(node.node.identities, node.name, bogus, now=net.clock.now())
            for _ in range(ENROLL_REQUESTS_BURST if node is first else 1):
                with pytest.raises(RemoteError) as refused:
                    await ask_authority(node, net, "enroll", request)
            assert (AuthorityFailure.RATE_LIMITED.value in str(refused.value)) is (node is second)
        alice = await net.node("alice", listen=("10.9.10.1", 0))
        await alice.enroll(net.ticket(), "alice")

    run_memnet(test, tmp_path / "home", budget=60)
