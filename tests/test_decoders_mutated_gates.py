"""Mutation fuzzing of the decoders of policy bundles not yet covered by their verifier's
property (tests/test_decoders_mutated_credentials.py): a bundle's body as `troth policy show`
decodes it from a file (not verified), a bundle read back from the holder's own store
(`load_stored_bundle`), and the arguments of the policy service's `push` and `get` (any peer's),
at the limits too (tests/support/limit_mutations.py).

The mutations and the rule every property checks: tests/support/decoder_vectors.py. A bundle and
its body are canonical CBOR (docs/formats.md, "Policy bundles"): what decodes encodes again to
the same bytes.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.decoder_vectors import AUTHORITY, GATES
from tests.support.limit_mutations import QUICK, hostile
from tests.support.mutations import typed
from troth.credentials import ChainVerifier, TrustPolicy
from troth.encoding import cbor
from troth.gates.bundles import decode_bundle, load_stored_bundle
from troth.node.services.policy import _bundle_argument, _get_arguments

BUNDLES = ["bundle_by_authority", "bundle_by_admin", "bundle_with_server"]
GT = GATES["issued_at"] + 60


@pytest.mark.parametrize("name", BUNDLES)
@QUICK
@given(data=st.data())
def test_bundle_as_a_file_shows_it(name: str, data: st.DataObject) -> None:
    """A bundle mutated, decoded as `troth policy show` does: its body (which encodes again to
    the body the bundle carries), or PolicyError."""
    mutant = data.draw(hostile(bytes.fromhex(GATES[name])))
    typed(decode_bundle, mutant, valid_if=lambda body: body.encode() == cbor.decode(mutant)[2])


@pytest.mark.parametrize("name", BUNDLES)
@QUICK
@given(data=st.data())
def test_stored_bundle(name: str, data: st.DataObject) -> None:
    """A bundle of the holder's store mutated (a damaged database): the bundle as stored, or
    PolicyError."""
    original = bytes.fromhex(GATES[name])
    verifier = ChainVerifier(TrustPolicy(frozenset({AUTHORITY})))
    mutant = data.draw(hostile(original))
    typed(
        lambda b: load_stored_bundle(b, verifier=verifier, now=GT),
        mutant,
        valid_if=lambda bundle: bundle.body == decode_bundle(original) and mutant == original,
    )


@QUICK
@given(data=st.data())
def test_policy_service_arguments(data: st.DataObject) -> None:
    """`push [bundle]` and `get [authority, revision, digest?]` mutated: read, or RemoteError."""
    push = cbor.encode([bytes.fromhex(GATES["bundle_by_admin"])])
    typed(lambda b: _bundle_argument(cbor.decode(b)), data.draw(hostile(push)))
    asked = [AUTHORITY.digest, 3, bytes(32)] if data.draw(st.booleans()) else [AUTHORITY.digest, 3]
    get = cbor.encode(asked)
    mutant = data.draw(hostile(get))
    typed(
        lambda b: _get_arguments(cbor.decode(b)),
        mutant,
        valid_if=lambda a: (
            cbor.encode([a[0].digest, a[1], *([] if a[2] is None else [a[2]])]) == mutant
        ),
    )
