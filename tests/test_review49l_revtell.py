"""Review 49l, revtell 1: `Node.revoke` with the authority over the network told the daemons
running the other nodes here (`tell_local_nodes`, in a `finally`) before the daemon running
its own node (`tell_running`): telling the others raising (a KeyboardInterrupt, an error
`tell_local_nodes` does not log) left the node's own daemon admitting the revoked link until
its next feed refresh. Its own daemon is told first now, the others all the same after."""

from __future__ import annotations

from typing import Any

import pytest

import troth
import troth._api.node
from tests.test_api_network import LOOPBACK, served_in_a_thread


def test_the_own_daemon_is_told_even_when_telling_the_others_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A network revocation whose `tell_local_nodes` raises: the daemon running the revoker's
    node was told (`tell_running`, with the entry's seq) all the same, and the others were
    asked after it."""
    calls: list[tuple[str, Any]] = []

    def told_running(node: Any, seq: int) -> None:
        calls.append(("running", seq))

    def told_others(node: Any, authority: Any) -> None:
        calls.append(("others", authority))
        raise RuntimeError("telling the others failed")

    def hand_out(node: troth.Node, by: Any, to: Any) -> troth.Credential:
        return node.delegate(by, to=to, attributes={"orders.access": "read"}, ttl=600, purpose="p")

    with troth.Node.open("hub") as hub:
        acme = hub.create_authority()
        with (
            served_in_a_thread(hub, listen=LOOPBACK) as serving,
            troth.Node.open("agents") as agents,
        ):
            agents.enroll(acme.ticket({"orders.access": "read"}, at=serving.address))
            support = agents.identities.create("support")
            chain = hand_out(agents, agents.identity, support)
            monkeypatch.setattr(troth._api.node, "tell_running", told_running)
            monkeypatch.setattr(troth._api.node, "tell_local_nodes", told_others)
            with pytest.raises(RuntimeError, match="telling the others failed"):
                agents.revoke(chain, by=agents.identity, reason="done")
            taken = hub._stored.authority().store.revocation_tip()[0]
            assert taken == 1
            assert calls == [("running", taken - 1), ("others", acme.identifier)]
