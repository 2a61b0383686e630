"""Review 45d, identity: what the maker of a history may create, every verifier must accept."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from troth.crypto import KeyType
from troth.errors import IdentityError, IdentityFailure
from troth.identity import verify_history
from troth.identity.create import new_identity, rotate_identity
from troth.vault import SoftwareVault

NOW = 1_790_000_000
_UINT = 1 << 64


@settings(max_examples=60, deadline=None)
@given(
    now=st.one_of(st.integers(-10, 10), st.integers(0, _UINT + 10), st.just(_UINT - 1)),
    valid_for=st.one_of(st.integers(-10, 10), st.integers(-_UINT, _UINT), st.just(_UINT)),
)
def test_a_new_identity_is_one_every_verifier_takes_or_none(now: int, valid_for: int) -> None:
    """Review 45d, identity 1. `new_identity` signed whatever window it was given: a
    negative `valid_for` made a first change whose key expired before it was made (every
    verifier refuses it: KEY_OUTSIDE_VALIDITY), a negative `now` one no decoder reads, and a
    window past 2**64 failed inside the CBOR encoder with a DecodeError ("cannot encode"),
    the encoding layer's error, after both keys were generated. The maker now refuses such
    a window (IdentityError KEY_OUTSIDE_VALIDITY) before generating a key; what it signs,
    `verify_history` takes at `now`.

    Was a strict xfail until `troth.identity.create` checked the window first."""
    vault = SoftwareVault()
    if now < 0 or valid_for < 0 or now + valid_for >= _UINT:
        with pytest.raises(IdentityError) as raised:
            new_identity(vault, KeyType.ED25519, now=now, valid_for=valid_for)
        assert raised.value.reason is IdentityFailure.KEY_OUTSIDE_VALIDITY
        assert not vault._cache  # refused before any key was made
        return
    held = new_identity(vault, KeyType.ED25519, now=now, valid_for=valid_for)
    verify_history(held.identity.history, now=now)


@settings(max_examples=60, deadline=None)
@given(valid_for=st.one_of(st.integers(-10, 10), st.integers(-_UINT, _UINT)))
def test_a_rotation_is_one_every_verifier_takes_or_none(valid_for: int) -> None:
    """Review 45d, identity 1, for a rotation: a negative `valid_for` revealed the committed
    key in a change that no verifier accepts (the new key expired at once), and the service
    stored it as the identity's history; the committed key was spent on it."""
    vault = SoftwareVault()
    held = new_identity(vault, KeyType.ED25519, now=NOW, valid_for=86_400)
    keys = len(vault._cache)
    if valid_for < 0 or NOW + 1 + valid_for >= _UINT:
        with pytest.raises(IdentityError) as raised:
            rotate_identity(
                vault, held.identity, held.primary, held.next_key, now=NOW + 1, valid_for=valid_for
            )
        assert raised.value.reason is IdentityFailure.KEY_OUTSIDE_VALIDITY
        assert len(vault._cache) == keys  # no next key generated for it
        return
    rotated = rotate_identity(
        vault, held.identity, held.primary, held.next_key, now=NOW + 1, valid_for=valid_for
    )
    verify_history(rotated.identity.history, now=NOW + 1)


def test_a_window_at_the_edge_of_the_encoding_is_made_and_verified() -> None:
    """The largest window the format holds (valid_until = 2**64 - 1) is made and verified."""
    vault = SoftwareVault()
    held = new_identity(vault, KeyType.ED25519, now=NOW, valid_for=_UINT - 1 - NOW)
    assert held.identity.current.body.valid_until == _UINT - 1
    verify_history(held.identity.history, now=NOW)
    with pytest.raises(IdentityError):
        new_identity(vault, KeyType.ED25519, now=NOW, valid_for=_UINT - NOW)
