"""The tests' PostgreSQL server is not killed by another process's exit (the lead, session 72:
a mid-session CI run lost its worker's server, SIGKILLed, and 74 tests errored).

mirakuru (pytest-postgresql's process runner, imported by every pytest here through the
plugin) registers an atexit hook that SIGKILLs each process whose `mirakuru_uuid` environment
value CONTAINS the exiting process's pid (`mirakuru.base.cleanup_subprocesses`; a substring
test, and pids wrap at 32768 here): any other pytest, or a nested one, ending with a pid found
in the server's mark killed it. tests/support/pg_ctl_as_postgres starts the server without
that mark; the run's own mark (tests/support/reaper.py) stays, so a killed run's server is
still ended."""

from __future__ import annotations

from pathlib import Path

from tests.support.postgres import PgServer, postmaster
from tests.support.reaper import MARK


def _environment(pid: int) -> dict[bytes, bytes]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.partition(b"=")[::2] for item in raw.split(b"\0") if item)


def test_the_server_carries_no_mark_another_process_kills_by(pg_server: PgServer) -> None:
    environment = _environment(postmaster(pg_server))
    assert b"mirakuru_uuid" not in environment
    assert MARK.encode() in environment  # the run's reaper still finds it
