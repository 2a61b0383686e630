"""A small world for gate tests: an authority, a policy-admin, a support agent with a
delegated sub-agent, the feed, and the support-desk policies of the demo story."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from tests.support.feeds import pages
from tests.support.parties import Party, delegated, make_party, verified_feed
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    RevocationEntry,
    RevocationKind,
    SignedCredential,
    Supersession,
    TrustPolicy,
    VerifiedCredential,
    VerifiedFeed,
    delegate,
    issue_credential,
    verify_pages,
)
from troth.crypto import KeyType
from troth.gates import (
    BundleStore,
    DecisionPoint,
    DecisionRecorder,
    create_bundle,
    schema_from_function,
)
from troth.identity import (
    Identifier,
    Signer,
    VerifiedIdentity,
    attest_purpose_key,
    rotate_identity,
)
from troth.vault import KeyPurpose, SoftwareVault

T = 1_780_000_000


def lookup_order(order_id: str) -> str:
    """Look up an order."""
    return f"order {order_id}: 2 items, paid"


def refund(order_id: str, amount: int) -> str:
    """Refund part of an order."""
    return f"refunded {amount} on {order_id}"


def export_customers(fmt: Literal["csv", "json"] = "csv") -> str:
    """Export every customer."""
    return f"customers.{fmt}"


TOOLS: dict[str, Any] = {
    f.__name__: schema_from_function(f) for f in (lookup_order, refund, export_customers)
}
POLICIES = """\
@id("lookup") permit(principal, action == Action::"invoke:lookup_order", resource)
  when { principal.hasTag("orders.access") };
@id("refund") permit(principal, action == Action::"invoke:refund", resource)
  when { principal.hasTag("orders.access") && principal.getTag("orders.access").contains("write") };
@id("refund-cap") forbid(principal, action == Action::"invoke:refund", resource)
  unless { context.args.amount <= 1000 };
@id("export") permit(principal, action == Action::"invoke:export_customers", resource)
  when { principal.hasTag("troth.role") && principal.getTag("troth.role").contains("dpo") };
"""
SUPPORT = Attributes({"orders.access": frozenset({"read", "write"}), "orders.customer": "4471"})
ADMIN = Attributes({"troth.role": "policy-admin"})


@dataclass
class GatesWorld:
    vault: SoftwareVault
    authority: Party
    admin: Party
    support: Party
    sub: Party
    admin_chain: bytes
    support_chain: bytes
    sub_chain: bytes
    verifier: ChainVerifier
    feed: VerifiedFeed
    revoked: list[tuple[int, bytes]] = field(default_factory=list)

    def feeds(self) -> dict[Identifier, VerifiedFeed]:
        return {self.authority.identifier: self.feed}

    def held_feed(self, authority: Identifier) -> VerifiedFeed | None:
        return self.feed if authority == self.authority.identifier else None

    def refresh_feed(self, now: int) -> None:
        """A fresh feed as of `now` with every revocation so far."""
        self.feed = verified_feed(self.authority, self.revoked, now=now)

    def revoke(self, kind: int, target: bytes, now: int) -> None:
        self.revoked.append((kind, target))
        self.refresh_feed(now)

    def credential(self, chain: bytes, who: Party, now: int = T + 10) -> VerifiedCredential:
        return self.verifier.verify(chain, presenter=who.identifier, feeds=self.feeds(), now=now)

    def new_member(self) -> tuple[Party, SignedCredential]:
        """A fresh party the authority credentials as support (its member credential)."""
        party = make_party(self.vault, now=T)
        credential = issue_credential(
            self.authority.signer,
            subject=party.identifier,
            attributes=SUPPORT,
            now=T,
            ttl=86_400,
            depth=3,
        )
        return party, credential

    def member_credential(self, party: Party, credential: SignedCredential) -> VerifiedCredential:
        """`credential` (from `new_member`) as its party presents it."""
        chain = CredentialChain((credential,), (self.authority.identity.history,))
        return self.credential(chain.encode(), party)

    def bundle(
        self,
        *,
        revision: int = 1,
        policies: str = POLICIES,
        tools: dict[str, Any] | None = None,
        schema: str = "",
        now: int = T,
        ttl: int = 86_400,
        by_admin: bool = False,
        services: dict[str, list[str]] | None = None,
    ) -> bytes:
        signer = self.admin if by_admin else self.authority
        return create_bundle(
            signer.signer,
            authority=self.authority.identifier,
            policies=policies,
            schema=schema,
            tools=TOOLS if tools is None else tools,
            services=services,
            revision=revision,
            now=now,
            ttl=ttl,
            chain=self.admin_chain if by_admin else None,
        )

    def store(self, *bundles: bytes, now: int = T + 5) -> BundleStore:
        store = BundleStore(self.verifier)
        for data in bundles:
            store.accept(data, feeds=self.feeds(), now=now)
        return store

    def point(self, store: BundleStore, recorder: DecisionRecorder | None = None) -> DecisionPoint:
        return DecisionPoint(store, self.held_feed, recorder=recorder)


def make_world(
    *, sub_caveats: tuple[str, ...] = (), support_valid_for: int | None = None
) -> GatesWorld:
    """The authority issues the admin and the support agent their credentials; the support
    agent delegates read access to the sub-agent (with `sub_caveats`) for 7 days. The support
    agent's primary key is valid `support_valid_for` seconds when given (its signing key 90
    days), its link to the sub-agent, signed by hand, still lasting 7 days."""
    vault = SoftwareVault()
    authority, admin, support, sub = (make_party(vault, now=T) for _ in range(4))
    if support_valid_for is not None:
        support = make_party(vault, now=T, valid_for=support_valid_for)

    def member(party: Party, attributes: Attributes) -> CredentialChain:
        credential = issue_credential(
            authority.signer,
            subject=party.identifier,
            attributes=attributes,
            now=T,
            ttl=30 * 86_400,
            depth=3,
        )
        return CredentialChain((credential,), (authority.identity.history,))

    support_chain = member(support, SUPPORT)
    sub_chain = delegated(
        support,
        support_chain,
        sub.identifier,
        Attributes({"orders.access": "read"}),
        now=T,
        ttl=7 * 86_400,
        purpose="answer complaint 123",
        caveats=sub_caveats,
        past_keys=support_valid_for is not None,
    )
    return GatesWorld(
        vault,
        authority,
        admin,
        support,
        sub,
        member(admin, ADMIN).encode(),
        support_chain.encode(),
        sub_chain.encode(),
        ChainVerifier(TrustPolicy(frozenset({authority.identifier}))),
        verified_feed(authority, now=T),
    )


def rotate(world: GatesWorld, party: Party, now: int) -> tuple[VerifiedIdentity, Party]:
    """`party` rotated at `now` (its committed next key revealed), with a signing key attested
    under the new change: its new history, and the party as it signs from now on."""
    held = rotate_identity(
        world.vault, party.identity, party.primary, party.next_primary, now=now, valid_for=10**8
    )
    handle = world.vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    attestation = attest_purpose_key(
        world.vault,
        held.primary,
        held.identity,
        KeyPurpose.SIGNING,
        world.vault.public_key(handle),
        now=now,
        expires_at=now + 90 * 86_400,
    )
    signer = Signer(held.identity, world.vault, handle, attestation, now + 90 * 86_400)
    return held.identity, Party(held.identity, held.primary, signer, held.next_key)


def superseding(
    signer: Party, rotated: VerifiedIdentity, authority: Party, now: int
) -> VerifiedFeed:
    """The authority's feed (signed by `signer`, the authority as it signs now) saying
    `rotated` supersedes its identity's older histories."""
    who = rotated.identifier
    entry = RevocationEntry(
        0,
        RevocationKind.SUPERSEDED,
        who.digest,
        authority.identifier,
        now,
        "",
        Supersession(len(rotated.changes), rotated.current_change_hash),
    )
    return verify_pages(
        pages(signer, [entry], now=now, per_page=1), authority=authority.identifier, now=now
    )


def policy_admin_under(
    world: GatesWorld, issuer: Party, signer: Party, now: int
) -> tuple[Party, CredentialChain]:
    """A new identity made policy-admin by `issuer` (a policy admin of `world`'s authority,
    rooted there: depth 2), the link signed by `signer` (the issuer as it signs now, or a thief
    holding its keys from before its rotation), dated `now`: the admin and its chain."""
    acme = world.authority
    root = issue_credential(
        acme.signer, subject=issuer.identifier, attributes=ADMIN, now=T, ttl=86_400, depth=2
    )
    admin = make_party(world.vault, now=T)
    chain = delegate(
        signer.signer,
        CredentialChain((root,), (acme.identity.history,)),
        subject=admin.identifier,
        attributes=ADMIN,
        now=now,
        ttl=3600,
        purpose="policy",
    )
    return admin, chain
