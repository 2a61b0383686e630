"""Review 53u, control: attacks on the node's local control plane that the code already
refused (docs/protocols.md, "Node control")."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path
from typing import Any, cast

import pytest

from troth import limits
from troth.encoding import cbor
from troth.errors import ConfigError, DecodeError, NotFound
from troth.node import init_node
from troth.node.control import OPERATIONS, perform
from troth.node.daemon import control, node_status, run_transient
from troth.node.runtime import NodeRuntime
from troth.transport.framing import FRAME_HEADER, check_header

_NO_RUNTIME = cast(NodeRuntime, None)  # refused before the runtime is touched


def test_a_stale_socket_with_a_listener_is_never_talked_to(troth_home: Path) -> None:
    """A listener at control.sock (a crashed node's name, taken by another process) and a
    status file naming a live pid that does not hold the node's lock: the node reads as not
    running, and the CLI never connects."""
    init_node("n")
    directory = troth_home / "nodes" / "n"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(directory / "control.sock"))
        listener.listen()
        listener.setblocking(False)
        status = {"pid": os.getpid(), "listening": None, "control": str(directory / "control.sock")}
        (directory / "status.json").write_text(json.dumps(status))
        os.chmod(directory / "status.json", 0o600)
        assert node_status(troth_home, "n")["running"] is False
        with pytest.raises(ConfigError, match="not running"):
            control(troth_home, "n", "enroll", {"ticket": "troth-ticket-SECRET"})
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing came


def test_a_status_file_others_can_read_is_not_trusted(troth_home: Path) -> None:
    """A status file with group/other permissions (one put there, naming another socket) is
    not read: the node reads as not running (not even a stale pid: the file was refused before
    its pid was looked at)."""
    init_node("n")
    directory = troth_home / "nodes" / "n"
    status = {"pid": os.getpid(), "listening": None, "control": "/tmp/elsewhere.sock"}
    (directory / "status.json").write_text(json.dumps(status))
    os.chmod(directory / "status.json", 0o644)  # the attack
    assert node_status(troth_home, "n") == {"name": "n", "running": False}


@pytest.mark.parametrize(
    "raw",
    [
        {"ticket": {"nested": "map"}},
        {"ticket": ["a"]},
        {"ticket": 7},
        {"ticket": b"bytes"},
        {"ticket": "t", "extra": "x"},
        {b"ticket": "t"},
        {},
    ],
)
def test_arguments_other_than_the_fields_as_text_are_refused(raw: dict[Any, Any]) -> None:
    """Nested values, other types, unknown or non-text names, a missing required field: refused
    before the handler (or the decision point) is reached."""
    with pytest.raises(DecodeError):
        OPERATIONS["enroll"].parse(raw)


def test_an_unknown_op_is_refused_before_the_runtime() -> None:
    """An op outside the table (an attribute name among them), or a known one with arguments
    it does not take: refused before the runtime, or the decision point, is touched."""
    with pytest.raises(NotFound, match="unknown control operation"):
        asyncio.run(perform(_NO_RUNTIME, "__class__", {}))
    with pytest.raises(DecodeError):
        asyncio.run(perform(_NO_RUNTIME, "status", {"anything": "x"}))


def test_a_deep_or_large_request_is_refused_whole() -> None:
    """A request nested past MAX_CBOR_DEPTH is a DecodeError (never a RecursionError), and
    one announced past MAX_CONTROL_REQUEST is refused at its header, before its body is read."""
    with pytest.raises(DecodeError):
        cbor.decode(b"\x81" * 10_000 + b"\x00")
    header = FRAME_HEADER.pack(1, limits.MAX_CONTROL_REQUEST + 1)
    with pytest.raises(DecodeError):
        check_header(header, limits.MAX_CONTROL_REQUEST)


def test_status_names_no_file_paths(troth_home: Path) -> None:
    """`troth node status` (the `status` op) says nothing of where the node keeps its files."""
    init_node("n")
    status = run_transient(troth_home, "n", "status", {})
    assert str(troth_home) not in json.dumps(status)
    assert status["name"] == "n"
