"""The newest checkpoint the node's verifiers accepted of each log (docs/formats.md, "Trace
log and checkpoints": **Accepted**), kept in the node's database (table `trace_accepted`, made
on first use), apart from the log (`trace.db`) and from the file a verifier keeps its
checkpoint in (`troth trace verify --checkpoint FILE`).

A kept file swapped for an older genuine note of the same log, the log rolled back to match,
is consistent with the log: nothing in the note refuses it (review 51g, anchor 1). What the
node accepted before does: a kept checkpoint smaller than it, of its size with another root,
or dated before it is refused (TraceError ROLLED_BACK, "kept checkpoint older than one
accepted before"; review 52a, anchor 1). The row only moves forward: `keep` raises it to the
newer of what it holds and what it is given, in one write transaction (BEGIN IMMEDIATE), so
two verifiers racing leave the newer; the file is written inside that transaction with what
the row then holds, so a slower verifier never writes an older note over a newer one.

The row is the node's, one per log, and each verifier keeps its own file: another verifier's
file moves the row past this one's. A kept file older than the row (not a fork of it) is no
rollback when the log is consistent with the row as well: `anchored` verifies the log again
against the row's note, and refuses only when that fails (review 52d, anchor 1: the older of
two verifiers' genuine files, the log intact, read as a rollback).

Not protected: a verifier with no node (the Python API alone, `verify_log(anchor=...)`) has
only its kept note; and a node database rolled back with the file (a whole-node restore) has
the node's own rollback guard to answer for it (docs/formats.md, "Rollback guard").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, Protocol, TypeVar

from troth import limits
from troth.errors import TraceError, TraceFailure
from troth.identity import Identifier
from troth.storage.sqlite import SqliteDatabase
from troth.trace.checkpoint import Checkpoint, log_origin, parse_checkpoint
from troth.trace.merkle import verify_consistency
from troth.trace.stored import stored_bytes, stored_column

__all__ = ["AcceptedCheckpoints", "Anchored"]

_F = TraceFailure
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS trace_accepted (origin TEXT PRIMARY KEY, size INTEGER NOT NULL,"
    " root BLOB NOT NULL, time INTEGER NOT NULL, note BLOB NOT NULL)"
)
_NOTE: Final = (
    f"SELECT {stored_column('note', limits.MAX_TRACE_CHECKPOINT_BYTES)} "  # noqa: S608
    "FROM trace_accepted WHERE origin = ?"
)
"""An accepted note, never fetched past what a checkpoint's note takes nor of another type
than a BLOB (review 70r, wave2a 3: fetched whole, a TEXT one failed bare, an INTEGER n was
taken as `bytes(n)`)."""


Proof = Callable[[int, int], Sequence[bytes]]
"""A log's consistency proof from its tree of `size1` records to its tree of `size2`."""


def _newer(new: Checkpoint, old: Checkpoint) -> bool:
    return (new.size, new.time) > (old.size, old.time)


def _moved_on(kept: Checkpoint, accepted: Checkpoint) -> bool:
    """Whether `accepted` is newer than `kept` and of no fork of it: the row moved on past it."""
    if not _newer(accepted, kept) or kept.time > accepted.time:
        return False
    return kept.size < accepted.size or kept.root == accepted.root


def _check_grown(accepted: Checkpoint, new: Checkpoint, proof: Proof) -> None:
    """Raise TraceError ROLLED_BACK unless the log's tree of `new` (newer) grew from the one
    of `accepted`: the same root at one size, else a consistency proof between the two roots
    (any tree grew from the empty one)."""
    if accepted.size == 0:
        return
    try:
        if new.size == accepted.size:
            if new.root != accepted.root:
                raise TraceError(_F.PROOF_INVALID, "another root at that size")
        else:
            given = proof(accepted.size, new.size)
            verify_consistency(accepted.size, new.size, accepted.root, new.root, given)
    except (TraceError, ValueError) as exc:
        raise TraceError(
            _F.ROLLED_BACK,
            f"the log's checkpoint of {new.size} records is not consistent with the checkpoint "
            f"of {accepted.size} records accepted before (a log rolled back and grown on, or "
            f"rewritten): {exc}",
        ) from None


class Anchored(Protocol):
    """A verification's report: the kept checkpoint it was judged against (None: none), and
    the newest checkpoint of what it verified (None: none yet)."""

    @property
    def anchor(self) -> Checkpoint | None: ...

    @property
    def checkpoint(self) -> Checkpoint | None: ...


_R = TypeVar("_R", bound=Anchored)


class AcceptedCheckpoints:
    """Per log origin, the newest checkpoint a verifier of the node accepted."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        with db.transaction():
            db.execute(_SCHEMA)

    def newest(self, origin: str) -> Checkpoint | None:
        """The newest checkpoint accepted of the log `origin` (None: none yet)."""
        note = self._note(origin)
        return None if note is None else parse_checkpoint(note)[0]

    def note_of(self, log_identity: Identifier) -> bytes | None:
        """The note of the newest checkpoint accepted of the log of `log_identity` (None: none
        yet): what `troth trace verify` with no kept file compares the node's log with (review
        58c, trace 2: a log rolled back, a backup of trace.db restored, read `unanchored`)."""
        return self._note(log_origin(log_identity))

    def _note(self, origin: str) -> bytes | None:
        """The accepted note of log `origin`, None: none; TraceError OVER_LIMIT or MALFORMED
        when the row is not one (`_NOTE`)."""
        row = self.db.fetch_one(_NOTE, (origin,))
        return None if row is None else stored_bytes(row[0], row[1], "accepted checkpoint")

    def check(self, kept: Checkpoint) -> None:
        """Refuse a kept checkpoint older than the newest accepted of its log: smaller, of its
        size with another root, or dated before it (TraceError ROLLED_BACK)."""
        accepted = self.newest(kept.origin)
        if accepted is None:
            return
        if kept.size == accepted.size and kept.root != accepted.root:
            raise TraceError(
                _F.ROLLED_BACK, f"of {kept.size} records with another root than the one accepted"
            )
        if kept.size < accepted.size or kept.time < accepted.time:
            raise TraceError(
                _F.ROLLED_BACK,
                f"the kept checkpoint is of {kept.size} records (time {kept.time}), one of"
                f" {accepted.size} (time {accepted.time}) was accepted before",
            )

    def anchored(self, report: _R, again: Callable[[bytes], _R] | None) -> _R:
        """`report` (a verification against a kept checkpoint) when its kept checkpoint is not
        older than the newest accepted of its log; else the log verified `again` against the
        accepted one's note, when `again` is given (None: the input cannot be read twice) and
        the kept one is not a fork of it (review 52d, anchor 1). TraceError ROLLED_BACK as
        `check` says when the log is not consistent with the accepted checkpoint either, or
        was not compared with it (an export of another size), unless it is larger than the
        accepted one: then as verified `again`, unanchored (review 63s, traces 2)."""
        kept = report.anchor
        if kept is None:
            return report
        accepted = self.newest(kept.origin)
        forked = accepted is not None and kept.size == accepted.size and kept.root != accepted.root
        if again is not None and accepted is not None and _newer(accepted, kept) and not forked:
            try:
                against = again(accepted.note)
            except TraceError:
                self.check(kept)  # the refusal the kept checkpoint earns (ROLLED_BACK)
                raise
            if against.anchor is not None:  # compared with the accepted one: it stands for
                report, kept = against, against.anchor  # the kept one (else: refused below)
            elif report.checkpoint is not None and report.checkpoint.size > accepted.size:
                # grown past the accepted one from the kept one (an export's line proved it)
                # and holding no proof against it: not compared, no rollback (review 63s,
                # traces 2: the kept note refused as older, an intact log's export exit 1)
                return against
        self.check(kept)
        return report

    def keep(
        self,
        kept: Checkpoint | None,
        new: Checkpoint,
        write: Callable[[bytes], None] | None = None,
        proof: Proof | None = None,
    ) -> Checkpoint:
        """Record `new` (verified, judged against `kept`, the note the verifier compared it
        with) as accepted unless a newer one is, `kept` checked again inside the transaction
        (another verifier may have moved the row on: given `proof`, no rollback when the log
        is consistent with the row as well); `write` the newest accepted (the kept file)
        within it. Returns the newest accepted. Given the log's consistency proofs
        (`proof(size1, size2)`), the row moves only to a checkpoint the log proves consistent
        with the one it holds, else TraceError ROLLED_BACK and nothing is kept (review 55b,
        accepted 1: a fresh kept file, or the fork's own newest note in one, moved it onto a
        log rolled back and grown on, and the rollback guard vouched for the fork)."""
        if not new.verified:
            raise ValueError("accept only a verified checkpoint")
        with self.db.transaction():
            accepted = self.newest(new.origin)
            if (
                kept is not None
                and accepted is not None
                and proof is not None
                and _moved_on(kept, accepted)  # by another verifier since `anchored` (review
            ):  # 58r, trace 2: two verifies at once, the slower one's log read 'rolled back'):
                # no rollback when the log is consistent with the row too
                if not _newer(new, accepted):
                    _check_grown(new, accepted, proof)
            elif kept is not None:
                self.check(kept)
            if accepted is not None and proof is not None and _newer(new, accepted):
                _check_grown(accepted, new, proof)
            if accepted is None or _newer(new, accepted):
                self.db.execute(
                    "INSERT OR REPLACE INTO trace_accepted (origin, size, root, time, note)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (new.origin, new.size, new.root, new.time, new.note),
                )
                accepted = new
            if write is not None:
                write(accepted.note)
        return accepted
