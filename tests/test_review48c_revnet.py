"""Review 48c, revnet: `Node.revoke` with the chain's authority reached over the network
synced the node's own copy of the feed (review 47k), but told no daemon running the node
(`troth node start`): the daemon went on admitting the revoked link until its next
maintenance round. The path with an authority on this machine told it (review 47s)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import troth
from tests.support.cli import run, run_json
from tests.support.revocation import (
    delegated_to_sub,
    echo_as_sub,
    refused_as_revoked,
    sub_chain_and_running_agents,
)
from tests.test_api_network import LOOPBACK, served_in_a_thread


def test_node_revoke_over_the_network_tells_the_running_daemon(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with troth.Node.open("hub") as hub:
        acme = hub.create_authority()
        with served_in_a_thread(hub, listen=LOOPBACK) as serving:
            with troth.Node.open("agents") as agents, troth.Node.open("sub") as sub:
                chain = delegated_to_sub(acme, agents, sub, at=serving.address)
            started = run_json("node", "start", "agents", "--tcp-listen", "127.0.0.1:0")
            route = "/tcp/" + started["listening"]
            try:
                assert echo_as_sub(route, monkeypatch) == "hi"
                with troth.Node.open("agents") as agents:
                    assert agents.revoke(chain, by=agents.identity, reason="done") == 0
                refused_as_revoked(route, chain, monkeypatch)
            finally:
                run("node", "stop", "agents")


def test_an_authority_revocation_reaches_a_running_local_node_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The authority on `hub` revokes a link (`Authority.revoke`, as `troth revoke credential`):
    the daemon running `agents`, which trusts acme at `node:hub`, refuses the link at once
    (it synced acme's feed only at its next maintenance round)."""
    chain, route = sub_chain_and_running_agents()
    try:
        assert echo_as_sub(route, monkeypatch) == "hi"
        with troth.Node.open("hub") as hub:
            hub.authority().revoke(chain, reason="done")
        refused_as_revoked(route, chain, monkeypatch)
    finally:
        run("node", "stop", "agents")


def test_troth_revoke_identity_reaches_a_running_local_node_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`troth revoke identity` of the delegate: the daemon of the delegator's node refuses it."""
    _, route = sub_chain_and_running_agents()
    try:
        assert echo_as_sub(route, monkeypatch) == "hi"
        with troth.Node.open("sub") as sub:
            who = str(sub.identity.identifier)
        run("revoke", "identity", who, "--authority", "hub")
        with pytest.raises(troth.ChannelError, match="revoked"):
            echo_as_sub(route, monkeypatch)
    finally:
        run("node", "stop", "agents")


def test_troth_authority_members_remove_tells_the_running_local_nodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`troth authority members remove` revokes the member's credentials: it tells the nodes
    running here (`tell_local_nodes`, whose effect the tests above show), as the other
    revocations on this machine do."""
    import troth.node.traces  # (the CLI's `remove_member_as_authority` tells them)

    told: list[tuple[str, str]] = []
    monkeypatch.setattr(
        troth.node.traces,
        "tell_local_nodes",
        lambda node, authority: told.append((node.name, str(authority))),
    )
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        agents.enroll(acme.ticket({"orders.access": "read"}))
        who = str(agents.identity.identifier)
    removed = run_json("authority", "members", "remove", who, "--authority", "hub")
    assert len(removed["revoked_credentials"]) == 1
    assert told == [("hub", str(acme.identifier))]


def test_a_link_revoked_by_its_delegator_reaches_another_running_local_node_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`agents` revokes the link it delegated to `sub` (`Node.revoke`, as `troth revoke link`):
    the daemon running `svc`, another node here trusting acme, refuses the chain at once."""
    chain, agents_route = sub_chain_and_running_agents()
    run("node", "stop", "agents")  # the daemon under test is svc's
    with troth.Node.open("hub") as hub, troth.Node.open("svc") as svc:
        svc.enroll(hub.authority().ticket({"orders.access": "none"}))
    route = "/tcp/" + run_json("node", "start", "svc", "--tcp-listen", "127.0.0.1:0")["listening"]
    assert route != agents_route
    try:
        assert echo_as_sub(route, monkeypatch) == "hi"
        with troth.Node.open("agents") as agents:
            agents.revoke(chain, by=agents.identity)
        refused_as_revoked(route, chain, monkeypatch)
    finally:
        run("node", "stop", "svc")


def test_a_node_serving_revokes_a_link_at_an_authority_over_the_network() -> None:
    """A node running inside `serve` (in a coroutine, or `Node.revoke` from another thread)
    could not revoke a link with an authority reached over the network: `Node.revoke` raised
    RuntimeError (an event loop running; or the node already running in this process), and
    `RunningNode` had no `revoke`. `RunningNode.revoke` revokes through the running node's
    channel; when it returns, the running node refuses the link."""
    with (
        troth.Node.open("hub") as hub,
        troth.Node.open("agents") as agents,
        troth.Node.open("sub") as sub,
    ):
        acme = hub.create_authority()
        with served_in_a_thread(hub, listen=LOOPBACK) as serving:
            agents.enroll(acme.ticket({"orders.access": "read"}, at=serving.address))
            chain = agents.delegate(
                agents.identity,
                to=sub.identity,
                attributes={"orders.access": "read"},
                ttl=600,
                purpose="p",
            )

            async def main() -> int:
                async with agents.serve() as running:
                    seq = await running.revoke(chain, by=agents.identity, reason="done")
                    held = running._runtime.trust.feeds[acme.identifier]
                    assert held.credential_revoked(chain.id)
                    return int(seq)

            assert asyncio.run(main()) == 0
    assert run_json("trace", "show", "--node", "agents")[-1]["kind"] == "revocation"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _hub_daemon_on_a_port() -> Iterator[int]:
    """acme on `hub`, its daemon listening on a fixed port (so that acme's tickets carry
    `/tcp/...`), stopped after: the port."""
    with troth.Node.open("hub") as hub:
        hub.create_authority()
    port = _free_port()
    run("node", "start", "hub", "--tcp-listen", f"127.0.0.1:{port}")
    try:
        yield port
    finally:
        run("node", "stop", "hub")


def test_a_revocation_reaches_a_running_local_node_that_syncs_over_tcp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hub listens on a fixed port, so acme's tickets carry `/tcp/...` and the nodes
    here sync its feed over TCP, not from `node:hub`: `svc`'s daemon too refuses a link
    `agents` revoked (`Node.revoke`, the authority over the network) at once."""
    with _hub_daemon_on_a_port() as port:
        with (
            troth.Node.open("hub") as hub,
            troth.Node.open("agents") as agents,
            troth.Node.open("sub") as sub,
            troth.Node.open("svc") as svc,
        ):
            acme = hub.authority()
            assert acme.ticket({"orders.access": "read"}).startswith("troth")
            chain = delegated_to_sub(acme, agents, sub)
            assert agents._stored.wallet.trusted()[acme.identifier] == f"/tcp/127.0.0.1:{port}"
            svc.enroll(acme.ticket({"orders.access": "none"}))
        started = run_json("node", "start", "svc", "--tcp-listen", "127.0.0.1:0")
        route = "/tcp/" + started["listening"]
        try:
            assert echo_as_sub(route, monkeypatch) == "hi"
            with troth.Node.open("agents") as agents:
                assert agents.revoke(chain, by=agents.identity) >= 0
            refused_as_revoked(route, chain, monkeypatch)
        finally:
            run("node", "stop", "svc")


def test_another_nodes_broken_configuration_fails_no_revocation(
    troth_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Telling the nodes running here reads every node's configuration: one that is broken
    is logged, and the revocation (committed, recorded) returns its entry."""
    with troth.Node.open("hub") as hub:
        acme = hub.create_authority()
        broken = troth_home / "nodes" / "broken"
        broken.mkdir(parents=True)
        (broken / "node.json").write_text("{not json")
        (broken / "node.json").chmod(0o600)
        assert acme.revoke(b"\x01" * 32) == 0
    # that node by name (review 69d, notify 4: the others told; it said "the nodes running
    # here were not told" and told none)
    assert "node 'broken' was not told of the revocation" in caplog.text


def _refused_within(route: str, monkeypatch: pytest.MonkeyPatch, seconds: int) -> str:
    """Call echo at `route` until it is refused (the refusal), at most `seconds` tries a
    second apart (the daemon is told in the background; its own round is 30 s away)."""
    for _ in range(seconds):
        try:
            echo_as_sub(route, monkeypatch)
        except (troth.ChannelError, troth.Denied) as exc:  # at the handshake or the request
            return str(exc)
        time.sleep(1)
    raise AssertionError(f"still admitted after {seconds} tries")


def test_a_revocation_the_hub_daemon_takes_over_the_network_reaches_local_nodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A delegator elsewhere revokes a link at the hub's daemon (its authority service): the
    daemons running beside the hub sync acme's feed then (the revoker's machine is not theirs:
    here its `tell_local_nodes` is left out), not at their next round."""
    import troth._api.node

    with _hub_daemon_on_a_port():
        with (
            troth.Node.open("hub") as hub,
            troth.Node.open("agents") as agents,
            troth.Node.open("sub") as sub,
            troth.Node.open("svc") as svc,
        ):
            acme = hub.authority()
            chain = delegated_to_sub(acme, agents, sub)
            svc.enroll(acme.ticket({"orders.access": "none"}))
        started = run_json("node", "start", "svc", "--tcp-listen", "127.0.0.1:0")
        route = "/tcp/" + started["listening"]
        try:
            assert echo_as_sub(route, monkeypatch) == "hi"
            with monkeypatch.context() as patched, troth.Node.open("agents") as agents:
                patched.setattr(troth._api.node, "tell_local_nodes", lambda *args: None)
                agents.revoke(chain, by=agents.identity)
            refused = _refused_within(route, monkeypatch, 10)
            assert f"revoked (credential {chain.id.hex()})" in refused
        finally:
            run("node", "stop", "svc")
