"""Review 64v of 64n's fixes: attacks that did not work (each test fails if the defence it
names broke)."""

from __future__ import annotations

import copy
import pickle
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.decoder_vectors import feed
from troth import limits
from troth.credentials.revocation_held import VerifiedFeed
from troth.encoding import cbor
from troth.errors import DecodeError
from troth.storage import SqliteDatabase


def test_a_subclass_of_a_verified_type_is_neither_pickled_nor_copied_into_another() -> None:
    class Mine(VerifiedFeed):
        __slots__ = ()

    bare: Any = object.__new__(Mine)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError, match="cannot pickle"):
            pickle.dumps(bare, protocol)
    held = feed()
    assert copy.copy(held) is held
    assert copy.deepcopy({"feed": held})["feed"] is held


# protocol 2: VerifiedFeed.__new__(VerifiedFeed), then BUILD with (None, {"count": 10**6}),
# the slot state a frozen slotted dataclass's own __setstate__ would set
_STREAM = (
    b"\x80\x02ctroth.credentials.revocation_held\nVerifiedFeed\n)\x81"
    b"N}X\x05\x00\x00\x00countJ@B\x0f\x00s\x86b."
)


def test_a_pickle_stream_naming_a_verified_type_makes_none() -> None:
    with pytest.raises(TypeError, match="made by verifying"):
        pickle.loads(_STREAM)  # noqa: S301 (the attack: a hand-made stream)


def test_a_reused_thread_id_gets_a_connection_of_its_own_and_a_transaction_survives(
    tmp_path: Path,
) -> None:
    db = SqliteDatabase(tmp_path / "t.db")
    db.execute("CREATE TABLE t (x INTEGER)")
    seen: list[tuple[int, sqlite3.Connection]] = []

    def use() -> None:
        seen.append((threading.get_ident(), db.connection()))
        db.execute("INSERT INTO t VALUES (1)")

    in_transaction, go_on = threading.Event(), threading.Event()

    def long_transaction() -> None:
        with db.transaction():
            db.execute("INSERT INTO t VALUES (2)")
            in_transaction.set()
            go_on.wait(10)
            db.execute("INSERT INTO t VALUES (3)")  # after other threads ended and opened

    holder = threading.Thread(target=long_transaction)
    holder.start()
    in_transaction.wait(10)
    first = threading.Thread(target=lambda: seen.append((threading.get_ident(), db.connection())))
    first.start()
    first.join()
    go_on.set()
    holder.join()
    for _ in range(3):
        thread = threading.Thread(target=use)
        thread.start()
        thread.join()
    connections = [conn for _, conn in seen]
    assert len({id(conn) for conn in connections}) == len(connections)  # never another's
    for old in connections[:-1]:
        with pytest.raises(sqlite3.ProgrammingError):
            old.execute("SELECT 1")  # an ended thread's: closed
    assert sorted(x for (x,) in db.execute("SELECT x FROM t").fetchall()) == [1, 1, 1, 2, 3]
    db.close()


def test_a_thousand_short_lived_threads_keep_no_connection_each(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "t.db")
    for _ in range(1000):
        thread = threading.Thread(target=db.connection)
        thread.start()
        thread.join()
    db.connection()
    assert len(db._all) <= 2  # the last ended thread's and this one's
    db.close()


def test_encode_takes_what_the_decoder_reads_and_refuses_past_its_own_limit() -> None:
    deepest: Any = 0
    for _ in range(limits.MAX_CBOR_DEPTH - 1):
        deepest = [deepest]
    assert cbor.decode(cbor.encode(deepest)) == deepest  # what a peer may send is read
    beyond: Any = []
    for _ in range(limits.MAX_CBOR_ENCODE_DEPTH + 1):
        beyond = [beyond]
    with pytest.raises(DecodeError, match="nested deeper than"):
        cbor.encode(beyond)


def test_shared_sub_objects_are_not_taken_for_a_cycle() -> None:
    class Items(list[Any]):  # off the fast path: `_check_nesting` walks it
        pass

    shared: Any = Items([b"x"])
    for _ in range(12):  # one object, 2**12 paths to its deepest
        shared = Items([shared, shared])
    plain: Any = [b"x"]
    for _ in range(12):
        plain = [plain, plain]
    assert cbor.encode(shared) == cbor.encode(plain)
