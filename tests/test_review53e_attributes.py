"""Review 53e, attributes: attribute values that no credential can carry.

Attributes 1. `Attributes` took any `str` as a value, a lone surrogate too (`"\\udcff"`: what
Python makes of a byte that is not UTF-8 in a command-line argument or a file name), though a
credential's CBOR carries UTF-8 text only. Nothing refused it until it was encoded: a ticket
granting it was refused by `Authority.create_ticket` with a bare `UnicodeEncodeError` (a set
holding it, sorted by its UTF-8 bytes) or a `DecodeError` (`cannot encode value`), not the
authority's typed error, and `troth authority ticket create --attr` printed the codec's
message. Was a strict xfail until `Attributes` refused text that is not valid Unicode (an
`ArgumentError` naming the attribute), as it refuses an empty or over-long value.

Attributes 2. The same of a delegation's purpose and caveats: `delegate` (documented to refuse
with a `CredentialError`) raised the encoder's `DecodeError` (`cannot encode value`). Was a
strict xfail until `Delegation` refused them (`delegate`: MALFORMED, saying so).

Attributes 3. `Authority.create_ticket(role=...)` adds `troth.role` to the attributes given: to
64 of them (`MAX_ATTRIBUTES`) that made 65, refused with `Attributes`' own `ArgumentError`
("items must be a mapping ..."), as if the caller's valid attributes were wrong, not the
authority's `request invalid`. Was a strict xfail until `create_ticket` said so itself.

Attributes 4. A revocation's reason alike: `Authority.revoke_credential` / `revoke_identity`
(and `troth.Authority.revoke`, `remove_member`) with a reason holding a lone surrogate raised
the encoder's `DecodeError` from inside the feed's append. Was a strict xfail until
`_revoke_many` refused it as it refuses a reason too long (`request invalid`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.enroll import acme_and_agent
from tests.support.parties import make_party
from troth import limits
from troth.authority import ADMIN
from troth.credentials import Attributes, CredentialChain, delegate, issue_credential
from troth.errors import (
    ArgumentError,
    AuthorityError,
    AuthorityFailure,
    CredentialError,
    CredentialFailure,
)
from troth.vault import SoftwareVault

NOW = 1_800_000_000
T = 1_780_000_000
LONE = "\udcff"


def test_a_value_that_is_not_unicode_is_refused_when_made(tmp_path: Path) -> None:
    for items in ({"app.x": LONE}, {"app.x": [LONE, "b"]}, {"app.x": "a" + LONE}):
        with pytest.raises(ArgumentError, match=r"app\.x"):
            Attributes(items)
    with pytest.raises(ArgumentError, match=r"app\.x"):
        Attributes.from_assignments([f"app.x={LONE}", "app.x=b"])
    with (
        acme_and_agent(tmp_path / "home", NOW) as (authority, _agent, _member, _ticket),
        pytest.raises(ArgumentError, match=r"app\.x"),
    ):
        authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"app.x": frozenset({LONE, "b"})}),
            address="node:acme",
            now=NOW,
        )


def test_unicode_beyond_ascii_is_still_a_value() -> None:
    """The control: any valid Unicode text is a value (sorted by its UTF-8 bytes)."""
    attributes = Attributes({"app.x": ["é", "日本", "\U0001f600"], "app.y": "ß"})
    assert attributes.values_of("app.x") == frozenset({"é", "日本", "\U0001f600"})
    assert Attributes.from_cbor(attributes.to_cbor()) == attributes


def test_a_purpose_or_caveat_that_is_not_unicode_is_a_credential_error() -> None:
    vault = SoftwareVault()
    authority, alice, bob = (make_party(vault, now=T) for _ in range(3))
    root = issue_credential(
        authority.signer,
        subject=alice.identifier,
        attributes=Attributes({"app.x": "1"}),
        now=T,
        ttl=3600,
        depth=4,
    )
    chain = CredentialChain((root,), (authority.identity.history,))
    for purpose, caveats in ((LONE, ()), ("p", ("true", LONE))):
        with pytest.raises(CredentialError) as refused:
            delegate(
                alice.signer,
                chain,
                subject=bob.identifier,
                attributes=Attributes(),
                now=T,
                ttl=60,
                purpose=purpose,
                caveats=caveats,
            )
        assert refused.value.reason is CredentialFailure.MALFORMED
        assert "Unicode" in refused.value.detail


def test_a_role_past_the_attribute_bound_is_the_authoritys_refusal(tmp_path: Path) -> None:
    full = Attributes({f"app.a{n}": "x" for n in range(limits.MAX_ATTRIBUTES)})
    with acme_and_agent(tmp_path / "home", NOW) as (authority, _agent, _member, _ticket):
        with pytest.raises(AuthorityError) as refused:
            authority.create_ticket(
                creator=authority.identifier,
                attributes=full,
                address="node:acme",
                now=NOW,
                role=ADMIN,
            )
        assert refused.value.reason is AuthorityFailure.REQUEST_INVALID
        assert "role" in refused.value.detail
        authority.create_ticket(  # the control: the same attributes without a role
            creator=authority.identifier, attributes=full, address="node:acme", now=NOW
        )


def test_a_revocation_reason_that_is_not_unicode_is_the_authoritys_refusal(
    tmp_path: Path,
) -> None:
    with acme_and_agent(tmp_path / "home", NOW) as (authority, _agent, member, _ticket):
        with pytest.raises(AuthorityError) as refused:
            authority.revoke_credential(bytes(32), now=NOW, reason=LONE)
        assert refused.value.reason is AuthorityFailure.REQUEST_INVALID
        with pytest.raises(AuthorityError) as refused:
            authority.revoke_identity(member, now=NOW, reason=LONE)
        assert refused.value.reason is AuthorityFailure.REQUEST_INVALID
        assert authority.revocations.held(now=NOW).count == 0  # nothing written
