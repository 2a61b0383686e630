"""Review 47s, revdaemon: `troth revoke link` asked a daemon running the node to re-read its
trust (review 47k), but the Python API's `Node.revoke`, called outside `serve` on a node a
daemon runs (a script beside `troth node start`), did not: the daemon went on admitting the
revoked link until its next maintenance round. Revocation is real: the node that revoked
refuses at once, whichever front end revoked."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import troth
from tests.support.cli import run, run_json
from tests.support.revocation import (
    echo_as_sub,
    refused_as_revoked,
    sub_chain_and_running_agents,
)
from tests.test_cli_credentials import delegate, world  # noqa: F401  (the fixture)
from troth.errors import Unreachable


def test_node_revoke_outside_serve_tells_the_running_daemon(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain, route = sub_chain_and_running_agents()
    try:
        assert (
            echo_as_sub(route, monkeypatch) == "hi"
        )  # a member through the chain: the daemon admits it
        with troth.Node.open("agents") as agents:
            agents.revoke(chain, by=agents.identity, reason="done")
        refused_as_revoked(route, chain, monkeypatch)
    finally:
        run("node", "stop", "agents")


def test_a_daemon_that_cannot_be_told_fails_the_call_saying_the_link_is_revoked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The daemon cannot be told: `Node.revoke` fails, saying the link is revoked and this
    node's store holds it (the daemon learns it at its next feed refresh)."""
    import troth.node.daemon

    chain, _ = sub_chain_and_running_agents()
    try:

        def unreachable(*args: object, **kwargs: object) -> None:
            raise Unreachable("the control socket went away")

        with monkeypatch.context() as patched, troth.Node.open("agents") as agents:
            patched.setattr(troth.node.daemon, "control", unreachable)
            with pytest.raises(troth.StorageError, match=r"the link is revoked \(feed entry 0\)"):
                agents.revoke(chain, by=agents.identity)
            held = agents._stored.wallet.held_feed(chain.authority)
            assert held is not None
            assert held.credential_revoked(chain.id)
    finally:
        run("node", "stop", "agents")


def test_node_revoke_from_a_coroutine_tells_the_running_daemon(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`Node.revoke` called from a coroutine (an event loop running, no `serve`): the daemon is
    told all the same (its control client runs a loop of its own, off this one)."""
    chain, route = sub_chain_and_running_agents()
    try:

        async def revoke() -> None:
            with troth.Node.open("agents") as agents:
                agents.revoke(chain, by=agents.identity)

        asyncio.run(revoke())
        refused_as_revoked(route, chain, monkeypatch)
    finally:
        run("node", "stop", "agents")


def test_troth_revoke_link_says_so_when_the_daemon_cannot_be_told(
    world: dict[str, str],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CLI relies on the library call: a daemon that cannot be told fails the command
    (exit 4), saying the link is revoked and stored."""
    import troth.node.daemon

    d1 = str(Path(world["dir"]) / "d1")
    delegate(world, "customer", "support", "d1", "orders.customer=4471")
    link = run_json("credential", "show", d1)["chain"][-1]["id"]
    run("node", "start", "default")
    try:

        def unreachable(*args: object, **kwargs: object) -> None:
            raise Unreachable("the control socket went away")

        with monkeypatch.context() as patched:
            patched.setattr(troth.node.daemon, "control", unreachable)
            failed = run(
                "revoke",
                "link",
                link,
                "--chain",
                d1,
                "--as",
                "customer",
                "--authority",
                "acme",
                code=4,
            )
        assert "the link is revoked (feed entry 0) and this node's store holds it" in failed.stderr
        assert "the running node 'default' could not be told" in failed.stderr
    finally:
        run("node", "stop", "default")
