"""Review 56l: `verify_signed_by` raises what its docstring says (it said ATTESTATION_INVALID
for a bad signature; the code raises BAD_SIGNATURE, which its callers map to their own `bad
signature`: credentials, gate bundles)."""

from __future__ import annotations

import pytest

from tests.support.traces import NOW, Held
from troth.errors import IdentityError, IdentityFailure
from troth.identity import verify_signed_by


def test_a_bad_signature_is_bad_signature_and_another_key_an_attestation_failure() -> None:
    alice, bob = Held(), Held()
    signer = alice.signer(NOW)
    verify_signed_by(alice.identity, signer.attestation, b"m", signer.sign(b"m"), at=NOW + 10)
    with pytest.raises(IdentityError) as caught:
        verify_signed_by(alice.identity, signer.attestation, b"m", signer.sign(b"n"), at=NOW + 10)
    assert caught.value.reason is IdentityFailure.BAD_SIGNATURE
    with pytest.raises(IdentityError) as caught:
        verify_signed_by(bob.identity, signer.attestation, b"m", signer.sign(b"m"), at=NOW + 10)
    assert caught.value.reason is IdentityFailure.IDENTIFIER_MISMATCH  # the attestation is alice's
