"""Review 49a, handles 1: a closed `Node` went on working. `close()` closed its SQLite
connections and let go of its hold on `node.db.vault` (the shared lock `troth vault rekey`
needs to run alone), but the database opened a new connection on the next call, and the
vault kept its KEK: `identities.create`, `delegate`, an `Authority`'s tickets, `serve`, a
`Verifier` fed by it all still ran, with the node's keys and no hold. A rekey that ran
meanwhile (it found the node alone) re-sealed every key, and the closed handle then sealed a
new identity's key under the old KEK: its key opens nowhere once the node is opened again.
Every call through a closed node (or what it handed out) is now a StorageError saying so."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import troth
from troth.node.rekey import rekey_vault


def _closed_scene() -> tuple[troth.Node, troth.Authority, troth.Credential, troth.Identity]:
    hub = troth.Node.open("hub")
    acme = hub.create_authority()
    member = hub.identities.create("member")
    hub.identities.create("other")
    credential = hub.enroll(acme.ticket({"orders.access": "read"}), identity=member)
    hub.close()
    return hub, acme, credential, member


async def _serve(node: troth.Node) -> None:
    async with node.serve():
        pass


CALLS: dict[str, Callable[[troth.Node, troth.Authority, troth.Credential, troth.Identity], Any]] = {
    "identities.create": lambda n, a, c, m: n.identities.create("late"),
    "identities.get": lambda n, a, c, m: n.identities.get("member"),
    "identities.all": lambda n, a, c, m: n.identities.all(),
    "identity": lambda n, a, c, m: n.identity,
    "credentials": lambda n, a, c, m: n.credentials(m),
    "delegate": lambda n, a, c, m: n.delegate(
        m, to="other", attributes={"orders.access": "read"}, ttl=60, purpose="p"
    ),
    "authority": lambda n, a, c, m: n.authority(),
    "Authority.ticket": lambda n, a, c, m: a.ticket({"orders.access": "read"}),
    "Authority.revoke": lambda n, a, c, m: a.revoke(c),
    "Verifier.verify": lambda n, a, c, m: troth.Verifier(trust=[a.identifier], feeds=n).verify(
        c, presenter=m
    ),
    "serve": lambda n, a, c, m: asyncio.run(_serve(n)),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_closed_node_refuses_every_call(call: str) -> None:
    node, authority, credential, member = _closed_scene()
    with pytest.raises(troth.StorageError, match="closed"):
        CALLS[call](node, authority, credential, member)


def test_a_closed_node_seals_no_key_after_a_rekey(troth_home: Path) -> None:
    node = troth.Node.open("n")
    node.identities.create("early")
    node.close()
    rekey_vault("n", home=troth_home)  # alone: the closed node holds nothing
    with pytest.raises(troth.StorageError, match="closed"):
        node.identities.create("late")
    with troth.Node.open("n") as again:
        assert {i.name for i in again.identities.all()} == {"early"}


def test_a_node_closed_twice_and_after_an_exception_stays_closed() -> None:
    with pytest.raises(KeyError), troth.Node.open("cm") as node:
        raise KeyError("boom")
    node.close()  # a second close is no error
    with pytest.raises(troth.StorageError, match="closed"):
        node.identities.all()
    with troth.Node.open("cm") as again:  # opening it again is a new, working handle
        assert again.identities.create("fresh").name == "fresh"
