"""Review 67y, remote: 67i's `--over-copy` on the network path (a ticket whose authority is
reached over a secure channel, through a running node: `troth enroll` sends `over_copy` over
the control socket to `NodeRuntime.enroll`, troth.node.membership).

1. Desk holds globex's made-up copy of the hub's authority (after a gap, unlinked, globex's
   feed held) and enrolls with the hub's real ticket (its address a route). Without the flag:
   COPY_CONFLICT (right). With the flag, the ticket passed `check_ticket`, a pending record was
   stored, and the channel to the hub refused it ("peer invalid (history is older than the
   stored copy ...)": the channel judges the authority against the same unlinked copy, never
   overridden), so the operator's informed flag did nothing over the network, the refusal did
   not say why, the message had just told them to enroll again with --over-copy, and the
   pending record stayed, resumed in vain each round for RESUME_FOR. Admitting the authority
   at that channel over the copy is review 31a, enrollment 3 (left: a channel admitted over a
   copy is reused by every caller of that route, and its peer's history would be observed
   before the authority answers: a channel-layer change, not small). Fixed by saying so: with
   the flag on the network path a conflicting copy is refused as COPY_CONFLICT before anything
   is recorded, the message saying the flag works when the authority is on this machine
   (`enrollment.over_copy_remote`); the COPY_CONFLICT message says so too, and the docs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.enroll import ticket_pin
from tests.support.nodes import MemNet, run_memnet
from tests.test_review23a_checkpoints import forged_change
from tests.test_trust_scope import NOW, make_two
from troth.errors import IdentityError, IdentityFailure
from troth.node.runtime import NodeRuntime
from troth.storage import SqliteVoucherStore


def _plant_globex_copy(desk: NodeRuntime, hub: object) -> None:
    two = make_two()
    forged = forged_change(two, hub, 5, os.urandom(32))  # type: ignore[arg-type]
    wallet = desk.node.wallet
    wallet.trust(two.globex.identifier, f"node:{two.globex.identifier}", now=NOW)
    wallet.update_feed(forged.page, authority=two.globex.identifier, now=NOW)
    checkpoints = wallet.checkpoints(now=NOW, max_staleness=10**6)
    desk.node.identities.import_history(forged.identity.history, now=NOW, checkpoints=checkpoints)


def test_over_copy_over_the_network_says_it_cannot_and_records_nothing(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        desk = await net.node("desk")
        hub = net.authority.identifier
        await desk.worker.run(_plant_globex_copy, desk, hub)
        await desk.reload()  # globex trusted, its feed held (as after a sync)
        ticket = net.ticket()
        with pytest.raises(IdentityError) as refused:
            await desk.enroll(ticket, "desk")
        assert refused.value.reason is IdentityFailure.COPY_CONFLICT
        assert "not over the network" in str(refused.value)
        with pytest.raises(IdentityError) as flagged:
            pin = ticket_pin(ticket, now=net.clock.now())  # the hub's, read out
            await desk.enroll(ticket, "desk", pin, over_copy=True)
        assert flagged.value.reason is IdentityFailure.COPY_CONFLICT
        assert "reached over the network" in str(flagged.value)
        assert "node:NAME" in str(flagged.value)
        assert desk.node.wallet.pending_enrollments("desk") == []  # nothing to resume in vain
        assert desk.node.identities.stored_changes(hub) == 6  # globex's copy stands
        assert SqliteVoucherStore(desk.node.db).refuted() == []

    run_memnet(test, tmp_path / "home")
