"""Review 54t: attacks on review 54f, 54j, 54l, 54m and 54p's changes that the code withstood
(each passes as written)."""

from __future__ import annotations

from pathlib import Path

import mcp_types as types
import pytest

from tests.support.gates import T, make_world
from tests.support.leases import LeaseWorld, open_broker
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    now,
    orders,
    setup,
    world,
)
from troth import limits
from troth.errors import PolicyError, PolicyFailure
from troth.gates import BundleStore, SqliteBundleTable
from troth.integrations.mcp.listing import Reading, tool_bytes
from troth.storage import SqliteDatabase
from troth.storage.rollback import decode_slot, encode_slot

NOW = 1_800_000_000
SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}}


# -- 54j: the upstream listing's bounds ---------------------------------------------------------


def _tool(name: str, size: int, char: str = "é") -> types.Tool:
    """A tool `tool_bytes` measures at `size` bytes: its description padded with `char`."""
    tool = types.Tool(name=name, description="", input_schema=SCHEMA)
    room = size - tool_bytes(tool)
    width = len(char.encode())
    tool = types.Tool(
        name=name, description=char * (room // width) + "x" * (room % width), input_schema=SCHEMA
    )
    assert tool_bytes(tool) == size
    return tool


@pytest.mark.parametrize("char", ["é", "\U0001f600", "\u2028"])
def test_a_tool_at_its_limit_in_utf8_bytes_is_kept_and_one_byte_more_refused(char: str) -> None:
    """Its size is its UTF-8 bytes, whatever the characters (two, four bytes, a separator
    JSON writers escape): at MAX_UPSTREAM_TOOL_BYTES kept, one more not offered."""
    reading = Reading()
    reading.add(_tool("at_limit", limits.MAX_UPSTREAM_TOOL_BYTES, char))
    reading.add(_tool("past_limit", limits.MAX_UPSTREAM_TOOL_BYTES + 1, char))
    assert [tool.name for tool, _ in reading.tools] == ["at_limit"]
    assert [name for name, _ in reading.refused] == ["past_limit"]


def test_a_tool_at_its_limit_listed_again_and_again_is_kept_once_and_offered_never() -> None:
    """The same name repeated adds its bytes once (the gate keeps one), is not offered (listed
    twice), and counts against MAX_UPSTREAM_TOOLS: past it the listing is refused whole."""
    reading = Reading()
    big = _tool("same", limits.MAX_UPSTREAM_TOOL_BYTES)
    for _ in range(limits.MAX_UPSTREAM_TOOLS):
        reading.add(big)
    assert len(reading.tools) == 1
    assert reading.twice == {"same"}
    with pytest.raises(PolicyError) as caught:
        reading.add(big)
    assert caught.value.reason is PolicyFailure.OVER_LIMIT


def test_names_no_bundle_could_declare_are_neither_kept_nor_free() -> None:
    """Names outside MCP's charset are dropped unmeasured, but still count as tools listed."""
    reading = Reading()
    for n in range(limits.MAX_UPSTREAM_TOOLS):
        reading.add(types.Tool(name=f"bad name {n}", input_schema=SCHEMA))
    assert reading.tools == []
    with pytest.raises(PolicyError):
        reading.add(types.Tool(name="fine", input_schema=SCHEMA))


# -- 54l: the broker's clock behind its mark ----------------------------------------------------


def test_a_clock_set_forward_then_back_goes_on_at_half_pace_never_back(tmp_path: Path) -> None:
    """A clock a day ahead once, then set right: the broker's time goes on from the mark at
    half the clock's pace (a lease of term D ends within 2D of the clock), never back, and
    meets the clock where the clock passes it."""
    db, broker = open_broker(tmp_path / "node.db", now=NOW)
    clock = broker.clock
    ahead = NOW + 86_400
    assert clock.now(ahead) == ahead
    steps = range(0, 2 * 86_400, 3_600)  # the clock meets the mark at NOW + 2 days
    seen = [clock.now(NOW + step) for step in steps]
    assert seen == sorted(seen)
    assert all(t >= ahead for t in seen)
    assert all(t <= ahead + step // 2 for t, step in zip(seen, steps, strict=True))
    assert clock.now(NOW + 2 * 86_400 + 1) == NOW + 2 * 86_400 + 1  # met: the clock again
    db.close()


def test_two_brokers_on_one_database_never_go_below_the_others_stored_mark(
    tmp_path: Path,
) -> None:
    """A second broker opened behind the first's stored mark starts there (not at the set-back
    clock), and goes on from it, never back."""
    path = tmp_path / "node.db"
    first_db, first = open_broker(path, now=NOW)
    ahead = NOW + 10_000
    assert first.clock.now(ahead) == ahead  # stored (a move past what is stored)
    second_db, second = open_broker(path, now=NOW)
    assert second.clock.seen() >= ahead
    assert second.clock.now(NOW) >= ahead
    times = [second.clock.now(NOW + n) for n in range(0, 100, 7)]
    assert times == sorted(times)
    assert times[0] >= ahead
    first_db.close()
    second_db.close()


# -- 54p: the guard's versions and the held-back table ------------------------------------------


def test_a_version_2_slot_cannot_carry_scopes_past_a_slot_at_their_largest() -> None:
    """Unknown scopes are kept, but only as many as fit a slot at the largest counts, and a
    version 1 slot naming `policy` (a downgrade's writer could not make one) is refused."""
    from troth.encoding import cbor
    from troth.errors import DecodeError
    from troth.storage.rollback import GUARD_SLOT_BYTES, GUARD_TYPE

    def slot(version: int, counts: dict[str, int]) -> bytes:
        from troth.crypto import sha256

        body = cbor.encode([GUARD_TYPE, version, 1, counts])
        raw = len(body).to_bytes(2, "big") + body + sha256(body)[:16]
        assert len(raw) <= GUARD_SLOT_BYTES  # refused for what it says, not its size
        return raw + b"\0" * (GUARD_SLOT_BYTES - len(raw))

    with pytest.raises(DecodeError, match="unknown scope"):
        decode_slot(slot(1, {"authority": 1, "policy": 2}))
    many = {f"s{n}": 0 for n in range(8)}  # fits at 0, not at the largest counts
    with pytest.raises(DecodeError, match="more scopes than a slot holds"):
        decode_slot(slot(2, {"policy": 1, **many}))
    assert decode_slot(encode_slot(3, {"policy": 2, "future-scope": 7})) == (
        3,
        {"future-scope": 7, "policy": 2},
    )


def test_a_held_back_table_read_by_a_second_store_is_held_back_there_too(tmp_path: Path) -> None:
    """A process that opens the table after another found the restore (found once) still
    holds the bundle back: the hold is a table, not the finder's memory."""
    from tests.support.backups import copy_db, restore_db

    gates = make_world()
    path, copy = tmp_path / "node.db", tmp_path / "copy.db"
    db = SqliteDatabase(path)
    store = BundleStore(gates.verifier, SqliteBundleTable(db))
    store.accept(gates.bundle(revision=1), feeds=gates.feeds(), now=T + 5)
    copy_db(path, copy)
    store.accept(gates.bundle(revision=2), feeds=gates.feeds(), now=T + 6)
    db.close()
    restore_db(path, copy)
    db = SqliteDatabase(path)
    assert SqliteBundleTable(db).restored is not None  # the finder
    later = SqliteBundleTable(db)
    assert later.restored is None  # found once
    again = BundleStore(gates.verifier, later)
    again.reload(now=T + 7)
    assert again.held_back(gates.authority.identifier)
    db.close()


# -- 54f: a role gone is revoked; one of the same name re-created is not ------------------------


def test_a_role_re_created_under_the_leases_name_is_no_revocation(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811
    orders: OrdersDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The daemon's revocation drops the role under the operator's steps (review 54f, postgres
    3), and someone re-creates a role of that name at once, owning a database so its DROP ROLE
    fails: the operator's revocation meets a role that exists, so its failure is no "already
    gone": the removal fails, the role is not called revoked."""
    from psycopg import sql

    from troth.errors import SecretError
    from troth.secrets.engines import postgres as postgres_engine

    daemon = setup(tmp_path, world, orders)
    agent = world.credential_a()
    issued = daemon.issue(agent, SECRET, scope=["orders:read"], now=now())
    role = issued.lease.engine_ref
    assert role is not None
    db, operator = open_broker(tmp_path / "node.db", now=now())
    real = postgres_engine._end_sessions
    evil = f"evil_{role}"[:60]

    def end_sessions(conn: object, name: str, wait_ms: int, *, strict: bool = True) -> None:
        real(conn, name, wait_ms, strict=strict)
        if not (tmp_path / "raced").exists():
            (tmp_path / "raced").touch()
            daemon.revoke(agent, issued.lease_id, now=now())
            with orders.server.connect() as admin:
                admin.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'x'").format(sql.Identifier(role))
                )
                admin.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(evil), sql.Identifier(role)
                    )
                )

    monkeypatch.setattr(postgres_engine, "_end_sessions", end_sessions)
    try:
        with pytest.raises(SecretError) as caught:
            operator.remove_secret(SECRET, now=now())
        assert (tmp_path / "raced").exists()
        assert "could not be revoked upstream" in str(caught.value)
        assert role in orders.roles("tl_")
    finally:
        with orders.server.connect() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(evil)))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        operator.close()
        db.close()
        daemon.close()
