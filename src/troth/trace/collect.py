"""Collecting records from agents: what a node's trace service checks before it appends a
submitted batch to its log (docs/protocols.md, "Trace service"; docs/traces.md, "Collection").

`TraceCollector.submit(submission, submitter=, now=)` is synchronous storage work (the service
runs it on the node's storage thread). For the batch, once:

- the signer's history verifies, in full or (an identity past MAX_IDENTITY_CHANGES changes)
  from a checkpoint the node attests as a channel does (`checkpoints`: its stored copy of the
  identity holds that change, or a fresh feed it holds names it), never on the history's own
  word: a checkpoint nothing the node holds attests is refused (review 47i, collector 1);
  and, when a member submits it, is the member's own (`submitter`): a member submits only the
  records it signed (whose it is is read from the history before any signature is verified:
  review 55b, service 1);
- no feed of an authority with standing over that identity revokes or supersedes it: the
  roots of the chains its channel showed, the authorities whose chains the node verified for
  it before (`vouched`), itself as an anchor; every held feed for a stranger (docs/formats.md,
  "Whose word counts on an identity");
- the history is stored or extends the node's copy (store-or-extend, `observe`);
- the history windows sent with it, if any (an agent that rotated 64 times or more since its
  last record in the log: its history shares no change with the log's copy), are its own and
  verify, each from a change the one before it holds (the log's copy for the first: never on
  their own word), and chain from the log's copy to the history (`check_windows`); the log
  checks them again against its copy as it appends and keeps them (`history_windows`) with a
  record it admits only (review 48a, windows 1). Sent
  with no gap to bridge, they are ignored (review 47l, windows 1).

The issuer histories of a chain a record names are judged when the chain verifies (the node's
verifier stores only those that extend a stored copy: `NodeTrust.verifier`) and stored
(`observe`) once a record under the chain is appended, or answered already in the log (a
resend: the append it repeats may have been cut short before the store, the log and the node's
store being two databases: review 28b, collection 1): a refused record's chain leaves no new
identity's history behind (docs/traces.md, "Collection").

Then for each record, in order: its envelope decodes, names the signer and one of the
attestations sent, its key could sign at the record's time, the signature verifies and every
disclosure opens its commitment (`verify_envelope`); when it names a delegation chain, that
chain (sent in the batch, or kept by the log) is the one named, ends at the signer, and
verifies now against the node's trust anchors and feeds (`ChainVerifier`), its authority's
feed not due a sync after a revocation made on this machine (`due`: the node's standing drops
such chains; review 55p, trace 1). The log then adds its own append-time checks (replay,
per-agent chain, time window, stale keys).

A record already in the log byte for byte is answered with its index (`Status.ALREADY`): a
client that resends a batch whose answer it lost gets the same indices, and nothing is
appended twice. So is the record signed again (`signed_again`: the same id and content,
commitments and disclosures' salts, another seq, prev, time or key: what
troth.trace.signing.resign_record changes), as a client's rotation signs a batch again whose
answer it lost (review 70o, outbox2 3: refused REPLAYED, the client set aside records the log
held), once it verifies as an append would (its key, signature and disclosures: review 70s,
collector 1: the log's record under a forged signature or a key the agent never held was
acknowledged), by a key of the signer's current change (review 71d, outbox 2 and 3: a retired
key's resigning dated before the rotation was acknowledged), current in the log's own copy of
the signer's history too, which the node's copy may lag (review 71h, wave2a 2). The same id
with other content is refused (REPLAYED). A record that names another agent than the signer is
refused first (SIGNER_INVALID), in the log or not: a member learns nothing of where another's
record is.

A refusal of the whole batch (an invalid, foreign or revoked signer, a fork) is answered
as every record refused with that reason, so the client drops the batch rather than resend it.
A signer history behind the node's copy of it (an older prefix: a batch signed before a
rotation the node learnt of since, sent again), or that a feed supersedes, is no such
refusal (a revoked signer is): each record in the log byte for byte is answered with its
index, every other one (a record signed again too: review 70x, wave3 1) refused
ATTESTATION_STALE, which the client signs again with its
newest key (review 48a, resend 1: refused whole, the client set aside records signed before
the rotation, and records the log held; resend 2: a rotation announced to an authority).

A refusal for a passing condition is NOT_YET, not a refusal for good (review 48n; the client
keeps the record and sends it again after a backoff, troth.trace.submit "TRANSIENT"): the
whole batch for a checkpointed signer history the node cannot attest yet (its feed copy not
fresh, its stored copy behind) or a change dated ahead of its clock; a record for a chain
whose authority's feed the node holds stale, not at all or due a sync, or a node that trusts
no authority yet. A storage failure on the node fails the request (the client sends it again).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from troth import limits
from troth.channel.verification import Vouched, identity_refusal, standing_feeds
from troth.credentials import ChainVerifier, VerifiedCredential, VerifiedFeed
from troth.crypto import sha256
from troth.errors import (
    CredentialError,
    CredentialFailure,
    DecodeError,
    IdentityError,
    IdentityFailure,
    NotFound,
    TraceError,
    TraceFailure,
)
from troth.identity import (
    Checkpoints,
    Identifier,
    UnverifiedHistory,
    VerifiedIdentity,
    check_extends,
    indexed_hashes,
    verify_history,
)
from troth.trace.bridge import check_windows
from troth.trace.export import prove
from troth.trace.log import TraceLog
from troth.trace.log_reader import named_id
from troth.trace.record import TraceRecord
from troth.trace.signing import (
    VerifiedRecord,
    keyid_of,
    open_envelope,
    signed_again,
    verify_envelope,
)
from troth.trace.submit import Head, Receipts, Status, Submission, SubmitResult, SubmittedRecord
from troth.trace.verify import check_chain, verify_windows

__all__ = ["TraceCollector"]

_F = TraceFailure
_Queued = tuple[Any, SubmittedRecord, str, bytes | None]
"""A record queued for the log: its pending append, the record as sent, its id, the digest of
the chain it names."""
Known = Callable[[VerifiedIdentity], None]
Feeds = Callable[[], Mapping[Identifier, VerifiedFeed]]
_FEED_NOT_YET: Final = frozenset({CredentialFailure.STALE_FEED, CredentialFailure.NO_FEED})
"""A chain's refusals that the node's next feed refresh may lift (review 48n)."""


class TraceCollector:
    """Verifies submitted batches and appends them to `log` (module docstring)."""

    def __init__(
        self,
        log: TraceLog,
        *,
        verifier: Callable[[], ChainVerifier | None],
        feeds: Feeds,
        observe: Known,
        vouched: Vouched,
        checkpoints: Callable[[int], Checkpoints] | None = None,
        due: Callable[[], frozenset[Identifier]] = frozenset,
        observe_issuer: Known | None = None,
    ) -> None:
        """`checkpoints(now)`: the node's word on a checkpointed signer history (its stored
        copies and held feeds: `NodeTrust.checkpoints`); None takes full histories only.
        `due()`: the authorities whose held feed a revocation made on this machine left due a
        sync (`NodeTrust.due`): their chains are refused for now (review 55p, trace 1).
        `observe_issuer`: stores a chain's issuer history once a record under it is appended
        (default `observe`; a node's skips one a trust anchor's held feed refutes:
        `NodeTrust.observe_unrefuted`, review 57t, trust 1)."""
        self.log = log
        self._verifier = verifier
        self._due = due
        self._feeds = feeds
        self._observe = observe
        self._observe_issuer = observe if observe_issuer is None else observe_issuer
        self._vouched = vouched
        self._checkpoints = checkpoints
        self._member_signed: int | None = None  # the `now` of the last member's prove that
        # signed a checkpoint (`_checkpoint_due`)

    def submit(
        self,
        submission: Submission,
        *,
        submitter: Identifier | None,
        now: int,
        credentials: Iterable[VerifiedCredential] = (),
    ) -> Receipts:
        """Verify and append `submission`'s records (by `submitter`, a member, holding the
        verified `credentials` its channel showed; None: a caller in the node's own process or
        on its control socket, who may submit anyone's records)."""
        try:
            identity, behind = self._signer(submission.history, submitter, now, tuple(credentials))
            windows = () if behind else self._windows(submission.windows, identity)
        except TraceError as exc:
            refused = _refused(exc)
            return Receipts(tuple(refused for _ in submission.records), None, self._checkpoint())
        keys = {keyid_of(attestation): attestation for attestation in submission.attestations}
        chains = {sha256(chain): chain for chain in submission.chains}
        checked: dict[bytes, TraceError | VerifiedCredential] = {}
        already: dict[bytes, TraceRecord] = {}  # chains named by records already in the log
        queued: list[SubmitResult | _Queued] = []
        copy = _LogCopy(self.log)  # the log's copy of the signer, read once a batch
        try:
            for item in submission.records:
                try:
                    queued.append(
                        self._queue(
                            item,
                            identity,
                            keys,
                            chains,
                            checked,
                            already,
                            now,
                            windows,
                            copy,
                            behind,
                        )
                    )
                except TraceError as exc:
                    queued.append(_refused(exc))
        finally:  # whatever was queued is committed: wait for it before answering or raising
            for entry in queued:
                if not isinstance(entry, SubmitResult):
                    self.log.wait(entry[0])
        settled = _LogCopy(self.log)  # read again: a concurrent resend may have grown it
        results = tuple(self._settle(entry, settled) for entry in queued)
        under = [d for e, r in zip(queued, results, strict=True) if (d := _under(e, r))]
        under += self._already_under(already, identity, chains, checked, now)
        self._keep_issuers(under, checked)
        head = self.log.head(identity.identifier)
        return Receipts(results, None if head is None else Head(*head), self._checkpoint())

    def head(self, agent: Identifier) -> Receipts:
        """No records, only `agent`'s head in the log and the checkpoint reference."""
        head = self.log.head(agent)
        return Receipts((), None if head is None else Head(*head), self._checkpoint())

    def held(self, agent: Identifier) -> tuple[int, bytes] | None:
        """(index, hash) of the last change of the log's copy of `agent`'s history (None: the
        log holds none): where the windows that bridge it to a newer history start."""
        stored = self.log.history(agent)
        if stored is None:
            return None
        first, hashes = indexed_hashes(stored)
        return first + len(hashes) - 1, hashes[-1]

    def prove(
        self, record_id: str, *, requester: Identifier | None, now: int | None = None
    ) -> dict[str, Any]:
        """The offline proof bundle of record `record_id` (a checkpoint is signed when none
        covers it yet). A member gets proofs of its own records only: its record under that id
        (ids are unique per agent: another agent's record under it is never the one proved;
        review 34g, trace 5), NotFound otherwise, as for an id the log does not hold. A
        member's proof signs a checkpoint only when the newest is at least
        TRACE_MEMBER_CHECKPOINT_SECONDS old at `now` (None: the log's clock), else TraceError
        OVER_LIMIT (ask again): one per record it submits made the log's checkpoints as
        many as its records (review 38b, trace 3). A newest checkpoint dated after `now` (the
        clock set back) is measured from the last this collector signed for a member
        instead (review 39b, trace 1)."""
        stored = self.log.find(record_id, requester)
        if requester is not None:
            if open_envelope(stored.envelope)[0].agent != requester:
                raise NotFound(f"no record {named_id(record_id)} of yours in the log")
            self._checkpoint_due(stored.index, self.log.clock.now() if now is None else now)
        return prove(self.log, record_id, requester)

    def _checkpoint_due(self, index: int, now: int) -> None:
        """Nothing when a checkpoint covers record `index`, or a new one may be signed for a
        member now: TRACE_MEMBER_CHECKPOINT_SECONDS after the newest, by its time, or, when
        that is after `now` (signed while the clock ran ahead: a checkpoint is never dated
        before an older one, so every later one is dated then too), after the last this
        collector signed for a member, by the times they were asked at (review 39b, trace 1:
        every member's proof was refused until the clock caught up); else TraceError. A
        request dated before that last one (the clock set back again) is refused, and the
        limit measured from it: a clock stepped back before each request signed one per
        request (review 40b, trace 1); now one needs the clock to run forward
        TRACE_MEMBER_CHECKPOINT_SECONDS between two."""
        try:
            self.log.latest_checkpoint(covering=index + 1)
            return
        except NotFound:
            pass
        every = limits.TRACE_MEMBER_CHECKPOINT_SECONDS
        try:
            newest: int | None = self.log.latest_checkpoint().time
        except NotFound:  # the log's first
            newest = None
        last = self._member_signed
        back = last is not None and now < last  # the clock set back since (review 40b, trace 1)
        if back:
            self._member_signed = now  # the limit's second starts again from here
        if back or any(t is not None and t <= now < t + every for t in (newest, last)):
            raise TraceError(
                _F.OVER_LIMIT,
                f"no checkpoint covers record {index} yet, and a member's proof signs one at "
                f"most every {every} s (TRACE_MEMBER_CHECKPOINT_SECONDS): ask again",
                index=index,
            )
        self._member_signed = now

    # -- steps ---------------------------------------------------------------------------------

    def _signer(
        self,
        history: bytes,
        submitter: Identifier | None,
        now: int,
        credentials: tuple[VerifiedCredential, ...],
    ) -> tuple[VerifiedIdentity, str | None]:
        """The batch's signer, verified, and, when it is behind the node's copy of it (an older
        prefix: a batch signed before a rotation the node learnt of since, sent again) or a
        feed with standing supersedes it, why (review 48a, resend 1 and 2); TraceError when
        the batch is refused whole."""
        # whose it claims to be first, before a signature: a member's own only (review 55b,
        # service 1: another identity's 64 changes were verified, 127 signatures, then refused)
        try:
            decoded = UnverifiedHistory.decode(history)
        except DecodeError as exc:
            raise TraceError(_F.SIGNER_INVALID, f"the signer history: {exc}") from None
        claimed = Identifier(decoded.identifier_digest)
        if submitter is not None and claimed != submitter:
            raise TraceError(
                _F.SIGNER_INVALID,
                f"a member submits only the records it signs: {submitter} sent {claimed}'s",
            )
        # a checkpointed history only as the node attests it (review 47i, collector 1)
        attests = None if self._checkpoints is None else self._checkpoints(now)
        try:
            identity = verify_history(decoded, now=now, checkpoints=attests)
        except IdentityError as exc:
            # a checkpoint the node cannot attest yet (its feed copy not fresh) or a change
            # dated ahead of its clock may pass later: refused for now, sent again (review
            # 48n, stale 1: refused for good, the client set the records aside)
            passing = exc.reason is IdentityFailure.FUTURE_CHANGE or (
                attests is not None and exc.reason is IdentityFailure.UNATTESTED_CHECKPOINT
            )
            raise TraceError(_F.NOT_YET if passing else _F.SIGNER_INVALID, str(exc)) from None
        # only the word of the authorities with standing over the signer counts (docs/formats.md,
        # "Whose word counts on an identity"): the roots of its chains, those this node verified
        # a chain of for it before (whatever its channel shows now), itself as an anchor
        verifier = self._verifier()
        anchors: frozenset[Identifier] = (
            frozenset() if verifier is None else verifier.policy.anchors
        )
        signer = identity.identifier
        vouched = self._vouched(signer)
        feeds = standing_feeds(signer, credentials, anchors, self._feeds(), vouched=vouched)
        refusal = identity_refusal(identity, feeds)
        if refusal is not None and refusal.revoked:
            raise TraceError(_F.SIGNER_INVALID, refusal.detail)
        if refusal is not None:  # superseded: behind a change an authority published (a
            # stolen backup's fork too: none of its records is appended either way; review
            # 48a, resend 2), and never stored
            return identity, refusal.detail
        try:
            self._observe(identity)
        except IdentityError as exc:
            if exc.reason is not IdentityFailure.ROLLBACK:  # (a fork: FORK, never ROLLBACK)
                raise TraceError(_F.SIGNER_INVALID, str(exc)) from None
            return identity, exc.detail or exc.reason.value
        return identity, None

    def _windows(
        self, sent: tuple[bytes, ...], identity: VerifiedIdentity
    ) -> tuple[VerifiedIdentity, ...]:
        """The history windows `sent` with a batch of `identity`'s, verified (module docstring):
        () when none were sent or the log's copy needs no bridge to `identity`; TraceError
        SIGNER_INVALID when they do not verify or do not bridge it (review 47l, windows 1)."""
        if not sent:
            return ()
        agent = identity.identifier
        stored = self.log.history(agent)
        if stored is None:
            raise TraceError(
                _F.SIGNER_INVALID, "history windows sent for a signer the log holds none of"
            )
        first, hashes = indexed_hashes(stored)
        try:
            check_extends(hashes, identity, stored_first=first)
            return ()  # no gap (a concurrent batch of the signer's bridged it): nothing to keep
        except IdentityError:
            pass
        verified = verify_windows(agent, first, hashes, sent)
        try:
            check_windows(first, hashes, verified, identity)
        except IdentityError as exc:
            raise TraceError(
                _F.SIGNER_INVALID, f"the history windows do not bridge the log's copy: {exc}"
            ) from None
        return tuple(verified)

    def _queue(
        self,
        item: SubmittedRecord,
        identity: VerifiedIdentity,
        keys: Mapping[str, bytes],
        chains: Mapping[bytes, bytes],
        checked: dict[bytes, TraceError | VerifiedCredential],
        already: dict[bytes, TraceRecord],
        now: int,
        windows: tuple[VerifiedIdentity, ...],
        copy: _LogCopy,
        behind: str | None = None,
    ) -> SubmitResult | _Queued:
        """The record's result when it is already in the log (the chain it names noted in
        `already`), else its queued append once it verifies (TraceError when it does not).
        A signer `behind` the node's copy of it: ATTESTATION_STALE unless the record is in the
        log byte for byte (one signed again under it too: review 70x, wave3 1), signed again
        with its newest key, the client sends it again (review 48a, resend 1: refused whole
        SIGNER_INVALID, the client set its records aside)."""
        record, _payload, _signature, keyid = open_envelope(item.envelope)
        if record.agent != identity.identifier:  # whoever holds another's record, nothing of
            # where it is (prove hides it too): refused as if not in the log (review 27t,
            # collection 2)
            raise TraceError(_F.SIGNER_INVALID, "the record names another agent", record=record.id)
        try:  # the agent's own record under this id: ids are unique per agent (review 34g,
            # trace 5: another agent's record under it refused this one)
            stored = self.log.find(record.id, record.agent)
        except NotFound:
            stored = None
        if stored is not None:
            if stored.envelope != item.envelope:
                if not signed_again(stored.envelope, record):
                    raise TraceError(
                        _F.REPLAYED, "another record of yours with this id is in the log"
                    )
                # verified as an append is (review 70s, collector 1: a forged signature, a key
                # the signer never held, a disclosure that opens nothing was acknowledged), its
                # signer not behind either (review 70x, wave3 1: a retired key, under the older
                # history where it is current, was acknowledged for any time)
                _check_current(behind, record)
                _check_key_current(_verified(item, identity, keys, keyid), copy)
            if record.authority is not None:  # its issuers are kept as an append's (review
                # 28b, collection 1)
                already.setdefault(record.authority.chain, record)
            return SubmitResult(Status.ALREADY, stored.index)
        _check_current(behind, record)
        verified = _verified(item, identity, keys, keyid)
        given: bytes | None = None
        credential: VerifiedCredential | None = None
        authority = record.authority
        if authority is not None:
            given = chains.get(authority.chain)
            chain = given if given is not None else self.log.chain(authority.chain)
            if chain is None:
                raise TraceError(
                    _F.CHAIN_MISMATCH, "the chain the record names was not sent (nor is it kept)"
                )
            check_chain(record, chain)
            if authority.chain not in checked:
                checked[authority.chain] = self._credential(chain, identity, now)
            outcome = checked[authority.chain]
            if isinstance(outcome, TraceError):
                raise outcome
            credential = outcome
        digest = None if authority is None else authority.chain
        # the chain verified here is not checked again by the log (review 56k, chains 1)
        pending = self.log.enqueue(verified, chain=given, windows=windows, credential=credential)
        return pending, item, record.id, digest

    def _credential(
        self, chain: bytes, identity: VerifiedIdentity, now: int
    ) -> TraceError | VerifiedCredential:
        """`chain` verified now for `identity`, or why it does not verify."""
        verifier = self._verifier()
        if verifier is None:  # (trust is being set up: refused for now; review 48n)
            return TraceError(_F.NOT_YET, "this node trusts no authority yet")
        try:
            credential = verifier.verify(chain, presenter=identity, feeds=self._feeds(), now=now)
        except CredentialError as exc:
            # the node's copy of a feed stale or not fetched yet: refused for now, sent again
            # once it is fresh (review 48n, classes 1: refused for good, set aside)
            passing = exc.reason in _FEED_NOT_YET
            return TraceError(_F.NOT_YET if passing else _F.CREDENTIAL_INVALID, str(exc))
        if credential.authority in self._due():  # the held feed may predate a revocation made
            # here: the node's standing drops the chain, and so does its log (review 55p,
            # trace 1: verified by that feed, a revoked link's records were appended)
            return TraceError(
                _F.NOT_YET,
                f"a chain from {credential.authority}: its feed is due a sync after a "
                "revocation made on this machine; sent again once the node's copy is synced",
            )
        return credential

    def _already_under(
        self,
        already: Mapping[bytes, TraceRecord],
        identity: VerifiedIdentity,
        chains: Mapping[bytes, bytes],
        checked: dict[bytes, TraceError | VerifiedCredential],
        now: int,
    ) -> list[bytes]:
        """The chains named by records answered already in the log, verified (once each, as
        for an append) where the batch or the log holds them: the append a resend repeats may
        have been cut short after the log's commit, before `_keep_issuers` (a crash; the
        node's store failing), and nothing else would store their issuers (review 28b,
        collection 1)."""
        under: list[bytes] = []
        for digest, record in already.items():
            if digest not in checked:
                chain = chains.get(digest) or self.log.chain(digest)
                if chain is None:  # kept elsewhere and not sent again: nothing to verify
                    continue
                try:
                    check_chain(record, chain)
                except TraceError:
                    continue
                checked[digest] = self._credential(chain, identity, now)
            under.append(digest)
        return under

    def _keep_issuers(
        self, under: Iterable[bytes], checked: Mapping[bytes, TraceError | VerifiedCredential]
    ) -> None:
        """Store (or extend) the issuer histories of each chain `under` which a record was
        appended (or is already in the log) and that verified: a chain whose records were all
        refused leaves none behind (its issuers were judged against the stored copies when it
        verified; review 27t, collection 3)."""
        for digest in dict.fromkeys(under):
            credential = checked.get(digest)
            if not isinstance(credential, VerifiedCredential):
                continue
            for issuer in credential.issuers:
                # a copy stored meanwhile that this one forks from stays: the record was
                # judged against the store when its chain verified, and stands
                with contextlib.suppress(IdentityError):
                    self._observe_issuer(issuer)

    def _settle(self, entry: SubmitResult | _Queued, copy: _LogCopy) -> SubmitResult:
        if isinstance(entry, SubmitResult):
            return entry
        pending, item, record_id, _chain = entry
        try:
            return SubmitResult(Status.APPENDED, pending.result().index)
        except TraceError as exc:
            if exc.reason is _F.REPLAYED:  # appended by a concurrent resend of the same batch
                verified = pending.record
                stored = self.log.find(record_id, verified.record.agent)
                if stored.envelope == item.envelope:
                    return SubmitResult(Status.ALREADY, stored.index)
                if signed_again(stored.envelope, verified.record):
                    try:  # (its key checked as in `_queue`: review 71d, outbox 3)
                        _check_key_current(verified, copy)
                    except TraceError as stale:
                        return _refused(stale)
                    return SubmitResult(Status.ALREADY, stored.index)
            return _refused(exc)

    def _checkpoint(self) -> tuple[int, bytes] | None:
        try:
            checkpoint = self.log.latest_checkpoint()
        except NotFound:
            return None
        return checkpoint.size, checkpoint.note


def _under(entry: SubmitResult | _Queued, result: SubmitResult) -> bytes | None:
    """The chain `entry` was queued under, when its record is in the log now (appended, or by
    a concurrent resend of the same batch)."""
    if isinstance(entry, SubmitResult) or result.status is Status.REFUSED:
        return None
    return entry[3]


class _LogCopy:
    """The log's copy of a batch's signer history, as `_check_key_current` reads it (the index
    of its first change, the hashes of its changes; None: none), read from the log once."""

    __slots__ = ("_log", "_read")

    def __init__(self, log: TraceLog) -> None:
        self._log = log
        self._read: dict[Identifier, tuple[int, list[bytes]] | None] = {}

    def of(self, agent: Identifier) -> tuple[int, list[bytes]] | None:
        if agent not in self._read:
            stored = self._log.history(agent)
            self._read[agent] = None if stored is None else indexed_hashes(stored)
        return self._read[agent]


def _check_key_current(verified: VerifiedRecord, copy: _LogCopy) -> None:
    """ATTESTATION_STALE when `verified`, a record signed again, is signed by a key attested
    under an older change than the signer's current one, as the log refuses its append
    (review 71d, outbox 2 and 3: the thief of a retired key, under the signer's current
    history, dated its resigning before the rotation and was answered ALREADY): current in
    the history sent, and in the log's own copy of it (trace.db), which the node's copy
    (node.db: `_signer`'s `behind`) may lag, as the log's append judges it (review 71h,
    wave2a 2: sent under the older history, the retired key's resigning was answered
    ALREADY). A copy the sent history forks from: SIGNER_INVALID, as the append's. The log's copy
    read once a batch (`copy`; review 71q, wave3a 2: once a record, a batch of
    MAX_TRACE_SUBMIT_RECORDS records signed again read and decoded it that many times)."""
    epoch, record = verified.epoch, verified.record
    if not epoch.is_current:
        raise TraceError(
            _F.ATTESTATION_STALE,
            f"signed again by a key of change {epoch.change}, an older change of the signer's",
            record=record.id,
        )
    stored = copy.of(record.agent)
    if stored is None:
        return
    first, hashes = stored
    held, signer = first + len(hashes) - 1, verified.signer
    newest = signer.current.index
    if newest <= held:  # sent behind the log's copy, or at it: its newest change (which commits
        # to every one before it) is the copy's, else SIGNER_INVALID, as the append's `observe`
        # says (review 71q, wave3a 3: a fork sent behind the copy was ATTESTATION_STALE)
        if newest < first:
            raise TraceError(
                _F.SIGNER_INVALID, "history ends before the log's copy", record=record.id
            )
        if signer.current_change_hash != hashes[newest - first]:
            raise TraceError(
                _F.SIGNER_INVALID, f"history forks at change {newest}", record=record.id
            )
        if newest < held:
            raise TraceError(
                _F.ATTESTATION_STALE,
                f"the log holds change {held} of the signer, a later one: sign it again",
                record=record.id,
            )
        return
    if held >= signer.first_index and (
        signer.changes[held - signer.first_index].change_hash != hashes[-1]
    ):
        raise TraceError(_F.SIGNER_INVALID, f"history forks at change {held}", record=record.id)


def _check_current(behind: str | None, record: TraceRecord) -> None:
    """ATTESTATION_STALE when the batch's signer is `behind` the node's copy of it (why): the
    record is to be signed again with the signer's newest key."""
    if behind is not None:
        raise TraceError(
            _F.ATTESTATION_STALE,
            f"the node holds a later change of the signer ({behind}): sign it again",
            record=record.id,
        )


def _verified(
    item: SubmittedRecord, identity: VerifiedIdentity, keys: Mapping[str, bytes], keyid: str
) -> VerifiedRecord:
    """`item` verified as `identity`'s, by the attestation sent for its key (`keyid`): its key
    could sign at its time, its signature, its disclosures (TraceError when it does not)."""
    attestation = keys.get(keyid)
    if attestation is None:
        raise TraceError(_F.UNKNOWN_KEY, "no attestation sent for the record's key")
    return verify_envelope(
        item.envelope, signer=identity, attestation=attestation, disclosures=item.disclosures
    )


def _refused(exc: TraceError) -> SubmitResult:
    return SubmitResult(Status.REFUSED, reason=exc.reason, detail=exc.detail)
