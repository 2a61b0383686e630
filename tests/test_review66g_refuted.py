"""Review 66g, attacks on enrollment's crash paths and the software vault that did not work
(each test fails if the defence it names breaks).

- A storage failure at each write of an enrollment, on the holder's side and on the
  authority's (every INSERT, UPDATE and DELETE in turn raises, as a full disk or a broken
  file would, and the process is "restarted": both nodes reopened), never strands the member:
  the enrollment either left a pending record that a resume completes, or nothing, and the
  same ticket enrolls again; exactly one credential is held and nothing stays pending. A
  sweep over every write, beside the named crash points real processes are killed at
  (tests/test_resilience_enrollment.py).
- A pinned enrollment of a checkpointed ticket whose answer was lost is resumed without the
  pin (a pending record does not keep it): the history was stored linked before the request
  was sent, so the resume is not refused as unattested and the next ticket needs no pin.
- Two enrollments of one identity with one ticket, interleaved (a `troth enroll` while the
  node resumes it): the authority answers both with one credential, the holder holds one.
- A seal key's id named as a private key's (Ed25519 to sign, X25519 to agree) unseals nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.enroll import (
    AnswerLost,
    acme_and_agent,
    enroll_in_process,
    resume_in_process,
)
from tests.test_review30a_enrollment import acme, checkpointed_ticket  # noqa: F401 (fixture)
from tests.test_trust_scope import NOW as TRUST_NOW
from troth import enrollment
from troth.authority import Authority
from troth.authority.client import authority_pin_of
from troth.clock import FixedClock
from troth.crypto import KeyType
from troth.errors import StorageError, VaultError
from troth.node import Node, open_node
from troth.storage import SqliteDatabase, SqliteKeyStore
from troth.vault import KeyHandle, KeyPurpose, SoftwareVault

NOW = 1_800_000_000
_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)


class _FailingWrite:
    """Raise StorageError at the `at`-th write statement to a database under `side`."""

    def __init__(self, side: str, at: int) -> None:
        self.side, self.at, self.seen = side, at, 0
        self.armed = True

    def check(self, db: SqliteDatabase, sql: str) -> None:
        if not self.armed or not _WRITE.match(sql) or self.side not in Path(db.path).parts:
            return
        self.seen += 1
        if self.seen == self.at:
            raise StorageError(f"injected failure at write {self.at}")


def _inject(monkeypatch: pytest.MonkeyPatch, failing: _FailingWrite) -> None:
    execute, execute_many = SqliteDatabase.execute, SqliteDatabase.execute_many

    def one(db: SqliteDatabase, sql: str, params: tuple[object, ...] = ()) -> object:
        failing.check(db, sql)
        return execute(db, sql, params)

    def many(db: SqliteDatabase, sql: str, rows: object) -> None:
        failing.check(db, sql)
        execute_many(db, sql, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(SqliteDatabase, "execute", one)
    monkeypatch.setattr(SqliteDatabase, "execute_many", many)


@pytest.mark.parametrize(
    ("side", "at"), [("agent", at) for at in range(1, 7)] + [("acme", at) for at in range(1, 11)]
)
def test_a_storage_failure_at_any_write_of_an_enrollment_strands_no_member(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, side: str, at: int
) -> None:
    clock = FixedClock(NOW)
    failing = _FailingWrite(side, at)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, ticket):
        _inject(monkeypatch, failing)
        raised: StorageError | None = None
        try:
            enroll_in_process(agent, "agent", authority, ticket, clock)
        except StorageError as exc:
            raised = exc
        failing.armed = False
    failed = raised is not None
    assert failed == (failing.seen >= at)  # the injection fired, or the enrollment completed
    assert raised is None or f"write {at}" in str(raised)
    with open_node("acme", home=tmp_path) as acme_node, open_node("agent", home=tmp_path) as node:
        restarted = acme_node.authority()
        pending = node.wallet.pending_enrollments("agent")
        if failed and pending:
            for record in pending:
                resume_in_process(node, record, restarted, clock)
        elif failed:  # nothing recorded: the same ticket enrolls
            enroll_in_process(node, "agent", restarted, ticket, clock)
        assert len(node.wallet.held("agent")) == 1
        assert node.wallet.pending_enrollments("agent") == []


def test_a_pinned_enrollment_whose_answer_was_lost_resumes_without_the_pin(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    node.identities.rotate("acme", now=TRUST_NOW)
    pin = authority_pin_of(node.identities.get("acme", now=TRUST_NOW).identity)
    clock = FixedClock(TRUST_NOW)

    def lost(request: bytes) -> bytes:
        authority.enroll(request, now=TRUST_NOW)
        raise AnswerLost

    def send(request: bytes) -> bytes:
        return authority.enroll(request, now=TRUST_NOW).encode()

    first = checkpointed_ticket(authority, node)
    with pytest.raises(AnswerLost):
        enrollment.enroll(
            members.identities, members.wallet, "alice", first, clock=clock, send=lost,
            authority_pin=pin,
        )  # fmt: skip
    (pending,) = members.wallet.pending_enrollments("alice")
    done = enrollment.resume(members.identities, members.wallet, pending, clock=clock, send=send)
    assert done.authority == authority.identifier
    assert members.wallet.pending_enrollments("alice") == []
    assert members.identities.linked(authority.identifier)
    members.identities.create(now=TRUST_NOW, name="bob")
    second = checkpointed_ticket(authority, node)
    bob = enrollment.enroll(
        members.identities, members.wallet, "bob", second, clock=clock, send=send
    )
    assert bob.authority == authority.identifier


def test_two_interleaved_enrollments_with_one_ticket_hold_one_credential(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, ticket):
        steps = [
            enrollment.enrollment(agent.identities, agent.wallet, "agent", ticket, clock=clock)
            for _ in range(2)
        ]
        requests = [enrollment.request_of(each) for each in steps]
        answers = [authority.enroll(request, now=NOW).encode() for request in requests]
        assert answers[0] == answers[1]  # one redemption, one credential
        done = [
            enrollment.complete(each, answer) for each, answer in zip(steps, answers, strict=True)
        ]
        assert done[0].credential.links[-1].hash == done[1].credential.links[-1].hash
        assert len(agent.wallet.held("agent")) == 1
        assert agent.wallet.pending_enrollments("agent") == []


def test_a_seal_keys_id_signs_nothing_as_a_private_key(tmp_path: Path) -> None:
    """The sign-side twin of review 66g, vault 1: a handle naming a seal key's id as an
    Ed25519 or X25519 key is refused by the row's type before anything is unsealed (its 32
    bytes would load as a private key of either type)."""
    db = SqliteDatabase(tmp_path / "vault.db")
    vault = SoftwareVault(SqliteKeyStore(db), bytes(range(32)))
    seal = vault.generate_seal_key()
    with pytest.raises(VaultError, match="does not match its stored record"):
        vault.sign(KeyHandle(vault.name, KeyType.ED25519, seal.key_id), b"data")
    x25519 = vault.generate(KeyType.X25519, KeyPurpose.SECURE_CHANNEL)
    with pytest.raises(VaultError, match="does not match its stored record"):
        vault.dh(KeyHandle(vault.name, KeyType.X25519, seal.key_id), vault.public_key(x25519))
