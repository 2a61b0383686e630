"""Review 56p, credentials 1: `VerifiedCredential.revoked_link_in` and `current_in` read the
feed they are handed as the chain's authority's without checking it: handed another
authority's (a caller that looks a feed up under the wrong key, a co-trusted authority's
feed filed in the wrong slot), a credential its own authority revoked read as not revoked,
and a history it superseded as current. `ChainVerifier.verify` refuses a feed filed under
another authority (FEED_INVALID); these refuse one of another authority alike.

Credentials 2: caveats that are no iterable (None) are an ArgumentError, not a bare TypeError."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cotrust import make_cotrust
from tests.support.gates import T
from tests.support.parties import verified_feed
from troth.credentials import (
    Attributes,
    CredentialChain,
    RevocationKind,
    delegate,
)
from troth.credentials.wallet import CredentialWallet
from troth.errors import ArgumentError, CredentialError, CredentialFailure


def test_credentials1_another_authoritys_feed_does_not_read_a_revoked_link_as_held() -> None:
    world = make_cotrust()
    held = world.credential(world.globex_admin_chain, world.globex_admin)
    revoking = verified_feed(
        world.globex, [(RevocationKind.CREDENTIAL, held.links[0].hash)], now=T + 10
    )
    assert held.revoked_link_in(revoking) == 0  # globex's own feed revokes it
    acme_feed = world.acme.feed  # acme's: revokes nothing of globex's
    for read in (held.revoked_link_in, held.current_in):
        with pytest.raises(CredentialError) as raised:
            read(acme_feed)  # was: None (not revoked), and no refusal (current)
        assert raised.value.reason is CredentialFailure.FEED_INVALID
        assert str(world.acme.authority.identifier) in str(raised.value)


@pytest.mark.parametrize("caveats", [None, 5, object()])
def test_credentials2_caveats_that_are_no_sequence_are_an_argument_error(caveats: object) -> None:
    """Review 56a made `delegate` refuse caveats that are not str (ArgumentError, as its
    docstring says); caveats that are no iterable at all (None for none) escaped as the bare
    TypeError of `tuple(None)`, from `delegate` and from `CredentialWallet.delegate`."""
    world = make_cotrust()
    chain = CredentialChain.decode(world.globex_admin_chain)
    link: dict[str, Any] = {
        "attributes": Attributes({}),
        "now": T + 1,
        "ttl": 60,
        "purpose": "p",
        "caveats": caveats,
    }
    with pytest.raises(ArgumentError, match="caveats"):
        delegate(world.globex_admin.signer, chain, subject=world.globex.identifier, **link)
    wallet = CredentialWallet.__new__(CredentialWallet)  # only its argument check is reached
    wallet.check_caveat = None
    with pytest.raises(ArgumentError, match="caveats"):
        wallet.delegate("agent", to=world.globex.identifier, **link)
