"""Review 22b (limits): pairs in troth.limits where what one side makes within its own bounds
is refused by the reader's bound — a legitimate credential at the limit that no verifier
takes. Review 22b's findings 5 and 6 (1: the traces file; 2-4: the gates file).

5. a delegation link with MAX_CAVEATS caveats of (almost) MAX_CAVEAT_TEXT characters each —
   every caveat a valid Cedar condition, the wallet's `check_caveat` passes each — encodes to
   ~16 KiB, over MAX_CREDENTIAL_BYTES (8 KiB): `delegate` signs it and returns the chain, and
   every verifier refuses it (`SignedCredential.decode`). (64 attributes of 256-character
   values, within MAX_ATTRIBUTES and MAX_ATTRIBUTE_TEXT, overflow the same way.)
6. a chain at MAX_DELEGATION_LINKS whose nine issuers each present a 64-change history
   (MAX_IDENTITY_CHANGES: ~17.8 KiB for Ed25519, well under MAX_IDENTITY_HISTORY_BYTES)
   encodes to ~161 KiB, over MAX_CHAIN_BYTES (128 KiB): `delegate` makes it, no verifier
   decodes it. The bound's own parts reach 9 x (32 KiB + 8 KiB).

Each test asserts the correct behaviour (the maker refuses what the reader would, typed, or the
reader takes it) and was a strict xfail until its fix.
"""

from __future__ import annotations

from tests.support.gates import make_world
from tests.support.traces import DAY, NOW, Held
from troth import limits
from troth.credentials import (
    Attributes,
    CredentialBody,
    CredentialChain,
    delegate,
    issue_credential,
)
from troth.errors import CredentialError, CredentialFailure
from troth.gates import check_caveat

# -- 5. a link at MAX_CAVEATS ----------------------------------------------------------------


def test_a_link_at_the_caveat_limits_is_one_a_verifier_takes() -> None:
    caveat = " && ".join(["context.now > 0"] * 54)  # 1,022 characters
    assert len(caveat) <= limits.MAX_CAVEAT_TEXT
    check_caveat(caveat)  # what the wallet checks before it delegates
    refused: CredentialError | None = None
    try:
        world = make_world(sub_caveats=(caveat,) * limits.MAX_CAVEATS)
    except CredentialError as exc:  # the maker refuses, typed: fine too
        refused = exc
    if refused is not None:
        assert refused.reason is CredentialFailure.OVER_LIMIT, refused
        return
    world.credential(world.sub_chain, world.sub)  # CredentialError OVER_LIMIT on main


def test_a_credential_at_the_attribute_limits_is_one_a_verifier_takes() -> None:
    """An authority (or an enroller's ticket) grants 64 attributes of 256 characters."""
    authority, member = Held(), Held()
    attributes = Attributes(
        {f"orders.k{n}": "v" * limits.MAX_ATTRIBUTE_TEXT for n in range(limits.MAX_ATTRIBUTES)}
    )
    refused: CredentialError | None = None
    try:
        credential = issue_credential(
            authority.signer(NOW),
            subject=member.identifier,
            attributes=attributes,
            now=NOW,
            ttl=DAY,
            depth=0,
        )
    except CredentialError as exc:  # the maker refuses, typed: fine too
        refused = exc
    if refused is not None:
        assert refused.reason is CredentialFailure.OVER_LIMIT, refused
        return
    CredentialBody.decode(credential.body)  # DecodeError OVER_LIMIT on main


# -- 6. a chain at MAX_DELEGATION_LINKS with whole histories ----------------------------------


def _long_lived(rotations: int) -> Held:
    held = Held(now=NOW - 100 * DAY)
    for n in range(rotations):
        held.rotate(NOW - 99 * DAY + n * 3600)
    return held


def test_a_chain_at_the_depth_limit_with_whole_histories_decodes() -> None:
    links = limits.MAX_DELEGATION_LINKS
    issuers = [_long_lived(limits.MAX_IDENTITY_CHANGES - 1) for _ in range(links + 1)]
    assert all(len(i.identity.changes) == limits.MAX_IDENTITY_CHANGES for i in issuers)
    assert all(len(i.identity.history) <= limits.MAX_IDENTITY_HISTORY_BYTES for i in issuers)
    holder = Held()
    subjects = [*issuers[1:], holder]
    access = Attributes({"orders.access": "read"})
    root = issue_credential(
        issuers[0].signer(NOW),
        subject=subjects[0].identifier,
        attributes=access,
        now=NOW,
        ttl=10 * DAY,
        depth=links,
    )
    chain = CredentialChain((root,), (issuers[0].identity.history,))
    refused: CredentialError | None = None
    try:
        for n in range(1, links + 1):
            chain = delegate(
                issuers[n].signer(NOW),
                chain,
                subject=subjects[n].identifier,
                attributes=access,
                now=NOW,
                ttl=5 * DAY,
                purpose="a long-lived pipeline",
            )
    except CredentialError as exc:  # the maker refuses, typed: fine too
        refused = exc
    if refused is not None:
        assert refused.reason is CredentialFailure.OVER_LIMIT, refused
        return
    assert len(chain.credentials) == links + 1
    CredentialChain.decode(chain.encode())  # DecodeError OVER_LIMIT on main
