"""Verifying a node's trace log, or an export or proof bundle of it, with what the node knows:
the one library call of `troth trace verify` and of `Node.traces.verify` (docs/traces.md,
"Proof rules").

What it decides: which checkpoint the answer is judged against (the one a verifier keeps in a
file, else the newest the node accepted of the log: review 58c, trace 2; 59f, trace 1 to 3),
a kept file older than the node's accepted checkpoint refused (review 52a and 52d, anchor 1),
the accepted checkpoint moved on to what verified (review 58h, trace 1) and the kept file
replaced by it, an older honest export told from a rollback (review 59k, trace 1), and the
node's earlier logs declared lost (review 58h, trace 2). The answer is a `TraceVerdict`; an
invalid log or file raises TraceError naming the first bad record. What is said on the way
(a first run's kept file not there yet, stdin or a pipe not compared) goes to `notes` as it happens,
and is kept in the verdict.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import stat
from collections.abc import Callable, Generator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol

from troth import limits
from troth.bounded_read import read_bounded
from troth.clock import Clock
from troth.errors import NotFound, StorageError, TraceError, TraceFailure
from troth.identity import Identifier
from troth.node.home import write_private_file
from troth.node.node import Node
from troth.node.verify import trace_checkpoints, trace_issuers, trace_known
from troth.trace.accepted import AcceptedCheckpoints
from troth.trace.checkpoint import AnchorStatus, Checkpoint, log_origin, parse_checkpoint
from troth.trace.export import BundleReport, verify_bundle, verify_export
from troth.trace.export_check import ExportReport
from troth.trace.log import LOG_FILE, open_node_log
from troth.trace.log_identity import lost_logs
from troth.trace.merkle import verify_consistency
from troth.trace.verify import verify_log
from troth.trace.verify_report import LogReport

__all__ = ["Notes", "Stream", "TraceReport", "TraceVerdict", "read_kept", "verify_trace"]

TraceReport = LogReport | ExportReport | BundleReport
"""What verified: the node's log, a JSONL export, or one proof bundle."""


class Notes(Protocol):
    """Where what a verification says on the way goes (the CLI's `Reporter`)."""

    def info(self, text: str) -> None:
        """A note for people."""

    def warn(self, text: str) -> None:
        """A warning: something to act on that the answer does not say."""


@dataclass(frozen=True, slots=True)
class Stream:
    """An input read once (stdin): `open` gives it, `name` is what errors call it (`-`). It is
    not read again against the node's accepted checkpoint: said, not compared."""

    name: str
    open: Callable[[], BinaryIO]


class _Said:
    """The notes and warnings of one verification, each passed on to `forward` as it comes."""

    def __init__(self, forward: Notes | None) -> None:
        self.forward = forward
        self.notes: list[str] = []
        self.warnings: list[str] = []

    def info(self, text: str) -> None:
        self.notes.append(text)
        if self.forward is not None:
            self.forward.info(text)

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        if self.forward is not None:
            self.forward.warn(text)


@dataclass(frozen=True, slots=True)
class TraceVerdict:
    """A trace verified: every signature, every agent's chain, the Merkle root against the
    checkpoints. `status` is "valid" when judged against a checkpoint kept before (the kept
    file's, or the node's accepted one), else "unanchored": nothing to compare with, which is
    not "valid" (docs/traces.md, "Proof rules")."""

    report: TraceReport
    """What verified: the node's log (`LogReport`), an export or a proof bundle."""
    anchor_source: Literal["accepted", "kept"] | None
    """Whose checkpoint `anchor` is: the node's accepted one, or the kept file's (None: no
    anchor)."""
    compared: bool
    """Whether there was a checkpoint to compare with: the kept one, or (none kept) the node's
    accepted one, for the node's log or a file alike (review 60j, traces 3: a file's said False
    when valid against it). `unanchored` with one: another log's, or of a size the answer
    holds no proof against."""
    lost_logs: tuple[tuple[Identifier, int], ...]
    """The node's earlier logs declared lost, each with when (verifying the node's log)."""
    kept_file: Path | None
    """The file the verifier keeps its checkpoint in (None: none)."""
    kept_fresh: bool
    """Whether nothing was kept in `kept_file` yet (a first run, or a mistyped path)."""
    kept_written: bool
    """Whether `kept_file` now holds the newest checkpoint verified (the node's log only: an
    export or a bundle is compared with it, never written to it)."""
    notes: tuple[str, ...] = ()
    """What was said on the way, for people."""
    warnings: tuple[str, ...] = ()
    """What to act on that the answer does not say (stdin or a pipe not compared)."""

    @property
    def status(self) -> str:
        """ "valid" or "unanchored" (an invalid trace raised TraceError)."""
        return self.report.status.value

    @property
    def records(self) -> int:
        """How many records verified (a proof bundle: one)."""
        if isinstance(self.report, LogReport):
            return self.report.size
        return self.report.records if isinstance(self.report, ExportReport) else 1

    @property
    def anchor(self) -> Checkpoint | None:
        """The kept checkpoint the trace was judged against (None: none)."""
        return self.report.anchor

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The newest checkpoint the trace holds (None: none yet)."""
        return self.report.checkpoint

    def to_json(self) -> dict[str, Any]:
        """The verdict as `troth trace verify --json` prints it."""
        data = self.report.to_json()
        if self.lost_logs:
            data["lost_logs"] = [{"log": str(i), "time": at} for i, at in self.lost_logs]
        return data


def read_kept(path: Path) -> bytes:
    """The note kept in `path`, read up to MAX_TRACE_CHECKPOINT_BYTES before anything parses
    it: OSError naming the file when it cannot be read or is larger."""
    return read_bounded(path, limits.MAX_TRACE_CHECKPOINT_BYTES, "checkpoint")


def verify_trace(
    node: Node,
    *,
    kept: Path | None = None,
    file: str | Path | Stream | None = None,
    clock: Clock,
    notes: Notes | None = None,
    write: Callable[[Path, bytes], None] = write_private_file,
) -> TraceVerdict:
    """Verify the node's trace log, or `file` (a JSONL export, or one proof bundle as
    `prove` writes it), with the histories the node knows, against the checkpoint kept in
    `kept` (read, then replaced by the newest verified, by `write`), else the newest the node
    accepted of the log. TraceError names the first bad record; ROLLED_BACK when the kept
    checkpoint, or the log or the file, is older than one the node accepted."""
    said = _Said(notes)
    anchor = read_kept(kept) if kept is not None and kept.exists() else None
    node_anchor: bytes | None = None  # the node's accepted checkpoint, anchoring in no file's
    gone: list[tuple[Identifier, int]] = []  # the node's earlier logs declared lost (58h, 2)
    fresh = f"no checkpoint kept at {kept} yet" if kept is not None and anchor is None else ""
    report: Any
    written = False
    if file is not None:  # against the histories the node knows, as its own log
        once = _read_once(file)  # before it is read: a FIFO's writer gone, still one
        report = _verify_file(file, anchor, node, clock)
        # older than accepted (review 52a, anchor 1): the file read again, against the
        # accepted note (review 52d, anchor 1), unless stdin or another pipe (read once:
        # review 60j, traces 1)
        again = None if once or isinstance(file, Stream) else _again_file(file, node, clock)
        accepted = AcceptedCheckpoints(node.db)
        report = _unless_grown_before(report, accepted)
        if report.anchor is None:  # none kept, or not compared: the node's accepted one
            # (review 59f, trace 1 to 3)
            report, node_anchor = _against_accepted(
                report, accepted, again, said, kept=anchor, node=node, clock=clock, file=file
            )
        if fresh and node_anchor is None:  # a first run, or a mistyped path
            said.info(f"{fresh}: this answer is unanchored")
        report = accepted.anchored(report, again)
    else:
        with open_node_log(node, clock=clock) as log:
            identities = node.identities  # its stored copies judge forks
            known = trace_known(node)  # a rotation it verifies is stored (54i, identity 1)
            attests = trace_checkpoints(node, now=clock.now())  # (review 56q, chains 1)
            issuers = trace_issuers(node)  # as its log's append (review 56y, chains 2)

            def against(note: bytes | None) -> Any:
                return verify_log(
                    log,
                    anchor=note,
                    known=known,
                    checkpoints=attests,
                    rows=identities.window_around,
                    issuers=issuers,
                )

            gone = lost_logs(node)
            accepted = AcceptedCheckpoints(node.db)
            if anchor is None:  # no kept file (or none kept there yet): the node's own
                # accepted checkpoint (review 58c, trace 2: a log rolled back read as a new
                # log, `unanchored`; review 58w, cli 3: so it did with a new kept file)
                anchor = node_anchor = accepted.note_of(log.log_identity)
            if fresh and node_anchor is None:  # a first run, or a mistyped path
                said.info(f"{fresh}: this answer is unanchored")
            report = against(anchor)  # the node's accepted one, not the file's: a kept
            # file swapped back is refused (52a, anchor 1), another verifier's newer is not
            report = accepted.anchored(report, against)  # (review 52d, anchor 1)
            if kept is not None and report.newest is not None:
                target = kept
                accepted.keep(  # onto a log consistent with it only (55b, accepted 1)
                    report.anchor,
                    report.newest,
                    lambda n: write(target, n),
                    proof=log.consistency_proof,
                )
                written = True
            elif node_anchor is not None and report.newest is not None:  # moved on to
                # what it verified (review 58h, trace 1: left behind, a log rolled back
                # below what this answered valid read valid again)
                accepted.keep(report.anchor, report.newest, proof=log.consistency_proof)
    source: Literal["accepted", "kept"] | None = None
    if report.anchor is not None:
        source = "accepted" if node_anchor is not None else "kept"
    return TraceVerdict(
        report,
        source,
        anchor is not None or node_anchor is not None,  # a file's too (60j, traces 3)
        tuple(gone),
        kept,
        bool(fresh),
        written,
        tuple(said.notes),
        tuple(said.warnings),
    )


def _lines(stream: BinaryIO, path: str) -> Generator[bytes, None, None]:
    """The lines of `stream` (file `path`), each read up to MAX_TRACE_LINE_BYTES."""
    limit = limits.MAX_TRACE_LINE_BYTES
    for number in itertools.count(1):
        line = stream.readline(limit + 1)
        if not line:
            return
        if len(line) > limit:  # named by its number, as a line that is no bundle (48b)
            raise OSError(f"{path}: line {number} is longer than {limit} bytes")
        yield line


def _against_accepted(
    report: Any,
    accepted: AcceptedCheckpoints,
    again: Callable[[bytes], Any] | None,
    said: Notes,
    *,
    kept: bytes | None,
    node: Node,
    clock: Clock,
    file: str | Path | Stream,
) -> tuple[Any, bytes | None]:
    """An export or bundle compared with no kept checkpoint (no --checkpoint, none kept at it
    yet, or the `kept` one another log's or of a size the file holds no proof against),
    verified `again` against the newest checkpoint the node accepted of its log, and that note
    (None: none accepted, or not compared: the file holds no proof against its size). An
    export of the node's log rolled back below it read `unanchored`, exit 0 (review 59f, trace
    1, as review 58w cli 3 for the log itself; trace 2, with another log's kept note; trace 3,
    with an older one of its own log). A kept note of its own log only refuses so: the answer
    stays the kept note's (review 52d, anchor 1). Stdin, or a file that is no regular file (a
    FIFO, /dev/stdin from a pipe), is read once: said, not compared (review 60j, traces 1). An
    export smaller than the accepted checkpoint that the node's log proves a prefix of it is
    one made before, not refused (review 59k, trace 1: an honest older export read as a
    rollback, exit 1)."""
    checkpoint = report.checkpoint
    newest = None if checkpoint is None else accepted.newest(checkpoint.origin)
    if newest is None:
        return report, None
    if again is None:  # a warning: a note, which --json drops, left a script's result
        # silent on the comparison skipped (review 59k, trace 2)
        said.warn(
            f"the node accepted a checkpoint of {newest.size} record(s) of this log: stdin is"
            " read once, so not compared with it (name the file to compare)"
            if isinstance(file, Stream)
            else f"the node accepted a checkpoint of {newest.size} record(s) of this log: {file}"
            " is not a regular file, read once, so not compared with it (name a regular file"
            " to compare)"
        )
        return report, None
    try:
        against = again(newest.note)  # TraceError: shorter than it, or not consistent with it
    except TraceError as exc:
        if exc.reason is not TraceFailure.TRUNCATED or not _prefix_in_log(
            node, checkpoint, newest, clock
        ):
            raise
        said.info(
            f"this export's checkpoint of {checkpoint.size} record(s) is older than, and by the"
            f" node's log a prefix of, the node's accepted checkpoint of {newest.size} record(s)"
        )
        return report, None
    if kept is not None and parse_checkpoint(kept)[0].origin == checkpoint.origin:
        return report, None
    if against.anchor is None:  # its size unproved by the file: not compared
        return report, None
    return against, newest.note


def _unless_grown_before(
    report: ExportReport | BundleReport, accepted: AcceptedCheckpoints
) -> ExportReport | BundleReport:
    """`report`, unanchored when a line proved its checkpoint grew from the kept one (review
    63s, traces 1) but the node accepted a larger checkpoint of the log since: an export made
    before that one is compared with it as any other (`_against_accepted`: a prefix of it in
    the node's log, `unanchored`; else refused). Review 63y, traces 1: the kept note, older
    than the accepted checkpoint, was refused as a rollback for an intact log's older export
    (exit 1)."""
    kept, checkpoint = report.anchor, report.checkpoint
    if kept is None or checkpoint is None or checkpoint.size <= kept.size:
        return report
    newest = accepted.newest(checkpoint.origin)
    if newest is None or newest.size <= checkpoint.size:
        return report
    return dataclasses.replace(report, status=AnchorStatus.UNANCHORED, anchor=None)


def _prefix_in_log(node: Node, export: Checkpoint, accepted: Checkpoint, clock: Clock) -> bool:
    """Whether the node's log holds a tree of `accepted`'s size and proves `export`'s (smaller)
    a prefix of it: an export made before the node accepted `accepted` (review 59k, trace 1),
    not one of the log rolled back below it (review 59f, trace 1: that log holds no such tree,
    or one of another root). A log declared lost is not opened (a new one would be made), nor
    one not there (review 59m, trace 1: opening it made an empty trace.db in the place of one
    moved aside)."""
    if export.size >= accepted.size or not (node.path / LOG_FILE).is_file():
        return False
    if accepted.origin in {log_origin(identifier) for identifier, _ in lost_logs(node)}:
        return False
    try:
        with open_node_log(node, clock=clock) as log:
            if log_origin(log.log_identity) != accepted.origin or log.size() < accepted.size:
                return False
            proof = log.consistency_proof(export.size, accepted.size) if export.size else []
        verify_consistency(export.size, accepted.size, export.root, accepted.root, proof)
    except (NotFound, StorageError, TraceError, ValueError):  # damaged, another, not a prefix
        return False
    return True


def _read_once(file: str | Path | Stream) -> bool:
    """Whether `file` is read once: stdin, or a path to anything but a regular file (a FIFO,
    /dev/stdin from a pipe, a device): opened again, it gave nothing (an export valid read
    as TRUNCATED, exit 1), or waited for a writer that never came (review 60j, traces 1)."""
    if isinstance(file, Stream):
        return True
    try:
        return not stat.S_ISREG(os.stat(file).st_mode)
    except (OSError, ValueError):  # not there: opening it says why
        return False


def _again_file(file: str | Path, node: Node, clock: Clock) -> Callable[[bytes], Any]:
    """`_verify_file` of `file` against another kept note (review 52d, anchor 1)."""
    return lambda note: _verify_file(file, note, node, clock)


def _verify_file(
    file: str | Path | Stream, anchor: bytes | None, node: Node, clock: Clock
) -> ExportReport | BundleReport:
    """A JSONL export (one bundle per line) or one proof bundle (as `prove` writes it), with
    the histories the node stores (forks refused, an extension stored: `trace_known`,
    checkpointed histories attested). The file is opened and read once (a `Stream`: stdin): a
    pipe or a FIFO cannot be read again (review 30c, files 1)."""
    identities = node.identities
    known = trace_known(node)  # 54i, identity 1
    attests = trace_checkpoints(node, now=clock.now())  # its stored copies and held feeds (56q)
    rows = identities.window_around
    issuers = trace_issuers(node)  # each chain's issuer histories (review 56y, chains 2)
    limit = limits.MAX_TRACE_LINE_BYTES
    once = isinstance(file, Stream)
    if isinstance(file, Stream):
        path, stream = file.name, file.open()
    else:
        path = str(file)
        try:
            stream = open(path, "rb")  # noqa: SIM115
        except OSError as exc:
            raise OSError(f"cannot read {path}: {exc.strerror or exc}") from None
    with nullcontext() if once else stream:
        lines = _lines(stream, path)
        first = next(lines, b"")
        if first.strip() == b"{":  # an indented bundle: the rest of it, from the same stream
            data = first + stream.read(limit + 1 - len(first))
            if len(data) > limit:
                raise OSError(f"proof bundle {path}: file is larger than {limit} bytes")
            return verify_bundle(
                data, anchor=anchor, known=known, checkpoints=attests, rows=rows, issuers=issuers
            )
        everything = itertools.chain([first], lines)
        return verify_export(
            everything, anchor=anchor, known=known, checkpoints=attests, rows=rows, issuers=issuers
        )
