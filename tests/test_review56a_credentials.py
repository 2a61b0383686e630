"""Review 56a (credentials and delegation, adversarially).

1. `issue_credential` and `delegate` signed bodies no verifier reads: a bool for a number (a
   `depth=True`, a `now=True`) passed the maker's range checks (a bool is an int in Python)
   and was encoded as CBOR `true`, and a negative time as a negative integer; every verifier
   refuses the credential as malformed, and the maker had returned it as made. Out-of-range
   values in `issue_credential` (a negative ttl, a depth past the limit, an id not 16 bytes)
   escaped as bare ValueErrors, where `delegate` raises a CredentialError (review 48j,
   delegation 2). Both makers now refuse each before signing: ArgumentError for a wrong type,
   CredentialError for a value out of range.
2. `verify_troth_vc` took an issuer history presented from another authority's checkpoint as
   the issuer's: a co-trusted authority (globex) that makes up a change of acme's history,
   names it in its own feed and signs a VC as acme granting anything was verified as acme's
   VC. A chain's issuer history from a checkpoint counts only when its own authority's feed
   names one of its changes (`VerifiedFeed.binds`, review 23a); a VC's issuer now likewise.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import NOW as AT
from tests.support.parties import Party, make_party
from tests.test_authority import Setup as AuthoritySetup
from tests.test_authority import setup  # noqa: F401 (a fixture)
from tests.test_credentials_vc import VALID_UNTIL, VcWorld
from tests.test_review23a_checkpoints import forged_change
from tests.test_trust_scope import NOW, Two, make_two
from troth.credentials import Attributes, CredentialChain, TrustPolicy, delegate, issue_credential
from troth.credentials.format import CredentialBody
from troth.credentials.vc import export_credential_vc, verify_troth_vc, xsd_datetime
from troth.errors import ArgumentError, CredentialError, CredentialFailure
from troth.vault import SoftwareVault

F = CredentialFailure
T = 1_780_000_000
READ = Attributes({"orders.access": "read"})


class World:
    """An authority, a member holding its one-link chain (depth 2), and a third identity."""

    def __init__(self) -> None:
        vault = SoftwareVault()
        self.authority, self.member, self.other = (make_party(vault, now=T) for _ in range(3))
        root = issue_credential(
            self.authority.signer,
            subject=self.member.identifier,
            attributes=READ,
            now=T,
            ttl=3600,
            depth=2,
        )
        self.chain = CredentialChain((root,), (self.authority.identity.history,))

    def issue(self, **changed: Any) -> Any:
        arguments: dict[str, Any] = {"now": T, "ttl": 600, "depth": 1, **changed}
        return issue_credential(
            self.authority.signer, subject=self.member.identifier, attributes=READ, **arguments
        )

    def delegate(self, **changed: Any) -> Any:
        arguments: dict[str, Any] = {"now": T, "ttl": 600, "purpose": "p", **changed}
        return delegate(
            self.member.signer,
            self.chain,
            subject=self.other.identifier,
            attributes=READ,
            **arguments,
        )


@pytest.mark.parametrize(
    ("make", "changed"),
    [
        ("issue", {"depth": True}),
        ("issue", {"now": True}),
        ("issue", {"ttl": True}),
        ("issue", {"now": 2.5e9}),
        ("delegate", {"depth": True}),
        ("delegate", {"now": True}),
        ("delegate", {"ttl": 600.0}),
        ("delegate", {"purpose": None}),
        ("delegate", {"caveats": "resource.public"}),
        ("delegate", {"caveats": [7]}),
    ],
    ids=[
        "issue-depth-bool",
        "issue-now-bool",
        "issue-ttl-bool",
        "issue-now-float",
        "delegate-depth-bool",
        "delegate-now-bool",
        "delegate-ttl-float",
        "delegate-purpose-none",
        "delegate-caveats-str",
        "delegate-caveat-int",
    ],
)
def test_credentials1_a_maker_refuses_an_argument_of_another_type(
    make: str, changed: dict[str, Any]
) -> None:
    """Review 56a, credentials 1: `delegate(depth=True)` signed a link whose depth is CBOR
    `true`, which every verifier refuses (`depth: expected an integer`); a str of caveats
    became one caveat per character; a purpose of None or a caveat of 7 escaped as a bare
    TypeError or AttributeError. Each is an ArgumentError before anything is signed."""
    world = World()
    with pytest.raises(ArgumentError):
        getattr(world, make)(**changed)


@pytest.mark.parametrize(
    ("make", "changed", "reason"),
    [
        ("issue", {"ttl": -5}, F.MALFORMED),
        ("issue", {"depth": 9}, F.DEPTH_EXCEEDED),
        ("issue", {"depth": -1}, F.MALFORMED),
        ("issue", {"now": -10, "ttl": 5}, F.MALFORMED),
        ("issue", {"credential_id": b"short"}, F.MALFORMED),
        ("delegate", {"credential_id": b"short"}, F.MALFORMED),
    ],
    ids=[
        "issue-negative-ttl",
        "issue-depth-past-limit",
        "issue-negative-depth",
        "issue-negative-time",
        "issue-short-id",
        "delegate-short-id",
    ],
)
def test_credentials1_a_maker_refuses_a_value_out_of_range_typed(
    make: str, changed: dict[str, Any], reason: CredentialFailure
) -> None:
    """Review 56a, credentials 1: `issue_credential` with a negative ttl, a depth past
    MAX_DELEGATION_LINKS or an id not 16 bytes raised a bare ValueError (`delegate` a
    CredentialError since review 48j); a negative `now` signed a credential with negative
    times, which every verifier refuses. Each is a CredentialError, nothing signed."""
    world = World()
    with pytest.raises(CredentialError) as caught:
        getattr(world, make)(**changed)
    assert caught.value.reason is reason, caught.value


def _acme_vc_by_globex(two: Two) -> tuple[dict[str, Any], Any]:
    """Globex's made-up change 1 of acme's history (named in globex's feed), and a VC signed
    as acme with it granting its holder every right."""
    acme = two.acme.identifier
    forged = forged_change(two, acme, 1, acme.digest)
    mallory: Party = make_party(two.vault, now=NOW)
    document = export_credential_vc(
        forged.signer,
        credential_id=b"\x56" * 16,
        subject=mallory.identifier,
        attributes=Attributes({"troth.role": "admin"}),
        valid_from=NOW,
        valid_until=NOW + 600,
        now=NOW,
    )
    return document, forged.identity


def test_credentials2_a_vc_issuer_from_another_authoritys_checkpoint_is_refused() -> None:
    """Review 56a, credentials 2: with acme and globex trusted, globex makes up change 1 of
    acme's history (its own key; the checkpoint is its word alone) and signs a VC as acme.
    Acme's feed names no change of its own history but its first: the history is refused as
    the VC's issuer (ISSUER_INVALID), as a chain's issuer is (review 23a)."""
    two = make_two()
    document, forged = _acme_vc_by_globex(two)
    anchors = frozenset({two.acme.identifier, two.globex.identifier})
    with pytest.raises(CredentialError) as caught:
        verify_troth_vc(
            document,
            policy=TrustPolicy(anchors, max_feed_staleness=10**6),
            issuer=forged,
            feeds=two.feeds,
            now=NOW,
        )
    assert caught.value.reason is F.ISSUER_INVALID, caught.value


def test_credentials2_acmes_own_history_still_verifies_its_vc() -> None:
    """The control: acme's real history verifies the VC acme signs, globex's forgery in its
    feed or not."""
    two = make_two()
    _acme_vc_by_globex(two)
    document = export_credential_vc(
        two.acme.signer,
        credential_id=b"\x57" * 16,
        subject=two.alice.identifier,
        attributes=READ,
        valid_from=NOW,
        valid_until=NOW + 600,
        now=NOW,
    )
    anchors = frozenset({two.acme.identifier, two.globex.identifier})
    verified = verify_troth_vc(
        document,
        policy=TrustPolicy(anchors, max_feed_staleness=10**6),
        issuer=two.acme.identity,
        feeds=two.feeds,
        now=NOW,
    )
    assert verified.subject == two.alice.identifier


def test_credentials3_a_vc_whose_window_ends_before_it_starts_is_malformed() -> None:
    """Review 56a, credentials 3: VC 2.0 §4.9 requires `validFrom` no later than `validUntil`,
    as a CBOR credential's `not_before` is no later than its `expires_at` (a body that says
    otherwise does not decode). A troth VC signed with `validFrom` 100 s after `validUntil`
    verified, within the clock skew, in the 20 s where both edges' allowances overlap: it is
    malformed."""
    world = VcWorld()
    unsecured = {k: v for k, v in world.vc.items() if k != "proof"}
    inverted = {
        **unsecured,
        "validFrom": xsd_datetime(VALID_UNTIL + 100),
        "validUntil": xsd_datetime(VALID_UNTIL),
    }
    document = world.resigned(inverted)
    with pytest.raises(CredentialError) as caught:
        world.verify(document, now=VALID_UNTIL + 50)
    assert caught.value.reason is F.MALFORMED, caught.value
    assert world.verify(now=VALID_UNTIL + 50).within_skew  # the control: the skew allows it


def test_credentials3_the_maker_refuses_a_vc_window_that_ends_before_it_starts() -> None:
    """Review 56a, credentials 3: `export_credential_vc` signed a VC whose `validFrom` is after
    its `validUntil`, which every verifier now refuses; it refuses to make one (MALFORMED)."""
    world = VcWorld()
    with pytest.raises(CredentialError) as caught:
        export_credential_vc(
            world.authority.signer,
            credential_id=b"\x58" * 16,
            subject=world.member.identifier,
            attributes=READ,
            valid_from=VALID_UNTIL + 100,
            valid_until=VALID_UNTIL,
            now=VALID_UNTIL,
        )
    assert caught.value.reason is F.MALFORMED, caught.value


def test_credentials4_a_wallet_delegation_keeps_caveats_given_as_an_iterator(
    setup: AuthoritySetup,  # noqa: F811 - the fixture of tests/test_authority.py
) -> None:
    """Review 56a, credentials 4: `CredentialWallet.delegate` checked each caveat by iterating
    `caveats`, then handed the same object to `delegate`: caveats given as an iterator (a
    generator of conditions) were used up by the check, and the link was signed with none, a
    delegation wider than its delegator asked for, silently. The link carries them all."""
    wallet = setup.agents.wallet
    wallet.hold("customer", setup.enroll("customer", setup.ticket()).encode(), now=AT)
    setup.agents.identities.create(now=AT, name="support")
    conditions = ['context.ticket == "123"', "context.hour < 18"]
    chain = wallet.delegate(
        "customer",
        to=setup.id("support"),
        attributes=Attributes({"orders.access": "read"}),
        now=AT,
        ttl=600,
        purpose="complaint 123",
        caveats=iter(conditions),  # type: ignore[arg-type]
    )
    link = CredentialBody.decode(CredentialChain.decode(chain).credentials[-1].body)
    assert link.delegation is not None
    assert link.delegation.caveats == tuple(conditions)
