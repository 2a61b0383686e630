"""Review 40b, resume: attacks on review 39a's resumption of interrupted enrollments
(`troth.node.membership.Resumption`, `resume_enrollments`): the clock stepped back under it,
and the local path (one identity's records on this machine resumed together).
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

import pytest

from tests.support.nodes import MemNet, run_memnet
from tests.test_review39a_resume import NOWHERE, _count_channels, _pending, _ticket
from troth.enrollment import enrollment, request_of
from troth.node import init_node, open_node
from troth.node.membership import (
    RESUME_AFTER,
    RESUME_BACKOFF,
    RESUME_BACKOFF_MAX,
    RESUMED_PER_ROUND,
)
from troth.node.runtime import MAINTENANCE_SECONDS

DAY = 24 * 3600
WEEK = 7 * DAY


def test_a_backed_off_record_is_tried_again_after_the_clock_is_set_back(tmp_path: Path) -> None:
    """Review 40b, resume 1. A record failed while the node's clock ran a day ahead: its
    next attempt was set for a minute later by that clock (`_Wait.next_at`). The operator set
    the clock right (a day back): the record waited for the clock to catch up, a day with no
    attempt (until a restart), though its wait was a minute.

    Was a strict xfail until `Resumption.due` took a wait ending further ahead than its own
    length (the clock went back since) as over.
    """

    async def test(net: MemNet) -> None:
        agent = await net.node("agent")
        net.clock.advance(DAY)  # the clock runs a day ahead
        _pending(agent, "agent", _ticket(net.authority, NOWHERE, net.clock.now()), net.clock)
        opened = _count_channels(agent, NOWHERE)
        net.clock.advance(RESUME_AFTER)
        await agent.resume_enrollments()
        assert len(opened) == 1  # failed: backed off a minute
        net.clock.advance(-DAY)  # set right
        for _ in range(4):
            net.clock.advance(RESUME_BACKOFF_MAX)
            await agent.resume_enrollments()
        assert len(opened) >= 2  # tried again within hours, not a day

    run_memnet(test, tmp_path)


def test_a_record_started_while_the_clock_ran_ahead_is_resumed(tmp_path: Path) -> None:
    """Review 40b, resume 2. The node's own enrollment started while its clock ran a day
    ahead (its record's `started_at` a day in the future once the clock was set right); the
    node was killed, its answer lost. Restarted with the clock right, the maintenance took
    the record for one a `troth enroll` still carried (younger than RESUME_AFTER) for a
    whole day: the node held no credential all that time.

    Was a strict xfail until a record dated in the future was resumed RESUME_AFTER after the
    maintenance first saw it (`Resumption.due`).
    """

    async def test(net: MemNet) -> None:
        agent = await net.node("agent")
        node = agent.node
        net.clock.advance(DAY)
        steps = enrollment(node.identities, node.wallet, "agent", net.ticket(), clock=net.clock)
        net.authority.enroll(request_of(steps), now=net.clock.now())  # answer lost
        steps.close()
        net.clock.advance(-DAY)  # set right
        for _ in range(6):
            net.clock.advance(MAINTENANCE_SECONDS)
            await agent.resume_enrollments()
        (held,) = node.wallet.held("agent")
        assert held.authority == net.authority.identifier.digest
        assert node.wallet.pending_enrollments("agent") == []

    run_memnet(test, tmp_path)


def test_a_given_up_local_record_is_not_resumed_with_its_identitys_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Review 40b, resume 3. Two of one identity's enrollments name authorities on this
    machine (`node:NAME`). The first's node is gone: its attempts failed for a week and the
    maintenance gave it up. The second, newer, fails too (its node not there yet). Each time
    the second was due, the node resumed every local record of the identity
    (`resume_locally`), the given-up and backed-off first one included, unrecorded: the
    first was attempted again with the second, its wait and its giving up ignored.

    Was a strict xfail until the local path resumed only the records chosen this round
    (`resume_locally(only=)`).
    """

    elsewhere = tmp_path / "elsewhere"  # another machine's nodes: no node here hosts them
    tickets = []
    opened = contextlib.ExitStack()  # the authorities issue tickets while their nodes are open
    for name in ("far", "farther"):
        init_node(name, home=elsewhere)
        node = opened.enter_context(open_node(name, home=elsewhere))
        authority = node.create_authority(name, now=int(time.time()) - 60)
        tickets.append((str(authority.identifier), authority))

    async def test(net: MemNet) -> None:
        agent = await net.node("agent")
        (first, far), (second, farther) = tickets
        _pending(agent, "agent", _ticket(far, "node:gone", net.clock.now()), net.clock)
        net.clock.advance(RESUME_AFTER)
        caplog.set_level(logging.WARNING, logger="troth.node")
        first_failed = net.clock.now()
        while net.clock.now() <= first_failed + WEEK + RESUME_BACKOFF_MAX:
            await agent.resume_enrollments()
            net.clock.advance(RESUME_BACKOFF_MAX)
        tried = sum(first in r.getMessage() for r in caplog.records)
        assert tried > 0
        _pending(agent, "agent", _ticket(farther, "node:later", net.clock.now()), net.clock)
        for _ in range(10):
            net.clock.advance(RESUME_BACKOFF)
            await agent.resume_enrollments()
        assert sum(second in r.getMessage() for r in caplog.records) > 0
        assert sum(first in r.getMessage() for r in caplog.records) == tried  # given up

    with opened:
        run_memnet(test, tmp_path)


def test_records_at_one_dead_address_cost_one_attempt_a_round(tmp_path: Path) -> None:
    """Review 40b, resume 4. Sixteen agents enrolled at once with one authority; its node
    went dark (a firewall dropping packets) before their answers came: sixteen pending
    records naming one address. Review 39a sent them "at once", but a channel to one route is
    opened under that route's lock (`NodeRuntime.channel_to`): each record waited for the one
    before it to fail, and each failed only after its own connect or handshake timeout (5 s,
    10 s): up to 160 s, at each step of their (shared) backoff, and resuming is the last step
    of a round, so the next round's re-checks of peers waited as long. Here the address
    refuses at once: each round that they are due, sixteen attempts at the one address.

    Was a strict xfail until the records naming one address were tried through the first: not
    reached, the others wait as it does, uncontacted (`_resume_at`).
    """

    async def test(net: MemNet) -> None:
        agent = await net.node("agent")
        for i in range(RESUMED_PER_ROUND):
            ticket = _ticket(net.authority, NOWHERE, net.clock.now())
            _pending(agent, f"agent{i}", ticket, net.clock)
        opened = _count_channels(agent, NOWHERE)
        net.clock.advance(RESUME_AFTER)
        await agent.resume_enrollments()
        assert len(opened) == 1  # the address not reached: the others not tried this round
        for _ in range(4):
            net.clock.advance(RESUME_BACKOFF_MAX)
            await agent.resume_enrollments()
        assert len(opened) == 5
        assert len(agent.node.wallet.interrupted_enrollments(64)) == RESUMED_PER_ROUND

    run_memnet(test, tmp_path)
