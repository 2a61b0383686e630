"""Review 48j, delegation 1: a troth VC that names no window."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_credentials_vc import VcWorld
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
