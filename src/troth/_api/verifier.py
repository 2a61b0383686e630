"""Verifying a credential chain with explicit trust: the authorities you trust and where
their revocation feeds come from are arguments, never defaults (docs/formats.md, "Chain
verification")."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from troth._api.arguments import check_anchors, check_chain, check_peer
from troth._api.authority import Authority
from troth._api.node import Node
from troth._api.results import Credential, Identity
from troth.clock import Clock, SystemClock
from troth.credentials import ChainVerifier, TrustPolicy, VerifiedCredential, VerifiedFeed
from troth.identity import Identifier
from troth.node.trust import CREDENTIAL_SKEW, FEED_STALENESS

__all__ = ["FeedSource", "Verifier"]

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
        self, chain: Credential | bytes, *, presenter: Identifier | Identity | str
    ) -> VerifiedCredential:
        """Verify `chain` as presented by `presenter` (who must be its last subject) now: the
        root issued by a trusted authority, every link signed and only narrowing, none
        revoked nor expired, no issuer's history superseded. Returns what the presenter may
        do: its `attributes`, under its `caveats`, conditions (Cedar expressions) the chain
        carries that this call does not evaluate: enforce them (troth.gates), or refuse a
        chain that has any, as a `Service` rule does. Raises `CredentialError` with the
        reason (`exc.reason`) and the link (`exc.link`) otherwise."""
        check_chain("Verifier.verify", "chain", chain)
        check_peer("Verifier.verify", "presenter", presenter)
        data = chain.chain if isinstance(chain, Credential) else chain
        now = self._clock.now()
        return self._verifier.verify(
            data, presenter=_presenter(presenter), feeds=self._feeds(now), now=now
        )

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
