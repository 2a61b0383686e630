"""The order `pytest -n N --dist loadfile` (`make test`) starts test files in: the files of few
but long tests first (LONG_FILES), then xdist's own order (files with the most tests first).

xdist sends a file to a worker whole and, by default, the files with the most tests first, so
a file of one or a few long tests started among the last: its worker ran it alone while the
other waited (75a citime: test_readme.py's one walk of the README, ~47 s, and
test_reconnect_daemon.py's twenty hub kills, ~44 s, in files of 7 and 2 tests). Started first,
they overlap the many short files instead. Only the order changes: every file still runs
whole in one worker, and a file named here that is gone or renamed is simply not moved.
"""

from __future__ import annotations

from typing import Any, Final

from xdist.scheduler import LoadFileScheduling

LONG_FILES: Final[tuple[str, ...]] = (
    "tests/test_reconnect_daemon.py",  # 48 s in 2 tests (the twenty kills of the hub: 44 s)
    "tests/test_readme.py",  # 47 s in 7 (the README run top to bottom: 47 s)
    "tests/test_review48s_refuted.py",  # 23 s in 10
    "tests/test_secrets_postgres.py",  # 22 s in 16
    "tests/test_mcp_channels.py",  # 19 s in 9
    "tests/test_review57e_refuted.py",  # 18 s in 10
    "tests/test_vault_sealing.py",  # 16 s in 7
    "tests/test_resilience_enrollment.py",  # 16 s in 14
    "tests/test_attacks_review9.py",  # 13 s in 5
    "tests/test_review48c_revnet.py",  # 12 s in 9
    "tests/test_cli_examples.py",  # 12 s in 3
    "tests/test_resilience_concurrency.py",  # 11 s in 9
    "tests/test_review45f_trace.py",  # 11 s in 2
    "tests/test_review34d_control.py",  # 11 s in 3
    "tests/test_review68h_hygiene.py",  # 10 s in 2
    "tests/test_review56o_refuted.py",  # 9 s in 8
)
"""Files of few tests (at most 16) and 9 s or more, longest first: serial seconds measured by
75a on the shared 2-core machine (load average ~4) over the 210 files that start processes,
servers or tokens (770 s of the main run's ~1,660 worker-seconds); the order matters here, not
the seconds. A file of many tests starts early anyway."""


def long_files_first(workqueue: dict[str, dict[str, bool]]) -> None:
    """Move the files of LONG_FILES in `workqueue` (file -> its tests, in the order xdist
    starts them) to its front, in LONG_FILES' order; the rest keep theirs."""
    head = {name: workqueue.pop(name) for name in LONG_FILES if name in workqueue}
    rest = dict(workqueue)
    workqueue.clear()
    workqueue.update(head)
    workqueue.update(rest)


class LongFilesFirst(LoadFileScheduling):  # type: ignore[misc]  # (xdist has no types)
    """`--dist loadfile` with LONG_FILES started first (`long_files_first`, applied once the
    work queue is built: just before its first file is handed out)."""

    _ordered = False

    def _assign_work_unit(self, node: Any) -> None:
        if not self._ordered:
            self._ordered = True
            long_files_first(self.workqueue)
        super()._assign_work_unit(node)
