"""What bridges a signer's history across 64 silent rotations at a trace log: a signer that
rotated past 64 changes without signing presents a history that shares no change with the one
of its last record (a gap, `check_extends`). The changes between are kept as history windows,
so the older records' keys still resolve (their retirement times included; docs/traces.md,
"Signer histories"):

- for the node's own signers, the node's change rows (`SignerBridge`): they attest both ends;
- for any other (a member submitting to the node's trace service), the windows its own node
  holds, sent with its batch (`AgentWindows`, the client) and checked to chain from the
  log's copy to the presented history change by change (`check_windows`, the log; each window
  verified from a change the one before it holds: the collector; review 47l, windows 1).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from troth import limits
from troth.errors import IdentityError, IdentityFailure
from troth.identity import (
    Checkpoint,
    Checkpoints,
    SignedChange,
    UnverifiedHistory,
    VerifiedIdentity,
    check_extends,
    encode_history,
    indexed_hashes,
)

__all__ = [
    "AgentWindows",
    "SignerBridge",
    "check_windows",
    "dropped_window",
    "link_window",
    "sent_windows",
    "window_spans",
]


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


def link_window(last: SignedChange, newest: VerifiedIdentity) -> tuple[int, bytes]:
    """(its last change, the window) of a log's copy's last change `last` and `newest`'s first
    change, the one right after it (`newest` holds no earlier one): the change that retires
    `last`'s keys, with `last` (the copy, kept as `dropped_window`, attests it), which it
    follows as a rotation (review 56l, histories 2: kept nowhere, a verifier refused the older
    records' keys, and could not attest `newest` from what the log kept)."""
    digest, following = newest.identifier.digest, newest.changes[0]
    at = following.index - 1
    checkpoint = Checkpoint(digest, digest, at) if at else None
    return following.index, encode_history([last, following.signed], checkpoint)


def check_windows(
    first: int,
    hashes: Sequence[bytes],
    windows: Sequence[VerifiedIdentity],
    newest: VerifiedIdentity,
) -> None:
    """Raise IdentityError unless `windows` (verified, oldest first) chain from a log's copy of
    a signer (its changes from `first` on, by hash) to `newest`: each, and then `newest`, is
    the same identity's, starts at a change the one before it holds (the log's copy for the
    first), agrees with it on every change both hold and ends later (each window adds
    changes; `newest` may end where the last does). Overlapping by a change, never merely
    adjacent: that change's body, verified in the one before, carries its pre-rotation
    commitment into the next (docs/formats.md, "Pre-rotation and stored histories")."""
    fail = IdentityFailure
    for position, following in enumerate((*windows, newest)):
        last = first + len(hashes) - 1
        what = "the history" if following is newest else f"window {position}"
        if following.identifier != newest.identifier:
            raise IdentityError(fail.IDENTIFIER_MISMATCH, f"{what} is another identity's")
        if not first <= following.first_index <= last:
            raise IdentityError(
                fail.UNATTESTED_CHECKPOINT,
                f"{what} starts at change {following.first_index}, the one before it holds "
                f"changes {first} to {last}",
                following.first_index,
            )
        check_extends(hashes, following, stored_first=first)  # no fork, no rollback
        if following is not newest and following.current.index <= last:
            raise IdentityError(fail.ROLLBACK, f"{what} adds no change", following.current.index)
        first, hashes = following.first_index, [c.change_hash for c in following.changes]


def sent_windows(
    exc: IdentityError,
    first: int,
    hashes: Sequence[bytes],
    windows: Sequence[VerifiedIdentity],
    newest: VerifiedIdentity,
) -> list[tuple[int, bytes]] | None:
    """For a gap between a log's copy (changes from `first` on, by hash) and `newest`: (each
    window's last change, the window) when the `windows` a submission carried bridge it
    (`check_windows`); None when it is no gap, none were sent, or they do not bridge it."""
    if exc.reason is not IdentityFailure.UNATTESTED_CHECKPOINT or not windows:
        return None
    try:
        check_windows(first, hashes, windows, newest)
    except IdentityError:
        return None
    return [(window.current.index, window.history) for window in windows]


def window_spans(held: int, first: int) -> list[tuple[int, int]] | None:
    """The (first, last) changes of the windows that bridge a log's copy ending at change
    `held` to a history starting at change `first` (each of at most MAX_IDENTITY_CHANGES, each
    starting where the one before ends); [] when no window is needed (the history starts at
    most one change past the log's copy: `check_extends` takes it); None when more than
    MAX_TRACE_SUBMIT_WINDOWS would be needed."""
    spans: list[tuple[int, int]] = []
    start = held
    while held + 1 < first and start < first:  # the last one ends where the history starts
        end = min(start + limits.MAX_IDENTITY_CHANGES - 1, first)
        spans.append((start, end))
        start = end
    return spans if len(spans) <= limits.MAX_TRACE_SUBMIT_WINDOWS else None


@dataclass(frozen=True, slots=True)
class AgentWindows:
    """What an agent's node holds of the agent's own identity, for its trace client:
    `presented`, its history as presented at a time (`IdentityService.get(...).identity`);
    `window`, its stored changes first..last as a history (`IdentityService.history_window`)."""

    presented: Callable[[int], VerifiedIdentity]
    window: Callable[[bytes, int, int], bytes | None]

    def between(self, history: bytes, held: int, held_hash: bytes) -> tuple[bytes, ...] | None:
        """The windows that bridge a log's copy of the agent ending at change `held` (hash
        `held_hash`) to `history` (the one a batch carries: `window_spans`): () when none is
        needed; None when the node cannot (that change is not its own, a row is missing, more
        than MAX_TRACE_SUBMIT_WINDOWS would be needed, one would be over
        MAX_IDENTITY_HISTORY_BYTES: the service would refuse the whole request)."""
        decoded = UnverifiedHistory.decode(history)
        spans = window_spans(held, decoded.first_index)
        if not spans:
            return spans if spans is None else ()
        digest = decoded.identifier_digest
        mine = self.window(digest, held, held)
        if mine is None or indexed_hashes(mine)[1] != [held_hash]:
            return None  # the log holds a change this node does not: no window bridges it
        windows: list[bytes] = []
        for first, last in spans:
            window = self.window(digest, first, last)
            if window is None or len(window) > limits.MAX_IDENTITY_HISTORY_BYTES:
                return None
            windows.append(window)
        return tuple(windows)
