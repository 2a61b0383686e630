"""A delegated link to revoke, and the daemon's refusal of it, shared by the revocation reviews
(47s, 48c, 48p, 49i)."""

from __future__ import annotations

import pytest

import troth
import troth.node.shown_identity
from tests.support.cli import run_json


def delegated_to_sub(
    acme: troth.Authority, agents: troth.Node, sub: troth.Node, *, at: str | None = None
) -> troth.Credential:
    """`agents` enrolled with acme (tickets `at` the given address), `sub` holding a chain
    `agents` delegated to it, and a member credential of its own under `other` (so that sub
    trusts acme; its own identity shows the chain): the chain."""
    agents.enroll(acme.ticket({"orders.access": "read"}, at=at))
    chain = agents.delegate(
        agents.identity,
        to=sub.identity,
        attributes={"orders.access": "read"},
        ttl=600,
        purpose="p",
    )
    sub.hold(sub.identity, chain)
    sub.identities.create("other")
    sub.enroll(acme.ticket({"orders.access": "none"}, at=at), identity="other")
    return chain


def acme_and_sub_chain() -> tuple[troth.Identifier, troth.Credential]:
    """acme created on `hub`, `agents` enrolled with it, `sub` holding a chain `agents`
    delegated to it (`delegated_to_sub`), the nodes closed: acme's identifier and the chain."""
    with (
        troth.Node.open("hub") as hub,
        troth.Node.open("agents") as agents,
        troth.Node.open("sub") as sub,
    ):
        acme = hub.create_authority()
        return acme.identifier, delegated_to_sub(acme, agents, sub)


def sub_chain_and_running_agents() -> tuple[troth.Credential, str]:
    """`acme_and_sub_chain`, and `agents` running as a daemon: the chain and the daemon's
    route."""
    _, chain = acme_and_sub_chain()
    started = run_json("node", "start", "agents", "--tcp-listen", "127.0.0.1:0")
    return chain, "/tcp/" + started["listening"]


def echo_as_sub(route: str, monkeypatch: pytest.MonkeyPatch) -> object:
    """`sub` calls echo (members only) at the daemon, showing its chain even once revoked (a
    node shows none its feeds say are revoked: the one the chain was revoked from would refuse
    the channel; a revoked peer that shows it anyway is what the daemon must refuse)."""
    with monkeypatch.context() as patched, troth.Node.open("sub") as sub:
        patched.setattr(troth.node.shown_identity, "revokes_a_link", lambda *args: False)
        return sub.call(route, "echo", "echo", "hi", expect=None)


def refused_as_revoked(
    route: str, chain: troth.Credential, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`echo_as_sub` is refused at once (not at the daemon's next round), naming `chain`: at
    the handshake (ChannelError), or at the request (Denied) when the daemon's copy of the
    feed moved between the two."""
    with pytest.raises((troth.ChannelError, troth.Denied)) as refused:
        echo_as_sub(route, monkeypatch)
    assert f"revoked (credential {chain.id.hex()})" in str(refused.value)
