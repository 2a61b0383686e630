"""Review 48j, delegation 2: a delegation that would end before it starts."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.parties import make_party
from troth.credentials import Attributes, CredentialChain, delegate, issue_credential
from troth.errors import CredentialError, CredentialFailure
from troth.vault import SoftwareVault

F = CredentialFailure
READ = Attributes({"orders.access": "read"})


def _root(now: int, ttl: int = 3600) -> tuple[Any, Any, CredentialChain]:
    vault = SoftwareVault()
    authority, alice, bob = (make_party(vault, now=NOW) for _ in range(3))
    root = issue_credential(
        authority.signer, subject=alice.identifier, attributes=READ, now=now, ttl=ttl, depth=2
    )
    return alice, bob, CredentialChain((root,), (authority.identity.history,))


def _delegated_from(start: int, *, ttl: int) -> pytest.ExceptionInfo[CredentialError]:
    """alice delegates READ to bob at NOW for `ttl` seconds from a chain starting at `start`:
    the CredentialError it raised."""
    alice, bob, chain = _root(start)
    with pytest.raises(CredentialError) as caught:
        delegate(
            alice.signer,
            chain,
            subject=bob.identifier,
            attributes=READ,
            now=NOW,
            ttl=ttl,
            purpose="p",
        )
    return caught


def test_a_delegation_of_a_parent_not_valid_yet_is_a_credential_error() -> None:
    """Review 48j, delegation 2: delegating from a chain whose start is later than the
    delegation would end (the authority's clock ahead of the member's, a short --ttl) raised a
    bare ValueError from deep inside (`not_before is after expires_at`), not the
    CredentialError `delegate` documents; the CLI showed it as a usage error."""
    caught = _delegated_from(NOW + 120, ttl=60)
    assert caught.value.reason is F.NOT_YET_VALID, caught.value
    assert caught.value.link == 1
    assert str(NOW + 120) in caught.value.detail


def test_a_delegation_with_a_negative_ttl_is_a_credential_error() -> None:
    """Review 48j, delegation 2: a negative ttl raised a bare ValueError too."""
    caught = _delegated_from(NOW, ttl=-5)
    assert caught.value.reason is F.MALFORMED, caught.value
    assert caught.value.link == 1
