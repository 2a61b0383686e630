"""Mutation fuzzing of the decoders of policy bundles not yet covered by their verifier's
property (tests/test_decoders_mutated_credentials.py): a bundle's body as `troth policy show`
decodes it from a file (not verified), a bundle read back from the holder's own store
(`load_stored_bundle`), the arguments of the policy service's `push` and `get` (any peer's),
at the limits too (tests/support/limit_mutations.py), and a tool's JSON schema mutated as JSON
in a bundle signed again by its policy-admin (the credentials file mutates schemas as text).

The mutations and the rule every property checks: tests/support/decoder_vectors.py. A bundle and
its body are canonical CBOR (docs/formats.md, "Policy bundles"): what decodes encodes again to
the same bytes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, reject
from hypothesis import strategies as st

from tests.support.decoder_vectors import AUTHORITY, GATES
from tests.support.limit_mutations import QUICK, hostile
from tests.support.mutations import json_mutation, typed
from tests.test_decoders_mutated_credentials import gates_feed, parties
from troth.credentials import ChainVerifier, TrustPolicy
from troth.encoding import cbor
from troth.errors import PolicyError, PolicyFailure
from troth.gates import verify_bundle
from troth.gates.bundles import decode_bundle, load_stored_bundle
from troth.gates.toolschema import canonical_json
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


# -- re-signed tool schemas: a policy-admin's bundle with hostile JSON schemas ---------------


def _resigned_tools(refund_schema: Any) -> bytes:
    """The admin's bundle with the `refund` tool's schema replaced (canonical JSON, as a
    signer writes it), signed again by the admin."""
    signed = cbor.decode(bytes.fromhex(GATES["bundle_by_admin"]))
    body = cbor.decode(signed[2])
    body[9] = {**body[9], "refund": canonical_json(refund_schema)}
    signed[2] = cbor.encode(body)
    signed[3] = parties()[1].signer.sign(signed[2])
    return cbor.encode(signed)


def _verify(data: bytes) -> object:
    verifier = ChainVerifier(TrustPolicy(frozenset({AUTHORITY})))
    return verify_bundle(data, verifier=verifier, feeds={AUTHORITY: gates_feed()}, now=GT)


REFUND = json.loads(
    cbor.decode(cbor.decode(bytes.fromhex(GATES["bundle_by_admin"]))[2])[9]["refund"]
)


@QUICK
@given(data=st.data())
def test_resigned_tool_schema(data: st.DataObject) -> None:
    """The `refund` tool's JSON schema mutated as JSON (a value replaced: a list where a name
    was, an object where a type was, ...) and the bundle signed again by its policy-admin:
    verified, or PolicyError."""
    assert _verify(_resigned_tools(REFUND)) is not None
    schema = json.loads(data.draw(json_mutation(json.dumps(REFUND).encode())))
    try:
        mutant = _resigned_tools(schema)
    except PolicyError:  # not writable as canonical JSON (a lone surrogate, 2^53): no signer can
        reject()
    typed(_verify, mutant)


@pytest.mark.parametrize("name", [["order_id"], {"order_id": 1}])
def test_a_required_name_that_is_not_text_is_refused(name: object) -> None:
    """Found growing tool schemas (review 54b, decoders 5): a `required` entry that is a list
    or an object let TypeError (unhashable) out of the schema's compiler, so a bundle a
    policy-admin signed with it raised TypeError at every node that verified it, instead of
    PolicyError SCHEMA_INVALID."""
    with pytest.raises(PolicyError) as refused:
        _verify(_resigned_tools({**REFUND, "required": [name]}))
    assert refused.value.reason is PolicyFailure.SCHEMA_INVALID
