"""What a node's store tells its trace log about the node's own signers: a signer that rotated
past 64 changes without signing presents a history that shares no change with the one of its
last record (a gap, `check_extends`). The node's change rows bridge it: they attest both ends,
and the changes between are kept as a history window, so the older records' keys still resolve
(their retirement times included; docs/traces.md, "Signer histories")."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from troth import limits
from troth.errors import IdentityError, IdentityFailure
from troth.identity import (
    Checkpoint,
    Checkpoints,
    UnverifiedHistory,
    VerifiedIdentity,
    encode_history,
)

__all__ = ["SignerBridge", "dropped_window"]


@dataclass(frozen=True, slots=True)
class SignerBridge:
    """`attests`: whether the node's store holds a change (`attested_by_store`); `window`: its
    stored changes first..last as a history (`IdentityService.history_window`); `around`: the
    change of a hash and the next one (`IdentityService.window_around`), for an export."""

    attests: Checkpoints
    window: Callable[[bytes, int, int], bytes | None]
    around: Callable[[bytes, bytes], bytes | None]
    newest: Callable[[Collection[bytes]], dict[bytes, int]]
    """The index of the newest change the node's store holds for each of several identities
    (those it holds), read afresh in one query (a rotation another process made):
    `IdentityService.newest_changes`."""

    def across(
        self, exc: IdentityError, digest: bytes, last: int, last_hash: bytes, new: VerifiedIdentity
    ) -> tuple[int, bytes] | None:
        """For a gap between a log's copy (ending at change `last`, hash `last_hash`) and `new`:
        (the window's last change, the window from `last` on, at most 64 changes), when the
        node's store holds both ends; None when it is no gap or not the node's to bridge."""
        if exc.reason is not IdentityFailure.UNATTESTED_CHECKPOINT:
            return None
        head = new.changes[0]
        if not (
            self.attests(Checkpoint(digest, digest, last), last_hash)
            and self.attests(Checkpoint(digest, digest, head.index), head.change_hash)
        ):
            return None
        end = min(head.index, last + limits.MAX_IDENTITY_CHANGES - 1)
        window = self.window(digest, last, end)
        return None if window is None else (end, window)


def dropped_window(stored: bytes, newest: VerifiedIdentity) -> tuple[int, bytes]:
    """(its last change, the window) of the changes of `stored` that `newest` no longer holds,
    with the one after them (it says when the last one's key retired) when `stored` has it."""
    old = UnverifiedHistory.decode(stored)
    kept = old.changes[: newest.first_index - old.first_index + 1]
    return old.first_index + len(kept) - 1, encode_history(kept, old.checkpoint)
