"""A node that ends while `troth node status` looks at it (lead, session 72, daemon 1): a pid
alive at the first look (a SIGKILLed node's zombie) but gone at the next (reaped meanwhile)
was taken for "no /proc here" and trusted from the status file: the node read as running (a
fresh-clone CI run saw test_review49i_refuted's killed node so)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from troth.node import daemon, init_node
from troth.node.daemon import node_status
from troth.node.home import write_private_file


def test_a_pid_gone_between_two_looks_is_not_running(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_node("n")
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    pid = int(ended.stdout)  # reaped: no /proc entry
    write_private_file(
        troth_home / "nodes" / "n" / "status.json", json.dumps({"pid": pid}).encode()
    )
    monkeypatch.setattr(daemon, "_alive", lambda _pid: True)  # alive at the first look
    status = node_status(troth_home, "n")
    assert status["running"] is False
    assert status["stale_pid"] == pid
