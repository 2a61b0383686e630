"""What a test run leaves when it is killed (review 68h, hygiene 1): a scenario a test runs in
a pytest of its own (collected only when named: `-o python_functions=scenario_*`): it starts
long-running processes as the tests do, writes their pids and the run's temporary directory
to the file named by $ORPHAN_REPORT, and then waits to be killed."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.support.postgres import postmaster
from troth.node import init_node
from troth.node.daemon import start_daemon, stop_daemon

REPORT = "ORPHAN_REPORT"
"""The environment variable naming the file the scenario reports to (JSON: "pids", "scratch")."""
WITH_POSTGRES = "ORPHAN_POSTGRES"
"""Set (to 1): the scenario also starts the session's PostgreSQL server."""
WAIT = 120.0
"""Seconds a scenario waits to be killed (then it ends as a test would)."""


def _report(pids: dict[str, int], scratch: str) -> None:
    path = Path(os.environ[REPORT])
    path.with_suffix(".part").write_text(json.dumps({"pids": pids, "scratch": scratch}))
    path.with_suffix(".part").rename(path)  # whole or not at all


def scenario_started(troth_home: Path, request: pytest.FixtureRequest) -> None:
    """A node daemon, started as the tests start one (`start_daemon`, stopped in `finally`),
    and with $ORPHAN_POSTGRES the session's PostgreSQL server (tests/support/postgres.py)."""
    pids: dict[str, int] = {}
    if os.environ.get(WITH_POSTGRES) == "1":
        pids["postmaster"] = postmaster(request.getfixturevalue("pg_server"))
    init_node("n")
    status = start_daemon(troth_home, "n", None)
    try:
        # the run's temporary directory: tests/conftest.py's (basetemp is its "t")
        scratch = os.path.dirname(request.config.option.basetemp)
        _report({**pids, "node daemon": int(status["pid"])}, scratch)
        time.sleep(WAIT)
    finally:
        stop_daemon(troth_home, "n")
