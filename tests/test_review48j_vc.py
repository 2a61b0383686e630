"""Review 48j, delegation 1 and 4: a troth VC that names no window, or outlives its key."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.conftest import NOW
from tests.test_credentials_vc import VcWorld
from troth.credentials import Attributes
from troth.credentials.vc import export_credential_vc
from troth.errors import CredentialError, CredentialFailure

F = CredentialFailure


def _without(world: VcWorld, *fields: str) -> dict[str, Any]:
    """The world's VC without `fields`, signed again by its authority (a document the issuer
    really signed)."""
    unsecured = {k: v for k, v in world.vc.items() if k != "proof" and k not in fields}
    return world.resigned(unsecured)


@pytest.mark.parametrize("fields", [("validUntil",), ("validFrom",), ("validFrom", "validUntil")])
def test_a_troth_vc_without_its_window_is_refused(fields: tuple[str, ...]) -> None:
    """Review 48j, delegation 1: a troth VC is verified like a one-link chain, whose window is
    always there (docs/formats.md, "W3C VC", step 5), but one signed without `validUntil`
    verified as valid for as long as its key (and `troth credential verify --format vc` then
    crashed printing its window, a TypeError); without `validFrom` it was valid before it was
    issued. Both are refused, malformed."""
    world = VcWorld()
    document = _without(world, *fields)
    with pytest.raises(CredentialError) as caught:
        world.verify(document)
    assert caught.value.reason is F.MALFORMED, caught.value
    assert fields[0] in str(caught.value)


def _read_until(
    world: VcWorld, credential_id: bytes, valid_until: int, *, past_key: bool = False
) -> dict[str, Any]:
    """The authority's VC (at NOW) of the member's orders.access read, valid to `valid_until`;
    with `past_key`, signed by a signer that claims its key lasts that long (`export_credential_vc`
    refuses a window past the attested key: review 75l, issuance 2)."""
    signer = world.authority.signer
    return export_credential_vc(
        replace(signer, expires_at=valid_until) if past_key else signer,
        credential_id=credential_id,
        subject=world.member.identifier,
        attributes=Attributes({"orders.access": "read"}),
        valid_from=NOW,
        valid_until=valid_until,
        now=NOW,
    )


def test_a_troth_vc_that_outlives_its_signing_key_is_refused() -> None:
    """Review 48j, delegation 4: a CBOR credential whose expiry is past its issuer's signing
    key is refused (`outlives the issuer's signing key`), and the authority caps a VC's
    `validUntil` at its key (docs/formats.md, "W3C VC"); but a VC signed past its key verified,
    valid to its reader until the key's attestation lapsed. It is refused as a chain is."""
    world = VcWorld()
    signer = world.authority.signer
    document = _read_until(world, b"\x02" * 16, signer.expires_at + 1, past_key=True)
    with pytest.raises(CredentialError) as caught:
        world.verify(document)
    assert caught.value.reason is F.ATTESTATION_INVALID, caught.value
    at_the_key = _read_until(world, b"\x03" * 16, signer.expires_at)
    assert world.verify(at_the_key).valid_until == signer.expires_at
