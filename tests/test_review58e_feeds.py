"""Review 58e, feeds: an older copy of a feed handed in again.

1. `troth credential verify --feed FILE` (`troth.node.verify.verify_chain`, and `verify_vc`)
   judged a chain by the feed files it was given alone, never by the feed its node holds: a
   copy of the authority's feed signed before a revocation, still within `--max-feed-age`
   (handed in by the revoked member, or simply an old download), verified the revoked link as
   valid on a node whose held feed, synced from the authority, already revoked it. A feed only
   grows and a revocation is permanent: what the node verified once stands.
2. `troth.Verifier` fed by a `troth.Node` judged a chain by the node's held feed while a link
   revocation made on that machine left the feed due a sync (its process killed after the
   authority took the entry): the node's own decisions, its MCP gates and its trace collector
   wait for the sync (reviews 48m, 48w, 55i, 55p), the public verifier did not (the fix is in
   troth/_api/node.py, outside this review's area).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import troth
from tests.support.feeds import entries, pages
from tests.support.gates import SUPPORT
from tests.support.parties import Party, make_party
from troth.clock import FixedClock
from troth.credentials import (
    CredentialChain,
    RevocationKind,
    issue_credential,
    write_page_sequence,
)
from troth.credentials.format import SignedCredential
from troth.credentials.vc import export_credential_vc, vc_credential_hash
from troth.errors import CredentialError, CredentialFailure
from troth.node import init_node, open_node
from troth.node.verify import Sources, verify_chain, verify_vc
from troth.vault import SoftwareVault

NOW = 1_800_000_000


def _held_revoking(home: Path, z: Party, target: bytes, old: Path) -> None:
    """Node "hub" trusting authority `z`, holding its feed that revokes `target` (entry 0,
    signed at NOW - 10); `old` gets the feed file signed at NOW - 60, before the revocation."""
    old.write_bytes(b"".join(write_page_sequence(pages(z, [], now=NOW - 60, per_page=10))))
    revoking = entries(z, [(RevocationKind.CREDENTIAL, target)], at=NOW - 30)
    (page,) = pages(z, revoking, now=NOW - 10, per_page=10)
    init_node("hub", home=home)
    with open_node("hub", home=home) as node:
        node.wallet.trust(z.identifier, "127.0.0.1:1", now=NOW - 20)
        node.wallet.update_feed(page, authority=z.identifier, now=NOW - 10)


def _member_credential() -> tuple[Party, Party, SignedCredential]:
    """Authority z, its member, and the member credential z issued it (NOW-500..NOW+3100)."""
    vault = SoftwareVault()
    z, member = make_party(vault, now=NOW - 1000), make_party(vault, now=NOW - 1000)
    credential = issue_credential(
        z.signer, subject=member.identifier, attributes=SUPPORT, now=NOW - 500, ttl=3600, depth=1
    )
    return z, member, credential


def test_an_older_feed_file_does_not_undo_a_revocation_the_node_holds(tmp_path: Path) -> None:
    z, member, credential = _member_credential()
    chain = CredentialChain((credential,), (z.identity.history,)).encode()
    old = tmp_path / "old.feed"
    _held_revoking(tmp_path, z, credential.hash, old)
    sources = Sources(frozenset({z.identifier}), tmp_path, [str(old)])
    # without the node: the older copy is all the verifier has (it cannot tell)
    assert verify_chain(chain, sources, now=NOW).actor == member.identifier
    with open_node("hub", home=tmp_path) as node, pytest.raises(CredentialError) as caught:
        verify_chain(chain, sources, now=NOW, node=node)
    assert caught.value.reason is CredentialFailure.REVOKED


def test_an_older_feed_file_does_not_undo_a_vc_revocation_the_node_holds(tmp_path: Path) -> None:
    vault = SoftwareVault()
    z = make_party(vault, now=NOW - 1000)
    member = make_party(vault, now=NOW - 1000)
    document = export_credential_vc(
        z.signer,
        credential_id=b"\x07" * 16,
        subject=member.identifier,
        attributes=SUPPORT,
        valid_from=NOW - 500,
        valid_until=NOW + 3600,
        now=NOW - 500,
    )
    data = json.dumps(document).encode()
    old = tmp_path / "old.feed"
    _held_revoking(tmp_path, z, vc_credential_hash(document["id"]), old)
    sources = Sources(frozenset({z.identifier}), tmp_path, [str(old)])
    history = z.identity.history
    assert verify_vc(data, sources, now=NOW, issuer_history=history).subject == member.identifier
    with open_node("hub", home=tmp_path) as node, pytest.raises(CredentialError) as caught:
        verify_vc(data, sources, now=NOW, issuer_history=history, node=node)
    assert caught.value.reason is CredentialFailure.REVOKED


def test_a_verifier_fed_by_a_node_waits_for_a_due_feed_as_the_node_does(tmp_path: Path) -> None:
    """desk trusts authority z (reached at /tcp/away:4000) and holds z's fresh feed; a link
    revocation made on desk left z's feed due a sync (its process killed after z took the
    entry: docs/credentials.md, "Revocation is real"). The node hands out none of z's chains
    and its access decisions drop them until the sync (review 48m, 48w, 55i, 55p); a
    `troth.Verifier` fed by desk verified a chain of z against the held copy, which may
    predate the revocation."""
    z, member, credential = _member_credential()
    chain = CredentialChain((credential,), (z.identity.history,)).encode()
    init_node("desk", home=tmp_path)
    with open_node("desk", home=tmp_path) as node:
        node.wallet.trust(z.identifier, "/tcp/away:4000", now=NOW - 20)
        node.wallet.update_feed(
            pages(z, [], now=NOW - 10, per_page=10)[0], authority=z.identifier, now=NOW - 10
        )
        node.wallet.store.mark_sync_due(z.identifier.digest, "/tcp/away:4000", NOW - 5)
    with troth.Node.open("desk", home=tmp_path, create=False) as desk:
        verifier = troth.Verifier(trust=[z.identifier], feeds=desk, clock=FixedClock(NOW))
        with pytest.raises(CredentialError):
            verifier.verify(chain, presenter=member.identifier)
