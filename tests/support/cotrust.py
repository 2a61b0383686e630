"""Two co-trusted authorities for cross-authority gate and broker tests (review 36c): the
gates world's acme (authority, policy-admin, support agent, sub-agent) beside globex, with a
globex policy-admin, and a verifier, feeds and bundle store trusting both, as a node that
enrolled with both holds them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.support.gates import ADMIN, TOOLS, GatesWorld, T, make_world
from tests.support.parties import Party, make_party, verified_feed
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    TrustPolicy,
    VerifiedCredential,
    VerifiedFeed,
    issue_credential,
)
from troth.encoding import cbor
from troth.gates import BundleBody, BundleStore, DecisionPoint, create_bundle
from troth.gates.bundles import SIGNED_BUNDLE_TYPE
from troth.identity import Identifier

__all__ = ["CoTrust", "forged_bundle", "make_cotrust", "member_chain"]


def member_chain(authority: Party, party: Party, attributes: Attributes) -> bytes:
    """`authority`'s member credential for `party`, as a one-link chain."""
    credential = issue_credential(
        authority.signer,
        subject=party.identifier,
        attributes=attributes,
        now=T,
        ttl=30 * 86_400,
        depth=3,
    )
    return CredentialChain((credential,), (authority.identity.history,)).encode()


@dataclass
class CoTrust:
    """acme (`acme`, the gates world) and globex, both trusted."""

    acme: GatesWorld
    globex: Party
    globex_admin: Party
    globex_admin_chain: bytes
    globex_feed: VerifiedFeed
    verifier: ChainVerifier

    def feeds(self) -> dict[Identifier, VerifiedFeed]:
        return {
            self.acme.authority.identifier: self.acme.feed,
            self.globex.identifier: self.globex_feed,
        }

    def held_feed(self, authority: Identifier) -> VerifiedFeed | None:
        return self.feeds().get(authority)

    def party(self) -> Party:
        return make_party(self.acme.vault, now=T)

    def credential(self, chain: bytes, who: Party, now: int = T + 10) -> VerifiedCredential:
        """`chain` as `who` presents it, verified by the node trusting both authorities."""
        return self.verifier.verify(chain, presenter=who.identifier, feeds=self.feeds(), now=now)

    def globex_bundle(
        self,
        policies: str,
        *,
        revision: int = 7,
        by_admin: bool = False,
        services: dict[str, list[str]] | None = None,
        tools: dict[str, Any] | None = None,
    ) -> bytes:
        """A bundle of globex's, signed by globex or its policy-admin."""
        signer = self.globex_admin if by_admin else self.globex
        return create_bundle(
            signer.signer,
            authority=self.globex.identifier,
            policies=policies,
            schema="",
            tools=TOOLS if tools is None else tools,
            services=services,
            revision=revision,
            now=T,
            ttl=86_400,
            chain=self.globex_admin_chain if by_admin else None,
        )

    def store(self, *bundles: bytes, now: int = T + 5) -> BundleStore:
        store = BundleStore(self.verifier)
        for data in bundles:
            store.accept(data, feeds=self.feeds(), now=now)
        return store

    def point(self, store: BundleStore) -> DecisionPoint:
        return DecisionPoint(store, self.held_feed)


def make_cotrust() -> CoTrust:
    """acme's gates world, globex beside it, and a node's verifier trusting both."""
    acme = make_world()
    globex = make_party(acme.vault, now=T)
    globex_admin = make_party(acme.vault, now=T)
    verifier = ChainVerifier(TrustPolicy(frozenset({acme.authority.identifier, globex.identifier})))
    return CoTrust(
        acme,
        globex,
        globex_admin,
        member_chain(globex, globex_admin, ADMIN),
        verified_feed(globex, now=T),
        verifier,
    )


def forged_bundle(
    signer: Party,
    *,
    authority: Identifier,
    policies: str,
    revision: int,
    chain: bytes | None,
) -> bytes:
    """A bundle body naming `authority`, signed by `signer` (carrying `chain`) however
    `create_bundle` would refuse it: what another authority would push to take a slot that is
    not its own (docs/formats.md, "Policy bundles")."""
    body = BundleBody(
        authority,
        signer.identifier,
        revision,
        T,
        T + 86_400,
        policies,
        "",
        {},
        {},
    ).encode()
    return cbor.encode(
        [
            SIGNED_BUNDLE_TYPE,
            1,
            body,
            signer.signer.sign(body),
            signer.signer.attestation,
            signer.identity.history,
            chain,
        ]
    )
