"""The log's copies of its signers' histories at append time (docs/traces.md, "Signer
histories"): store-or-extend a record's signer history, the gap to the log's copy bridged by
the node's rows (`SignerBridge`) or by the windows sent with it (review 47l, windows 1).

`observe` only reads and judges: it returns what the log would hold once the record is
admitted (`Observed`), and `keep` writes it, in the record's transaction, only once every
other append-time check passed. Before review 48a (windows 1) the history and the windows
were written as soon as they verified, so a record the log then refused (a resolution of no
escalation, a key the log holds retired, a chain it does not hold) left the log's copy of its
signer moved on and the windows its batch carried stored: verified state kept from a batch
the log refused (docs/traces.md, "Collection": a refused record leaves nothing behind).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from troth.crypto import sha256
from troth.errors import IdentityError, TraceError, TraceFailure
from troth.identity import UnverifiedHistory, VerifiedIdentity, check_extends
from troth.trace.bridge import SignerBridge, dropped_window, link_window, sent_windows
from troth.trace.log_rows import stored_history

__all__ = ["Observed", "keep", "observe"]

_F = TraceFailure


@dataclass(frozen=True, slots=True)
class Observed:
    """What the log holds of a signer once a record it signed is admitted: the newest change
    (`current`), its (change count, current change hash); and, when that moves the log's copy
    on, the history to store (`history`) with the windows to keep ((last change, window))."""

    digest: bytes
    current: int
    known: tuple[int, bytes]
    history: bytes | None = None
    windows: tuple[tuple[int, bytes], ...] = ()


def observe(
    conn: sqlite3.Connection,
    known: tuple[int, bytes] | None,
    identity: VerifiedIdentity,
    sent: tuple[VerifiedIdentity, ...] = (),
    bridge: SignerBridge | None = None,
) -> Observed:
    """What the log holds of `identity` once a record it signed is admitted, given the log's
    (change count, current change hash) of it (`known`; None: none). Writes nothing (`keep`).
    A fork, or a gap neither the node's rows (`bridge`) nor the windows `sent` bridge, raises
    TraceError(SIGNER_INVALID)."""
    digest = identity.identifier.digest
    if known is not None and known[1] == identity.current_change_hash:
        return Observed(digest, known[0] - 1, known)  # the hash commits to every change
    windows: list[tuple[int, bytes]] = []
    if known is not None:
        held = stored_history(conn, digest)  # not fetched past its bound (70i, leftovers 2)
        copy = UnverifiedHistory.decode(held)  # either may be a checkpointed suffix
        first, stored = copy.first_index, [sha256(change.body) for change in copy.changes]
        if identity.current.index < first + len(stored):  # an older view (a late record)
            overlap = [c for c in identity.changes if c.index >= first]
            if not overlap:
                raise TraceError(_F.SIGNER_INVALID, "history ends before the stored copy")
            for change in overlap:
                if stored[change.index - first] != change.change_hash:
                    raise TraceError(_F.SIGNER_INVALID, f"history forks at change {change.index}")
            return Observed(digest, known[0] - 1, known)
        last = first + len(stored) - 1
        if identity.first_index > first:  # the newest drops changes older records need
            windows.append(dropped_window(held, identity))
        # a history from right after the copy: only its checkpoint vouches for its link to the
        # copy's last change, which it must follow as a rotation does (the key committed to:
        # review 56l, histories 1), and which is kept with its first change: the change that
        # retires that one's keys, in no other history the log keeps (histories 2)
        follows = identity.first_index == last + 1
        try:
            check_extends(
                stored,
                identity,
                stored_first=first,
                stored_last=copy.changes[-1] if follows else None,
            )
            if follows:
                windows.append(link_window(copy.changes[-1], identity))
        except IdentityError as exc:
            across = (
                None if bridge is None else bridge.across(exc, digest, last, stored[-1], identity)
            )
            bridged = [across] if across is not None else None
            if bridged is None:  # review 47l, windows 1
                bridged = sent_windows(exc, first, stored, sent, identity)
            if bridged is None:
                raise TraceError(_F.SIGNER_INVALID, str(exc)) from None
            windows.extend(bridged)
    count = identity.change_count  # changes up to the newest, by index
    now_known = (count, identity.current_change_hash)
    return Observed(digest, count - 1, now_known, identity.history, tuple(windows))


def keep(conn: sqlite3.Connection, observed: Observed) -> None:
    """Write what `observe` found, in the admitted record's transaction (nothing when the
    log's copy stays as it is)."""
    if observed.history is None:
        return
    digest = observed.digest
    conn.executemany(
        "INSERT OR IGNORE INTO history_windows VALUES (?, ?, ?)",
        [(digest, end, window) for end, window in observed.windows],
    )
    count, current = observed.known
    conn.execute(
        "INSERT OR REPLACE INTO histories VALUES (?, ?, ?, ?)",
        (digest, observed.history, count, current),
    )
