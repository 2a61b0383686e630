"""Review 64h (adversarial review of enrollment and crash recovery).

Enroll 1: an authority's refusal of an enrollment over the network (a ticket used up by
another identity, expired, voided; an identity revoked for good) reached `troth enroll` as a
`RemoteError` whose text was the service's answer (`AuthorityError: ticket unknown, used up or
expired`), where the same refusal by an authority on this machine is an `AuthorityError` with
its reason: `--json` carried no `reason` and no `detail`, and the CLI's explanation of
TICKET_UNKNOWN ("ask the authority for a new ticket") was never given, so a script reading
`reason` (docs/cli.md: typed errors) told the two apart, and a person was told less over the
network. The node's enrollment now raises the authority's refusal as the AuthorityError it
was (`troth.authority.client.remote_refusal`), whichever way it came.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.nodes import MemNet, run_memnet
from troth.errors import AuthorityError, AuthorityFailure


def test_a_ticket_used_up_over_the_network_is_refused_with_its_reason(tmp_path: Path) -> None:
    """A one-use ticket redeemed by `first`, then by `second` over the hub's channel: the
    refusal is TICKET_UNKNOWN, as the authority on this machine says it, and `second` is left
    nothing pending."""

    async def test(net: MemNet) -> None:
        first, second = await net.node("first"), await net.node("second")
        ticket = net.ticket()
        await first.enroll(ticket, "first")
        with pytest.raises(AuthorityError) as refused:
            await second.enroll(ticket, "second")
        assert refused.value.reason is AuthorityFailure.TICKET_UNKNOWN
        assert second.node.wallet.pending_enrollments("second") == []

    run_memnet(test, tmp_path)
