"""Demo chapter 5 with and without PostgreSQL: the database scenes run when its binaries are
here (and must, under TROTH_REQUIRE_PG=1), and are skipped with a line saying so otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.postgres import require_postgres
from troth.bench.secrets_bench import PgCluster
from troth.clock import SystemClock
from troth.demo import chapter5_secrets
from troth.demo.story import Story


def tell(home: Path) -> str:
    lines: list[str] = []
    chapter5_secrets.run(Story(lines.append), home, SystemClock())
    return "\n".join(lines)


def test_the_database_scenes_when_postgresql_is_here(tmp_path: Path) -> None:
    require_postgres()
    out = tell(tmp_path)
    assert "sealed by the vault: in none of the node's files in clear: True" in out
    assert "its open session reads: order 4471, 20.00 EUR" in out
    assert "its open database session: terminated" in out
    assert "must never happen" not in out


def test_without_postgresql_the_chapter_says_so_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    @contextmanager
    def missing(password: str | None = None) -> Iterator[PgCluster | None]:
        yield None

    monkeypatch.setattr(chapter5_secrets, "throwaway_postgres", missing)
    out = tell(tmp_path)
    assert "PostgreSQL is not installed here: the database scenes are skipped" in out
    assert "orders-db" not in out
    assert "its refund token at payments: refused: revoked" in out
    assert "must never happen" not in out
