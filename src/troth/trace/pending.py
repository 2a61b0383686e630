"""The entries of a trace log's group-commit queue (`troth.trace.log`): a queued record,
whose waiter the commit leader wakes, and the receipt of an acknowledged append; and what a
log remembers having stored once a commit is done (`remember`)."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping, Set
from dataclasses import dataclass
from typing import TypeVar

from troth import limits
from troth.credentials import VerifiedCredential
from troth.errors import StorageError
from troth.identity import VerifiedIdentity
from troth.trace.signing import VerifiedRecord

__all__ = ["Pending", "Receipt", "remember", "remember_agents"]

_T = TypeVar("_T", bound=Hashable)
_V = TypeVar("_V")


def remember(known: set[_T], new: Set[_T]) -> set[_T]:
    """`known` with `new` added, the keys or chain digests a log stored: a cache that saves an
    INSERT OR IGNORE, at most TRACE_LOG_KNOWN_CACHE of them, started again past it (a member
    signing each record with a new key made it grow with the log; review 51g, caches 1)."""
    if len(known) + len(new) > limits.TRACE_LOG_KNOWN_CACHE:
        known = set()
    known |= new
    return known


def remember_agents(known: dict[_T, _V], new: Mapping[_T, _V]) -> dict[_T, _V]:
    """`known` updated with `new`, what a log read of its agents (their heads, their history
    summaries): a cache that saves a read per commit, at most TRACE_LOG_KNOWN_CACHE agents,
    started again past it (a member's freshly minted delegates, each with a record, made it
    grow with the number of agents; review 55b, log 1)."""
    if len(known) + len(new) > limits.TRACE_LOG_KNOWN_CACHE:
        known = {}
    known.update(new)
    return known


@dataclass(frozen=True, slots=True, init=False)
class Receipt:
    """An acknowledged append: durable at log position `index`."""

    index: int
    record: str
    hash: bytes
    leaf: bytes

    def __init__(self, index: int, record: str, hash: bytes, leaf: bytes) -> None:
        _set_index(self, index)  # frozen: through the slots (object.__setattr__ is slower)
        _set_record(self, record)
        _set_hash(self, hash)
        _set_leaf(self, leaf)


_set_index = vars(Receipt)["index"].__set__  # the slot descriptors
_set_record = vars(Receipt)["record"].__set__
_set_hash = vars(Receipt)["hash"].__set__
_set_leaf = vars(Receipt)["leaf"].__set__


class Pending:
    """A queued record; its `gate` (a lock held until then) opens when it is done or may lead."""

    __slots__ = ("chain", "credential", "done", "error", "gate", "index", "record", "windows")

    def __init__(
        self,
        record: VerifiedRecord,
        chain: bytes | None,
        windows: tuple[VerifiedIdentity, ...] = (),
        credential: VerifiedCredential | None = None,
    ) -> None:
        self.record = record
        self.chain = chain
        self.windows = windows  # the signer's, bridging the log's copy (review 47l, windows 1)
        self.credential = credential  # `chain` as a trace service verified it (review 56k)
        self.done = False
        self.index: int | None = None  # its log position once committed
        self.error: BaseException | None = None
        self.gate = threading.Lock()
        self.gate.acquire()

    def wake(self) -> None:
        # (not contextlib.suppress: a context manager per record costs more than the release)
        try:  # noqa: SIM105
            self.gate.release()
        except RuntimeError:  # already open: the waiter looks again anyway
            pass

    def result(self) -> Receipt:
        """The receipt (made by the waiter, not the leader: the commit path stays short)."""
        if self.error is not None:
            raise self.error
        if self.index is None:  # a leader died mid-batch (only a BaseException does that)
            raise StorageError("the append was not committed")
        verified = self.record
        return Receipt(self.index, verified.record.id, verified.hash, verified.leaf)
