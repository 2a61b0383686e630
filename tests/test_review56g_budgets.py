"""Review 56g, budgets 1: the hosted authority's enroll and refresh methods had no per-source
budget, only the node's concurrency caps. Anyone who can open a secure channel to the node
(an identity costs nothing) could send enroll requests with made-up ticket codes without end,
each one checked in full (a signature, the requester's history, a store read and a write),
and an enrolled member could refresh in a loop, each refresh a credential signed and a row
written.

Was a strict xfail until `/service/authority` charges each enroll and refresh request to its
source's budget (`troth.authority.budgets.RequestBudgets`: a member of the hosted authority,
its delegates with it, by the member at the root of its chains; anyone else by the network
its channel came from), refused past it (`AuthorityFailure.RATE_LIMITED`) before anything is
checked, other sources keeping their own budgets.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, ask_authority, run_memnet
from troth.authority.budgets import RequestBudgets
from troth.authority.client import enroll_request, refresh_request
from troth.authority.tickets import Ticket, new_code
from troth.errors import AuthorityError, AuthorityFailure, RemoteError
from troth.limits import ENROLL_REQUESTS_BURST, MAX_ENROLL_REQUEST_SOURCES

ATTEMPTS = 10_000
LIMITED = AuthorityFailure.RATE_LIMITED.value
NOW = 1_800_000_000


def test_a_flood_of_bogus_enrollments_from_one_source_is_refused_past_its_budget(
    tmp_path: Path,
) -> None:
    """mallory, a stranger, sends 10,000 enroll requests with a made-up ticket code: past its
    budget every one is refused as rate limited, unchecked; alice, from another host, still
    enrolls."""

    async def test(net: MemNet) -> None:
        mallory = await net.node("mallory")
        bogus = Ticket(new_code(), net.authority.history(), HUB)
        request = enroll_request(mallory.node.identities, "mallory", bogus, now=net.clock.now())
        for attempt in range(ATTEMPTS):
            with pytest.raises(RemoteError) as refused:
                await ask_authority(mallory, net, "enroll", request)
            if attempt >= ENROLL_REQUESTS_BURST:  # past the budget: refused unchecked
                assert LIMITED in str(refused.value), attempt
        alice = await net.member("alice")
        assert net.authority.member(net.identifier(alice)).identifier == net.identifier(alice)

    run_memnet(test, tmp_path / "home", budget=240)


def test_a_members_refresh_loop_is_refused_past_its_budget(tmp_path: Path) -> None:
    """m, a member, refreshes in a loop: past its budget it is refused; n still refreshes."""

    async def test(net: MemNet) -> None:
        m = await net.member("m")
        n = await net.member("n")
        authority = net.authority.identifier
        refused: RemoteError | None = None
        answered = 0
        for _ in range(ENROLL_REQUESTS_BURST + 8):
            request = refresh_request(m.node.identities, "m", authority, now=net.clock.now())
            try:
                await ask_authority(m, net, "refresh", request)
                answered += 1
            except RemoteError as exc:
                refused = exc
                break
        assert refused is not None, "a member refreshed without end"
        assert LIMITED in str(refused)
        assert answered >= ENROLL_REQUESTS_BURST - 2  # its enrollment took one of its budget
        request = refresh_request(n.node.identities, "n", authority, now=net.clock.now())
        await ask_authority(n, net, "refresh", request)

    run_memnet(test, tmp_path / "home", budget=120)


def test_the_sources_kept_are_bounded_and_a_new_one_is_never_refused() -> None:
    """More sources than MAX_ENROLL_REQUEST_SOURCES, each its budget spent: the table keeps at
    most the bound (the oldest forgotten), and a new source still has its whole burst."""
    budgets = RequestBudgets()
    for source in range(MAX_ENROLL_REQUEST_SOURCES + 8):
        for _ in range(ENROLL_REQUESTS_BURST):
            budgets.charge(source, member=False, now=NOW)
        with pytest.raises(AuthorityError) as refused:
            budgets.charge(source, member=False, now=NOW)
        assert refused.value.reason is AuthorityFailure.RATE_LIMITED
    assert len(budgets._others) == MAX_ENROLL_REQUEST_SOURCES
    for _ in range(ENROLL_REQUESTS_BURST):
        budgets.charge("newcomer", member=False, now=NOW)
    budgets.charge("a member", member=True, now=NOW)  # members are counted apart
