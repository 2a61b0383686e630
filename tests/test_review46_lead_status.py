"""`node_status` reads status.json as the node writes it (review 46f left: it checked
`is_file()` and then opened the path with a blocking open, so a FIFO swapped in between hung
every command asking whether the node runs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from troth.node import daemon, init_node


def _status(home: Path) -> Path:
    init_node("n", home=home)
    return home / "nodes" / "n" / "status.json"


def test_a_fifo_at_status_json_is_not_running_at_once(troth_home: Path) -> None:
    """Opened without waiting, then judged by what was opened: a FIFO with no writer."""
    os.mkfifo(_status(troth_home), 0o600)
    assert daemon.node_status(troth_home, "n") == {"name": "n", "running": False}


def test_a_fifo_behind_a_regular_file_check_is_not_opened_blocking(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The swap after a check: whatever says the path is a regular file, a FIFO there is
    never opened with a blocking open."""
    os.mkfifo(_status(troth_home), 0o600)
    monkeypatch.setattr(Path, "is_file", lambda self: True)
    assert daemon.node_status(troth_home, "n")["running"] is False
