"""Review 50e, refuted: attacks on the node's lifecycle that the code already withstood."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_review50e_lifecycle import _wait, held_in_start
from troth.errors import ConfigError
from troth.node import init_node
from troth.node.daemon import node_status, start_daemon, stop_daemon


def test_a_second_start_while_the_node_starts_runs_no_second_node(tmp_path: Path) -> None:
    """`troth node start n` while n is inside `runtime.start()`: refused (the node's lock
    was already held; now said before anything is spawned: "already starting"), and the
    first comes up as it would have."""
    init_node("n", home=tmp_path)
    process, inside, go = held_in_start(tmp_path)
    try:
        _wait(inside.exists, "the daemon inside runtime.start()")
        with pytest.raises(ConfigError, match="already"):
            start_daemon(tmp_path, "n", None)
        go.write_text("x")
        _wait(lambda: node_status(tmp_path, "n")["running"], "the first node up")
        assert node_status(tmp_path, "n")["pid"] == process.pid
        assert stop_daemon(tmp_path, "n") is True
        assert process.wait(10) == 0
    finally:
        go.write_text("x")
        if process.poll() is None:
            process.kill()
            process.wait()
