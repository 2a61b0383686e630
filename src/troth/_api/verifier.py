"""Verifying a credential chain with explicit trust: the authorities you trust and where
their revocation feeds come from are arguments, never defaults (docs/formats.md, "Chain
verification")."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from troth import limits
from troth._api.arguments import (
    check_anchors,
    check_chain,
    check_clock,
    check_peer,
    check_whole,
)
from troth._api.authority import Authority
from troth._api.node import Node
from troth._api.results import Credential, Identity
from troth.clock import Clock, SystemClock
from troth.credentials import ChainVerifier, TrustPolicy, VerifiedCredential, VerifiedFeed
from troth.credentials.revocation_held import feed_checkpoints, newest_copy
from troth.encoding.ijson import load_json
from troth.errors import (
    ArgumentError,
    CredentialError,
    CredentialFailure,
    DecodeError,
    IdentityError,
)
from troth.identity import Identifier, SeenSignatures, VerifiedIdentity, verify_history
from troth.kinds import got as _got
from troth.node.trust import CREDENTIAL_SKEW, FEED_STALENESS
from troth.node.verify import check_stored_copies

__all__ = [
    "CaveatCheck",
    "FeedSource",
    "Verifier",
    "caveat_context",
    "caveat_context_json",
    "check_caveats",
]

_ENCODER: Final = json.JSONEncoder(allow_nan=False, ensure_ascii=False, separators=(",", ":"))
_CONTEXT: Final = "a mapping of str keys (but `now`) to JSON values"
_MISSING: Final = (
    "pass `context` to evaluate the caveats, or `unevaluated_caveats=True` to enforce them yourself"
)

FeedSource = Node | Authority
"""Where a verifier's revocation feeds come from: an `Authority` (its own feed, current at
every verification), or a `Node` (the feeds it holds: synced when enrolling, by a running
node's maintenance, and here from an authority on this machine once the copy is older than
half the staleness limit)."""


def _anchor(value: Identifier | str) -> Identifier:
    return value if isinstance(value, Identifier) else Identifier.parse(value)


class Verifier:
    """Verifies credential chains for the authorities in `trust` only (there is no default),
    each checked against that authority's revocation feed from `feeds` (the newest any of
    them has: each a `Node` or an `Authority`), which must be at most `max_feed_age` seconds
    old (1 s to `limits.MAX_FEED_STALENESS_SECONDS`, 30 days, else `troth.errors.OutOfRange`,
    a ConfigError and ValueError). `max_clock_skew` seconds (0 to 300) are allowed at the
    edges of every link's validity window; `clock` gives the time (default: the system
    clock; a reading that is no time from 1970 to `limits.LAST_CLOCK_READING` is an
    ArgumentError when `verify` reads it). Safe to reuse: checks that depend only on the bytes
    are cached. An empty `trust` or `feeds`, `trust` that is not an iterable of `Identifier`s
    or their text (one identifier's text, say), `feeds` of anything but nodes and authorities,
    a `max_feed_age` or `max_clock_skew` that is not a whole number (a bool, a float, text) or
    a `clock` without `now()` is an ArgumentError (a TypeError and a ValueError), as is a chain or
    presenter of a type `verify` does not take."""

    def __init__(
        self,
        *,
        trust: Iterable[Identifier | str],
        feeds: FeedSource | Sequence[FeedSource],
        max_feed_age: int = FEED_STALENESS,
        max_clock_skew: int = CREDENTIAL_SKEW,
        clock: Clock | None = None,
    ) -> None:
        # each refused with an ArgumentError, a TypeError and a ValueError as documented, and a
        # TrothError as every error is (review 51e, verifier 2: bare ones, and a clock taken
        # unchecked that failed every verify with an AttributeError)
        anchors = check_anchors("Verifier", "trust", trust)
        if not anchors:
            raise ArgumentError(
                "Verifier", "trust", "at least one authority (trust anchor)", "none"
            )
        check_whole("Verifier", "max_feed_age", max_feed_age, unit=" of seconds")
        check_whole("Verifier", "max_clock_skew", max_clock_skew, unit=" of seconds")
        clock = check_clock("Verifier", "clock", clock)
        policy = TrustPolicy(  # OutOfRange for a value of the right type out of its range
            frozenset(_anchor(a) for a in anchors),
            max_clock_skew=max_clock_skew,
            max_feed_staleness=max_feed_age,
        )
        self.trust = policy.anchors
        """The trusted authorities."""
        self._sources = _sources(feeds)
        self._verifier = ChainVerifier(policy)
        self._clock = clock or SystemClock()
        self._seen = SeenSignatures()  # a presenter's history changes checked (bounded)

    def verify(
        self,
        chain: Credential | bytes,
        *,
        presenter: Identifier | Identity | str,
        context: Mapping[str, object] | None = None,
        unevaluated_caveats: bool = False,
    ) -> VerifiedCredential:
        """Verify `chain` as presented by `presenter` (who must be its last subject) now: the
        root issued by a trusted authority, every link signed and only narrowing, none
        revoked nor expired, no issuer's history superseded, and each of its caveats (Cedar
        conditions delegators put on links) true for `context`. Returns what the presenter
        may do: its `attributes` (and the `caveats` they were checked under). Raises
        `CredentialError` with the reason (`exc.reason`) and the link (`exc.link`) otherwise.

        `presenter` as an `Identifier` (or its text) says only who presents: you vouch that
        it is that identity (you authenticated it yourself), and no history of it is checked.
        As an `Identity` it is judged by its `history` too, the history you hold or were
        shown (what you check its signatures by): verified now, of that identifier, and not
        superseded in the root authority's feed (SUPERSEDED: a rotation the owner announced,
        after her key was stolen say, refuses the stale history a thief shows); a history
        that does not verify or is another identity's is WRONG_SUBJECT (review 63z).

        A chain without caveats needs no `context`. A chain with caveats is checked against
        `context`, a mapping of str keys to JSON values (str, int, bool, lists, mappings; the
        key `now` is troth's, the verification time in seconds; another mapping is an
        ArgumentError), as the Cedar request of principal the presenter, action
        `Action::"verify"` and resource the chain's last link (docs/policy.md, "Caveats
        outside a bundle"): a caveat that is false refuses the chain (`CAVEAT_UNSATISFIED`),
        as does one that cannot be evaluated (`CAVEAT_UNEVALUATED`: an error for this
        context, or no Cedar condition); `exc.detail` names it (`caveat:1:0` is link 1's
        first). With no `context` such a chain is refused (`CAVEAT_UNEVALUATED`: deny when in
        doubt) unless `unevaluated_caveats=True`, which returns it with its `caveats`
        unevaluated for the caller to enforce (troth.gates; or refuse any chain that has
        one, as a `Service` rule does); passing both is an ArgumentError. With a `Node` among
        the feed sources, each issuer history the chain carries (and an `Identity`
        presenter's) is judged by the node's stored copies too: one older than or forking from
        the node's copy is ISSUER_INVALID (WRONG_SUBJECT for the presenter's), as the node
        decides (review 75f, delegation 2)."""
        check_chain("Verifier.verify", "chain", chain)
        check_peer("Verifier.verify", "presenter", presenter, names=False)
        if type(unevaluated_caveats) is not bool:
            raise ArgumentError(
                "Verifier.verify",
                "unevaluated_caveats",
                "a bool",
                type(unevaluated_caveats).__name__,
            )
        if context is not None and unevaluated_caveats:
            raise ArgumentError(
                "Verifier.verify", "context", "None with unevaluated_caveats=True", "a mapping"
            )
        data = chain.chain if isinstance(chain, Credential) else chain
        now = self._clock.now()
        extra = None if context is None else caveat_context(context, now)
        feeds = self._feeds(now)
        shown = _presenter(
            presenter, feeds, now, self._verifier.policy.max_feed_staleness, self._seen
        )
        verified = self._verifier.verify(data, presenter=shown, feeds=feeds, now=now)
        for source in self._sources:  # a node's stored copies judge the histories too
            if isinstance(source, Node):  # (review 75f, delegation 2)
                held = None if isinstance(shown, Identifier) else shown
                check_stored_copies(source._stored, verified, held)
        if any(link.caveats for link in verified.links) and not unevaluated_caveats:
            refusal = check_caveats(verified, extra).refusal()
            if refusal is not None:
                raise refusal
        return verified

    def _feeds(self, now: int) -> dict[Identifier, VerifiedFeed]:
        """Each trusted authority's newest feed among the sources: the one with the most
        entries, then the latest issued (a feed only grows, so an older copy one source
        holds never hides a revocation another source has: review 35d, verifier 1); two that fork,
        CredentialError FEED_INVALID (`newest_copy`)."""
        feeds: dict[Identifier, VerifiedFeed] = {}
        asked = [(source, _held_at(source, now)) for source in self._sources]
        for authority in self.trust:
            # a source due a sync of it vouches for no copy, and none of another source stands
            # in (review 58g, verifier 1: the due node's none was dropped, a mirror's used)
            if any(source._feed_due(authority, now=at) for source, at in asked):
                continue
            held = [_held_copy(source, authority, at) for source, at in asked]
            found = newest_copy(feed for feed in held if feed is not None)
            if found is not None:  # (two copies that fork are refused: review 53j, feeds 1)
                feeds[authority] = found
        return feeds

    def __repr__(self) -> str:
        return f"Verifier(trust={sorted(str(a) for a in self.trust)})"


def _sources(feeds: object) -> tuple[FeedSource, ...]:
    """`feeds`, a `Node` or an `Authority` or a sequence of them, checked when the verifier is
    made, not at its first verification (review 35d, verifier 2)."""
    expected = "a Node or an Authority, or a sequence of them"
    if isinstance(feeds, Node | Authority):
        return (feeds,)
    if isinstance(feeds, str | bytes) or not isinstance(feeds, Iterable):
        raise ArgumentError("Verifier", "feeds", expected, _got(feeds))
    sources = tuple(feeds)
    if not sources:
        got, wanted = "none", "at least one source of revocation feeds (a Node or an Authority)"
        raise ArgumentError("Verifier", "feeds", wanted, got)
    for source in sources:
        if not isinstance(source, Node | Authority):
            raise ArgumentError("Verifier", "feeds", expected, f"an item {_got(source)}")
    return sources


def _held_copy(source: FeedSource, authority: Identifier, at: int) -> VerifiedFeed | None:
    """The copy of `authority`'s feed `source` gives as of `at`; CredentialError NO_FEED when
    it can give none then: an authority's key not yet valid at `at` (a verifier's clock set
    back before it, or behind its host's) raised an IdentityError out of `verify`, which
    promises a CredentialError (review 63z, verifier 3)."""
    try:
        return source._revocation_feed(authority, now=at)
    except IdentityError as exc:
        detail = f"{authority}'s feed as of {at}: {exc}"
        raise CredentialError(CredentialFailure.NO_FEED, detail) from None


def _held_at(source: FeedSource, now: int) -> int:
    """The time a source's feed is asked for: `now`, but for a node never later than its own
    clock, since a node brings the copy it holds up to date (stores it), or syncs one a
    revocation left due, at the time it is asked for (review 63z, verifier 2: a verifier with
    a clock a day ahead stored a copy issued a day ahead, against which the node's syncs at
    its own time failed, and a revocation made meanwhile was refused only for want of a
    feed). A verifier ahead of the node by more than `max_feed_age` is refused the feed as
    stale (STALE_FEED): nobody holds one of the time it asks about."""
    return min(now, source._clock.now()) if isinstance(source, Node) else now


def _presenter(
    presenter: Identifier | Identity | str,
    feeds: Mapping[Identifier, VerifiedFeed],
    now: int,
    max_staleness: int,
    seen: SeenSignatures,
) -> Identifier | VerifiedIdentity:
    """What `verify` judges the presenter by: an identifier (or its text) as it is (the caller
    vouches the presenter is that identity; no history to check), an `Identity` by its
    history, verified at `now` (one from a checkpoint attested by a fresh feed held) and of
    that identifier, so the root's feed can refuse a superseded one (review 63z, verifier 1:
    reduced to its identifier, the stale history a thief showed after the owner's announced
    rotation passed, unlike at a node's channels); CredentialError WRONG_SUBJECT else. `seen`:
    the change signatures this verifier checked before, not checked again."""
    if not isinstance(presenter, Identity):
        return _anchor(presenter)
    checkpoints = feed_checkpoints(feeds, now=now, max_staleness=max_staleness)
    try:
        identity = verify_history(presenter.history, now=now, checkpoints=checkpoints, seen=seen)
    except IdentityError as exc:
        detail = f"the presenter's history ({presenter.identifier}) does not verify: {exc}"
        raise CredentialError(CredentialFailure.WRONG_SUBJECT, detail) from None
    if identity.identifier != presenter.identifier:
        detail = f"the presenter's history is {identity.identifier}'s, not {presenter.identifier}'s"
        raise CredentialError(CredentialFailure.WRONG_SUBJECT, detail)
    return identity


def caveat_context(context: Mapping[str, object], now: int, where: str = "Verifier.verify") -> str:
    """The Cedar context of a caveat evaluation: `context` with `now`, as JSON text; an
    ArgumentError of call `where` for one that is no mapping of str keys (but `now`) to JSON
    values, or past what `troth credential verify --context` reads: JSON (compact UTF-8)
    of more than MAX_CAVEAT_CONTEXT_BYTES, or nested more than MAX_JSON_DEPTH deep (review
    51e, verify 1: a context of any size was handed to Cedar)."""
    if not isinstance(context, Mapping):
        raise ArgumentError(where, "context", _CONTEXT, type(context).__name__)
    record = dict(context)
    if not all(type(key) is str for key in record) or "now" in record:
        raise ArgumentError(where, "context", _CONTEXT, "another mapping")
    try:  # a lone surrogate fails the UTF-8 encoding
        text = _ENCODER.encode(record)
        size = len(text.encode("utf-8"))
    except (TypeError, ValueError, RecursionError):  # an object, NaN, nested past the encoder
        raise ArgumentError(where, "context", _CONTEXT, "a mapping of other values") from None
    if size > limits.MAX_CAVEAT_CONTEXT_BYTES:
        got = f"{size} bytes of JSON (at most {limits.MAX_CAVEAT_CONTEXT_BYTES})"
        raise ArgumentError(where, "context", _CONTEXT, got)
    if _deeper_than(record, limits.MAX_JSON_DEPTH):
        got = f"JSON nested more than {limits.MAX_JSON_DEPTH} deep"
        raise ArgumentError(where, "context", _CONTEXT, got)
    return f'{text[:-1]}{"," if record else ""}"now":{now}}}'


def _deeper_than(value: object, depth: int) -> bool:
    """Whether `value` (encoded as JSON: no cycles, at most MAX_CAVEAT_CONTEXT_BYTES) nests
    arrays and objects more than `depth` deep; `value` itself is one deep."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = (
            item.values()
            if isinstance(item, Mapping)
            else item
            if isinstance(item, list | tuple)
            else None
        )
        if children is None:
            continue
        if level > depth:
            return True
        stack.extend((child, level + 1) for child in children)
    return False


def caveat_context_json(data: bytes, now: int, where: str) -> str:
    """`caveat_context` of the JSON object `data` (I-JSON: no duplicate names, NaN or
    integers past 2^53; at most MAX_CAVEAT_CONTEXT_BYTES and MAX_JSON_DEPTH deep), or an
    ArgumentError of `where` saying why not (the CLI's --context)."""
    try:
        value = load_json(data, max_bytes=limits.MAX_CAVEAT_CONTEXT_BYTES, what="the context")
    except DecodeError as exc:
        raise ArgumentError(where, "context", "a JSON object", str(exc)) from None
    if not isinstance(value, dict):
        raise ArgumentError(where, "context", "a JSON object", type(value).__name__)
    return caveat_context(value, now, where)


@dataclass(frozen=True, slots=True)
class CaveatCheck:
    """What became of a verified chain's caveats: `ids` every one (`caveat:<link>:<n>`, in
    chain order; empty: the chain has none), `evaluated` whether they were evaluated against
    a context, `failed` those false or not evaluable for it (`reason`, `detail`: why)."""

    ids: tuple[str, ...]
    evaluated: bool
    failed: tuple[str, ...] = ()
    reason: CredentialFailure | None = None
    detail: str = ""

    @property
    def held(self) -> bool:
        """Whether every caveat was evaluated and holds (a chain without any: True)."""
        return not self.ids or (self.evaluated and not self.failed)

    def refusal(self, missing: str = _MISSING) -> CredentialError | None:
        """The error refusing the chain (None: every caveat holds, or it has none): a caveat
        false, or not evaluable, or none evaluated (no context given: `missing` says what to
        give, deny when in doubt)."""
        if self.held:
            return None
        named = self.failed or self.ids
        link = int(named[0].split(":")[1])
        if not self.evaluated:
            detail = f"{', '.join(self.ids)}: no context given ({missing})"
            return CredentialError(CredentialFailure.CAVEAT_UNEVALUATED, detail, link)
        reason = self.reason or CredentialFailure.CAVEAT_UNEVALUATED
        return CredentialError(reason, f"{', '.join(self.failed)}: {self.detail}", link)

    def to_json(self) -> dict[str, object]:
        return {
            "ids": list(self.ids),
            "evaluated": self.evaluated,
            "failed": list(self.failed),
            "held": self.held,
        }


def check_caveats(verified: VerifiedCredential, context: str | None) -> CaveatCheck:
    """Evaluate the caveats of `verified` against `context` (`caveat_context`'s JSON text;
    None: none given, nothing evaluated) with troth.gates.caveats (imported, with Cedar, on
    the first chain with a caveat): docs/policy.md, "Caveats outside a bundle"."""
    ids = tuple(
        f"caveat:{link.index}:{n}" for link in verified.links for n in range(len(link.caveats))
    )
    if not ids or context is None:
        return CaveatCheck(ids, False)
    from troth.gates.caveats import evaluate_caveats

    failure = evaluate_caveats(verified, context)
    if failure is None:
        return CaveatCheck(ids, True)
    reason = (
        CredentialFailure.CAVEAT_UNSATISFIED
        if failure.evaluated
        else CredentialFailure.CAVEAT_UNEVALUATED
    )
    return CaveatCheck(ids, True, failure.ids, reason, failure.detail)
