"""The `mcp_grantors` table over SQLite: the authorities whose bundles grant a published MCP
server's tools, by the server's name, recorded when first fixed or named (docs/policy.md, "MCP
over secure channels"; docs/formats.md, "mcp_grantors"; review 39b, mcp 2)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from troth import limits
from troth.errors import ConflictError, StorageError
from troth.faults import crash_point
from troth.storage.row_types import stored_text, text_sql
from troth.storage.sqlite import SqliteDatabase

__all__ = ["SqliteMcpGrantors"]

_KNOWN = (  # whether a name has a record, its grantors not read (review 72b, rows 7: TEXT
    # not UTF-8 failed the publication before its record could be replaced; 1 MiB read whole)
    "SELECT 1 FROM mcp_grantors WHERE name = ?"
)
_GRANTORS_BYTES: Final = limits.MAX_MCP_GRANTORS * 256  # an identifier's text and a space each
_GET_TYPED: Final = (  # review 71x, wave4b 4: `str()` of a BLOB read its repr
    f"SELECT {text_sql('grantors', _GRANTORS_BYTES)} FROM mcp_grantors WHERE name = ?"  # noqa: S608
)
_COUNT = "SELECT count(*) FROM mcp_grantors"
_PUT = """
INSERT INTO mcp_grantors (name, grantors, recorded_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET grantors = excluded.grantors,
    recorded_at = excluded.recorded_at
"""
_FORGET = "DELETE FROM mcp_grantors WHERE name = ?"


class SqliteMcpGrantors:
    """The recorded grantors of published MCP servers, by name (identifiers as text)."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def get(self, name: str) -> tuple[str, ...] | None:
        """The identifiers recorded for server `name` (None: nothing recorded)."""
        rows = self._db.fetch_all(_GET_TYPED, (name,))
        if not rows:
            return None
        path = self._db.path
        text = stored_text(rows[0][0], "MCP server's grantors", path, _GRANTORS_BYTES)
        grantors = tuple(text.split())
        if not grantors:  # `record` writes one at least
            raise StorageError(f"{path} is damaged: MCP server {name!r} has no grantors recorded")
        return grantors

    def record(self, name: str, grantors: Iterable[str], *, now: int, limit: int) -> None:
        """Record `grantors` for server `name`, replacing what was recorded, in one
        transaction; a name not yet recorded past `limit` names is refused (ConflictError)."""
        text = " ".join(sorted(set(grantors)))
        if not text:
            raise ValueError("an MCP server's recorded grantors name at least one authority")
        with self._db.transaction():
            known = self._db.fetch_all(_KNOWN, (name,))
            if not known and int(self._db.fetch_all(_COUNT, ())[0][0]) >= limit:
                raise _full(name, limit)
            self._db.execute(_PUT, (name, text, now))
            crash_point("node.mcp-grantors.before-commit")

    def check_room(self, name: str, *, limit: int) -> None:
        """ConflictError when `name` has no record and `limit` names have one (what `record`
        refuses), before a publication starts anything (review 41c, mcp 1)."""
        if self._db.fetch_all(_KNOWN, (name,)):
            return
        if int(self._db.fetch_all(_COUNT, ())[0][0]) >= limit:
            raise _full(name, limit)

    def forget(self, name: str) -> bool:
        """Forget server `name`'s record (False: there was none)."""
        return bool(self._db.execute(_FORGET, (name,)).rowcount)

    def names(self) -> list[str]:
        """Every server name with a record, sorted."""
        return [
            str(r[0]) for r in self._db.fetch_all("SELECT name FROM mcp_grantors ORDER BY 1", ())
        ]


def _full(name: str, limit: int) -> ConflictError:
    return ConflictError(
        f"the node records the grantors of {limit} MCP servers already: forget one "
        f"(troth mcp forget NAME) before publishing a new one ({name})"
    )
