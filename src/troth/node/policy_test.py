"""One tool call decided offline under a signed policy bundle (`troth policy test`,
docs/policy.md "Command line"): the caller says which authority is trusted, and the answer
names it. Review 48p, cligaps 2: the authority the bundle named was trusted unasked, so a
bundle, feed and chain all from a made-up authority were "allowed", and the output did not
say by which authority."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from troth.authority import Authority
from troth.credentials import ChainVerifier, TrustPolicy, chain_actor
from troth.gates import (
    BundleStore,
    DecisionPoint,
    PolicyDecision,
    PresentedChain,
    ToolCall,
    decode_bundle,
)
from troth.identity import Identifier
from troth.node.verify import select_feeds

__all__ = ["OfflineDecision", "decide_offline"]


@dataclass(frozen=True, slots=True)
class OfflineDecision:
    """The decision, and the one authority it trusted (the bundle's signer had to be it)."""

    decision: PolicyDecision
    authority: Identifier


def decide_offline(
    bundle: bytes,
    chain: bytes,
    call: ToolCall,
    *,
    anchor: Identifier | None,
    host: Authority | None,
    feed_files: Sequence[str],
    now: int,
    max_age: int,
) -> OfflineDecision:
    """Decide `call` by `chain`'s holder under `bundle` at `now`, trusting authority `anchor`
    alone (None: the one `bundle` names, which nothing else vouches for: the caller's explicit
    choice, for offline testing), its feed read from `feed_files` and/or the local authority
    `host`, each at most `max_age` old. PolicyError when the bundle is refused (one signed by
    another authority than `anchor` among them); CredentialError when a feed is."""
    authority = decode_bundle(bundle).authority if anchor is None else anchor
    anchors = frozenset({authority})
    feeds = select_feeds(
        feed_files=feed_files, authority=host, anchors=anchors, now=now, max_age=max_age
    )
    verifier = ChainVerifier(TrustPolicy(anchors, max_feed_staleness=max_age))
    store = BundleStore(verifier)
    store.accept(bundle, feeds=feeds, now=now)
    caller = PresentedChain(chain, chain_actor(chain), verifier, feeds.get)
    decision = DecisionPoint(store, feeds.get).decide(caller, call, now=now)
    return OfflineDecision(decision, authority)
