"""Verifying a whole trace log offline (docs/traces.md, "What verification detects").

`LogVerifier` takes the records in log order (sans-IO) with what a verifier needs beside them
(`LogMaterial`: the signers' histories, the attestations by keyid, the chains the log keeps,
the checkpoints) and raises TraceError naming the first bad record and why (the lowest index
of every fault: a link to a later record, judged once the log is read, before a record refused
as it is read, `first_fault`; review 48i):

- the record decodes (canonical envelope and payload), its id is new, its leaf is the one
  appended (when the log's stored leaf hash is given);
- its key: the attestation its keyid names is for the record's agent, under a change of the
  agent's verified history, and could sign at the record's time (`KeyEpoch.check_time`:
  "signatures outlive rotations", a retired key's later record is KEY_RETIRED); a history
  from a checkpoint is attested by the verifier's stored copy, else by an older history the
  log kept of the agent that verifies and holds that change (docs/traces.md, "Signer
  histories": review 47i, collector 2);
- the signature over the PAE of the exact payload bytes;
- the agent's chain: seq 0, 1, 2, ... each naming the previous record's hash, times never
  decreasing, keys never going back to an older change;
- every disclosure opens its commitment; a chain kept in the log matches the record's
  credential ids and hashes and its last subject is the agent; a resolution resolves an
  escalation addressed to its signer;
- the Merkle root of the first n records equals every checkpoint of size n (and no checkpoint
  is larger than the log: truncation).

`finish(anchor)` then judges the newest checkpoint against the one the verifier kept: VALID,
or UNANCHORED with no saved checkpoint (never "valid").
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from troth.credentials.format import CredentialBody, CredentialChain
from troth.crypto import sha256
from troth.errors import DecodeError, IdentityError, NotFound, TraceError, TraceFailure
from troth.identity import (
    ChangeBody,
    Checkpoints,
    Identifier,
    PurposeKeyAttestation,
    UnverifiedHistory,
    VerifiedIdentity,
    verify_history,
)
from troth.identity import Checkpoint as IdentityCheckpoint
from troth.trace.backdating import LogFloor, check_after_kept
from troth.trace.chain_signed import IssuerCheck, check_chain_signed
from troth.trace.checkpoint import (
    AnchorStatus,
    Checkpoint,
    check_checkpoint_time,
    in_order,
    judge_kept,
    parse_kept,
    verify_checkpoint,
    what_is_kept,
)
from troth.trace.faults import read_on
from troth.trace.log import TraceLog
from troth.trace.merkle import Frontier, leaf_hash
from troth.trace.record import Disclosure, Kind, TraceRecord
from troth.trace.record_decode import Escalation, check_resolution, id_holders, parent_record
from troth.trace.signing import (
    KeyEpoch,
    check_disclosures,
    check_signature,
    open_envelope,
    resolve_key,
)
from troth.trace.stored import StoredEntry, history_windows
from troth.trace.verify_report import LogReport

__all__ = [
    "LogMaterial",
    "LogReport",
    "LogVerifier",
    "check_chain",
    "check_checkpoint_time",
    "key_in_rows",
    "log_material",
    "newest_view",
    "verify_identity",
    "verify_log",
    "verify_records",
    "verify_windows",
]

_F = TraceFailure
_NONE: Mapping[str, Disclosure] = {}
Known = Callable[[VerifiedIdentity], None]
Rows = Callable[[bytes, bytes], bytes | None]
"""A node's own rows of an identity: (identifier digest, change hash) -> that change and the
next one as a history (`IdentityService.window_around`), None when it holds no such change."""


@dataclass(frozen=True, slots=True)
class LogMaterial:
    """What verifying a log needs beside its records (a log's bundle)."""

    histories: Mapping[Identifier, bytes]
    attestations: Mapping[str, bytes]
    chains: Mapping[bytes, bytes] = field(default_factory=dict)
    checkpoints: Sequence[bytes] = ()
    log_identity: Identifier | None = None
    windows: Mapping[Identifier, Sequence[bytes]] = field(default_factory=dict)
    """Per signer, the older histories its newest one no longer holds (`TraceLog`)."""


def key_in_rows(
    agent: Identifier,
    attestation: bytes,
    rows: Rows | None,
    known: Known | None,
    checkpoints: Checkpoints | None,
) -> KeyEpoch | None:
    """The key `attestation` attests, resolved in the verifier's own rows of `agent` (a node
    verifying its own identities' records: the change it was made under and the next one,
    which says when it retired); None without such rows."""
    if rows is None:
        return None
    try:
        made_under = PurposeKeyAttestation.decode(attestation).change_hash
    except DecodeError:
        return None
    window = rows(agent.digest, made_under)
    if window is None:
        return None
    return resolve_key(verify_identity(agent, window, known, checkpoints), attestation)


def newest_view(
    agent: Identifier,
    attestation: bytes,
    identity: VerifiedIdentity,
    rows: Rows | None,
    known: Known | None,
    checkpoints: Checkpoints | None,
) -> KeyEpoch:
    """The key `attestation` attests, judged by the newest the verifier knows: resolved in
    `identity` (what a record or bundle carries), and, where that shows the key current or
    lacks its change, in the verifier's own stored changes (`key_in_rows`), whose next change
    says when the key retired (formats.md, "Signatures outlive rotations": the newest copy)."""
    try:
        epoch = resolve_key(identity, attestation)
    except TraceError:
        from_rows = key_in_rows(agent, attestation, rows, known, checkpoints)
        if from_rows is None:
            raise
        return from_rows
    if epoch.retired_at is None:
        from_rows = key_in_rows(agent, attestation, rows, known, checkpoints)
        if from_rows is not None and from_rows.retired_at is not None:
            return from_rows
    return epoch


def verify_identity(
    identifier: Identifier,
    history: bytes | None,
    known: Known | None,
    checkpoints: Checkpoints | None = None,
) -> VerifiedIdentity:
    """Verify a signer's history as of its latest change (a log outlives key expiries: each
    record is judged at its own time), that it is `identifier`'s, and (`known`) that it does
    not fork from or roll back the verifier's stored copy. A history from a checkpoint (a
    signer past 64 changes) needs `checkpoints` to attest it (a node: its stored copies)."""
    if history is None:
        raise TraceError(_F.MISSING_HISTORY, str(identifier))
    try:
        unverified = UnverifiedHistory.decode(history)
        at = ChangeBody.decode(unverified.changes[-1].body).created_at
        identity = verify_history(unverified, now=at, checkpoints=checkpoints)
        if known is not None:
            known(identity)
    except (DecodeError, IdentityError) as exc:
        raise TraceError(_F.SIGNER_INVALID, f"{identifier}: {exc}") from None
    if identity.identifier != identifier:
        raise TraceError(_F.SIGNER_INVALID, f"the history filed under {identifier} is another's")
    return identity


def verify_windows(
    agent: Identifier,
    first: int,
    hashes: Sequence[bytes],
    sent: Sequence[bytes],
    checkpoints: Checkpoints | None = None,
) -> list[VerifiedIdentity]:
    """`sent`, histories of `agent` oldest first, each verified as of its latest change from
    change 0 or from a checkpoint the one before it holds (the first: the history of changes
    `first`.. by `hashes`), or one `checkpoints` attests (a verifier's stored copies), never
    judged against a stored copy (the caller judges the newest, and `check_windows` that they
    chain): the windows a trace batch carries (the collector; review 47l, windows 1) and a
    proof bundle's (review 47o, bundles 1). TraceError SIGNER_INVALID naming the window."""
    held: list[tuple[int, Sequence[bytes]]] = [(first, hashes)]

    def attests(checkpoint: IdentityCheckpoint, change_hash: bytes) -> bool:
        if checkpoints is not None and checkpoints(checkpoint, change_hash):
            return True
        start, known = held[-1]
        position = checkpoint.index - start
        return (
            checkpoint.identifier == agent.digest
            and 0 <= position < len(known)
            and known[position] == change_hash
        )

    verified: list[VerifiedIdentity] = []
    for position, window in enumerate(sent):
        try:
            found = verify_identity(agent, window, None, attests)
        except TraceError as exc:
            raise TraceError(_F.SIGNER_INVALID, f"window {position}: {exc.detail}") from None
        verified.append(found)
        held.append((found.first_index, [change.change_hash for change in found.changes]))
    return verified


_ChainSummary = tuple[tuple[tuple[bytes, bytes], ...], Identifier]


def _chain_summary(chain: bytes) -> _ChainSummary:
    """(serial, hash) of each credential of a chain, root first, and its last subject."""
    try:
        decoded = CredentialChain.decode(chain)
        bodies = [CredentialBody.decode(c.body) for c in decoded.credentials]
    except DecodeError as exc:
        raise TraceError(_F.CHAIN_MISMATCH, str(exc)) from None
    named = tuple((b.id, c.hash) for b, c in zip(bodies, decoded.credentials, strict=True))
    return named, bodies[-1].subject


def _check_summary(record: TraceRecord, summary: _ChainSummary) -> None:
    authority = record.authority
    if authority is None or summary[0] != authority.credentials:
        raise TraceError(_F.CHAIN_MISMATCH, "credential ids or hashes differ from the chain")
    if summary[1] != record.agent:
        raise TraceError(_F.CHAIN_MISMATCH, f"the chain is {summary[1]}'s, not the agent's")


def check_chain(record: TraceRecord, chain: bytes) -> None:
    """Raise TraceError(CHAIN_MISMATCH) unless `chain` is the one `record` names: its
    credentials' ids and hashes, root first, and its last subject the record's agent. (Whether
    the chain verifies under a trust policy is the verifier's own question: ChainVerifier.)"""
    _check_summary(record, _chain_summary(chain))


def _holds(histories: Sequence[VerifiedIdentity | None], index: int, change_hash: bytes) -> bool:
    """Whether one of `histories` (verified; None: one that did not) holds change `index`
    with hash `change_hash`."""
    for history in histories:
        if history is None:
            continue
        position = index - history.first_index
        if 0 <= position < len(history.changes) and (
            history.changes[position].change_hash == change_hash
        ):
            return True
    return False


def no_fork(
    agent: Identifier,
    histories: Iterable[VerifiedIdentity],
    seen: dict[int, bytes] | None = None,
    *,
    what: str = "the histories the log kept",
) -> None:
    """Raise TraceError SIGNER_INVALID when two of `histories` (an agent's newest and the
    windows a log kept of it; the histories an export's lines carry) hold a change with two
    hashes: two branches of one identity (a stolen key backup's fork), which a log never keeps
    on its own (review 47p, verify 1; review 47r, bundles 1). `seen`: the hashes of the changes
    of `agent` checked before, by index, added to (one export's lines, line by line)."""
    seen = {} if seen is None else seen
    for history in histories:
        for change in history.changes:
            if seen.setdefault(change.index, change.change_hash) != change.change_hash:
                raise TraceError(
                    _F.SIGNER_INVALID, f"{agent}: {what} fork at change {change.index}"
                )


def retired_by(change: int, change_hash: bytes, later: Iterable[VerifiedIdentity]) -> int | None:
    """When the change after `change` (hash `change_hash`: a key's, current in the history
    that ends at it) was made, by the first of `later` (an agent's histories after that one:
    the windows a log kept, a bundle's windows) that holds both: only a history that holds
    the key's own change says when it retired, a change after it on another branch says
    nothing of it (review 47p, verify 1; review 47r, bundles 2). None: none holds them."""
    return next(
        (
            c.body.created_at
            for other in later
            if _holds((other,), change, change_hash)
            for c in other.changes
            if c.index == change + 1
        ),
        None,
    )


@dataclass
class _AgentState:
    seq: int
    hash: bytes
    time: int
    change: int


class LogVerifier:
    """Verifies records one by one in log order; `finish` checks the checkpoints' anchor."""

    def __init__(
        self,
        material: LogMaterial,
        *,
        known: Known | None = None,
        checkpoints: Checkpoints | None = None,
        rows: Rows | None = None,
        issuers: IssuerCheck | None = None,
    ) -> None:
        self.material = material
        self._known = known
        self._attests = checkpoints
        self._rows = rows
        self._issuers = issuers  # a node's check of chains' issuer histories (56y, chains 2)
        self._identities: dict[Identifier, VerifiedIdentity] = {}
        self._windows: dict[Identifier, list[VerifiedIdentity]] = {}
        self._linkable_windows: dict[Identifier, list[VerifiedIdentity | None]] = {}
        self._epochs: dict[str, KeyEpoch] = {}
        self._agents: dict[Identifier, _AgentState] = {}
        # (agent, record id) to its index: ids are unique per agent (docs/formats.md, "Trace
        # records"); a version 1 link is resolved by where the records under its id are
        self._ids: dict[tuple[Identifier, str], int] = {}
        self._escalations: dict[tuple[Identifier, str], Escalation] = {}
        self._waiting: list[tuple[int, TraceRecord]] = []
        self._chains_seen: dict[bytes, _ChainSummary] = {}
        self._frontier = Frontier()
        self._latest = 0  # the latest record time so far, and at each wanted size
        self._latest_at: dict[int, int] = {}
        self._roots: dict[int, bytes] = {}
        self._kept_note: tuple[bytes, Checkpoint] | None = None  # (`keep`)
        self.disclosures = 0
        self.chains_checked = 0
        self.chains_elsewhere = 0
        self._checkpoints = self._verified_checkpoints()
        self._wanted_roots = {c.size for c in self._checkpoints}
        self._floor = LogFloor(self._checkpoints, self._roots)  # (review 67h, traces 1)
        if 0 in self._wanted_roots:
            self._roots[0] = self._frontier.root()

    @property
    def count(self) -> int:
        return self._frontier.size

    def want_root(self, size: int) -> None:
        """Keep the root of the first `size` records (an anchor's size) while verifying."""
        self._wanted_roots.add(size)
        if size == 0:
            self._roots[0] = self._frontier.root()

    def keep(self, anchor: bytes) -> None:
        """Judge the records against the checkpoint a verifier kept (`anchor`): keep the root
        of its size; refuse a record after it dated more than the skew before it (BACKDATED,
        `troth.trace.backdating`; review 63s, traces 3)."""
        kept = parse_kept(anchor)
        self.want_root(kept.size)
        self._kept_note = (anchor, kept)

    def _kept_floor(self, note: bytes, kept: Checkpoint) -> bool:
        """The kept note is the log's and the records read hash to its root: a floor (one of
        another tree is judged at the end, not its records: review 67k, traces 2)."""
        return bool(self._verify_kept(note)) and self._roots.get(kept.size) == kept.root

    def _verify_kept(self, anchor: bytes) -> Checkpoint:
        """The kept note, verified as the log's (its faults said of it: `what_is_kept`)."""
        log_identity = self._log_identity()
        with what_is_kept():  # another log's, or not the log's keys' (review 51g, kept 1)
            return verify_checkpoint(
                anchor, log_identity, self.material.attestations, resolve=self._judge
            )

    def _log_identity(self) -> VerifiedIdentity:
        identifier = self.material.log_identity
        if identifier is None:
            raise TraceError(_F.CHECKPOINT_INVALID, "the log identity is unknown")
        return self._identity(identifier)

    def _verified_checkpoints(self) -> list[Checkpoint]:
        if not self.material.checkpoints:
            return []
        log = self._log_identity()
        attestations = self.material.attestations
        verified = [
            verify_checkpoint(note, log, attestations, resolve=self._judge)
            for note in self.material.checkpoints
        ]
        return in_order(verified)  # none dated before a smaller one (review 49j)

    def _judge(self, identity: VerifiedIdentity, attestation: bytes) -> KeyEpoch:
        """A key of `identity` by the newest this verifier knows (`newest_view`)."""
        return newest_view(
            identity.identifier, attestation, identity, self._rows, self._known, self._attests
        )

    def _identity(self, identifier: Identifier) -> VerifiedIdentity:
        identity = self._identities.get(identifier)
        if identity is None:
            history = self.material.histories.get(identifier)
            identity = verify_identity(identifier, history, self._known, self._anchors(identifier))
            self._identities[identifier] = identity
        return identity

    def _anchors(self, agent: Identifier) -> Checkpoints:
        """The verifier's word on `agent`'s checkpointed histories (`checkpoints`: a node's
        stored copies), else the log's own: a window of the agent the log kept that verifies
        (from change 0, or from a change an older window holds) and holds the change. The
        verifier's stored copy moves on as the agent rotates; the windows the log kept stay
        (review 47i, collector 2)."""

        def attests(checkpoint: IdentityCheckpoint, change_hash: bytes) -> bool:
            if self._attests is not None and self._attests(checkpoint, change_hash):
                return True
            return checkpoint.identifier == agent.digest and _holds(
                self._linkable(agent), checkpoint.index, change_hash
            )

        return attests

    def _linkable(self, agent: Identifier) -> list[VerifiedIdentity | None]:
        """The windows the log kept of `agent`, oldest first, each verified as a history of
        the agent (a checkpointed one attested by the verifier or by an older window), None
        for one that does not; not judged against the verifier's stored copy (`_kept`)."""
        found = self._linkable_windows.get(agent)
        if found is None:
            found = self._linkable_windows[agent] = []

            def older(checkpoint: IdentityCheckpoint, change_hash: bytes) -> bool:
                if self._attests is not None and self._attests(checkpoint, change_hash):
                    return True
                return checkpoint.identifier == agent.digest and _holds(
                    found, checkpoint.index, change_hash
                )

            for window in self.material.windows.get(agent, ()):
                try:
                    found.append(verify_identity(agent, window, None, older))
                except TraceError:
                    found.append(None)
        return found

    def _kept(self, agent: Identifier) -> list[VerifiedIdentity]:
        """The windows the log kept of `agent`, oldest first, verified once per agent
        (whatever number of keys it used): one whose last change the newest history (or a
        newer window so linked) holds is a prefix of the history `known` judged, and passes
        as it; any other is judged by `known` itself (a stored copy that moved past it
        refuses it: nothing shows it is a prefix)."""
        kept = self._windows.get(agent)
        if kept is None:
            newest = self._identity(agent)
            windows = self.material.windows.get(agent, ())
            linked = [newest]
            judged: list[VerifiedIdentity] = []
            for window, verified in zip(
                reversed(windows), reversed(self._linkable(agent)), strict=True
            ):
                if verified is not None and _holds(
                    linked, verified.current.index, verified.current_change_hash
                ):
                    linked.append(verified)
                    judged.append(verified)
                else:
                    anchors = self._anchors(agent)
                    judged.append(verify_identity(agent, window, self._known, anchors))
            no_fork(agent, [newest, *judged])  # review 47p, verify 1
            kept = self._windows[agent] = judged[::-1]
        return kept

    def _epoch(self, keyid: str, agent: Identifier) -> KeyEpoch:
        epoch = self._epochs.get(keyid)
        if epoch is None:
            attestation = self.material.attestations.get(keyid)
            if attestation is None:
                raise TraceError(_F.UNKNOWN_KEY, keyid)
            epoch = self._resolve(agent, attestation)
            self._epochs[keyid] = epoch
        if epoch.identifier != agent:
            raise TraceError(_F.ATTESTATION_INVALID, f"the key is {epoch.identifier}'s")
        return epoch

    def _resolve(self, agent: Identifier, attestation: bytes) -> KeyEpoch:
        """The key under the agent's newest history, else under an older window the log kept
        (the agent rotated past 64 changes since), retired when the next history the log kept
        says its following change was made; unknown there (a gap): refused."""
        newest = self._identity(agent)
        try:
            return newest_view(agent, attestation, newest, self._rows, self._known, self._attests)
        except TraceError as exc:
            refused = exc
        kept = self._kept(agent)
        later = [*kept, newest]
        for position, window in enumerate(kept):
            try:
                epoch = resolve_key(window, attestation)
            except TraceError:
                continue
            if epoch.retired_at is None:  # its window's last change: the next one retired it
                mine = window.changes[epoch.change - window.first_index].change_hash
                following = retired_by(epoch.change, mine, later[position + 1 :])
                if following is None:  # (the verifier's rows were asked first: newest_view)
                    raise TraceError(
                        _F.ATTESTATION_INVALID,
                        f"change {epoch.change + 1} (which retired this key) is in no "
                        "history the log kept",
                    )
                epoch = replace(epoch, is_current=False, retired_at=following)
            return epoch
        raise refused

    def add(
        self,
        index: int,
        envelope: bytes,
        *,
        stored_leaf: bytes | None = None,
        stored_id: str | None = None,
        stored_agent: bytes | None = None,
        disclosures: Mapping[str, Disclosure] | Callable[[], Mapping[str, Disclosure]] = (_NONE),
    ) -> TraceRecord:
        """Verify the record at log position `index` (the next one); return it. `stored_leaf`
        `stored_id` and `stored_agent` are what the log's index says (they must agree with the
        record)."""
        record: TraceRecord | None = None
        try:
            if index != self._frontier.size:
                raise TraceError(_F.MALFORMED, f"expected record {self._frontier.size} next")
            leaf = leaf_hash(envelope)
            if stored_leaf is not None and stored_leaf != leaf:
                raise TraceError(_F.LEAF_MISMATCH)
            record, payload, signature, keyid = open_envelope(envelope)
            held = disclosures() if callable(disclosures) else disclosures
            self._check_record(record, payload, signature, keyid, held)
            self._floor.check(index, record)
            if stored_id is not None and stored_id != record.id:
                raise TraceError(_F.LEAF_MISMATCH, f"filed under id {stored_id}")
            if stored_agent is not None and stored_agent != record.agent.digest:
                raise TraceError(_F.LEAF_MISMATCH, "filed under another agent")
        except TraceError as exc:
            raise exc.located(index=index, record=None if record is None else record.id) from None
        if self._kept_note is not None:  # (outside the try: a bad kept note is not the record's)
            note, kept = self._kept_note
            check_after_kept(index, record, kept, lambda: self._kept_floor(note, kept))
        self._frontier.append(leaf)
        size = self._frontier.size
        self._latest = max(self._latest, record.time)
        if size in self._wanted_roots:
            self._roots[size] = self._frontier.root()
            self._latest_at[size] = self._latest
        return record

    def _check_record(
        self,
        record: TraceRecord,
        payload: bytes,
        signature: bytes,
        keyid: str,
        disclosures: Mapping[str, Disclosure],
    ) -> None:
        key = (record.agent, record.id)
        if key in self._ids:
            raise TraceError(
                _F.REPLAYED, "a record of this agent with this id is earlier in the log"
            )
        epoch = self._epoch(keyid, record.agent)
        epoch.check_time(record.time)
        check_signature(epoch, payload, signature)
        state = self._agents.get(record.agent)
        record_hash = sha256(payload)
        if state is None:
            if record.seq != 0:
                raise TraceError(_F.CHAIN_BROKEN, f"the agent's first record has seq {record.seq}")
        else:
            if record.seq != state.seq + 1 or record.prev != state.hash:
                raise TraceError(_F.CHAIN_BROKEN, f"seq {record.seq} after seq {state.seq}")
            if record.time < state.time:
                raise TraceError(_F.TIME_REVERSED, f"{record.time} after {state.time}")
            if epoch.change < state.change:
                raise TraceError(
                    _F.KEY_RETIRED, f"key of change {epoch.change} after one of {state.change}"
                )
        if disclosures:
            check_disclosures(record, disclosures)
            self.disclosures += len(disclosures)
        if record.authority is not None:
            self._check_authority(record)
        if record.kind is Kind.ESCALATION:
            self._escalations[key] = (record, record_hash)
        parent = record.links.parent_of(record.agent)  # a version 1 link: the signer's own first
        if (
            parent is not None
            and parent not in self._ids
            and (record.parent_by_id or record.kind is Kind.RESOLUTION)
        ):  # a version 1 link is resolved, and a resolution checked, once the log is read
            self._waiting.append((self._frontier.size, record))
        elif record.kind is Kind.RESOLUTION:
            check_resolution(record, None if parent is None else self._escalations.get(parent))
        self._ids[key] = self._frontier.size
        self._agents[record.agent] = _AgentState(record.seq, record_hash, record.time, epoch.change)

    def _check_authority(self, record: TraceRecord) -> None:
        authority = record.authority
        if authority is None:
            return
        if authority.chain not in self._chains_seen:
            chain = self.material.chains.get(authority.chain)
            if chain is None:
                if authority.at == "log":
                    raise TraceError(_F.CHAIN_MISMATCH, "the chain is not in the log")
                self.chains_elsewhere += 1
                return
            if sha256(chain) != authority.chain:
                raise TraceError(_F.CHAIN_MISMATCH, "the stored chain is damaged")
            self._chains_seen[authority.chain] = _chain_summary(chain)
            check_chain_signed(chain, self._attests, rows=self._rows, issuers=self._issuers)
        _check_summary(record, self._chains_seen[authority.chain])
        self.chains_checked += 1

    def finish(self, anchor: bytes | None = None) -> LogReport:
        """After the last record: version 1 links (`parent_record`: ambiguous ones refused),
        resolutions whose escalation came later, every checkpoint's root, truncation, and the
        newest checkpoint against the verifier's `anchor` (the note it kept)."""
        self._check_links(self._frontier.size)
        size = self._frontier.size
        for checkpoint in self._checkpoints:
            self._check_root(checkpoint, size)
        newest = self._checkpoints[-1] if self._checkpoints else None
        status, saved = AnchorStatus.UNANCHORED, None
        if anchor is not None:
            saved = self._verify_kept(anchor)
            status = judge_kept(saved, newest, size, self._root_at)
        covered = max((c.size for c in (newest, saved) if c is not None), default=0)
        return LogReport(
            status,
            size,
            newest,
            size - covered,
            len(self._agents),
            self.disclosures,
            self.chains_checked,
            self.chains_elsewhere,
            saved,
        )

    def _check_links(self, before: int) -> None:
        """The version 1 links and the resolutions `add` left for the end (a link to a record
        later in the log), of the records before index `before`, in log order."""
        named = ((agent, record_id, at) for (agent, record_id), at in self._ids.items())
        waiting = [(index, record) for index, record in self._waiting if index < before]
        holders = id_holders(named, (record for _, record in waiting))
        for index, record in waiting:
            try:
                parent = parent_record(record, holders, index=index)
                if record.kind is Kind.RESOLUTION:
                    escalation = None if parent is None else self._escalations.get(parent)
                    check_resolution(record, escalation)
            except TraceError as exc:
                raise exc.located(index=index, record=record.id) from None

    def first_fault(self, fault: TraceError, rest: Iterable[tuple[int, bytes]]) -> TraceError:
        """The first bad record's failure (issue #13: the lowest index of every fault), once
        `add` refused a record (`fault`, at its index): `fault`, unless a link of a record
        before it, judged at the end (`finish`: a link to a later record), is bad. `rest`:
        (index, envelope) of the records from the refused one on, each read as it stands (no
        signature checked: a link to a badly signed record is not the first fault, the record
        is) for the ids and escalations such links name; read only when such a link waits.
        A record of `rest` that does not decode names nothing; one the log cannot read (a
        TraceError) leaves those links unjudged: `fault`."""
        if fault.index is None or not any(index < fault.index for index, _ in self._waiting):
            return fault
        try:
            for index, envelope in rest:
                try:
                    record, payload, *_ = open_envelope(envelope)
                except TraceError:
                    continue
                named = (record.agent, record.id)
                self._ids.setdefault(named, index)
                if record.kind is Kind.ESCALATION:  # with its hash (review 53i, resolutions 1)
                    self._escalations.setdefault(named, (record, sha256(payload)))
        except TraceError:  # a row the log cannot read: the links stay unjudged
            return fault
        try:
            self._check_links(fault.index)
        except TraceError as exc:
            return exc
        return fault

    def _root_at(self, size: int) -> bytes:
        root = self._roots.get(size)
        if root is None:
            raise TraceError(_F.ROOT_MISMATCH, f"no root kept at {size} (want_root)")
        return root

    def _check_root(self, checkpoint: Checkpoint, size: int) -> None:
        if checkpoint.size > size:
            raise TraceError(
                _F.TRUNCATED, f"checkpoint of {checkpoint.size} records, the log has {size}"
            )
        if self._root_at(checkpoint.size) != checkpoint.root:
            raise TraceError(
                _F.ROOT_MISMATCH,
                f"the first {checkpoint.size} records do not hash to the checkpoint's root",
            )
        check_checkpoint_time(checkpoint, self._latest_at.get(checkpoint.size))


def verify_records(
    verifier: LogVerifier,
    entries: Iterable[StoredEntry],
    anchor: bytes | None,
    *,
    resume: Callable[[int], Iterable[StoredEntry]] | None = None,
) -> LogReport:
    """Feed a log's stored entries to `verifier` in order and finish. A refused record is
    reported unless a record before it is bad (`LogVerifier.first_fault`: the entries after it
    are read for that); `resume(index)`: the log's entries from `index` on, read after a row
    the entries could not read (TraceError at its index), else that row is reported as is."""
    if anchor is not None:
        verifier.keep(anchor)
    stream = iter(entries)
    while True:
        try:
            entry = next(stream, None)
        except TraceError as exc:  # a row the log cannot read: the bad record
            if exc.index is None or resume is None:
                raise
            later = read_on(resume(exc.index + 1), resume)
            raise verifier.first_fault(exc, later) from None
        if entry is None:
            return verifier.finish(anchor)
        try:
            verifier.add(
                entry.index,
                entry.envelope,
                stored_leaf=entry.leaf,
                stored_id=entry.record_id,
                stored_agent=entry.agent,
                disclosures=entry.disclosures,
            )
        except TraceError as exc:
            later = read_on(itertools.chain([entry], stream), resume)
            raise verifier.first_fault(exc, later) from None


def log_material(log: TraceLog) -> LogMaterial:
    """What `log` holds beside its records."""
    try:
        identity: Identifier | None = log.log_identity
    except NotFound:
        identity = None
    return LogMaterial(
        histories=log.histories(),
        attestations=log.attestations(),
        chains=log.chains(),
        checkpoints=log.checkpoints(),
        log_identity=identity,
        windows=history_windows(log.store),
    )


def verify_log(
    log: TraceLog,
    *,
    anchor: bytes | None = None,
    known: Known | None = None,
    checkpoints: Checkpoints | None = None,
    rows: Rows | None = None,
    issuers: IssuerCheck | None = None,
) -> LogReport:
    """Verify every record of `log`, its checkpoints, and (given the note a verifier kept)
    that the log is consistent with `anchor`. Raises TraceError at the first bad record.
    `known`, `checkpoints` and `rows`: the verifier's stored histories (`verify_identity`,
    `key_in_rows`); `issuers`: its check of a chain's issuer histories (`check_issuers`)."""
    material = log_material(log)
    verifier = LogVerifier(
        material, known=known, checkpoints=checkpoints, rows=rows, issuers=issuers
    )
    return verify_records(verifier, log.stored(), anchor, resume=log.stored)
