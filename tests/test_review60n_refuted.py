"""Review 60n: crashes that leave nothing half done (each a real kill at the worst moments; a
defence broken fails it)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import NOW
from tests.support.backups import node_db, restores_found
from tests.support.enroll import acme_and_agent, enroll_in_process, resume_in_process
from tests.support.killed import KILLS, killed_after
from tests.support.leases import RemoteStub, make_world, open_broker
from troth.clock import FixedClock
from troth.errors import TrothError
from troth.faults import CRASH_EXIT_CODE, CRASH_POINTS
from troth.identity import verify_signed_by
from troth.node import init_node, open_node
from troth.node.rekey import rekey_vault
from troth.secrets import AllowListPolicy, LeaseState
from troth.secrets.broker import Broker
from troth.storage import SqliteDatabase
from troth.vault import KeyPurpose

_AFTER_COMMIT = (
    "storage.rollback-guard.before-write",
    "storage.rollback-guard.after-write",
    "identity.rotate.after-commit",
)


def _rotate_courier() -> None:
    with open_node("laptop") as node:
        node.identities.rotate("courier", now=NOW + 10, compromised=True)


def _node_state(path: Path) -> tuple[int, int]:
    """node.db's key rows and identity `courier`'s change count."""
    db = SqliteDatabase(path)
    try:
        keys = db.fetch_one("SELECT count(*) FROM vault_keys")
        changes = db.fetch_one("SELECT changes FROM identities WHERE name = 'courier'")
    finally:
        db.close()
    assert keys is not None
    assert changes is not None
    return int(keys[0]), int(changes[0])


def test_a_rotation_killed_at_any_statement_leaves_a_usable_identity(troth_home: Path) -> None:
    """A compromised rotation (two changes, a purpose key retired, the guard counted and
    dated) killed as its SQLite statements start (13 points, the last its commit) and at each crash
    point after its commit (the guard's raise, the stored copy's), the node directory
    reopened: the identity signs under one whole history (before or after), no restore is
    found (the guard matches node.db), and node.db holds the keys of before or of after."""
    init_node("laptop")
    path = node_db(troth_home, "laptop")
    with open_node("laptop") as node:
        node.identities.create(now=NOW, name="courier")
        node.identities.purpose_key("courier", KeyPurpose.SECURE_CHANNEL, now=NOW)
        node.identities.rotate("courier", now=NOW + 5)  # the guard's entry written
    saved = troth_home / "saved"
    shutil.copytree(path.parent, saved)
    before = _node_state(path)
    assert killed_after(0, _rotate_courier) == 0
    total, after = KILLS[-1], _node_state(path)
    assert total > 16
    assert after != before
    points: list[tuple[int, str | None]] = [
        (n, None) for n in sorted({1 + (total - 1) * i // 12 for i in range(13)})
    ]
    points += [(0, name) for name in _AFTER_COMMIT]  # the commit done, the rest not
    for point, crash_at in points:
        shutil.rmtree(path.parent)
        shutil.copytree(saved, path.parent)
        assert killed_after(point, _rotate_courier, crash_at) == CRASH_EXIT_CODE, point
        state = _node_state(path)
        assert state == (before if crash_at is None else after), (point, crash_at)
        with open_node("laptop") as node:
            assert node.identities.check_restored(NOW + 20) is None, point
            signer = node.identities.signer("courier", now=NOW + 20)
            body = b"after a crash at %d" % point
            verify_signed_by(
                signer.identity, signer.attestation, body, signer.sign(body), at=NOW + 20
            )
            assert signer.identity.change_count == state[1], point
            if state == before:  # the rotation is done again, whole
                node.identities.rotate("courier", now=NOW + 30, compromised=True)
        assert restores_found(path) == [], point


def test_an_enrollment_killed_anywhere_ends_enrolled_once(tmp_path: Path) -> None:
    """An enrollment (ticket redeemed, member recorded and credential issued at the authority;
    pending record, credential stored at the holder) killed as its SQLite statements start (13
    points over both nodes) and at each enrollment crash point: every kill ends in one of
    done, a pending record that resumes, or nothing used (the same one-use ticket enrolls
    again), and never a false restore."""
    with acme_and_agent(tmp_path, NOW) as (_, _, _, ticket):
        pass
    saved = tmp_path.parent / f"{tmp_path.name}-saved"
    shutil.copytree(tmp_path, saved)
    clock = FixedClock(NOW + 5)

    def enroll() -> None:
        with open_node("acme", home=tmp_path) as acme, open_node("agent", home=tmp_path) as agent:
            enroll_in_process(agent, "agent", acme.authority(), ticket, clock)

    assert killed_after(0, enroll) == 0
    total = KILLS[-1]
    points: list[tuple[int, str | None]] = [
        (n, None) for n in sorted({1 + (total - 1) * i // 12 for i in range(13)})
    ]
    points += [(0, name) for name in CRASH_POINTS if ".enroll." in name]
    ends = set()
    for point, crash_at in points:
        shutil.rmtree(tmp_path)
        shutil.copytree(saved, tmp_path)
        assert killed_after(point, enroll, crash_at) == CRASH_EXIT_CODE, (point, crash_at)
        with open_node("acme", home=tmp_path) as acme, open_node("agent", home=tmp_path) as agent:
            authority, wallet = acme.authority(), agent.wallet
            if wallet.held("agent"):
                ends.add("done")
            elif pending := wallet.pending_enrollments("agent"):
                resume_in_process(agent, pending[0], authority, clock)
                ends.add("resumed")
            else:
                enroll_in_process(agent, "agent", authority, ticket, clock)
                ends.add("again")
            assert len(wallet.held("agent")) == 1, (point, crash_at)
            assert wallet.pending_enrollments("agent") == []
            for node in (acme, agent):
                assert node.identities.check_restored(NOW + 6) is None, (point, crash_at)
    assert ends == {"done", "resumed", "again"}


def test_a_remote_lease_killed_anywhere_is_active_or_swept(tmp_path: Path) -> None:
    """A lease of a remote engine (PENDING committed, the engine's role made, ACTIVE committed)
    killed as its statements start (13 points, the last two among them):
    reopened, no restore is found (the broker scope's guard matches) and the broker's
    recovery leaves no lease PENDING; one killed after the PENDING commit is revoked
    upstream, never left live with no holder."""
    path, saved = tmp_path / "d" / "node.db", tmp_path / "saved"
    path.parent.mkdir()
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"s": None}})

    def broker(now: int) -> tuple[SqliteDatabase, Broker, RemoteStub]:
        db, opened = open_broker(path, now=now, policy=policy)
        engine = RemoteStub()
        opened.engines[engine.kind] = engine
        return db, opened, engine

    def issue() -> None:
        db, opened, _ = broker(NOW + 1)
        opened.issue(world.credential_a(), "s", now=NOW + 1)
        opened.close()
        db.close()

    db, first, engine = broker(NOW)
    first.put_secret("s", engine.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)
    first.issue(world.credential_a(), "s", now=NOW)  # the broker scope armed
    first.close()
    db.close()
    shutil.copytree(path.parent, saved)
    assert killed_after(0, issue) == 0
    total = KILLS[-1]
    swept = 0
    for point in sorted({1 + (total - 1) * i // 12 for i in range(13)} | {total - 1, total}):
        shutil.rmtree(path.parent)
        shutil.copytree(saved, path.parent)
        assert killed_after(point, issue) == CRASH_EXIT_CODE, point
        db, reopened, engine = broker(NOW + 2)
        assert reopened.restored is None, point
        reopened.recover(NOW + 2)
        states = [lease.state for lease in reopened.leases(world.credential_a())]
        assert states == [LeaseState.ACTIVE], (point, states)  # the first lease only
        swept += len(engine.revoked)
        reopened.close()
        db.close()
    assert swept > 0  # some kill fell between the PENDING commit and the ACTIVE one


def test_a_vault_rekey_killed_anywhere_leaves_a_vault_that_opens(troth_home: Path) -> None:
    """`troth node rekey` (the new KEK pending in the key file, the rows re-sealed, node.db
    vacuumed and scrubbed, the key file switched) killed as its statements start (13 points)
    and at each of its crash points: the node opens (twice: a finished rekey settles once),
    its identity signs and attests a channel key, no restore is found, and it rekeys again."""
    init_node("n")
    with open_node("n") as node:
        node.identities.create(now=NOW, name="a")
        node.identities.purpose_key("a", KeyPurpose.SECURE_CHANNEL, now=NOW)
    saved = troth_home.parent / "saved"
    shutil.copytree(troth_home, saved)

    def rekey() -> None:
        rekey_vault("n")

    assert killed_after(0, rekey) == 0
    total = KILLS[-1]
    points: list[tuple[int, str | None]] = [
        (n, None) for n in sorted({1 + (total - 1) * i // 12 for i in range(13)})
    ]
    points += [(0, name) for name in CRASH_POINTS if name.startswith("vault.rekey.")]
    for point, crash_at in points:
        shutil.rmtree(troth_home)
        shutil.copytree(saved, troth_home)
        assert killed_after(point, rekey, crash_at) == CRASH_EXIT_CODE, (point, crash_at)
        for _ in range(2):
            with open_node("n") as node:
                assert node.identities.check_restored(NOW + 1) is None, (point, crash_at)
                node.identities.signer("a", now=NOW + 1).sign(b"after the crash")
                node.identities.purpose_key("a", KeyPurpose.SECURE_CHANNEL, now=NOW + 1)
        rekey_vault("n")
        with open_node("n") as node:
            node.identities.signer("a", now=NOW + 2).sign(b"after the rekey")


def test_a_node_create_killed_anywhere_opens_or_is_made_again(troth_home: Path) -> None:
    """`troth node create` and its first identity killed as its statements start (13
    points) and at the node's private-file crash points: the node opens and its identity
    signs, or (killed before its config was written) `troth node create` makes it again over
    what the kill left; never a node that neither opens nor can be made."""

    def make() -> None:
        init_node("laptop")
        with open_node("laptop") as node:
            node.identities.create(now=NOW, name="courier")

    assert killed_after(0, make) == 0
    total = KILLS[-1]
    points: list[tuple[int, str | None]] = [
        (n, None) for n in sorted({1 + (total - 1) * i // 12 for i in range(13)})
    ]
    points += [(0, "node.file.before-rename"), (0, "node.file.after-rename")]
    ends = set()
    for point, crash_at in points:
        shutil.rmtree(troth_home)
        assert killed_after(point, make, crash_at) == CRASH_EXIT_CODE, (point, crash_at)
        try:
            with open_node("laptop") as node:
                if "courier" not in [r.name for r in node.identities.list_local()]:
                    node.identities.create(now=NOW, name="courier")
                node.identities.signer("courier", now=NOW + 1).sign(b"made")
            ends.add("opened")
        except TrothError:  # killed before its config was written: made again as it is
            make()
            ends.add("made again")
    assert "opened" in ends
