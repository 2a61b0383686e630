"""Review 55r, control: the CLI's control client facing a node that does not take connections
(docs/protocols.md, "Node control")."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
from pathlib import Path

import pytest

from troth.errors import ConfigError
from troth.node import init_node
from troth.node.daemon import control, start_daemon, stop_daemon


def _fill_backlog(path: str) -> list[socket.socket]:
    """Connections to the listener at `path` until its backlog is full (it takes none)."""
    held: list[socket.socket] = []
    for _ in range(4096):
        client = socket.socket(socket.AF_UNIX)
        client.setblocking(False)
        try:
            client.connect(path)
        except BlockingIOError:
            client.close()
            return held
        held.append(client)
    raise AssertionError("the backlog never filled")


def test_a_node_whose_backlog_is_full_is_not_taken_for_a_planted_listener(
    troth_home: Path,
) -> None:
    """Review 55r, control 1. A node that takes no connection for a while (its event loop
    busy or hung, stopped with SIGSTOP, or another process of the user holding its backlog
    full) has its listen backlog fill; the CLI's next connect then failed with EAGAIN, which
    asyncio took for a connect in progress and returned a socket that was never connected.
    Its SO_PEERCRED said pid 0, and the command failed saying "another process took the
    control socket's name": an attack reported where there is none, at once, instead of the
    node not answering in time. Now the connect waits for room within the request's timeout,
    and says the node did not take it.

    Was a strict xfail until `_control_request` connected through `_connect`."""
    init_node("n")
    started = start_daemon(troth_home, "n", None)
    os.kill(started["pid"], signal.SIGSTOP)
    held: list[socket.socket] = []
    try:
        held = _fill_backlog(started["control"])
        with pytest.raises(TimeoutError) as raised:
            control(troth_home, "n", "status", {}, timeout=1)
        assert "did not take the control connection of status within 1 s" in str(raised.value)
    finally:
        for client in held:
            client.close()
        os.kill(started["pid"], signal.SIGCONT)
        with contextlib.suppress(ProcessLookupError):
            stop_daemon(troth_home, "n")


@pytest.mark.parametrize("damaged", [["x"], 7, None])
def test_a_status_file_naming_no_socket_is_a_config_error(
    troth_home: Path, damaged: object
) -> None:
    """Review 55r, control 2. The status file of a running node whose `control` is not a path
    (damaged, or rewritten by another process of the user) failed every command that asks the
    node (`troth node status`, `troth channel list`, ...) with "internal error: TypeError",
    exit 70. Now it is a ConfigError that names the file.

    Was a strict xfail until `control` looked at the path it was given."""
    init_node("n")
    start_daemon(troth_home, "n", None)
    try:
        status_file = troth_home / "nodes" / "n" / "status.json"
        status = json.loads(status_file.read_text())
        status_file.write_text(json.dumps({**status, "control": damaged}))
        with pytest.raises(ConfigError, match=r"status\.json names no control socket"):
            control(troth_home, "n", "status", {}, timeout=5)
    finally:
        stop_daemon(troth_home, "n")
