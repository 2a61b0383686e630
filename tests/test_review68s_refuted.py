"""Review 68s (adversarial review of 68j's bundle store and wallet fixes): attacks that did not
work. Each test is a real attempt and fails if the defence it names breaks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.gates import GatesWorld, T, make_world, rotate
from tests.support.parties import Party
from troth.credentials import Attributes, CredentialChain, issue_credential
from troth.gates import BundleStore, SqliteBundleTable
from troth.node import init_node, open_node
from troth.storage.sqlite import SqliteDatabase

DAY = 86_400
READ = Attributes({"orders.access": "read"})

# -- a reload whose stamp and bytes another process tore apart --------------------------------


class _TornTable(SqliteBundleTable):
    """A table whose next `stamps` lets another process's connection store `then` between
    the stamps read and the bytes loaded (a reload torn between stamp and bytes)."""

    then: bytes | None = None
    other: SqliteBundleTable | None = None
    authority = b""

    def stamps(self) -> dict[bytes, tuple[int, bytes]]:
        stamps = super().stamps()
        if self.then is not None and self.other is not None:
            self.other.save_if_newer(self.authority, 99, self.then, T + 6)
            self.then = None
        return stamps


def _torn(tmp_path: Path) -> tuple[GatesWorld, BundleStore, _TornTable, BundleStore]:
    world = make_world()
    path = tmp_path / "node.db"
    table = _TornTable(SqliteDatabase(path), now=T + 5)
    table.authority = world.authority.identifier.digest
    table.other = SqliteBundleTable(SqliteDatabase(path), now=T + 5)
    writer = BundleStore(world.verifier, table.other)  # the other process's store
    reader = BundleStore(world.verifier, table)
    writer.accept(world.bundle(revision=1), feeds=world.feeds(), now=T + 5)
    reader.reload(now=T + 5)
    writer.accept(world.bundle(revision=2), feeds=world.feeds(), now=T + 5)
    return world, reader, table, writer


def test_a_reload_torn_between_stamp_and_bytes_activates_the_bytes_read(tmp_path: Path) -> None:
    """The stamp says revision 2; another process stores revision 99 before the bytes are
    read: the reload activates 99 (what it verified), and the next reload, seeing the stamp
    99, keeps it and loads nothing again; `policy show` (`dormant.unloaded`) says nothing
    failed."""
    world, reader, table, _ = _torn(tmp_path)
    table.then = world.bundle(revision=99)
    (loaded,) = reader.reload(now=T + 6)
    assert loaded.body.revision == 99
    assert reader.reload(now=T + 7) == []
    held = reader.active(world.authority.identifier)
    assert held is not None
    assert held.bundle.body.revision == 99
    assert reader.dormant.unloaded() == []


def test_a_torn_reload_of_a_bundle_not_yet_valid_denies_then_loads_it_in_time(
    tmp_path: Path,
) -> None:
    """The bytes read in place of the stamped revision 2 are revision 99, not valid until
    T + 1000: the active revision 1 is put out of force (the table holds a newer bundle that
    did not load: deny), `policy show` lists it, and it loads once the clock reaches it (its
    retry window is the one of the stamp read later, not of the torn one)."""
    world, reader, table, _ = _torn(tmp_path)
    table.then = world.bundle(revision=99, now=T + 1_000)
    assert reader.reload(now=T + 6) == []
    authority = world.authority.identifier
    assert [a for a, _ in reader.dormant.unloaded()] == [authority.digest]
    held = reader.active(authority)
    assert held is not None
    assert reader.dormant.ahead(authority.digest, held.bundle.body.revision, held.bundle.digest)
    assert reader.reload(now=T + 7) == []
    (loaded,) = reader.reload(now=T + 1_001)
    assert loaded.body.revision == 99
    assert reader.dormant.unloaded() == []


# -- accept and reload in two processes on one node.db ----------------------------------------


_CHILD = """
import sys
from pathlib import Path
from troth.gates.bundle_tables import SqliteBundleTable
from troth.storage.sqlite import SqliteDatabase
path, authority, now = Path(sys.argv[1]), bytes.fromhex(sys.argv[2]), int(sys.argv[3])
table = SqliteBundleTable(SqliteDatabase(path), now=now)
for revision, name in enumerate(sys.argv[4:], start=2):  # what the other process's accepts store
    table.save_if_newer(authority, revision, Path(name).read_bytes(), now)
"""


def test_accept_in_one_process_and_reload_in_another_on_one_node_db(tmp_path: Path) -> None:
    """Another process stores revisions 2..5 in node.db (as its accepts do, once verified)
    while this one reloads from its own connection: this store's revision never goes down,
    ends on 5, and nothing is noted as not loaded (`troth policy show`)."""
    world = make_world()
    path = tmp_path / "node.db"
    reader = BundleStore(world.verifier, SqliteBundleTable(SqliteDatabase(path), now=T + 5))
    reader.accept(world.bundle(revision=1), feeds=world.feeds(), now=T + 5)
    names = []
    for revision in range(2, 6):
        name = tmp_path / f"{revision}.bundle"
        name.write_bytes(world.bundle(revision=revision))
        names.append(str(name))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    args = [str(path), world.authority.identifier.digest.hex(), str(T + 6), *names]
    child = subprocess.Popen([sys.executable, "-c", _CHILD, *args], env=env)
    seen = [1]
    for _ in range(100_000):  # bounded: a child that hangs fails the test, not the run
        running = child.poll() is None
        reader.reload(now=T + 6)
        held = reader.active(world.authority.identifier)
        assert held is not None
        assert held.bundle.body.revision >= seen[-1]
        seen.append(held.bundle.body.revision)
        if not running:
            break
    assert child.wait(20) == 0
    assert seen[-1] == 5
    assert reader.dormant.unloaded() == []


# -- the wallet: rows from an authority key rotated away ---------------------------------------


def test_a_chain_issued_before_its_authority_rotated_is_not_shown(tmp_path: Path) -> None:
    """Twenty renewals from the authority before its rotation and one after it, the rotated
    history observed here: only the chain under the new history is shown (each authority's
    history asked once per call, 68s wallet 1, still judges every row)."""
    world = make_world()
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        me = node.identities.create(now=T, name="me")

        def chain(party: Party, ttl: int) -> bytes:
            credential = issue_credential(
                party.signer, subject=me.identifier, attributes=READ, now=T + 200, ttl=ttl, depth=2
            )
            return CredentialChain((credential,), (party.identity.history,)).encode()

        for i in range(20):  # later expiries than the new one: first in the store's order
            node.wallet.hold("me", chain(world.authority, 9 * DAY + i), now=T + 201)
        rotated, signer = rotate(world, world.authority, T + 100)
        fresh = chain(signer, 5 * DAY)
        node.wallet.hold("me", fresh, now=T + 201)
        assert len(node.wallet.presentable("me", now=T + 202)) == 21  # the rotation unknown
        node.identities.observe(rotated)
        assert [h.chain for h in node.wallet.presentable("me", now=T + 202)] == [fresh]
