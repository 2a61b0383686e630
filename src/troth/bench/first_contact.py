"""First contact for `channel.establish.tcp` (review 62n): a node's verification caches
emptied, so that its next handshake verifies every signature a node meeting its peer for the
first time verifies, as a full TLS handshake verifies both certificate chains.

A node keeps what it verified before (troth.channel.claims: the peers' histories and
channel-key attestations, and the change signatures behind them; troth.credentials.verify:
the chains, at the handshake, for the trace collector and for each decision's re-check, and a
store-less verifier's memory of the histories in them): a peer reconnecting pays no signature
again, as a TLS client resuming its session pays none. `forget_verified` empties them all, in
place (the channel trusts already made hold the same objects), under each one's own lock. A
benchmark's hook, not an API: it reaches into the caches' attributes, and what the node
stored (peers' histories, vouchers) stays, as it does not spare a signature.
"""

from __future__ import annotations

from troth.channel.claims import ClaimCache
from troth.credentials.memory import VerifierMemory
from troth.credentials.verify import ChainVerifier
from troth.node.runtime import NodeRuntime

__all__ = ["forget_verified"]


def forget_verified(runtime: NodeRuntime) -> None:
    """Empty every cache `runtime` keeps of signatures it verified: its next handshake (and
    decision) verifies the peer's history, attestation and chains in full. Call it between
    handshakes, not during one."""
    trust = runtime.trust
    _forget_claims(trust._claims)
    for verifier in (trust.verifier, trust._handshakes, trust._recheck):
        if verifier is not None:
            _forget_chains(verifier)


def _forget_claims(claims: ClaimCache) -> None:
    with claims._lock:
        claims._results.clear()
        claims._held = 0
    signatures = claims.signatures
    with signatures._lock:
        signatures._seen.clear()


def _forget_chains(verifier: ChainVerifier) -> None:
    with verifier._lock:
        verifier._cache.clear()
        verifier._cache_bytes = 0
        verifier._memory = VerifierMemory()
