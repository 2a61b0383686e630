"""Review 38d, limits: what a verifier holds in memory for the chains it verified, when their
issuer histories are as long as a presented history may be (64 changes).

A member of acme that may delegate (or a delegate of one) mints chains at will: each one a
delegation to a throwaway identity of its own, presented at a handshake or an in-band refresh
(8 chains each). Every chain's issuer histories are verified and the result cached
(`ChainVerifier`, up to `CACHE_BYTES` of chains), decoded: every change of every history.
"""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from tests.support.parties import Party, make_party, signer_as
from tests.test_trust_scope import feed_of
from troth import limits
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    TrustPolicy,
    delegate,
    issue_credential,
)
from troth.credentials import verify as verify_module
from troth.identity import rotate_identity
from troth.vault import SoftwareVault

T = 1_780_000_000
ORDERS = Attributes({"orders.access": "write"})
BUDGET = 512 * 1024


def _long_lived(vault: SoftwareVault) -> Party:
    """An identity of 64 changes (the most a history presents)."""
    party = make_party(vault, now=T)
    identity, primary, next_key = party.identity, party.primary, party.next_primary
    for step in range(1, limits.MAX_IDENTITY_CHANGES):
        held = rotate_identity(vault, identity, primary, next_key, now=T + step, valid_for=10**8)
        identity, primary, next_key = held.identity, held.primary, held.next_key
    return Party(identity, primary, signer_as(vault, primary, identity, now=T + 100), next_key)


def test_the_chain_cache_bounds_the_memory_its_results_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review 38d, limits 1. `CACHE_BYTES` bounded the bytes of the chains whose results a
    verifier keeps, not what the results hold: each keeps every issuer history decoded (its
    changes, bodies, keys), about 4.6 times the chain's own bytes for chains of 64-change
    histories, so a verifier's 32 MiB budget held some 180 MiB (with the chains' bytes), and
    a node runs several verifiers. Here, with a budget of 512 KiB, twelve chains of three
    such histories each (~54 KB) left ~2.3 MB of results held.

    Was a strict xfail until a cached result was charged its chain's bytes plus
    `CACHED_CHANGE_BYTES` per change of the histories it verified."""
    monkeypatch.setattr(verify_module, "CACHE_BYTES", BUDGET)
    # chains this long are read (up to MAX_CHAIN_BYTES: from a file, a request, an older maker)
    # but `delegate` makes none past what a handshake carries (review 45g, channel 2)
    monkeypatch.setattr(limits, "MAX_PRESENTED_CHAIN_BYTES", limits.MAX_CHAIN_BYTES)
    vault = SoftwareVault()
    acme, alice, bob = (_long_lived(vault) for _ in range(3))
    root = issue_credential(
        acme.signer, subject=alice.identifier, attributes=ORDERS, now=T + 100, ttl=10**6, depth=3
    )
    chain = CredentialChain((root,), (acme.identity.history,))
    chain = delegate(
        alice.signer,
        chain,
        subject=bob.identifier,
        attributes=ORDERS,
        now=T + 100,
        ttl=10**5,
        purpose="x",
    )
    minted = []
    for n in range(12):
        throwaway = make_party(vault, now=T).identifier
        link = delegate(
            bob.signer,
            chain,
            subject=throwaway,
            attributes=ORDERS,
            now=T + 100 + n,
            ttl=10**4,
            purpose="x",
        )
        minted.append((link.encode(), throwaway))
    assert all(len(data) > 50_000 for data, _ in minted)
    feeds = {acme.identifier: feed_of(acme)}
    policy = TrustPolicy(frozenset({acme.identifier}), max_feed_staleness=10**6)
    gc.collect()
    tracemalloc.start()
    try:
        verifier = ChainVerifier(policy)
        for data, presenter in minted:
            verifier.verify(data, presenter=presenter, feeds=feeds, now=T + 200)
        gc.collect()
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held <= 2 * BUDGET, f"{held} bytes held for a budget of {BUDGET}"
