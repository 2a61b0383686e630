"""Review 63b (adversarial review of the gates and Cedar policy bundles), findings.

Gates 1. The schema scan that runs before cedarpy sees a bundle's schema fragment
(`troth.gates.nesting.cedar_refusal`, its `_declarations`) stepped past the `]` of an
`entity A in [` or `action "a" in [` without one: a fragment ending inside an unclosed parent
list (`entity A in [`, `entity A in [ B`) raised IndexError out of `compile_policies`, so out of
`create_bundle` (`troth policy bundle create` with an author's typo) and out of
`verify_bundle` and `BundleStore.accept` for a signed bundle carrying it, where a refusal is a
PolicyError: the policy service's pull (troth.node.services.policy), which goes on past a
TrothError or a DecodeError only, would end its round there (the authorities after it not
pulled), and a push or an ask-back ended in an error that is no refusal. Found by fuzzing the
scan with schema tokens; the scan now stops at the end of the text and Cedar refuses the
fragment (SCHEMA_INVALID).
"""

from __future__ import annotations

import pytest

from tests.support.gates import POLICIES, TOOLS, T, make_world
from troth.encoding import cbor
from troth.errors import PolicyError, PolicyFailure
from troth.gates import BundleStore, compile_policies, verify_bundle
from troth.gates.nesting import cedar_refusal

UNCLOSED = ["entity A in [", "entity A in [ B", 'action "a" in [', 'entity B; action "a" in [ "b"']


@pytest.mark.parametrize("fragment", UNCLOSED)
def test_an_unclosed_parent_list_is_refused_typed(fragment: str) -> None:
    assert cedar_refusal(fragment, schema=True) is None  # nothing over a limit: Cedar's to say
    with pytest.raises(PolicyError) as refused:
        compile_policies(POLICIES, fragment, TOOLS)
    assert refused.value.reason is PolicyFailure.SCHEMA_INVALID


def test_a_signed_bundle_with_an_unclosed_parent_list_is_refused_typed() -> None:
    world = make_world()
    envelope = cbor.decode(world.bundle())
    body = cbor.decode(envelope[2])
    body[8] = "entity A in ["  # the schema fragment: signed as the authority, never compiled
    envelope[2] = cbor.encode(body)
    envelope[3] = world.authority.signer.sign(envelope[2])
    data = cbor.encode(envelope)
    with pytest.raises(PolicyError) as refused:
        verify_bundle(data, verifier=world.verifier, feeds=world.feeds(), now=T + 5)
    assert refused.value.reason is PolicyFailure.SCHEMA_INVALID
    store = BundleStore(world.verifier)
    with pytest.raises(PolicyError) as refused:
        store.accept(data, feeds=world.feeds(), now=T + 5)
    assert refused.value.reason is PolicyFailure.SCHEMA_INVALID
    assert store.active(world.authority.identifier) is None
