"""Review 64b2 of 64v's and 64n's fixes: attacks that did not work (each test fails if the
defence it names broke)."""

from __future__ import annotations

import collections
import threading
from pathlib import Path
from typing import Any

import pytest

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError, StorageError
from troth.node import init_node, open_node
from troth.node.trust import NodeTrust
from troth.storage import SqliteDatabase

# -- cbor: what reaches cbor2 ------------------------------------------------------------------


def test_huge_ints_of_any_int_type_are_refused_not_written_as_bignums() -> None:
    class Big(int):
        pass

    for value in (1 << 64, -(1 << 64) - 1, Big(1 << 64), [Big(-(1 << 64) - 1)], {"a": 10**400}):
        with pytest.raises(DecodeError, match="bignum"):
            cbor.encode(value)
    assert cbor.encode([Big(5), (1 << 64) - 1]) == cbor.encode([5, (1 << 64) - 1])


def test_leaves_whose_eq_and_hash_raise_or_bytes_likes_encode_or_are_refused() -> None:
    class Rude:
        def __eq__(self, other: object) -> bool:
            raise RuntimeError("asked")

        def __hash__(self) -> int:
            raise RuntimeError("asked")

    with pytest.raises(DecodeError, match="cannot encode"):
        cbor.encode({"a": [Rude()]})
    # a memoryview is a sequence: the array of its items, as cbor2 writes it; a bytearray
    # the byte string
    assert cbor.encode([memoryview(b"ab")]) == cbor.encode([[97, 98]])
    assert cbor.encode([bytearray(b"ab")]) == cbor.encode([b"ab"])
    with pytest.raises(DecodeError, match="float"):
        cbor.encode([memoryview(b"\x00" * 8).cast("d")])


def test_a_wide_value_at_depth_999_is_encoded_once_deeper_refused() -> None:
    value: Any = list(range(100))
    for _ in range(limits.MAX_CBOR_ENCODE_DEPTH - 1):
        value = collections.deque([value, list(range(100))])  # off the fast path
    data = cbor.encode(value)
    assert data.count(b"\x98\x64") == limits.MAX_CBOR_ENCODE_DEPTH  # each 100-array once
    with pytest.raises(DecodeError, match="nested deeper than"):
        cbor.encode(collections.deque([value]))


# -- trust: attach and detach ------------------------------------------------------------------


def test_detach_twice_or_out_of_order_leaves_the_running_trusts_hooks(tmp_path: Path) -> None:
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        first, second, third = (NodeTrust(node, None) for _ in range(3))
        second.detach()
        second.detach()  # twice: the third's binds stay
        assert node.wallet.feed_binds is third._feed_binds
        third.detach()
        assert node.wallet.feed_binds is first._feed_binds
        assert node.identities.refuted_hooks == [first.vouchers.refuted]
        third.detach()
        assert node.wallet.feed_binds is first._feed_binds
        first.detach()
        assert node.wallet.feed_binds is None
        assert node.identities.refuted_hooks == []


def test_trusts_attached_and_detached_from_threads_leave_none_behind(tmp_path: Path) -> None:
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        kept = NodeTrust(node, None)
        go = threading.Barrier(4)

        def churn() -> None:
            go.wait()
            for _ in range(5):
                NodeTrust(node, None).detach()

        threads = [threading.Thread(target=churn) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert node.identities.refuted_hooks == [kept.vouchers.refuted]
        assert node.wallet.feed_binds is kept._feed_binds


# -- storage: closing the connections of threads that ended -------------------------------------


def test_a_thread_ended_inside_a_transaction_is_rolled_back_and_lets_others_write(
    tmp_path: Path,
) -> None:
    db = SqliteDatabase(tmp_path / "t.db", busy_timeout=0.2)
    db.execute("CREATE TABLE t (x INTEGER)")
    held: list[object] = []

    def begin() -> None:  # a transaction entered, never left: its thread ends holding it
        transaction = db.transaction()
        transaction.__enter__()
        db.execute("INSERT INTO t VALUES (1)")
        held.append(transaction)

    thread = threading.Thread(target=begin)
    thread.start()
    thread.join()
    # the main thread's connection came first: still locked
    with pytest.raises(StorageError), db.transaction():
        pass
    writer = threading.Thread(target=lambda: db.execute("INSERT INTO t VALUES (2)"))
    writer.start()  # its new connection closes the ended one's: rolled back
    writer.join()
    assert db.fetch_all("SELECT x FROM t") == [(2,)]
    db.close()


def test_a_live_threads_cursor_and_a_dedicated_connection_survive_the_sweep(
    tmp_path: Path,
) -> None:
    db = SqliteDatabase(tmp_path / "t.db")
    db.execute("CREATE TABLE t (x INTEGER)")
    db.execute_many("INSERT INTO t VALUES (?)", [(i,) for i in range(500)])
    own: list[Any] = []
    reading = db.execute("SELECT x FROM t ORDER BY x")
    assert reading.fetchone() == (0,)

    def open_both() -> None:
        own.append(db.dedicated())
        db.connection()

    for _ in range(2):  # one ends with a dedicated connection, the next sweeps
        thread = threading.Thread(target=open_both)
        thread.start()
        thread.join()
    assert len(reading.fetchall()) == 499  # the main thread's connection is open
    assert own[0].execute("SELECT count(*) FROM t").fetchone() == (500,)
    db.close()
