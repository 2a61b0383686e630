"""Review 29a, issuers: a co-trusted authority's copy of another authority's member, made up
after a gap (review 23a, checkpoints 3; review 27h), still locks out the member's delegates.

Globex names a made-up change 5 of acme's alice (its `previous` names no change of hers) and
connects to desk as her with its own chain: desk stores the copy at first sight. Bob, alice's
delegate (acme -> alice -> bob, alice's full history in the chain), then connects: the
handshake verifier judges the chain's issuer histories with `check_known` and no `Binds`
(docs/formats.md, "A stored copy from a checkpoint": chain issuers are bound by every copy),
so her full history is refused as older than globex's copy and bob's channel is refused
(CREDENTIAL_INVALID) — for as long as alice herself does not connect to desk with her acme
chain (then her history replaces the copy). A member who only ever reaches desk through her
delegates (agents) is cut off there by globex.

Left a strict xfail (a design trade for the lead): the fix would judge an issuer's history as
a peer's, with `Binds` whose standing is the chain's root (acme vouches for alice in it) and
her vouchers, at the handshake (`ChainVerifier`'s `known` given the root), in
`NodeTrust._remember` (the copy replaced once bob is admitted) and at the trace collector
(review 29b's area). It widens the documented cost of review 27h ("What this costs") to
delegation: a thief holding alice's stale backup and an acme credential of hers could then also
delegate through her over a real rotation only globex attested, which he can already do by
presenting her backup himself.
"""

from __future__ import annotations

import pytest

from tests.support.channels import MEMBER, T
from tests.support.parties import make_channel_party, signer_as
from tests.test_review23a_lockout import Desk, gap_desk  # noqa: F401
from tests.test_trust_scope import NOW
from troth.channel import verify_peer
from troth.credentials import CredentialChain, delegate, issue_credential


@pytest.mark.xfail(
    strict=True,
    reason="review 29a, issuers 1: a made-up copy after a gap binds its member's full "
    "history as a chain issuer: her delegates are refused",
)
def test_a_gap_copy_does_not_lock_out_her_delegates(gap_desk: Desk) -> None:  # noqa: F811
    desk = gap_desk
    two = desk.two
    vault = two.vault
    alice = two.alice
    verify_peer(desk.trust, desk.as_alice, (desk.globex_chain,), NOW)
    root = issue_credential(
        two.acme.signer, subject=alice.identifier, attributes=MEMBER, now=T, ttl=3600, depth=2
    )
    bob = make_channel_party(vault, now=T)
    chain = delegate(
        signer_as(vault, alice.party.primary, alice.party.identity, now=T),
        CredentialChain((root,), (two.acme.identity.history,)),
        subject=bob.party.identifier,
        attributes=MEMBER,
        now=T,
        ttl=600,
        purpose="helper",
    )
    claim = bob.claim()
    peer = verify_peer(desk.trust, claim, (chain.encode(),), NOW)
    assert peer.identifier == bob.party.identifier
    assert [c.authority for c in peer.credentials] == [two.acme.identifier]
