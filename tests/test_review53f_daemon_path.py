"""Review 53f, node home 4: `troth node start` runs the daemon as `python -m troth.node NAME`,
and `-m` puts the working directory first on the module search path (before PYTHONPATH and
site-packages). The daemon inherited the command's working directory, so a `troth/` package (or
`click.py`, `cryptography/`, any module it imports) planted where the command was run (/tmp, a
shared checkout) ran in the daemon, which holds the node's vault key and the token's PIN.
The gate's policy child already ran with `-P` (gates/policies.py); now the daemon does too."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.planted import SRC, assert_daemon_runs_none_of_it, plant
from troth.node.node import init_node


def test_a_module_planted_in_the_working_directory_is_not_imported_by_the_daemon(
    troth_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_node("n1")
    # the daemon finds this troth by an absolute path whatever its working directory
    assert_daemon_runs_none_of_it(troth_home, "n1", plant(tmp_path, monkeypatch, SRC))


def test_the_benchmarks_peer_processes_do_not_import_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """node home 4, the same for `troth bench`'s peer processes: `python -c` puts the working
    directory first on the module path as `-m` does."""
    from troth.bench import bare_rpc, tls_rpc_peer
    from troth.crypto.bench_tls import TlsPki

    commands: list[list[str]] = []

    def capture(command: list[str], what: str) -> None:
        commands.append(command)

    monkeypatch.setattr(bare_rpc, "serving", capture)
    monkeypatch.setattr(tls_rpc_peer, "serving", capture)
    bare_rpc.bare_rpc_server(bytes(32))
    tls_rpc_peer.tls_rpc_server(TlsPki(*(tmp_path / name for name in "abcde")))
    assert len(commands) == 2
    for command in commands:
        assert command[1] == "-P", command
