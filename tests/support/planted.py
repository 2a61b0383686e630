"""Code planted in a working directory where troth's children must not import it (reviews 53f,
node home 4, and 53q, import path 1), and the node daemon started from there."""

from __future__ import annotations

from pathlib import Path

import pytest

import troth
from troth.errors import ConfigError
from troth.node.daemon import start_daemon, stop_daemon

SRC = str(Path(troth.__file__).resolve().parents[1])
"""This troth's source directory, an absolute path (what the children find it by)."""

_MARK = """\
import os, pathlib, sys
pathlib.Path(os.environ["TROTH_PLANTED_MARKER"]).write_text("planted code ran in the child")
sys.exit(1)
"""


def plant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pythonpath: str) -> Path:
    """A `troth/` package and a `cedarpy.py` in the working directory `tmp_path/shared`, made
    the current one, with PYTHONPATH `pythonpath`; the marker file they write when run."""
    shared = tmp_path / "shared"
    (shared / "troth" / "node").mkdir(parents=True)
    (shared / "troth" / "__init__.py").write_text(_MARK)
    (shared / "troth" / "node" / "__init__.py").write_text(_MARK)
    (shared / "troth" / "node" / "__main__.py").write_text(_MARK)
    (shared / "cedarpy.py").write_text(_MARK)
    marker = tmp_path / "marker"
    monkeypatch.setenv("TROTH_PLANTED_MARKER", str(marker))
    monkeypatch.setenv("PYTHONPATH", pythonpath)
    monkeypatch.chdir(shared)
    return marker


def assert_daemon_runs_none_of_it(home: Path, name: str, marker: Path) -> None:
    """Node `name`'s daemon, started from the planted directory, runs (and ran none of it)."""
    try:
        try:
            status = start_daemon(home, name, None)
        except ConfigError:
            status = {"running": False}
        assert not marker.exists(), marker.read_text()
        assert status["running"]
    finally:
        stop_daemon(home, name)
