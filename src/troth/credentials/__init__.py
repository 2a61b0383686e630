"""Credentials: attribute credentials, delegation that only narrows, chains, revocation."""

from troth.credentials.attributes import Attributes, check_key
from troth.credentials.format import CredentialBody, CredentialChain, Delegation, SignedCredential
from troth.credentials.issue import delegate, issue_credential
from troth.credentials.revocation import (
    RevocationEntry,
    RevocationKind,
    VerifiedFeed,
    build_feed,
    feed_authority,
    feed_genesis,
    next_head,
    verify_feed,
)
from troth.credentials.verify import (
    ChainVerifier,
    TrustPolicy,
    VerifiedCredential,
    VerifiedLink,
    chain_actor,
)

__all__ = [
    "Attributes",
    "ChainVerifier",
    "CredentialBody",
    "CredentialChain",
    "Delegation",
    "RevocationEntry",
    "RevocationKind",
    "SignedCredential",
    "TrustPolicy",
    "VerifiedCredential",
    "VerifiedFeed",
    "VerifiedLink",
    "build_feed",
    "chain_actor",
    "check_key",
    "delegate",
    "feed_authority",
    "feed_genesis",
    "issue_credential",
    "next_head",
    "verify_feed",
]
