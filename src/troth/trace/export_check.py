"""Verifying a JSONL export as a whole (docs/traces.md, "What verification detects"): what
lies between its lines, each verified alone (`troth.trace.export`), and which fault is named.

An export's lines are checked one by one as they are read (each bundle alone, then one
checkpoint, no record twice, no seq twice), and what lies between them once the last is read
(each agent's chain between its records present, its keys' retirement by the newest history the
lines carry, the links): the fault named is the first bad record's (issue #13), the one of the
lowest log index of every fault found (`Faults`), whatever the order of the lines: a line
refused alone is set aside, as a line left out, and the rest are read and checked (review 48i:
a later line's bad signature was named before an earlier record's broken chain, retired key or
bad link, and a retired key's latest record, not its first).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from troth.errors import TraceError, TraceFailure
from troth.identity import Checkpoints, Identifier, VerifiedIdentity
from troth.trace.backdating import check_not_backdated
from troth.trace.checkpoint import AnchorStatus, Checkpoint, parse_kept
from troth.trace.export_lines import at_line, numbered
from troth.trace.faults import Faults
from troth.trace.links import check_one_branch
from troth.trace.record import Kind, TraceRecord
from troth.trace.record_decode import (
    Escalation,
    Holders,
    check_resolution,
    id_holders,
    parent_record,
)
from troth.trace.signing import KeyEpoch, keyid_of
from troth.trace.verify import Known, Rows, newest_view

if TYPE_CHECKING:
    from troth.trace.export import BundleReport

__all__ = ["ExportReport", "LineFound", "check_export"]

_F = TraceFailure

LineFound = tuple["BundleReport", VerifiedIdentity, bytes, list[VerifiedIdentity]]
"""A line verified alone: its report, the signer's history it judged the record by, the key's
attestation, the signer's histories it carries (oldest first)."""


@dataclass(frozen=True, slots=True)
class ExportReport:
    """A verified JSONL export."""

    records: int
    agents: int
    checkpoint: Checkpoint | None
    status: AnchorStatus
    anchor: Checkpoint | None = None
    """The checkpoint the verifier kept that the lines' is (VALID), parsed; else None (review
    51g, anchor 1: an older one kept in its place reads `valid` too)."""
    chains_elsewhere: int = 0
    """The records naming a delegation chain kept elsewhere than "at log", which no line
    carries: not checked (as `LogReport.chains_elsewhere`; review 75e, traceverify 2)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.status is AnchorStatus.VALID,  # unanchored is not valid
            "verified": True,  # every signature, chain and proof checked
            "status": self.status.value,
            "records": self.records,
            "agents": self.agents,
            "checkpoint": None if self.checkpoint is None else self.checkpoint.summary(),
            "anchor": None if self.anchor is None else self.anchor.summary(),
            "chains_elsewhere": self.chains_elsewhere,
        }


_Link = tuple[bytes | None, bytes, int, int, int, str, str]
"""What `check_export` keeps of a line: the record's prev, hash, index, time, key change, id,
and the key's id."""

_KeyUse = tuple[bytes, int]
"""What `check_export` keeps of an agent's key: its attestation and the fewest changes of the
histories its lines carried."""


def check_export(
    lines: Iterable[bytes],
    verify: Callable[[bytes], LineFound],
    *,
    anchor: bytes | None = None,
    known: Known | None = None,
    checkpoints: Checkpoints | None = None,
    rows: Rows | None = None,
) -> ExportReport:
    """`verify_export`: every line of `lines` (blank ones skipped) verified alone (`verify`),
    then the export as a whole (`_Export`); TraceError: the first bad record's fault. A line
    that is no bundle (it names no index) ends the export there, as a line the source cannot
    read (OSError) does: the first fault of the lines before it, if any, else that line's
    (its TraceError, that OSError). A line refused alone with its index read is set aside and
    the lines after it are read, until the lines read name more records than one export holds
    (`_Export.overfull`: a line repeated without end is not read for ever)."""
    check = _Export(anchor, known, checkpoints, rows)
    source = numbered(lines)
    while True:
        try:
            item = next(source, None)
        except OSError:
            check.check_between()
            check.faults.raise_first()
            raise
        if item is None:
            break
        number, line = item
        try:
            check.add(verify(line))
        except TraceError as exc:  # a line that is no bundle: named by its number (48b)
            fault = at_line(exc, number)
            check.refused(fault)
            if fault.index is None:  # no export goes on: not read on (/dev/urandom is endless)
                break
        check.lines += 1
        if check.faults.first is not None and check.overfull():
            break
    check.check_between()
    check.faults.raise_first()
    return check.report()


class _Export:
    """What an export's lines showed so far, and the faults found."""

    def __init__(
        self,
        anchor: bytes | None,
        known: Known | None,
        checkpoints: Checkpoints | None,
        rows: Rows | None,
    ) -> None:
        self.anchor, self.known, self.checkpoints, self.rows = anchor, known, checkpoints, rows
        self.faults = Faults()
        self.highest = -1  # the highest index of the lines read: a line that names none is after
        self.checkpoint: Checkpoint | None = None
        self.status = AnchorStatus.UNANCHORED
        self.kept: Checkpoint | None = None  # the anchor the lines' checkpoint is (VALID)
        self.seen_index: set[int] = set()
        self.refused_index: set[int] = set()  # the indices lines refused named
        self.seen_id: dict[tuple[Identifier, str], int] = {}  # (agent, record id) to its index
        self.by_agent: dict[Identifier, dict[int, _Link]] = {}
        self.escalations: dict[tuple[Identifier, str], Escalation] = {}
        self.linking: list[tuple[TraceRecord, int]] = []  # resolutions and version 1 links
        self.newest: dict[Identifier, VerifiedIdentity] = {}  # per agent, the newest carried
        self.keys: dict[tuple[Identifier, str], _KeyUse] = {}
        self.keyids: dict[str, str] = {}  # one copy of each key's id
        self.branches: dict[Identifier, dict[int, bytes]] = {}  # each agent's changes carried
        self.count = 0
        self.chains_elsewhere = 0  # records whose chain no line carries (75e, traceverify 2)
        self.lines = 0  # the lines read, each naming an index

    def refused(self, fault: TraceError) -> None:
        """A line refused alone, or by what the lines before it showed: set aside (the
        export is checked as without it) and its fault noted."""
        if fault.index is not None:
            self.highest = max(self.highest, fault.index)
            self.refused_index.add(fault.index)
        self.faults.note(fault, self.highest)

    def overfull(self) -> bool:
        """Whether the lines read name more records than one export holds: more lines than
        the highest index read + 1, or than the checkpoint's size (some index is repeated)."""
        size = self.highest + 1 if self.checkpoint is None else self.checkpoint.size
        return self.lines > min(self.highest + 1, size)

    def add(self, found: LineFound) -> None:
        """A line verified alone: against the lines before it (one checkpoint, no index or
        (agent, record id) twice, no seq of an agent twice, one branch of each identity),
        then kept. TraceError at the line's record (the later of two at one id or seq)."""
        report, identity, attestation, carried = found
        record, index = report.record, report.index
        self.highest = max(self.highest, index)
        check_one_branch(record.agent, carried, self.branches, index=index, record=record.id)
        if self.checkpoint is None:
            self.checkpoint, self.status = report.checkpoint, report.status
            self.kept = report.anchor
        elif report.checkpoint.note != self.checkpoint.note:
            raise TraceError(
                _F.MALFORMED, "lines against different checkpoints", index=index, record=record.id
            )
        elif report.status is AnchorStatus.VALID:  # the line of the kept size's last record
            # proved the larger checkpoint grew from the kept one (review 63s, traces 1)
            self.status, self.kept = report.status, report.anchor
        named = (record.agent, record.id)
        if index in self.seen_index or named in self.seen_id:
            raise TraceError(
                _F.REPLAYED,
                "the export repeats a record",
                index=max(index, self.seen_id.get(named, index)),
                record=record.id,
            )
        chain = self.by_agent.setdefault(record.agent, {})
        if record.seq in chain:  # two records the agent signed at one seq: its chain forks
            # (review 34g, trace 1: the second replaced the first, unchecked)
            other = chain[record.seq]
            raise TraceError(
                _F.CHAIN_BROKEN,
                f"seq {record.seq} twice (also at index {min(index, other[2])})",
                index=max(index, other[2]),
                record=record.id if index > other[2] else other[5],
            )
        self.seen_index.add(index)
        self.seen_id[named] = index
        keyid = keyid_of(attestation)
        keyid = self.keyids.setdefault(keyid, keyid)  # one copy, each line's link names it
        link = (record.prev, report.hash, index, record.time, report.key_change, record.id, keyid)
        chain[record.seq] = link
        held = self.newest.get(record.agent)
        if held is None or carried[-1].change_count > held.change_count:
            self.newest[record.agent] = carried[-1]
        key = (record.agent, keyid)
        use = self.keys.get(key)
        fewest = identity.change_count if use is None else min(use[1], identity.change_count)
        self.keys[key] = (attestation, fewest)
        if record.kind is Kind.ESCALATION:
            self.escalations[named] = (record, report.hash)
        if record.kind is Kind.RESOLUTION or record.parent_by_id:
            self.linking.append((record, index))
        self.count += 1
        self.chains_elsewhere += report.chain_elsewhere

    def check_between(self) -> None:
        """What lies between the lines kept, each fault noted: with `anchor`, the export
        reaches it (`_check_reaches`); each agent's keys used before they retired by the
        newest of its histories the lines carry (review 35c, trace 1: `_newest_view`), each
        agent's chain between consecutive records present (`_check_follows`), each
        resolution whose escalation is present answers it as its signer was asked, and no
        version 1 link is ambiguous among the lines (`parent_record`), where the lines
        present settle which record it names (`_settled`: review 38b, trace 1)."""
        if self.anchor is not None:
            try:
                _check_reaches(self.anchor, self.checkpoint)
            except TraceError as exc:
                self.faults.note(exc)
        self._check_floor()
        retiring: dict[Identifier, dict[str, KeyEpoch]] = {}
        for (agent, keyid), use in self.keys.items():
            epoch = self._newest_view(agent, use)
            if epoch is not None:
                retiring.setdefault(agent, {})[keyid] = epoch
        gapless = self.complete(refused=True)  # each agent's seqs 0, 1, 2, ... (49j)
        for agent, links in self.by_agent.items():
            retirements = retiring.get(agent, {})
            ordered = sorted(links.items())
            for link in links.values() if retirements else ():
                epoch = retirements.get(link[6])
                try:
                    if epoch is not None:
                        epoch.check_time(link[3])
                except TraceError as exc:  # each record it signed after: the first is named
                    self.faults.note(exc.located(index=link[2], record=link[5]))
            for (earlier, before), (seq, link) in pairwise(ordered):
                try:
                    _check_follows(seq, before, link, next_to=earlier == seq - 1)
                except TraceError as exc:
                    self.faults.note(exc)
            try:
                if gapless:
                    _check_no_gap(ordered)
            except TraceError as exc:
                self.faults.note(exc)
        self._check_links()

    def _check_floor(self) -> None:
        """Once the export is anchored to the kept note (some line's log material signs it:
        `valid`), every record at or past the kept size is held to the floor it sets (review
        66h), whatever log material its own line carries: the line's material is no one's
        signature (review 66o, traces 1: a line without the retired log key that signed the
        kept note was judged as unanchored, the export read `valid`)."""
        kept = self.kept if self.status is AnchorStatus.VALID else None
        if kept is None:
            return
        for links in self.by_agent.values():
            for link in links.values():
                if link[2] < kept.size:
                    continue
                try:
                    check_not_backdated(link[3], kept.time, record=link[5])
                except TraceError as exc:
                    self.faults.note(exc.located(index=link[2], record=link[5]))

    def complete(self, *, refused: bool = False) -> bool:
        """Whether the lines verified hold every record of the log up to their checkpoint
        (every index below its size): none left out. With `refused`, the lines refused
        count: a seq an agent's chain skips is then a record deleted (review 49j, exports 1)
        or one a refused line holds, at an index before the record after the gap (a log holds
        each agent's records in seq order), its fault the first (review 49j, exports 3); a
        link's record in a refused line may be after it (a forward link to a bad record: that
        record is the first bad one, review 48i), so links count the lines verified only."""
        size = 0 if self.checkpoint is None else self.checkpoint.size
        named = self.seen_index | {i for i in self.refused_index if refused and 0 <= i < size}
        return len(named) == size and all(0 <= i < size for i in self.seen_index)

    def _newest_view(self, agent: Identifier, use: _KeyUse) -> KeyEpoch | None:
        """A key of `agent` some line judged by an older history than the newest of the agent
        the lines carry, judged again by that newest, as `verify_log` judges every record by
        the newest the log holds: each line carries its own history, which no signature
        covers, and one carrying an older one, where the key was still current, hid its
        retirement that another line's newer history shows (review 35c, trace 1). None: every
        line judged it by the newest, or the newest does not hold it (an older window's key:
        judged by its lines)."""
        attestation, fewest = use
        newest = self.newest[agent]
        if fewest >= newest.change_count:
            return None
        try:
            return newest_view(agent, attestation, newest, self.rows, self.known, self.checkpoints)
        except TraceError:
            return None

    def _check_links(self) -> None:
        """A resolution's escalation, when the export holds it, asked its signer (review 34g,
        trace 4: as `verify_log` and the log at append check it); a version 1 link names one
        record, placed by the lines' log indices, whatever the lines' order (review 36e, trace
        4; review 36g, trace 2), when the lines left out cannot change which one (review 38b,
        trace 1); in a complete export (`complete`) a resolution of an escalation it does not
        hold is of none in the log (review 49j, exports 2)."""
        placed = ((agent, record_id, at) for (agent, record_id), at in self.seen_id.items())
        holders = id_holders(placed, (record for record, _ in self.linking))
        present = sorted(self.seen_index)
        size = 0 if self.checkpoint is None else self.checkpoint.size
        whole = self.complete()  # every record present: one not among them is not in the log
        for record, index in self.linking:
            if record.parent_by_id and not _settled(record, holders, index, present, size):
                continue
            try:
                parent = parent_record(record, holders, index=index)
                if record.kind is Kind.RESOLUTION and (
                    parent is None or parent in self.seen_id or whole
                ):
                    check_resolution(
                        record, None if parent is None else self.escalations.get(parent)
                    )
            except TraceError as exc:
                self.faults.note(exc.located(index=index, record=record.id))

    def report(self) -> ExportReport:
        return ExportReport(
            self.count,
            len(self.by_agent),
            self.checkpoint,
            self.status,
            self.kept,
            self.chains_elsewhere,
        )


def _check_reaches(anchor: bytes, checkpoint: Checkpoint | None) -> None:
    """An export reaches the checkpoint its verifier kept (`anchor`): one of no lines against a
    kept checkpoint of N > 0 records, or whose checkpoint of the same log is smaller than the
    kept one, is taken from a log that lacks records the verifier saw: truncated, as
    `verify_log` says of the log itself (review 45a, trace 1; it answered "unanchored"). A
    kept checkpoint of the empty tree is a prefix of every log; one of another log, or a
    larger checkpoint than the kept one stays unanchored unless a line proves it grew from the
    kept one (the line of the kept size's last record: `judge_line_kept`, review 63s, traces
    1; a fork's line is refused there)."""
    saved = parse_kept(anchor)
    if checkpoint is None:
        if saved.size > 0:
            raise TraceError(
                _F.TRUNCATED, f"anchored at {saved.size} records, the export holds none"
            )
    elif checkpoint.origin == saved.origin and checkpoint.size < saved.size:
        raise TraceError(
            _F.TRUNCATED,
            f"the export's checkpoint is of {checkpoint.size} records, anchored at {saved.size}",
        )


def _settled(
    record: TraceRecord, holders: Holders, index: int, present: list[int], size: int
) -> bool:
    """Whether the lines of an export (`present`: their log indices, sorted; `size`: the
    checkpoint's) settle which record `record`'s version 1 link names, as the whole log would
    (`parent_record`), or that it is ambiguous: the signer's own record under the id before
    the link is the one whatever else was left out; the signer's own after it (ids are per
    agent: none of its own before it) leaves another agent's record before it present the
    one, or the link ambiguous (another's among the lines left out), and, none before it with
    every line before it present (a forward link), is itself the one; else the records before
    the link decide, so every line before it must be present; else (none before it: a forward
    link) every line of the log. An export of some lines (`troth trace export --agent`) may
    leave out the record the link names, so that the signer's own later record, or another
    agent's, would be taken for it (review 38b, trace 1): such a link is to a record the
    export does not hold. Review 39b, trace 2: with the signer's own record after the link
    not counted, leaving out any line before a forged resolution let it pass unchecked
    against the escalation its lines showed it names."""
    held = holders(record.agent, record.links.parent or "")
    if held.own is not None and held.own < index:
        return True
    all_before = bisect.bisect_left(present, index) == index
    if held.first is not None and held.first[0] < index:  # another agent's, before it
        return all_before or held.own is not None
    if not all_before:  # a line before it left out
        return False
    return held.own is not None or len(present) == size  # a forward link


def _check_no_gap(ordered: list[tuple[int, _Link]]) -> None:
    """An agent's records in a complete export (`_Export.complete`), in seq order, are its
    seqs 0, 1, 2, ... as `verify_log` requires: a seq skipped is a record deleted, the indices
    closed up (docs/traces.md, "What verification detects"). TraceError(CHAIN_BROKEN) at the
    record after the gap (review 49j, exports 1)."""
    for expected, (seq, link) in enumerate(ordered):
        if seq != expected:
            detail = (
                f"the agent's first record has seq {seq}"
                if expected == 0
                else f"seq {seq} after seq {expected - 1}"
            )
            raise TraceError(_F.CHAIN_BROKEN, detail, index=link[2], record=link[5])


def _check_follows(seq: int, before: _Link, link: _Link, *, next_to: bool) -> None:
    """Record `seq` (`link`) follows `before`, the agent's record present before it, as
    `verify_log` requires: it is later in the log (a log holds each agent's records in seq
    order: a re-signed tree holding them swapped verified as an export, review 75e,
    traceverify 1), names its hash (`next_to`: the record right before it), is not dated
    before it, and its key is of no older change of the agent's history (a key retired
    before the record was signed, the record dated back to when it was valid), whatever lies
    between them: an export may leave lines out (review 34g, trace 3). TraceError at `link`'s
    record (the earlier in the log, when the two are swapped: where `verify_log` refuses)."""
    prev, _hash, index, time, change, record, _keyid = link
    if index < before[2]:
        raise TraceError(
            _F.CHAIN_BROKEN,
            f"seq {seq} at index {index}, before the agent's earlier seq at index {before[2]}",
            index=index,
            record=record,
        )
    if next_to and prev != before[1]:
        raise TraceError(
            _F.CHAIN_BROKEN, f"seq {seq} does not name seq {seq - 1}", index=index, record=record
        )
    if time < before[3]:
        raise TraceError(_F.TIME_REVERSED, f"{time} after {before[3]}", index=index, record=record)
    if change < before[4]:
        raise TraceError(
            _F.KEY_RETIRED,
            f"key of change {change} after one of {before[4]}",
            index=index,
            record=record,
        )
