"""Review 63m, gates: attacks on the lead's fix of review 63f, identity 2 (a policy bundle's
checkpointed signer history judged by the feeds' word).

Gates 1 (high; fixed in troth/gates/bundles.py). `_verify` now verifies the signer's history
with `feed_checkpoints(feeds)`, which takes the word of ANY held feed on a checkpoint (the
authority's own, else any other trusted authority's), then checks it only with the bundle
authority's `check_current`, never with its `binds` (a chain's issuer and presenter, and a
VC's issuer, must also be bound by their own authority's feed: review 23a, checkpoints 1-2;
review 56a). So a co-trusted authority globex made up "change 1" of authority acme (its own
key; the first link of a checkpointed history is the checkpoint's word, never checked), named
it in globex's feed, and signed policy bundles AS ACME that every node trusting both took as
acme's: globex's word set acme's gates. Before the fix it was refused (no checkpoints at all);
now an authority-signed bundle's checkpointed signer history must be bound by the bundle
authority's own feed (`VerifiedFeed.binds`), as a chain's issuer is. The stored-bundle path
(`load_stored_bundle`, `check_signer`) carries the same check against the current feed.
"""

from __future__ import annotations

import pytest

from tests.support.gates import POLICIES, TOOLS
from tests.test_review23a_checkpoints import forged_change, trusting_both
from tests.test_trust_scope import NOW, Two, make_two
from troth.credentials.revocation_held import feed_checkpoints
from troth.errors import PolicyError, PolicyFailure
from troth.gates.bundles import create_bundle, load_stored_bundle, verify_bundle
from troth.gates.store import BundleStore
from troth.identity import Signer

_P = PolicyFailure


def _bundle_as(signer: Signer, two: Two) -> bytes:
    return create_bundle(
        signer,
        authority=two.acme.identifier,
        policies=POLICIES,
        schema="",
        tools=TOOLS,
        revision=7,
        now=NOW - 1,
        ttl=600,
    )


def test_gates_1_a_co_trusted_authority_cannot_sign_anothers_bundle() -> None:
    """Globex makes up change 1 of acme (acme never rotated: its feed names none of its
    changes), names it in its own feed, and signs a bundle as acme under that history."""
    two = make_two()
    acme = two.acme.identifier
    forged = forged_change(two, acme, 1, acme.digest)
    bundle = _bundle_as(forged.signer, two)
    with pytest.raises(PolicyError) as caught:
        verify_bundle(bundle, verifier=trusting_both(two), feeds=two.feeds, now=NOW)
    assert caught.value.reason in (_P.SIGNER_INVALID, _P.SIGNER_SUPERSEDED)


def test_gates_1_nor_has_it_loaded_from_a_store_on_a_co_trusted_word() -> None:
    """The same bundle in the holder's store (put there by an older version, or accepted on
    the co-trusted word): reloaded with checkpoints taking that word, it decides nothing."""
    two = make_two()
    acme = two.acme.identifier
    forged = forged_change(two, acme, 1, acme.digest)
    bundle = _bundle_as(forged.signer, two)
    verifier = trusting_both(two)
    attests = feed_checkpoints(two.feeds, now=NOW, max_staleness=10**6)
    try:
        loaded = load_stored_bundle(bundle, verifier=verifier, now=NOW, checkpoints=attests)
    except PolicyError:
        return
    with pytest.raises(PolicyError) as caught:
        loaded.check_signer(two.feeds[acme])
    assert caught.value.reason is _P.SIGNER_INVALID
    store = BundleStore(verifier, checkpoints=attests)
    with pytest.raises(PolicyError):
        store.accept(bundle, feeds=two.feeds, now=NOW)
    assert store.active(acme) is None
