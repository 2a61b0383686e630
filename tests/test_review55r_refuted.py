"""Review 55r: attacks on the node's local control plane that the node withstood (each test
fails if its defence breaks)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from troth import limits
from troth.encoding import cbor
from troth.node import init_node
from troth.node.daemon import control, start_daemon, stop_daemon
from troth.transport.framing import FRAME_HEADER, FRAME_VERSION, check_header, frame


@pytest.fixture
def running(troth_home: Path) -> Iterator[dict[str, Any]]:
    """Node `n` running as a daemon; its status."""
    init_node("n")
    started = start_daemon(troth_home, "n", None)
    try:
        yield started
    finally:
        stop_daemon(troth_home, "n")
        with contextlib.suppress(ProcessLookupError):
            os.kill(started["pid"], signal.SIGKILL)


def _raw(path: str, data: bytes) -> Any:
    """What the node answers `data` sent on a connection of our own (a client that is not the
    CLI)."""
    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(30)
        client.connect(path)
        client.sendall(data)
        header = client.recv(FRAME_HEADER.size, socket.MSG_WAITALL)
        body = client.recv(check_header(header, limits.MAX_CONTROL_ANSWER), socket.MSG_WAITALL)
    return cbor.decode(body)


def test_a_stalled_request_does_not_hold_up_another(
    troth_home: Path, running: dict[str, Any]
) -> None:
    """Slowloris: a client that sends one byte of its request and then nothing holds only its
    own connection; another's request is answered meanwhile (each connection is its own task,
    bounded by CONTROL_IO_TIMEOUT)."""
    stalled = [socket.socket(socket.AF_UNIX) for _ in range(50)]
    try:
        for client in stalled:
            client.connect(running["control"])
            client.send(bytes([FRAME_VERSION]))
        assert control(troth_home, "n", "status", {}, timeout=5)["name"] == "n"
    finally:
        for client in stalled:
            client.close()


def test_a_huge_announced_request_is_refused_unread(
    troth_home: Path, running: dict[str, Any]
) -> None:
    """A request announcing 4 GiB is answered with the frame limit's error before anything
    past its header is read, and the node serves on."""
    answer = _raw(running["control"], FRAME_HEADER.pack(FRAME_VERSION, 2**32 - 1))
    assert answer["ok"] is False
    assert answer["kind"] == "DecodeError"
    assert f"over the limit of {limits.MAX_CONTROL_REQUEST}" in answer["error"]
    assert control(troth_home, "n", "status", {}, timeout=5)["name"] == "n"


def test_a_deeply_nested_request_is_refused(troth_home: Path, running: dict[str, Any]) -> None:
    """A request nested 10 000 deep (within the request size) is refused by the CBOR scan's
    depth limit: a DecodeError answer, no recursion in the node, which serves on."""
    body = b"\xa2bopfstatusdargs" + b"\x81" * 10_000 + b"\xa0"
    answer = _raw(running["control"], frame(body, limits.MAX_CONTROL_REQUEST))
    assert answer["ok"] is False
    assert answer["kind"] == "DecodeError"
    assert "deeper than" in answer["error"]
    assert control(troth_home, "n", "status", {}, timeout=5)["name"] == "n"


def test_the_enroll_ticket_is_not_in_a_failed_answer(
    troth_home: Path, running: dict[str, Any]
) -> None:
    """A failed enrollment's answer (which the node also logs) does not repeat the ticket: a
    ticket's code is a secret (a caller's mistake shown on a terminal or in node.log)."""
    ticket = "troth-ticket:" + "S3CRETCODE" * 8
    request = {"op": "enroll", "args": {"ticket": ticket}}
    answer = _raw(running["control"], frame(cbor.encode(request), limits.MAX_CONTROL_REQUEST))
    assert answer["ok"] is False
    assert answer["kind"] == "DecodeError"
    assert "S3CRETCODE" not in repr(answer)
    log = (troth_home / "nodes" / "n" / "node.log").read_text(errors="replace")
    assert "S3CRETCODE" not in log
