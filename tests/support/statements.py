"""SQL statements counted on every SQLite connection opened while a test counts (the
performance pins, review 66m and 67a: a growth on a path is seen by a test, not guessed from
a shared machine's clock). A statement is named by its text up to its first "(" (values and
column lists folded), its first 40 characters."""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

__all__ = ["StatementCount"]


class StatementCount:
    """Every connection `sqlite3.connect` opens under `monkeypatch` traced; statements counted
    only within `counting()`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: Counter[str] = Counter()
        self._on = False
        connect = sqlite3.connect

        def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            connection: sqlite3.Connection = connect(*args, **kwargs)
            connection.set_trace_callback(self._count)
            return connection

        monkeypatch.setattr(sqlite3, "connect", traced)

    def _count(self, sql: str) -> None:
        if self._on:
            self.seen[re.sub(r"\(.*", "", " ".join(sql.split()))[:40]] += 1

    @contextmanager
    def counting(self) -> Iterator[Counter[str]]:
        self._on = True
        try:
            yield self.seen
        finally:
            self._on = False
