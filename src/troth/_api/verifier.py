"""Verifying a credential chain with explicit trust: the authorities you trust and where
their revocation feeds come from are arguments, never defaults (docs/formats.md, "Chain
verification")."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from troth._api.arguments import check_anchors, check_chain, check_peer
from troth._api.authority import Authority
from troth._api.node import Node
from troth._api.results import Credential, Identity
from troth.clock import Clock, SystemClock
from troth.credentials import ChainVerifier, TrustPolicy, VerifiedCredential, VerifiedFeed
from troth.errors import ArgumentError, CredentialError, CredentialFailure
from troth.identity import Identifier
from troth.node.trust import CREDENTIAL_SKEW, FEED_STALENESS

__all__ = ["FeedSource", "Verifier"]

_ENCODER: Final = json.JSONEncoder(allow_nan=False, separators=(",", ":"))
_CONTEXT: Final = "a mapping of str keys (but `now`) to JSON values"

FeedSource = Node | Authority
"""Where a verifier's revocation feeds come from: an `Authority` (its own feed, current at
every verification), or a `Node` (the feeds it holds: synced when enrolling, by a running
node's maintenance, and here from an authority on this machine once the copy is older than
half the staleness limit)."""


def _anchor(value: Identifier | str) -> Identifier:
    return value if isinstance(value, Identifier) else Identifier.parse(value)


class Verifier:
    """Verifies credential chains for the authorities in `trust` only (there is no default:
    an empty `trust` is a ValueError), each checked against that authority's revocation feed
    from `feeds` (the newest any of them has: each a `Node` or an `Authority`, else a
    TypeError), which must be at most `max_feed_age` seconds old (1 s to
    `limits.MAX_FEED_STALENESS_SECONDS`, 30 days, else `troth.errors.OutOfRange`, a
    ConfigError and ValueError). `max_clock_skew` seconds (0 to 300) are allowed at the edges
    of every link's validity window. Safe to reuse: checks that
    depend only on the bytes are cached. `trust` that is not an iterable of `Identifier`s or
    their text (one identifier's text, say) is an ArgumentError, as is a chain or presenter
    of a type `verify` does not take."""

    def __init__(
        self,
        *,
        trust: Iterable[Identifier | str],
        feeds: FeedSource | Sequence[FeedSource],
        max_feed_age: int = FEED_STALENESS,
        max_clock_skew: int = CREDENTIAL_SKEW,
        clock: Clock | None = None,
    ) -> None:
        anchors = check_anchors("Verifier", "trust", trust)
        policy = TrustPolicy(
            frozenset(_anchor(a) for a in anchors),
            max_clock_skew=max_clock_skew,
            max_feed_staleness=max_feed_age,
        )
        self.trust = policy.anchors
        """The trusted authorities."""
        self._sources = (feeds,) if isinstance(feeds, Node | Authority) else tuple(feeds)
        if not self._sources:
            raise ValueError("a verifier needs a source of revocation feeds")
        for source in self._sources:  # not at the first verification (review 35d, verifier 2)
            if not isinstance(source, Node | Authority):
                raise TypeError(
                    f"feeds come from a Node or an Authority, not {type(source).__name__} "
                    f"{source!r}"
                )
        self._verifier = ChainVerifier(policy)
        self._clock = clock or SystemClock()

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
        one, as a `Service` rule does); passing both is an ArgumentError."""
        check_chain("Verifier.verify", "chain", chain)
        check_peer("Verifier.verify", "presenter", presenter)
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
        extra = None if context is None else _context(context, now)
        verified = self._verifier.verify(
            data, presenter=_presenter(presenter), feeds=self._feeds(now), now=now
        )
        if any(link.caveats for link in verified.links) and not unevaluated_caveats:
            _enforce_caveats(verified, extra)
        return verified

    def _feeds(self, now: int) -> dict[Identifier, VerifiedFeed]:
        """Each trusted authority's newest feed among the sources: the one with the most
        entries, then the latest issued (a feed only grows, so an older copy one source
        holds never hides a revocation another source has: review 35d, verifier 1)."""
        feeds: dict[Identifier, VerifiedFeed] = {}
        for authority in self.trust:
            held = [source._revocation_feed(authority, now=now) for source in self._sources]
            found = [feed for feed in held if feed is not None]
            if found:
                feeds[authority] = max(found, key=lambda feed: (feed.count, feed.issued_at))
        return feeds

    def __repr__(self) -> str:
        return f"Verifier(trust={sorted(str(a) for a in self.trust)})"


def _presenter(presenter: Identifier | Identity | str) -> Identifier:
    if isinstance(presenter, Identity):
        return presenter.identifier
    return _anchor(presenter)


def _context(context: Mapping[str, object], now: int) -> str:
    """The Cedar context of a caveat evaluation: `context` with `now`, as JSON text."""
    if not isinstance(context, Mapping):
        raise ArgumentError("Verifier.verify", "context", _CONTEXT, type(context).__name__)
    record = dict(context)
    if not all(isinstance(key, str) for key in record) or "now" in record:
        raise ArgumentError("Verifier.verify", "context", _CONTEXT, "another mapping")
    record["now"] = now
    try:
        return _ENCODER.encode(record)
    except (TypeError, ValueError, RecursionError):  # an object, NaN, nested past the encoder
        raise ArgumentError(
            "Verifier.verify", "context", _CONTEXT, "a mapping of other values"
        ) from None


def _enforce_caveats(verified: VerifiedCredential, context: str | None) -> None:
    """Refuse `verified` unless each of its caveats holds for `context` (troth.gates.caveats:
    imported, with Cedar, on the first chain with a caveat); None: none given, refused."""
    if context is None:
        ids = [
            f"caveat:{link.index}:{n}" for link in verified.links for n in range(len(link.caveats))
        ]
        raise CredentialError(
            CredentialFailure.CAVEAT_UNEVALUATED,
            f"{', '.join(ids)}: no context given (pass `context` to evaluate the caveats, or "
            "`unevaluated_caveats=True` to enforce them yourself)",
            int(ids[0].split(":")[1]),
        )
    from troth.gates.caveats import evaluate_caveats

    failure = evaluate_caveats(verified, context)
    if failure is not None:
        reason = (
            CredentialFailure.CAVEAT_UNSATISFIED
            if failure.evaluated
            else CredentialFailure.CAVEAT_UNEVALUATED
        )
        detail = f"{', '.join(failure.ids)}: {failure.detail}"
        raise CredentialError(reason, detail, failure.link)
