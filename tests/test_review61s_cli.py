"""Review 61s (adversarial review of 61q's fixes), cli: an --out naming, as a descriptor
(/dev/fd/N, /proc/self/fd/N), a file the command itself holds open."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.support.cli import run, run_json
from tests.test_review57h_cli import _hostile_record
from troth.cli import common, trace_cmds
from troth.cli.main import cli


def _held_in(nodes: Path) -> dict[int, Path]:
    """The descriptors this process holds on databases in troth's node directories."""
    held = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = Path(os.readlink(f"/proc/self/fd/{name}"))
            if target.is_relative_to(nodes.resolve()) and target.suffix == ".db":
                held[int(name)] = target
    return held


def test_out_naming_a_descriptor_on_the_nodes_own_files_is_refused(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # review61s cli 1: the export was written over the header of the node's trace.db
    _hostile_record(troth_home)
    nodes = troth_home / "nodes"
    original = common.output_file
    named: list[str] = []

    @contextlib.contextmanager
    def by_number(path: str, **kwargs: Any) -> Iterator[Any]:
        # the number a user passes (in a shell, `--out /dev/fd/3` with no `3>` redirect):
        # found here, in-process, as the descriptor the command holds on its node's files
        held = _held_in(nodes)
        if held:
            path = f"/proc/self/fd/{max(held)}"
            named.append(str(held[max(held)]))
        with original(path, **kwargs) as file:
            yield file

    monkeypatch.setattr(trace_cmds, "output_file", by_number)
    result = CliRunner().invoke(cli, ["trace", "export", "--out", str(troth_home / "x.jsonl")])
    assert named, "the command held none of its node's files while writing"
    written = Path(named[0]).read_bytes()
    assert written.startswith(b"SQLite format 3\x00"), written[:80]  # its header intact
    assert b'"checkpoint"' not in written, "the export written into the node's database"
    assert result.exit_code == 2, result.output
    assert "inside troth's home" in result.output


def test_out_naming_a_descriptor_on_a_file_elsewhere_is_still_written(
    troth_home: Path, tmp_path: Path
) -> None:
    # cli 1's refusal is of the node's files alone: `--out /dev/fd/3 3>agent.id` still writes
    run("identity", "create", "agent")
    with open(tmp_path / "agent.id", "wb") as held:
        run("identity", "export", "agent", "--out", f"/proc/self/fd/{held.fileno()}")
    assert run_json("identity", "verify", str(tmp_path / "agent.id"))["identifier"]
