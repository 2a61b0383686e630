"""Review 48p, cligaps 1: `troth revoke link` reached only authorities hosted on this machine
(`--authority` was looked up among them: NotFound, exit 2), where the Python API's
`Node.revoke` reaches an authority over the network (review 48c). The CLI now makes the same
library call: an authority the node trusts at a network address is reached there, the node's
feed synced, the revocation recorded, and a daemon running the node told at once."""

from __future__ import annotations

from pathlib import Path

import pytest

import troth
from tests.support.cli import run, run_json, troth_process
from tests.support.revocation import delegated_to_sub, echo_as_sub, refused_as_revoked
from tests.test_api_network import LOOPBACK, served_in_a_thread


def _delegated(acme: troth.Authority, address: str, tmp_path: Path) -> tuple[troth.Credential, str]:
    """`agents` enrolled with acme at `address`, `sub` holding a chain `agents` delegated to it
    (and a member credential of its own, so that it trusts acme): the chain and its file."""
    with troth.Node.open("agents") as agents, troth.Node.open("sub") as sub:
        chain = delegated_to_sub(acme, agents, sub, at=address)
    path = tmp_path / "sub.chain"
    path.write_bytes(chain.chain)
    return chain, str(path)


def _revoke_link(
    chain: troth.Credential, chain_file: str, acme: troth.Authority
) -> tuple[str, ...]:
    """`troth revoke link` for `chain`, as `agents` on node `agents`, at acme."""
    return (
        *("revoke", "link", chain.id.hex(), "--chain", chain_file),
        *("--as", "agents", "--authority", str(acme.identifier), "--node", "agents"),
    )


def test_revoke_link_reaches_an_authority_over_the_network_and_tells_the_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """acme is hosted on another machine (another troth home), reached on loopback: the
    command revokes there, prints the feed entry, and the daemon running `agents` refuses
    the link at once."""
    with troth.Node.open("hub", home=tmp_path / "elsewhere") as hub:
        acme = hub.create_authority()
        with served_in_a_thread(hub, listen=LOOPBACK) as serving:
            chain, chain_file = _delegated(acme, serving.address, tmp_path)
            started = run_json("node", "start", "agents", "--tcp-listen", "127.0.0.1:0")
            route = "/tcp/" + started["listening"]
            try:
                assert echo_as_sub(route, monkeypatch) == "hi"
                revoked = run_json(
                    *_revoke_link(chain, chain_file, acme),
                    "--reason",
                    "done",
                )
                assert revoked == {"seq": 0, "revoked": chain.id.hex()}
                refused_as_revoked(route, chain, monkeypatch)
            finally:
                run("node", "stop", "agents")
    shown = run_json("trace", "show", "--node", "agents")
    assert shown[-1]["kind"] == "revocation"


def test_revoke_link_in_a_process_of_its_own_and_an_unreachable_authority(
    tmp_path: Path,
) -> None:
    """`troth revoke link` run as a process: text output names the entry; with the authority
    gone (nothing listens at its address), exit 4 (I/O: the network did not answer), the
    JSON error on stdout."""
    with troth.Node.open("hub", home=tmp_path / "elsewhere") as hub:
        acme = hub.create_authority()
        with served_in_a_thread(hub, listen=LOOPBACK) as serving:
            chain, chain_file = _delegated(acme, serving.address, tmp_path)
            args = _revoke_link(chain, chain_file, acme)
            done = troth_process(*args)
            assert done.stdout.strip() == f"revoked link {chain.id.hex()} (feed entry 0)"
        gone = troth_process(*args, "--json", code=4)
        assert '"ok": false' in gone.stdout


def test_revoke_link_over_the_network_that_cannot_sync_exits_4_saying_it_is_revoked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The authority over the network takes the entry, but this node's copy of its feed
    cannot be synced: exit 4 (as with an authority on this machine), the error saying the
    link is revoked and its entry, and the revocation recorded all the same."""
    import troth.node.runtime
    from troth.errors import StorageError

    async def broken(*args: object) -> object:
        raise StorageError("the feed store failed")

    with troth.Node.open("hub", home=tmp_path / "elsewhere") as hub:
        acme = hub.create_authority()
        with served_in_a_thread(hub, listen=LOOPBACK) as serving:
            chain, chain_file = _delegated(acme, serving.address, tmp_path)
            monkeypatch.setattr(troth.node.runtime.NodeRuntime, "sync_feed", broken)
            failed = run_json(
                *_revoke_link(chain, chain_file, acme),
                code=4,
            )
    assert failed["error"] == "StorageError"
    assert "the link is revoked (feed entry 0)" in failed["message"]
    assert run_json("trace", "show", "--node", "agents")[-1]["kind"] == "revocation"
