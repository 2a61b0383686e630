"""Review 69l (review of 69b's loopback source, 69e's wallet memo and claims check, 69f's
schema 20 migration): attacks that did not work. Each test is a real attempt and fails if the
defence it names breaks."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from tests.support.gates import T, make_world
from tests.test_review69f_enroll import LINKED
from troth.credentials import Attributes, CredentialBody, CredentialChain, issue_credential
from troth.credentials.held_rows import claims_cover, live_held
from troth.errors import ConfigError, NotFound
from troth.node import init_node, open_node
from troth.storage import SqliteDatabase
from troth.storage.sqlite import _MIGRATIONS
from troth.storage.sqlite_stores import SqliteIdentityStore
from troth.transport import connection
from troth.transport.connection import LOOPBACK_SOURCE, peer_host, source_host

DAY = 86_400
READ = Attributes({"orders.access": "read"})
ADMIN = Attributes({"troth.role": "policy-admin"})
SRC = Path(__file__).resolve().parent.parent / "src" / "troth"


# -- 69b: the loopback source ------------------------------------------------------------------


@pytest.mark.parametrize(
    "peername",
    [("::1", 7, 0, 1), ("::1", 7, 0, 99), ("::ffff:127.0.0.9", 7, 0, 3), ("127.3.2.1", 7)],
)
def test_a_zone_on_a_loopback_peer_makes_no_source_of_its_own(peername: tuple[object, ...]) -> None:
    """A scope id on ::1 or a mapped 127.x (`peer_host` appends it as a zone, `%lo`, or the
    index when the interface is gone) does not make a loopback client a source per zone."""
    assert source_host(peer_host(peername)) == LOOPBACK_SOURCE


def test_the_test_seam_naming_loopback_addresses_apart_is_not_installed_outside_its_fixture() -> (
    None
):
    """tests/conftest.py imports tests.support.sources: importing it swaps nothing (only the
    `loopback_sources` fixture, or a node started with its sitecustomize, does), and nothing
    under src/troth names the seam, so a node counts 127.0.0.0/8 as one source."""
    assert connection.source_host.__module__ == "troth.transport.connection"
    assert connection.source_host("127.0.0.2") == LOOPBACK_SOURCE
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "tests.support" not in text, path
        assert "loopback_site" not in text, path


# -- 69e: a row's own leaf decides only which rows are verified --------------------------------


def test_a_row_whose_unverified_leaf_claims_the_attributes_is_still_verified(
    tmp_path: Path,
) -> None:
    """node.db edited: a held read-only chain's leaf body swapped for one claiming the
    policy-admin role (its signature the read-only one's), the row's id set to the forged
    link's hash so the row is what it says (`chain_expiry`). `claims_cover` lets it through to
    verification, which refuses it: `best(needs=ADMIN)` finds nothing, not the forged chain."""
    world = make_world()
    acme = world.authority
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        me = node.identities.create(now=T, name="me")
        read, admin = (
            issue_credential(
                acme.signer, subject=me.identifier, attributes=a, now=T + 200, ttl=DAY, depth=2
            )
            for a in (READ, ADMIN)
        )
        held = CredentialChain((read,), (acme.identity.history,)).encode()
        node.wallet.hold("me", held, now=T + 201)
        decoded = CredentialChain.decode(held)
        forged_link = dataclasses.replace(decoded.credentials[0], body=admin.body)
        assert CredentialBody.decode(forged_link.body).attributes == ADMIN
        forged = dataclasses.replace(decoded, credentials=(forged_link,)).encode()
        node.db.execute("UPDATE held_credentials SET chain = ?, id = ?", (forged, forged_link.hash))
        rows = list(live_held(node.wallet.held("me"), now=T + 300))
        assert [h.chain for h in rows] == [forged]  # the row is what it says: only verifying
        assert claims_cover(forged, ADMIN)  # refuses it
        with pytest.raises(NotFound):
            node.wallet.best("me", now=T + 300, needs=ADMIN)


# -- 69f: schema 20's migration ----------------------------------------------------------------


def _schema_19_with_a_copy(path: Path) -> bytes:
    """node.db at schema 19 holding one observed copy at linked = 1; the copy's digest."""
    digest = b"\x01" * 32
    db = SqliteDatabase(path)
    SqliteIdentityStore(db).insert_history(digest, b"history", 1, T, linked=True)
    db.execute(f"PRAGMA user_version = {LINKED - 1}")
    db.close()
    return digest


def _linked(path: Path, digest: bytes) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        row = conn.execute("SELECT linked FROM identities WHERE identifier = ?", (digest,))
        return int(version), int(row.fetchone()[0])


def test_a_crash_in_the_schema_20_migration_leaves_schema_19_whole(tmp_path: Path) -> None:
    """The schema 20 UPDATE runs, then the migrating process fails before its commit (a disk
    error): node.db stays at schema 19 with linked = 1 (one transaction), and the next open
    migrates it to 2."""
    path = tmp_path / "node.db"
    digest = _schema_19_with_a_copy(path)
    update = str(_MIGRATIONS[LINKED - 1])

    def crashes(conn: sqlite3.Connection) -> None:
        conn.execute(update.split("\n", 3)[-1])  # the UPDATE, past its comment
        row = conn.execute("SELECT linked FROM identities WHERE identifier = ?", (digest,))
        assert row.fetchone()[0] == 2  # written, not yet committed
        raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(sqlite3.OperationalError):
        SqliteDatabase(path, migrations=(*_MIGRATIONS[: LINKED - 1], crashes))
    assert _linked(path, digest) == (LINKED - 1, 1)
    SqliteDatabase(path).close()
    assert _linked(path, digest) == (len(_MIGRATIONS), 2)


def test_a_troth_from_before_schema_20_refuses_a_migrated_node_db(tmp_path: Path) -> None:
    """Downgrade: a troth knowing schema 19 opens node.db at 20 and refuses, naming both,
    rather than reading linked = 2 as 1 (a bare truth test) and writing under it."""
    path = tmp_path / "node.db"
    digest = _schema_19_with_a_copy(path)
    SqliteDatabase(path).close()
    with pytest.raises(ConfigError, match=f"schema {len(_MIGRATIONS)}; this troth knows 19"):
        SqliteDatabase(path, migrations=_MIGRATIONS[: LINKED - 1])
    assert _linked(path, digest) == (len(_MIGRATIONS), 2)
