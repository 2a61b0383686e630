"""Store-or-extend (IdentityService.observe) and pre-rotation against the attacks of issue 7: a
stolen backup presenting the rolled-back history, forks built with an old key, concurrent
observers of different extensions."""

from __future__ import annotations

import multiprocessing
import queue
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.conftest import NOW
from tests.support.histories import HonestHistory, encode, extend, honest_history
from troth.clock import FixedClock
from troth.crypto import KeyType
from troth.crypto.private import generate_private_key
from troth.encoding import cbor
from troth.errors import IdentityError, IdentityFailure
from troth.identity import (
    ChangeBody,
    IdentityService,
    SignedChange,
    VerifiedIdentity,
    encode_history,
    next_key_digest,
    rotate_identity,
    verify_history,
    verify_signed_by,
)
from troth.identity.known import KnownHistories, StoredSpan
from troth.node import Node, init_node, open_node
from troth.storage import SqliteDatabase, SqliteIdentityStore
from troth.vault import KeyPurpose, SoftwareVault

F = IdentityFailure
T = NOW - 1000  # when the histories built here begin


def observer(path: Path, cache_seconds: float = 10.0) -> IdentityService:
    """A verifier with a store of its own (its own SQLite connection per thread)."""
    return IdentityService(
        SoftwareVault(),
        SqliteIdentityStore(SqliteDatabase(path)),
        known_cache_seconds=cache_seconds,
    )


def refused(service: IdentityService, data: bytes, reason: IdentityFailure) -> IdentityError:
    with pytest.raises(IdentityError) as caught:
        service.observe(verify_history(data, now=NOW))
    assert caught.value.reason is reason, caught.value
    return caught.value


# -- the stolen backup ---------------------------------------------------------------------------


@pytest.fixture
def stolen(troth_home: Path) -> Iterator[tuple[Node, Node, Node]]:
    """(owner, thief, verifier): the thief opened a copy of the owner's node directory taken
    before the owner rotated (primary key k0 and the sealed next key k1 included)."""
    init_node("owner")
    with open_node("owner") as owner:
        owner.identities.create(now=T, name="agent")
    shutil.copytree(troth_home / "nodes" / "owner", troth_home / "nodes" / "thief")
    init_node("verifier")
    with open_node("owner") as owner, open_node("thief") as thief, open_node("verifier") as ver:
        yield owner, thief, ver


def test_stolen_backup_rollback_is_refused_by_a_verifier_with_a_store(
    stolen: tuple[Node, Node, Node],
) -> None:
    owner, thief, verifier = stolen
    verifier.identities.observe(verify_history(owner.identities.export("agent"), now=T + 1))
    owner.identities.rotate("agent", now=T + 10)
    verifier.identities.observe(verify_history(owner.identities.export("agent"), now=T + 11))

    signer = thief.identities.signer("agent", now=T + 20)  # k0's purpose key, attested under c0
    body = b"transfer everything to mallory"
    signature = signer.sign(body)
    presented = verify_history(signer.identity.history, now=T + 20)
    # a stateless verifier accepts [c0] and the signature: it relies on the authority's feed
    verify_signed_by(presented, signer.attestation, body, signature, at=T + 20)
    with pytest.raises(IdentityError) as caught:
        verifier.identities.observe(presented)
    assert caught.value.reason is F.ROLLBACK
    with pytest.raises(IdentityError) as caught:
        verifier.identities.import_history(signer.identity.history, now=T + 20)
    assert caught.value.reason is F.ROLLBACK


def test_the_thief_rotating_its_copy_is_a_fork(stolen: tuple[Node, Node, Node]) -> None:
    """The backup holds the sealed next key, so the thief can build a valid [c0, c1']; any
    verifier that stored the owner's [c0, c1] refuses it as a fork."""
    owner, thief, verifier = stolen
    owner.identities.rotate("agent", now=T + 10)
    verifier.identities.observe(verify_history(owner.identities.export("agent"), now=T + 11))
    forked = thief.identities.rotate("agent", now=T + 12)
    assert (
        forked.identity.current_key
        == verify_history(owner.identities.export("agent"), now=T + 12).current_key
    )  # both reveal the committed k1 ...
    with pytest.raises(IdentityError) as caught:  # ... but commit to different next keys
        verifier.identities.observe(forked.identity)
    assert caught.value.reason is F.FORK
    assert caught.value.change == 1
    # the owner's node refuses the fork of its own identity too
    with pytest.raises(IdentityError) as caught:
        owner.identities.observe(forked.identity)
    assert caught.value.reason is F.FORK


def test_k0_fork_introducing_an_attacker_key_is_refused_statelessly(
    stolen: tuple[Node, Node, Node],
) -> None:
    """With the rotated-out primary key k0 and the vault it lives in, [c0, c1'] introducing an
    attacker key is refused by verify_history itself (NEXT_KEY_MISMATCH)."""
    owner, thief, _verifier = stolen
    owner.identities.rotate("agent", now=T + 10)
    k0 = thief.identities.get("agent", now=T + 20)
    attacker = thief.vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    with pytest.raises(IdentityError) as caught:  # the builder refuses a key not committed to
        rotate_identity(
            thief.vault, k0.identity, k0.primary_key, attacker, now=T + 20, valid_for=10**6
        )
    assert caught.value.reason is F.NEXT_KEY_MISMATCH
    body = ChangeBody(
        1,
        k0.identity.current_change_hash,
        thief.vault.public_key(attacker),
        next_key_digest(thief.vault.public_key(attacker)),
        T + 20,
        T + 20,
        T + 10**6,
    )
    encoded = body.encode()
    forged = SignedChange(
        encoded, thief.vault.sign(attacker, encoded), thief.vault.sign(k0.primary_key, encoded)
    )
    with pytest.raises(IdentityError) as caught:
        verify_history(encode_history([k0.identity.changes[0].signed, forged]), now=T + 21)
    assert caught.value.reason is F.NEXT_KEY_MISMATCH
    assert caught.value.change == 1


# -- store-or-extend -----------------------------------------------------------------------------


def test_first_copy_stored_then_only_extensions(tmp_path: Path) -> None:
    history = extend(extend(honest_history(1, start=T), T + 1), T + 2)
    service = observer(tmp_path / "v.db")
    store = SqliteIdentityStore(SqliteDatabase(tmp_path / "v.db"))
    digest = verify_history(encode(history.changes), now=NOW).identifier.digest
    assert store.get_history(digest) is None
    service.observe(verify_history(encode(history.changes[:1]), now=NOW))
    assert store.get_history(digest) == (encode(history.changes[:1]), 1)
    service.observe(verify_history(encode(history.changes), now=NOW))
    assert store.get_history(digest) == (encode(history.changes), 3)
    service.observe(verify_history(encode(history.changes), now=NOW))  # equal: fine
    refused(service, encode(history.changes[:2]), F.ROLLBACK)
    assert store.get_history(digest) == (encode(history.changes), 3)


def test_check_refuses_like_observe_but_stores_nothing(tmp_path: Path) -> None:
    """For requesters not yet authorised: a stranger's history is judged, never stored."""
    history = extend(honest_history(1, start=T), T + 1)
    service = observer(tmp_path / "v.db")
    store = SqliteIdentityStore(SqliteDatabase(tmp_path / "v.db"))
    full = verify_history(encode(history.changes), now=NOW)
    service.check_known(full)
    assert store.get_history(full.identifier.digest) is None
    service.observe(full)
    with pytest.raises(IdentityError) as caught:
        service.check_known(verify_history(encode(history.changes[:1]), now=NOW))
    assert caught.value.reason is F.ROLLBACK


def test_an_unreadable_stored_copy_refuses_rather_than_being_replaced(tmp_path: Path) -> None:
    line = honest_history(1, start=T)
    identity = verify_history(encode(line.changes), now=NOW)
    store = SqliteIdentityStore(SqliteDatabase(tmp_path / "v.db"))
    version_1 = cbor.encode(["troth.identity.history", 1, [c.to_cbor() for c in line.changes]])
    store.insert_history(identity.identifier.digest, version_1, 1, NOW)
    with pytest.raises(IdentityError) as caught:
        observer(tmp_path / "v.db").observe(identity)
    assert caught.value.reason is F.MALFORMED
    assert store.get_history(identity.identifier.digest) == (version_1, 1)


def test_a_copy_stored_by_another_process_is_seen(tmp_path: Path) -> None:
    """Two services on one database (as a node and a CLI process): a fork is refused at once
    whatever the cache holds; a rollback once the cached entry is older than the window."""
    line = honest_history(1, start=T)
    rotated = extend(line, T + 5)
    fork = extend(line, T + 6)
    cached = observer(tmp_path / "v.db")
    fresh = observer(tmp_path / "v.db", cache_seconds=0)
    writer = observer(tmp_path / "v.db")
    for service in (cached, fresh):
        service.observe(verify_history(encode(line.changes), now=NOW))
    writer.observe(verify_history(encode(rotated.changes), now=NOW))
    refused(cached, encode(fork.changes), F.FORK)
    refused(fresh, encode(fork.changes), F.FORK)
    refused(fresh, encode(line.changes), F.ROLLBACK)


def test_the_known_copy_takes_no_write_lock(tmp_path: Path) -> None:
    """The hot path (a known peer presenting the stored copy) does not write: it completes while
    another connection holds the database's write lock."""
    line = honest_history(1, start=T)
    service = observer(tmp_path / "v.db")
    identity = verify_history(encode(line.changes), now=NOW)
    service.observe(identity)
    other = SqliteDatabase(tmp_path / "v.db")
    with other.transaction():  # BEGIN IMMEDIATE: holds the write lock
        for _ in range(1000):
            service.observe(identity)
    other.close()


# -- concurrency -----------------------------------------------------------------------------------


def _extensions(count: int) -> tuple[HonestHistory, list[bytes]]:
    """A one-change history and `count` different valid extensions of it (each reveals the
    committed key with another next key: what a holder of a full backup can make)."""
    line = honest_history(1, start=T)
    return line, [encode(extend(line, T + 1 + n).changes) for n in range(count)]


def _race(service_for: list[IdentityService], histories: list[bytes]) -> list[str]:
    identities = [verify_history(data, now=NOW) for data in histories]
    barrier = threading.Barrier(len(identities))
    outcomes: list[str] = []

    def run(service: IdentityService, identity: VerifiedIdentity) -> None:
        barrier.wait()
        try:
            service.observe(identity)
            outcomes.append("stored")
        except IdentityError as exc:
            outcomes.append(exc.reason.name)

    threads = [
        threading.Thread(target=run, args=(service, identity))
        for service, identity in zip(service_for, identities, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(outcomes)


@pytest.mark.parametrize("prefix_stored", [True, False])
@pytest.mark.parametrize("shared", [True, False])
def test_eight_threads_observing_different_extensions(
    tmp_path: Path, prefix_stored: bool, shared: bool
) -> None:
    """Eight threads (each its own SQLite connection; one service or eight): exactly one wins,
    the other seven are forks, and the stored copy is the winner's."""
    line, histories = _extensions(8)
    path = tmp_path / "v.db"
    one = observer(path)
    if prefix_stored:
        one.observe(verify_history(encode(line.changes), now=NOW))
    services = [one] * 8 if shared else [observer(path) for _ in range(8)]
    assert _race(services, histories) == ["FORK"] * 7 + ["stored"]
    stored = SqliteIdentityStore(SqliteDatabase(path)).get_history(
        verify_history(histories[0], now=NOW).identifier.digest
    )
    assert stored is not None
    assert stored[0] in histories
    assert stored[1] == 2


def _observe_in_process(
    path: str, history: bytes, barrier: object, results: multiprocessing.Queue[str]
) -> None:
    service = observer(Path(path))
    identity = verify_history(history, now=NOW)
    barrier.wait()  # type: ignore[attr-defined]
    try:
        service.observe(identity)
        results.put("stored")
    except IdentityError as exc:
        results.put(exc.reason.name)


def test_two_processes_observing_different_extensions(tmp_path: Path) -> None:
    line, histories = _extensions(2)
    path = tmp_path / "v.db"
    observer(path).observe(verify_history(encode(line.changes), now=NOW))
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results: multiprocessing.Queue[str] = context.Queue()
    processes = [
        context.Process(target=_observe_in_process, args=(str(path), data, barrier, results))
        for data in histories
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    outcomes = sorted(results.get(timeout=5) for _ in processes)
    assert outcomes == ["FORK", "stored"]
    with pytest.raises(queue.Empty):
        results.get_nowait()


# -- the property ------------------------------------------------------------------------------


class Observers(RuleBasedStateMachine):
    """Rotations (the owner's, and a thief's from a full backup at any point), forgeries with
    the current key only, stale copies and concurrent observations, in any order: no observer
    ever accepts a history that is not an extension of one it accepted before."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="troth-observe-"))
        paths = [self.dir / "a.db", self.dir / "a.db", self.dir / "b.db"]  # 2 share a store
        self.services = [observer(path) for path in paths]
        self.stores = [SqliteIdentityStore(SqliteDatabase(path)) for path in paths]
        self.lines = [honest_history(1, start=T)]
        self.published = [encode(self.lines[0].changes)]
        self.accepted: list[list[tuple[bytes, ...]]] = [[] for _ in self.services]
        self.stored: list[tuple[bytes, ...]] = [() for _ in self.stores]
        self.time = T + 1

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def _publish(self, history: HonestHistory) -> None:
        self.published.append(encode(history.changes))
        for cut in range(1, len(history.changes)):  # stale copies of it circulate too
            self.published.append(encode(history.changes[:cut]))

    @rule(line=st.integers(0, 100))
    def rotate(self, line: int) -> None:
        index = line % len(self.lines)
        if len(self.lines[index].changes) < 12:
            self.time += 1
            self.lines[index] = extend(self.lines[index], self.time)
            self._publish(self.lines[index])

    @precondition(lambda self: len(self.lines) < 8)
    @rule(line=st.integers(0, 100), at=st.integers(1, 100))
    def fork_from_a_backup(self, line: int, at: int) -> None:
        history = self.lines[line % len(self.lines)]
        cut = 1 + at % len(history.changes)  # replace change `cut` (or append at the end)
        revealed = history.keys[cut] if cut < len(history.changes) else history.next_key
        prefix = HonestHistory(history.keys[:cut], history.changes[:cut], revealed)
        self.time += 1
        self.lines.append(extend(prefix, self.time))
        self._publish(self.lines[-1])

    @rule(line=st.integers(0, 100))
    def forge_with_the_current_key(self, line: int) -> None:
        history = self.lines[line % len(self.lines)]
        forged = extend(history, self.time, new_key=generate_private_key(KeyType.ED25519))
        with pytest.raises(IdentityError) as caught:
            verify_history(encode(forged.changes), now=NOW)
        assert caught.value.reason is F.NEXT_KEY_MISMATCH

    def _observe(self, who: int, data: bytes) -> None:
        identity = verify_history(data, now=NOW)
        try:
            self.services[who].observe(identity)
        except IdentityError as exc:
            refusals = (F.FORK, F.ROLLBACK)
            if exc.reason not in refusals:
                raise
            return
        hashes = tuple(change.change_hash for change in identity.changes)
        for before in self.accepted[who]:
            assert hashes[: len(before)] == before, "accepted a history that does not extend"
        self.accepted[who].append(hashes)

    @rule(who=st.integers(0, 2), pick=st.integers(0, 10**6))
    def observe(self, who: int, pick: int) -> None:
        self._observe(who, self.published[pick % len(self.published)])

    @rule(pick=st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)))
    def observe_concurrently(self, pick: tuple[int, int]) -> None:
        data = [self.published[p % len(self.published)] for p in pick]
        failures: list[BaseException] = []

        def run(who: int) -> None:
            try:
                self._observe(who, data[who])
            except BaseException as exc:  # surfaced in the main thread below
                failures.append(exc)

        threads = [threading.Thread(target=run, args=(who,)) for who in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]

    @invariant()
    def stored_copies_only_grow(self) -> None:
        digest = verify_history(self.published[0], now=NOW).identifier.digest
        for number, store in enumerate(self.stores):
            row = store.get_history(digest)
            hashes = (
                ()
                if row is None
                else tuple(change.change_hash for change in verify_history(row[0], now=NOW).changes)
            )
            assert hashes[: len(self.stored[number])] == self.stored[number]
            self.stored[number] = hashes


Observers.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_no_observer_accepts_a_non_extension = Observers.TestCase


def test_the_cache_never_steps_back(tmp_path: Path) -> None:
    """A reader that read the stored copy before a writer committed must not replace the
    writer's newer entry: then a rollback to the older copy would pass the hot path."""
    line = honest_history(1, start=T)
    rotated = extend(line, T + 5)
    store = SqliteIdentityStore(SqliteDatabase(tmp_path / "v.db"))
    known = KnownHistories(store, FixedClock(NOW))
    old = [verify_history(encode(line.changes), now=NOW).current_change_hash]
    new = [
        change.change_hash for change in verify_history(encode(rotated.changes), now=NOW).changes
    ]
    digest = new[0]
    known.observe(verify_history(encode(rotated.changes), now=NOW))  # the writer
    late = StoredSpan(0, tuple(old))
    assert known.remember(digest, late) == StoredSpan(0, tuple(new))  # the late copy is not kept
    with pytest.raises(IdentityError) as caught:
        known.observe(verify_history(encode(line.changes), now=NOW))
    assert caught.value.reason is F.ROLLBACK
