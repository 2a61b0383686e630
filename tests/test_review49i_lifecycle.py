"""Review 49i, lifecycle: what a node killed with SIGKILL leaves (its status file naming a pid
that may since be another process's) and what `troth node stop` and `troth node start` then
do (docs/protocols.md, "Node control")."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run
from tests.support.revocation import (
    acme_and_sub_chain,
    refused_as_revoked,
    sub_chain_and_running_agents,
)
from troth.node import daemon as node_daemon
from troth.node import init_node
from troth.node.daemon import node_status, start_daemon, stop_daemon


def _stale_status(directory: Path, pid: int) -> None:
    """The status file a node killed with SIGKILL leaves, naming `pid`."""
    stale = {"pid": pid, "listening": None, "control": str(directory / "control.sock")}
    (directory / "status.json").write_text(json.dumps(stale))
    os.chmod(directory / "status.json", 0o600)


def test_a_stale_pid_taken_by_a_process_naming_the_node_is_not_stopped(troth_home: Path) -> None:
    """Review 49i, lifecycle 1. Node `web` was killed (SIGKILL, the OOM killer), its status
    file naming its pid; the pid now belongs to another process of the same user whose
    command line holds the words `node`, `start` and `web` (`ssh box troth node start web`,
    a `tmux new troth node start web`, a supervisor's child): it holds no lock at all, so it
    is not the node. Where /proc/locks was read and named no flock of that pid, the command
    line still decided: `troth node status web` said running, `troth node start web` refused
    ("already running"), and `troth node stop web` sent the unrelated process SIGTERM. Now a
    process the command line names is the node only if it has this node's node.lock open.

    Was a strict xfail until `_is_our_node` asked for node.lock among the process's files."""
    init_node("web")
    directory = troth_home / "nodes" / "web"
    bystander = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "node", "start", "web"]
    )
    try:
        _stale_status(directory, bystander.pid)
        assert not node_status(troth_home, "web")["running"]
        assert stop_daemon(troth_home, "web") is False
        assert bystander.poll() is None  # sent nothing
    finally:
        bystander.kill()
        bystander.wait()


def test_a_stop_leaves_the_files_of_a_node_started_meanwhile(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 49i, lifecycle 2. `troth node stop n` waits for the node to end, then removes
    status.json and node.pid (a node it had to kill left them). A `troth node start n` that
    ran between the node's end and that removal (a supervisor restarting it, a second
    operator) had its new node's status file deleted: the node ran on, holding node.lock, but
    `troth node status n` said not running, `troth node stop n` could not stop it, and every
    `troth node start n` failed ("already running: stop it first"). Now the files are removed
    only under the node's lock, when no node holds it.

    Was a strict xfail until `stop_daemon` removed them under `_running_lock`."""
    init_node("n")
    first = start_daemon(troth_home, "n", None)
    real = node_daemon._is_our_node
    second: dict[str, Any] = {}

    def racing(pid: int, name: str, directory: Path) -> bool:
        ours = real(pid, name, directory)
        if not ours and pid == first["pid"] and not second:
            second.update(start_daemon(troth_home, "n", None))  # started once the first ended
        return ours

    monkeypatch.setattr(node_daemon, "_is_our_node", racing)
    try:
        assert stop_daemon(troth_home, "n") is True
        assert second  # the race happened
        monkeypatch.setattr(node_daemon, "_is_our_node", real)
        status = node_status(troth_home, "n")
        assert status["running"]
        assert status["pid"] == second["pid"]
        assert stop_daemon(troth_home, "n") is True
    finally:
        monkeypatch.setattr(node_daemon, "_is_our_node", real)
        for started in (first, second):
            if started:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(started["pid"], signal.SIGKILL)


def test_a_node_that_ends_before_the_stop_signals_it_is_stopped(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 49i, lifecycle 3. A node that ends (a crash, the OOM killer, its own stop)
    between `troth node stop`'s look at it and its SIGTERM: the signal found no process and
    the stop failed with ProcessLookupError. Now a node gone by then is stopped.

    Was a strict xfail until `stop_daemon` took ProcessLookupError for the node's end."""
    init_node("n")
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # reaped: its pid names no process
    seen = {"name": "n", "running": True, "pid": ended.pid}
    monkeypatch.setattr(node_daemon, "node_status", lambda home, name: seen)
    assert stop_daemon(troth_home, "n") is True


def test_a_revocation_reaches_the_daemon_when_another_local_node_cannot_be_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review 49i, lifecycle 4. `Node.revoke` tells the other nodes running on this machine to
    sync the feed (`tell_local_nodes`), then the daemon running the revoking node to re-read
    its trust (`tell_running`). Another local node whose control socket is gone (a daemon
    stopping, one killed since its status was read, its socket's directory cleaned) made the
    control client raise an OSError, which `tell_local_nodes` let through: `Node.revoke`
    failed with FileNotFoundError for a revocation it had committed, without telling the
    daemon running the node, which admitted the revoked link until its next round (and the
    local nodes after the dead one were not told either). Now a node that cannot be told is
    logged and skipped, as one whose sync fails.

    Was a strict xfail until `tell_local_nodes` took an OSError as a node not told."""
    import troth.node.daemon

    chain, route = sub_chain_and_running_agents()
    real_status = troth.node.daemon.node_status

    def hub_seems_running(home: Path, name: str) -> dict[str, Any]:
        if name != "hub":
            return real_status(home, name)
        gone = str(home / "nodes" / "hub" / "control.sock")  # its daemon's socket, removed
        return {"name": name, "running": True, "pid": os.getpid(), "control": gone}

    try:
        with monkeypatch.context() as patched, troth.Node.open("agents") as agents:
            patched.setattr(troth.node.daemon, "node_status", hub_seems_running)
            assert agents.revoke(chain, by=agents.identity, reason="done") == 0
        refused_as_revoked(route, chain, monkeypatch)
    finally:
        run("node", "stop", "agents")


def test_a_daemon_whose_socket_is_gone_fails_the_revocation_saying_it_is_revoked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review 49i, lifecycle 5. The daemon running the revoking node cannot be told because
    its control socket is gone (it is stopping, or was killed since its status was read):
    the control client's OSError went through `tell_running`, which turns only a TrothError
    into the StorageError that says the link is revoked and stored (review 47s). `Node.revoke`
    (and `troth revoke link`, exit 4) reported a bare FileNotFoundError for a revocation
    that was committed and held. Now it says the link is revoked, as for any daemon that
    cannot be told.

    Was a strict xfail until `tell_running` took an OSError as a daemon not told."""
    import troth.node.daemon

    _, chain = acme_and_sub_chain()
    real_status = troth.node.daemon.node_status

    def agents_seem_running(home: Path, name: str) -> dict[str, Any]:
        if name != "agents":
            return real_status(home, name)
        gone = str(home / "nodes" / "agents" / "control.sock")
        return {"name": name, "running": True, "pid": os.getpid(), "control": gone}

    with monkeypatch.context() as patched, troth.Node.open("agents") as agents:
        patched.setattr(troth.node.daemon, "node_status", agents_seem_running)
        with pytest.raises(troth.StorageError, match=r"the link is revoked \(feed entry 0\)"):
            agents.revoke(chain, by=agents.identity)
        held = agents._stored.wallet.held_feed(chain.authority)
        assert held is not None
        assert held.credential_revoked(chain.id)


def test_a_bundle_installed_on_a_node_whose_socket_is_gone_says_it_is_installed(
    troth_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 49i, lifecycle 6. `install_bundle` (`troth policy push`) commits the bundle,
    then tells the running node (`policy.reload`). A node whose control socket is gone (it
    is stopping, or was killed since its status was read) made it fail with a bare
    FileNotFoundError (exit 4) for a bundle it had installed (docs/storage.md, "Recovery
    rules": failure only when nothing reported as failed was committed). Now the error says
    the bundle is installed, and that the node takes it up at its next round.

    Was a strict xfail until `install_bundle` took an OSError as a node not told."""
    import troth.node.daemon
    from tests.test_review45f_policy import bundles
    from troth.clock import SystemClock
    from troth.node.services.policy import install_bundle, stored_bundles

    first, _ = bundles(troth_home, tmp_path)
    real_status = troth.node.daemon.node_status

    def acme_seems_running(home: Path, name: str) -> dict[str, Any]:
        if name != "acme":
            return real_status(home, name)
        gone = str(home / "nodes" / "acme" / "control.sock")
        return {"name": name, "running": True, "pid": os.getpid(), "control": gone}

    monkeypatch.setattr(troth.node.daemon, "node_status", acme_seems_running)
    with pytest.raises(troth.StorageError, match="installed"):
        install_bundle(troth_home, "acme", first.read_bytes(), clock=SystemClock())
    monkeypatch.setattr(troth.node.daemon, "node_status", real_status)
    assert len(stored_bundles(troth_home, "acme", clock=SystemClock())) == 1
