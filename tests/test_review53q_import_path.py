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

from tests.support.planted import SRC, assert_daemon_runs_none_of_it, plant
from troth.node.daemon import start_daemon, stop_daemon
from troth.node.node import init_node


@pytest.mark.parametrize("pythonpath", [f":{SRC}", f"{SRC}:", f"{SRC}::/nowhere"])
def test_an_empty_pythonpath_entry_does_not_import_the_working_directory_in_the_daemon(
    troth_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pythonpath: str
) -> None:
    init_node("n1")
    assert_daemon_runs_none_of_it(troth_home, "n1", plant(tmp_path, monkeypatch, pythonpath))


def test_an_empty_pythonpath_entry_does_not_import_the_working_directory_in_the_policy_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from troth.gates import policies

    marker = plant(tmp_path, monkeypatch, f":{SRC}")
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

    marker = plant(tmp_path, monkeypatch, f":{SRC}")
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
    src = Path(SRC)
    monkeypatch.chdir(src.parent)
    monkeypatch.setenv("PYTHONPATH", src.name)
    try:
        assert start_daemon(troth_home, "n1", None)["running"]
    finally:
        stop_daemon(troth_home, "n1")
