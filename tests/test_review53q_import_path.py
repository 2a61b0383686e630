"""Review 53q, import path 1: the children troth starts with `python -P` (the node daemon,
the Cedar validation child, the benchmarks' peer processes) still imported from the working
directory when PYTHONPATH held an empty entry (a leading or trailing `:`, or `::`, as
`PYTHONPATH=:$PWD/src` or `export PYTHONPATH=$PYTHONPATH:src` with it unset write): Python reads
an empty entry as the working directory, which `-P` does not remove, and the daemon kept the
directory its start was run in as its own. A `troth/` package (or `cedarpy.py`) planted there
(/tmp, a shared checkout) ran in the daemon, which holds the vault key and the PIN (review 53f,
node home 4 closed only `-m`'s and `-c`'s own entry). Were strict xfails until the children's
PYTHONPATH lost its empty entries (a relative one made absolute where the start ran, as
Python would have read it) and the daemon ran in its node's directory."""

from __future__ import annotations

from pathlib import Path

import pytest

import troth
from troth.errors import ConfigError
from troth.node.daemon import start_daemon, stop_daemon
from troth.node.node import init_node

_MARK = """\
import os, pathlib, sys
pathlib.Path(os.environ["TROTH_53Q_MARKER"]).write_text("planted code ran in the child")
sys.exit(1)
"""
_SRC = str(Path(troth.__file__).resolve().parents[1])


def _plant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pythonpath: str) -> Path:
    """A `troth/` package and a `cedarpy.py` in a working directory; the marker they write."""
    shared = tmp_path / "shared"
    (shared / "troth" / "node").mkdir(parents=True)
    (shared / "troth" / "__init__.py").write_text(_MARK)
    (shared / "troth" / "node" / "__init__.py").write_text(_MARK)
    (shared / "troth" / "node" / "__main__.py").write_text(_MARK)
    (shared / "cedarpy.py").write_text(_MARK)
    marker = tmp_path / "marker"
    monkeypatch.setenv("TROTH_53Q_MARKER", str(marker))
    monkeypatch.setenv("PYTHONPATH", pythonpath)
    monkeypatch.chdir(shared)
    return marker


@pytest.mark.parametrize("pythonpath", [f":{_SRC}", f"{_SRC}:", f"{_SRC}::/nowhere"])
def test_an_empty_pythonpath_entry_does_not_import_the_working_directory_in_the_daemon(
    troth_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pythonpath: str
) -> None:
    init_node("n1")
    marker = _plant(tmp_path, monkeypatch, pythonpath)
    try:
        try:
            status = start_daemon(troth_home, "n1", None)
        except ConfigError:
            status = {"running": False}
        assert not marker.exists(), marker.read_text()
        assert status["running"]
    finally:
        stop_daemon(troth_home, "n1")


def test_an_empty_pythonpath_entry_does_not_import_the_working_directory_in_the_policy_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from troth.gates import policies

    marker = _plant(tmp_path, monkeypatch, f":{_SRC}")
    schema = 'entity User; action "read" appliesTo { principal: [User], resource: [User] };'
    bad = policies._validate_in_child(
        '@id("p") permit(principal, action == Action::"write", resource);', schema
    )
    assert not marker.exists(), marker.read_text()
    assert bad is not None
    assert "unrecognized action" in bad[0][1]  # the real validator ran


def test_an_empty_pythonpath_entry_does_not_import_the_working_directory_in_a_bench_peer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from troth.bench.bare_rpc import bare_rpc_server

    marker = _plant(tmp_path, monkeypatch, f":{_SRC}")
    try:
        with bare_rpc_server(bytes(32)) as port:
            assert port > 0
    finally:
        assert not marker.exists(), marker.read_text()


def test_a_relative_pythonpath_entry_still_finds_troth_from_the_daemons_directory(
    troth_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon runs in its node's directory now: a relative entry (PYTHONPATH=src, run in a
    checkout) is made absolute where the start ran, as Python read it, so it still starts."""
    init_node("n1")
    src = Path(_SRC)
    monkeypatch.chdir(src.parent)
    monkeypatch.setenv("PYTHONPATH", src.name)
    try:
        assert start_daemon(troth_home, "n1", None)["running"]
    finally:
        stop_daemon(troth_home, "n1")
