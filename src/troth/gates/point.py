"""The decision point every gate calls: the current bundle, the current feed and the caller's
current credential, on every request (docs/policy.md, "Decisions").

`DecisionPoint.judge` finds the caller's credential (re-verified when the caller is a
`CredentialSource`), the authority's feed, and the engine of the authority's bundle in force;
checks the credential against that feed (no link or identity revoked, no history it was
verified with superseded, inside its window) so a revocation or a rotation between two calls
denies the second; decides; and hands every decision, allowed or
denied, to the recorder. The tool gate, the MCP gate and the node's access decision for service
requests all call it (the tool gates through `judge_tool`, which tells a caller denied a tool
hidden from it what an undeclared tool's caller is told; the record keeps the real decision). A
recorder that raises stops the request (fail closed). A call allowed
whose lease is then refused (gate 3) is recorded again, denied (`DecisionPoint.refuse`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Final, Protocol, runtime_checkable

from troth import limits
from troth.credentials import (
    ChainVerifier,
    CredentialBody,
    CredentialChain,
    VerifiedCredential,
    VerifiedFeed,
)
from troth.errors import CredentialError, CredentialFailure, DecodeError, PolicyError
from troth.gates.engine import Outcome, PolicyDecision, PolicyEngine, Request, ToolCall
from troth.identity import Identifier, VerifiedIdentity

__all__ = [
    "Caller",
    "CredentialSource",
    "DecisionPoint",
    "DecisionRecord",
    "DecisionRecorder",
    "FeedSource",
    "LeaseDenied",
    "LeaseProvider",
    "ListRecorder",
    "NoLeases",
    "PolicySource",
    "PresentedChain",
    "Presenting",
    "ToolPreview",
]

_CREDENTIAL_DENIALS = {
    CredentialFailure.UNTRUSTED_ISSUER: "denied: the caller holds no trusted credential"
}
"""Fixed denial texts where "the caller's credential is <reason>" would not read."""

_READS_AS_STATE = frozenset(
    {
        CredentialFailure.REVOKED,
        CredentialFailure.EXPIRED,
        CredentialFailure.NOT_YET_VALID,
        CredentialFailure.MALFORMED,
    }
)
"""Reasons that read as "the caller's credential is <reason>"; the others follow a colon
("... is subject is not the presenting identity": review 63j)."""


def _credential_denial(reason: CredentialFailure) -> str:
    if reason in _CREDENTIAL_DENIALS:
        return _CREDENTIAL_DENIALS[reason]
    joint = " is " if reason in _READS_AS_STATE else ": "
    return f"denied: the caller's credential{joint}{reason.value}"


FeedSource = Callable[[Identifier], VerifiedFeed | None]
"""The authority's current verified feed (e.g. `CredentialWallet.held_feed`), or None."""


class CredentialSource(Protocol):
    """Gives the caller's credential as of `now`, verified again (CredentialError if not)."""

    def current(self, *, now: int) -> VerifiedCredential: ...


@runtime_checkable
class Presenting(Protocol):
    """A `CredentialSource` that knows who presents the credential: the record of a decision
    names it even when the credential is refused (review 23c)."""

    def presenter_identifier(self) -> Identifier | None: ...


Caller = VerifiedCredential | CredentialSource
"""A verified credential (checked against the current feed at each decision) or a source
that verifies the caller's chain again at each decision."""


class PolicySource(Protocol):
    """The engine of an authority's bundle in force at `now` (PolicyError if none is)."""

    def engine(
        self, authority: Identifier, *, feed: VerifiedFeed | None, now: int
    ) -> PolicyEngine: ...


@dataclass(frozen=True, slots=True)
class ToolPreview:
    """Gate 1's answer: the tools a caller could be permitted to call (`visible`), the ones it
    could call but whose declared input schema differs from the bundle's (`mismatched`:
    hidden), and the bundle revision and digest that decided (None: no bundle in force)."""

    visible: frozenset[str]
    mismatched: frozenset[str]
    revision: int | None = None
    digest: str | None = None


@dataclass(frozen=True, slots=True, weakref_slot=True)  # (`TraceDecisionRecorder.recorded`)
class DecisionRecord:
    """One decision as handed to the recorder: when, for which credential (None when the
    caller had none valid; a current one also when no bundle is in force), on what request
    (tool arguments included: a recorder keeps their hash or redacts them), the decision, and
    who presented the credential when the gate knows (the credential's actor; a refused
    credential's presenter too, so a revoked agent calling on is named)."""

    at: int
    credential: VerifiedCredential | None
    request: Request
    decision: PolicyDecision
    presenter: Identifier | None = None


class DecisionRecorder(Protocol):
    """Receives every decision (issue 13 signs them into traces)."""

    def record(self, record: DecisionRecord) -> None: ...


class ListRecorder:
    """A recorder that keeps every record in `records` (tests, small agents)."""

    def __init__(self) -> None:
        self.records: list[DecisionRecord] = []

    def record(self, record: DecisionRecord) -> None:
        self.records.append(record)


class LeaseProvider(Protocol):
    """Attaches a short-lived secret to an allowed call for its duration (issue 12): the
    context manager yields what the tool receives as its `lease` (None: nothing)."""

    def lease(self, record: DecisionRecord) -> AbstractContextManager[object | None]: ...


class LeaseDenied(Exception):
    """Raised by a LeaseProvider when the call's secret cannot be leased: the gate denies the
    call with `decision` (its reason is readable; outcome LEASE_DENIED), records that denial
    after the call's allowed record (`DecisionPoint.refuse`) and does not run the tool."""

    def __init__(self, decision: PolicyDecision) -> None:
        super().__init__(decision.reason)
        self.decision = decision


class NoLeases:
    """The default LeaseProvider: no secret."""

    def lease(self, record: DecisionRecord) -> AbstractContextManager[object | None]:
        return nullcontext(None)


class PresentedChain:
    """A CredentialSource for chain bytes presented by `presenter`: verified in full at each
    decision (the verifier caches what depends only on the bytes)."""

    def __init__(
        self,
        chain: bytes,
        presenter: Identifier | VerifiedIdentity,
        verifier: ChainVerifier,
        feeds: FeedSource,
    ) -> None:
        try:
            root = CredentialChain.decode(chain).credentials[0]
            self.authority = CredentialBody.decode(root.body).issuer
        except DecodeError as exc:
            raise CredentialError(CredentialFailure.MALFORMED, str(exc)) from None
        self.chain = chain
        self.presenter = presenter
        self.verifier = verifier
        self.feeds = feeds

    def presenter_identifier(self) -> Identifier | None:
        """Who presents the chain (`Presenting`)."""
        presenter = self.presenter
        return presenter if isinstance(presenter, Identifier) else presenter.identifier

    def current(self, *, now: int) -> VerifiedCredential:
        feed = self.feeds(self.authority)
        held: Mapping[Identifier, VerifiedFeed] = {} if feed is None else {self.authority: feed}
        return self.verifier.verify(self.chain, presenter=self.presenter, feeds=held, now=now)


MAX_CURRENT_CACHE: Final = 4096
"""(credential, feed) pairs a decision point remembers as checked (`_FeedChecks`)."""


class _FeedChecks:
    """The (credential, feed) pairs whose feed check passed: a `VerifiedFeed` is immutable (a
    newer feed is another object), so the same credential object under the same feed object
    passes again; only its window, which depends on the time, is checked per request. Keyed
    by the objects' ids and holding the objects, so an id reused after one is freed does not
    match; emptied when full (a cache, not a bound on callers)."""

    __slots__ = ("_passed",)

    def __init__(self) -> None:
        self._passed: dict[tuple[int, int], tuple[VerifiedCredential, VerifiedFeed]] = {}

    def check(self, credential: VerifiedCredential, feed: VerifiedFeed | None) -> None:
        if feed is None:
            raise CredentialError(CredentialFailure.NO_FEED)
        key = (id(credential), id(feed))
        seen = self._passed.get(key)
        if seen is not None and seen[0] is credential and seen[1] is feed:
            return
        _check_feed(credential, feed)
        if len(self._passed) >= MAX_CURRENT_CACHE:
            self._passed.clear()
        self._passed[key] = (credential, feed)


def _check_window(credential: VerifiedCredential, now: int, skew: int) -> None:
    """The credential's window, and its issuers' keys, as `ChainVerifier.verify` checks them
    (review 75f, delegation 1: a held credential was allowed once a delegator's primary key
    had expired, its chain refused everywhere else)."""
    if now < credential.not_before - skew:
        raise CredentialError(CredentialFailure.NOT_YET_VALID)
    if now >= credential.expires_at + skew:
        raise CredentialError(CredentialFailure.EXPIRED)
    if now > credential.keys_valid_until:
        raise CredentialError(CredentialFailure.ISSUER_INVALID, "an issuer's current key expired")


def _check_current(
    credential: VerifiedCredential, feed: VerifiedFeed | None, now: int, skew: int
) -> None:
    """The credential is inside its window, `feed` revokes none of its links or identities
    and supersedes none of the histories it was verified with (its issuers', its presenter's
    when known): what `ChainVerifier.verify` checks of the feed, for a credential held since."""
    _check_window(credential, now, skew)
    if feed is None:
        raise CredentialError(CredentialFailure.NO_FEED)
    _check_feed(credential, feed)


def _check_feed(credential: VerifiedCredential, feed: VerifiedFeed) -> None:
    """`feed` revokes none of the credential's links or identities and supersedes none of the
    histories it was verified with."""
    revoked = credential.revoked_link_in(feed)
    if revoked is not None:
        raise CredentialError(CredentialFailure.REVOKED, "", revoked)
    credential.current_in(feed)


class DecisionPoint:
    """Decides requests with the current bundle, feed and credential (module docstring)."""

    def __init__(
        self,
        bundles: PolicySource,
        feeds: FeedSource,
        *,
        recorder: DecisionRecorder | None = None,
        max_clock_skew: int = limits.DEFAULT_CREDENTIAL_SKEW_SECONDS,
    ) -> None:
        self.bundles = bundles
        self.feeds = feeds
        self.recorder = recorder
        self.max_clock_skew = max_clock_skew
        self._feed_checks = _FeedChecks()

    def _engine(self, caller: Caller, now: int) -> tuple[VerifiedCredential, PolicyEngine]:
        credential = caller if isinstance(caller, VerifiedCredential) else caller.current(now=now)
        feed = self.feeds(credential.authority)
        engine = self.bundles.engine(credential.authority, feed=feed, now=now)
        _check_window(credential, now, self.max_clock_skew)
        self._feed_checks.check(credential, feed)
        return credential, engine

    def _decide(
        self, caller: Caller, request: Request, now: int
    ) -> tuple[VerifiedCredential | None, PolicyDecision, PolicyEngine | None]:
        """The credential used, the decision, and the engine that decided (None: the credential
        or the bundle was refused first, whatever the request)."""
        credential: VerifiedCredential | None = None
        try:
            credential = (
                caller if isinstance(caller, VerifiedCredential) else caller.current(now=now)
            )
            credential, engine = self._engine(credential, now)
            return credential, engine.decide(credential, request, now=now), engine
        except CredentialError as exc:
            reason = _credential_denial(exc.reason)
            return None, PolicyDecision.deny(Outcome.CREDENTIAL, reason), None
        except PolicyError as exc:
            # no bundle in force: the record still names a caller whose credential is current
            # (review 23c: such denials were signed into the trace as nobody's)
            reason = f"denied: {exc.reason.value}"
            decision = PolicyDecision.deny(Outcome.NOT_IN_FORCE, reason)
            return self._if_current(credential, now), decision, None

    def _if_current(
        self, credential: VerifiedCredential | None, now: int
    ) -> VerifiedCredential | None:
        """`credential` if the current feed finds it current (`_check_current`), else None."""
        if credential is None:
            return None
        try:
            _check_current(credential, self.feeds(credential.authority), now, self.max_clock_skew)
        except CredentialError:
            return None
        return credential

    def judge(self, caller: Caller, request: Request, *, now: int) -> DecisionRecord:
        """Decide `request` and record it; the record carries the credential used."""
        return self._judge(caller, request, now)[0]

    def judge_tool(
        self, caller: Caller, call: ToolCall, *, now: int
    ) -> tuple[DecisionRecord, PolicyDecision]:
        """`judge` a tool call, and the decision its caller is told: the record's, except that
        a denied call of a tool gate 1 hides from the caller is told exactly what a tool the
        bundle does not declare is (`PolicyEngine.told`; review 47h, gates 1). The record, and
        so the recorder and the trace, keeps the real decision (outcome, reason, policies).
        Visibility is looked up on denials only, with the engine that decided."""
        record, engine = self._judge(caller, call, now)
        decision = record.decision
        if decision.allowed or engine is None or record.credential is None:
            return record, decision  # a credential or bundle refused: whatever the tool
        return record, engine.told(record.credential, call, decision, now=now)

    def _judge(
        self, caller: Caller, request: Request, now: int
    ) -> tuple[DecisionRecord, PolicyEngine | None]:
        credential, decision, engine = self._decide(caller, request, now)
        if credential is not None:
            presenter: Identifier | None = credential.actor
        elif isinstance(caller, VerifiedCredential):
            presenter = caller.actor
        else:
            presenter = caller.presenter_identifier() if isinstance(caller, Presenting) else None
        record = DecisionRecord(now, credential, request, decision, presenter)
        if self.recorder is not None:
            self.recorder.record(record)
        return record, engine

    def refuse(self, record: DecisionRecord, decision: PolicyDecision) -> DecisionRecord:
        """The call `record` allowed, refused after all (gate 3: its lease was refused, or the
        lease provider failed; review 47m: the MCP upstream never answered): the same time,
        credential and request with `decision` (a denial; an allowed one is taken as a refused
        lease) under the bundle revision and digest the call was decided under, recorded after
        the allowed record, so the trace never leaves a call that did not run as only allowed,
        and both records of the call name the one revision it was decided under (review 48e,
        gates 1: the refusal named none)."""
        if decision.allowed:  # a provider's mistake: the tool does not run, so it is a denial
            decision = PolicyDecision.deny(
                Outcome.LEASE_DENIED, "denied: the lease provider refused the call's lease"
            )
        decided = record.decision
        decision = replace(decision, revision=decided.revision, digest=decided.digest)
        refused = replace(record, decision=decision)
        if self.recorder is not None:
            self.recorder.record(refused)
        return refused

    def decide(self, caller: Caller, request: Request, *, now: int) -> PolicyDecision:
        """Decide `request` by `caller` at `now` (and record it)."""
        if self.recorder is not None:
            return self.judge(caller, request, now=now).decision
        return self._decide(caller, request, now)[1]

    def visible_tools(
        self,
        caller: Caller,
        *,
        now: int,
        declared: Mapping[str, str] | None = None,
        server: str | None = None,
    ) -> frozenset[str]:
        """The tools `caller` could be permitted to call now (none when its credential or the
        bundle is not in force); with `declared` (tool -> its input schema's `schema_shape`),
        only declared tools whose schema has the bundle's shape; with `server`, as tools of
        that MCP server (`ToolCall.server`; review 53c, gates 1)."""
        return self.preview_tools(caller, now=now, declared=declared, server=server).visible

    def preview_tools(
        self,
        caller: Caller,
        *,
        now: int,
        declared: Mapping[str, str] | None = None,
        server: str | None = None,
    ) -> ToolPreview:
        """What `visible_tools` answers, and the tools the caller could call but that are
        hidden because their declared schema differs from the bundle's (a gate logs them)."""
        try:
            credential, engine = self._engine(caller, now)
        except (CredentialError, PolicyError):
            return ToolPreview(frozenset(), frozenset())
        visible = engine.visible_tools(credential, server=server, now=now)
        if declared is None:
            return ToolPreview(visible, frozenset(), engine.revision, engine.digest)
        tools = engine.tools
        same = frozenset(name for name in visible if declared.get(name) == tools[name].shape)
        differ = frozenset(name for name in visible if name in declared) - same
        return ToolPreview(same, differ, engine.revision, engine.digest)
