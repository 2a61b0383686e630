"""Review 50k, due 1 (a residual of review 50j, duewatch 1): handing out a chain of an authority
a revocation here marked due a sync (review 48m, revcrash 2: `CredentialWallet.sync_due`) tried
a settling sync each time; for an authority on no node here any more each try opened every node
here to look for it. Now, as `DueWatch` does, a node stops after `DUE_TRIES` failed settling
syncs in a row of an authority, and tries again only once a newer mark of it is made; the
marks stand all the while, the authority's chains refused (fail closed).
"""

from __future__ import annotations

from typing import Any

import pytest

import troth
import troth.node.syncdue
from troth.clock import SystemClock
from troth.errors import NotFound
from troth.limits import DUE_TRIES
from troth.node.authorities import sync_local_feed


def test_handouts_of_a_lost_authoritys_chains_stop_trying_after_due_tries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        agents.enroll(acme.ticket({"orders.access": "read"}))
    tries: list[int] = []
    lost = True

    def sync(*args: Any, **kwargs: Any) -> Any:
        tries.append(1)
        if lost:
            raise NotFound("no node here hosts that authority")
        return sync_local_feed(*args, **kwargs)

    monkeypatch.setattr(troth.node.syncdue, "sync_local_feed", sync)
    with troth.Node.open("agents") as agents:
        wallet = agents._stored.wallet
        wallet.store.mark_sync_due(acme.identifier.digest, "", 0)
        now = SystemClock().now()
        for _ in range(3 * DUE_TRIES):  # every one refused (the mark stands)
            assert wallet.sync_due(acme.identifier, now=now)
        assert len(tries) == DUE_TRIES
        wallet.store.mark_sync_due(acme.identifier.digest, "", 0)  # a newer mark: one more try
        for _ in range(3):
            assert wallet.sync_due(acme.identifier, now=now)
        assert len(tries) == DUE_TRIES + 1
        lost = False  # the authority is back; a newer mark: settled, chains handed out again
        wallet.store.mark_sync_due(acme.identifier.digest, "", 0)
        assert not wallet.sync_due(acme.identifier, now=now)
        assert len(tries) == DUE_TRIES + 2
        assert not wallet.store.sync_due(acme.identifier.digest)
