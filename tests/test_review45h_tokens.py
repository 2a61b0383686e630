"""Review 45h (limits end to end), broker tokens: the largest token the broker's `token` engine
mints is one `validate_token` reads (MAX_TOKEN_BYTES).

The largest: MAX_LEASE_SCOPES scopes of MAX_ATTRIBUTE_TEXT characters (RFC 6749 scope tokens
are ASCII, none escaped in JSON), the longest audience a secret takes (256 printable
characters, 4-byte ones), a P-256 signing key, and the deepest `act` chain: an actor at the end
of MAX_DELEGATION_LINKS delegation links below its member credential (8 delegators). It is
8,265 bytes, within MAX_TOKEN_BYTES (16 KiB). Passes on main: it pins what holds.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from tests.support.leases import open_broker
from tests.support.parties import make_party, verified_feed
from troth import limits
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    TrustPolicy,
    delegate,
    issue_credential,
)
from troth.crypto import KeyType
from troth.secrets import AllowListPolicy
from troth.secrets.jwt import validate_token
from troth.vault import SoftwareVault

AUDIENCE = "\U0001f600" * 256
SCOPES = [f"{n:02d}".ljust(limits.MAX_ATTRIBUTE_TEXT, "~") for n in range(limits.MAX_LEASE_SCOPES)]


def test_the_largest_broker_token_is_one_validate_token_reads(tmp_path: Path) -> None:
    vault = SoftwareVault()
    authority, *parties = (
        make_party(vault, now=NOW) for _ in range(limits.MAX_DELEGATION_LINKS + 2)
    )
    attributes = Attributes({"agents.team": "x"})
    root = issue_credential(
        authority.signer,
        subject=parties[0].identifier,
        attributes=attributes,
        now=NOW,
        ttl=86_400,
        depth=limits.MAX_DELEGATION_LINKS,
    )
    chain = CredentialChain((root,), (authority.identity.history,))
    for n in range(1, limits.MAX_DELEGATION_LINKS + 1):
        chain = delegate(
            parties[n - 1].signer,
            chain,
            subject=parties[n].identifier,
            attributes=attributes,
            now=NOW,
            ttl=80_000,
            purpose="a pipeline",
        )
    agent = parties[-1]
    verifier = ChainVerifier(TrustPolicy(frozenset({authority.identifier})))
    credential = verifier.verify(
        chain.encode(),
        presenter=agent.identifier,
        feeds={authority.identifier: verified_feed(authority, now=NOW)},
        now=NOW,
    )
    assert len(credential.links) == limits.MAX_DELEGATION_LINKS + 1

    policy = AllowListPolicy({agent.identifier: {"api": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy, key_type=KeyType.P256)
    config = {"scopes": SCOPES, "ttl": 300, "audience": AUDIENCE}
    broker.put_secret("api", "token", config, b"", now=NOW)
    issued = broker.issue(credential, "api", now=NOW, scope=SCOPES)
    token = str(issued.credential.reveal()["token"])
    assert len(token) <= limits.MAX_TOKEN_BYTES
    validated = validate_token(token, broker.jwks(NOW), audience=AUDIENCE, now=NOW + 1)
    assert len(validated.actors) == limits.MAX_DELEGATION_LINKS
    assert validated.scope == tuple(sorted(SCOPES))
    broker.validate_token(token, audience=AUDIENCE, now=NOW + 1)
