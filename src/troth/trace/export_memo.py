"""What one export's verification keeps of what its lines repeat (docs/traces.md, "What
verification detects"; review 55e, exports 1).

Every line of an export carries its signer's history (and windows) and its key's attestation,
and the log's history, attestations and checkpoint note: the same bytes on every line of one
agent, and on every line for the log's part. Each is verified once per export, as `verify_log`
verifies each signer and checkpoint once per log; each record's own signature, disclosures,
chain and inclusion proof are checked at its line. A memo holds at most
MAX_TRACE_EXPORT_MEMO entries, the least recently used going first, so an export whose lines
all differ is verified as before, line by line, and held no longer than its line is read.
Only what verified is kept: a line that is refused is refused again wherever it repeats.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from troth import limits
from troth.identity import Identifier, VerifiedIdentity
from troth.trace.checkpoint import Checkpoint
from troth.trace.signing import KeyEpoch

__all__ = ["ExportMemo", "Judged", "Memo", "SignerKey"]

K = TypeVar("K")
V = TypeVar("V")

Judged = tuple[VerifiedIdentity, list[VerifiedIdentity], KeyEpoch]
"""A line's signer as judged: the history the record is judged by, the histories the line
carries (oldest first), and the record's key (its retirement by them and the verifier)."""

SignerKey = tuple[Identifier, bytes, bytes, tuple[str, ...] | None, int | None]
"""What a signer's judgement depends on: the agent, its history, the key's attestation, the
windows (base64, as carried; None: version 1) and the history's place among them."""

CheckpointKey = tuple[str, str, tuple[str, ...]]
"""What a line's checkpoint depends on: the note, the log's history and attestations (base64,
as carried)."""


class Memo(Generic[K, V]):
    """At most `size` values by key, the least recently used forgotten first."""

    __slots__ = ("_items", "_size")

    def __init__(self, size: int = limits.MAX_TRACE_EXPORT_MEMO) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._size = size

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> V:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._items)


@dataclass(slots=True)
class ExportMemo:
    """The signers, checkpoints and chains one export's lines verified (`verify_export`)."""

    signers: Memo[SignerKey, Judged] = field(default_factory=Memo)
    checkpoints: Memo[CheckpointKey, Checkpoint] = field(default_factory=Memo)
    chains: Memo[bytes, bool] = field(default_factory=Memo)
    """The delegation chains (their bytes) the lines carry that are signed (review 56f)."""


def signer_key(
    agent: Identifier, history: bytes, attestation: bytes, windowed: bool, signer: dict[str, object]
) -> SignerKey | None:
    """The memo key of a line's signer part; None when its windows are not a list of texts
    and a place (refused where they are read)."""
    if not windowed:
        return agent, history, attestation, None, None
    entries, at = signer.get("windows"), signer.get("at")
    if type(entries) is not list or type(at) is not int or any(type(e) is not str for e in entries):
        return None
    return agent, history, attestation, tuple(entries), at


def checkpoint_key(note: str, log: dict[str, object]) -> CheckpointKey | None:
    """The memo key of a line's checkpoint; None when the log's part is not base64 texts."""
    history, entries = log.get("history"), log.get("attestations")
    if type(history) is not str or type(entries) is not list:
        return None
    if any(type(e) is not str for e in entries):
        return None
    return note, history, tuple(entries)
