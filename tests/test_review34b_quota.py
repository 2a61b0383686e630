"""Review 34b, quota 1 and 2.

1. the authority's own revocations are not limited (docs/credentials.md,
"Nobody can flood the feed"), but a link revocation the authority itself requests (`troth
revoke link --as` the authority: it is upstream of every link) was charged to the member at
the chain's root (`Authority.revoke_link`: a revoker issuing link 0 or 1 pays as the member).
A member that spent its quota — revoking links to throwaway delegates of its own — so kept
the authority from revoking, by that path, the links it delegated for the rest of the hour
(`quota exceeded (… may cause N feed entries per hour …)`).

Was a strict xfail until a link revocation the authority requests is charged to no one
(`Authority.revoke_link`).

2. a member's link revocations and the supersessions of its history were charged to one
budget. A thief holding a member's stolen key signs as the member: it delegates to identities
it makes up and revokes those links until the member's quota is spent. The member finds out
and rotates: its `rotated` announcement — the supersession that retires the stolen key for
every verifier — is refused `quota exceeded` for up to an hour, and so is each refresh it asks
(each publishes its history first), the authority keeping the older history stored; the
thief's requests, made under that history, still verify, and every stateless verifier still
accepts what the thief signs.

Was a strict xfail until supersessions are charged to a budget of their own per payer
(`AuthorityFeed.supersede`: an account apart, `_supersessions_of`).
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from troth.authority.client import enroll_request, revoke_request, rotated_request
from troth.credentials import Attributes, CredentialChain, delegate
from troth.identity import IdentityService
from troth.node import init_node, open_node

QUOTA = 1


def test_the_authoritys_own_link_revocation_is_not_charged_to_a_member(
    troth_home: Path,
) -> None:
    """alice (quota 1) delegates to bob and to carol and revokes her link to carol: her quota
    is spent. The authority then revokes her link to bob with a signed revoke request of its
    own: the entry is appended."""
    init_node("auth")
    init_node("agents")
    with open_node("auth") as auth_node, open_node("agents") as agents:
        authority = auth_node.create_authority("acme", now=NOW, revocation_quota=QUOTA)
        ticket = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"agents.team": "support"}),
            address="node:auth",
            now=NOW,
        )
        for name in ("alice", "bob", "carol"):
            agents.identities.create(now=NOW, name=name)
        root = authority.enroll(
            enroll_request(agents.identities, "alice", ticket, now=NOW), now=NOW
        )
        signer = agents.identities.signer("alice", now=NOW)
        chains = {
            name: delegate(
                signer,
                root,
                subject=agents.identities.get(name, now=NOW).identifier,
                attributes=Attributes({"agents.team": "support"}),
                now=NOW,
                ttl=600,
                purpose="a task",
            )
            for name in ("bob", "carol")
        }

        def request(by: str, identities: IdentityService, chain: CredentialChain) -> bytes:
            return revoke_request(
                identities,
                by,
                authority.identifier,
                credential_hash=chain.credentials[-1].hash,
                chain=chain.encode(),
                reason="",
                now=NOW,
            )

        authority.revoke_link(request("alice", agents.identities, chains["carol"]), now=NOW)
        seq = authority.revoke_link(
            request("acme", auth_node.identities, chains["bob"]), now=NOW + 1
        )
        assert authority.store.revocation_tip()[0] == seq + 1


def test_a_spent_revocation_quota_does_not_hold_back_a_rotation(troth_home: Path) -> None:
    """alice's key is stolen (quota 1): the thief delegates to carol and revokes that link,
    spending the quota. alice rotates and announces it: the supersession is appended."""
    init_node("auth")
    init_node("agents")
    with open_node("auth") as auth_node, open_node("agents") as agents:
        authority = auth_node.create_authority("acme", now=NOW, revocation_quota=QUOTA)
        ticket = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"agents.team": "support"}),
            address="node:auth",
            now=NOW,
        )
        for name in ("alice", "carol"):
            agents.identities.create(now=NOW, name=name)
        request = enroll_request(agents.identities, "alice", ticket, now=NOW)
        root = authority.enroll(request, now=NOW)
        chain = delegate(
            agents.identities.signer("alice", now=NOW),  # the thief, with alice's key
            root,
            subject=agents.identities.get("carol", now=NOW).identifier,
            attributes=Attributes({"agents.team": "support"}),
            now=NOW,
            ttl=600,
            purpose="made up",
        )
        spend = revoke_request(
            agents.identities,
            "alice",
            authority.identifier,
            credential_hash=chain.credentials[-1].hash,
            chain=chain.encode(),
            reason="",
            now=NOW,
        )
        authority.revoke_link(spend, now=NOW)

        agents.identities.rotate("alice", now=NOW + 1)  # alice retires the stolen key
        announce = rotated_request(agents.identities, "alice", authority.identifier, now=NOW + 1)
        seq = authority.rotated(announce, now=NOW + 1)
        assert seq is not None
        assert authority.store.latest_supersession(
            agents.identities.get("alice", now=NOW + 1).identifier.digest
        ) == (seq, 2)
