"""Credentials: attribute credentials, delegation that only narrows, chains, revocation."""

from troth.credentials.attributes import Attributes, check_key
from troth.credentials.format import CredentialBody, CredentialChain, Delegation, SignedCredential
from troth.credentials.issue import check_fits, delegate, issue_credential
from troth.credentials.revocation import feed_authority, verify_feed, verify_page, verify_pages
from troth.credentials.revocation_entry import (
    RevocationEntry,
    RevocationKind,
    Supersession,
    feed_genesis,
    next_head,
)
from troth.credentials.revocation_held import VerifiedFeed
from troth.credentials.revocation_pages import (
    build_feed,
    build_page,
    read_page_sequence,
    write_page_sequence,
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
    "Supersession",
    "TrustPolicy",
    "VerifiedCredential",
    "VerifiedFeed",
    "VerifiedLink",
    "build_feed",
    "build_page",
    "chain_actor",
    "check_fits",
    "check_key",
    "delegate",
    "feed_authority",
    "feed_genesis",
    "issue_credential",
    "next_head",
    "read_page_sequence",
    "verify_feed",
    "verify_page",
    "verify_pages",
    "write_page_sequence",
]
