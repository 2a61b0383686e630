"""Review 63f (adversarial, identities and their change histories): findings.

identity 1 (medium: a wrong answer on a real path). An authority past MAX_IDENTITY_CHANGES
changes presents its history from a checkpoint its own feed names (docs/formats.md,
"Checkpointed histories"; `IdentityService._presentable`), and its chains verify: the chain
verifier judges a checkpointed issuer history by the feeds' word. `troth credential verify` of
its W3C VC (`troth.node.verify.verify_vc`, with `--issuer-history` or `--authority`) verified
the issuer history with no checkpoints at all, so every VC of a long-lived authority was
refused `issuer identity invalid` ("this verifier takes no checkpoints: present the full
history", which no verifier accepts past 64 changes), though `verify_troth_vc` is written to
judge a checkpointed issuer by its feed. It is now verified with the feeds' word, as a
chain's issuer is (`feed_checkpoints`); a checkpoint no fresh feed of a trusted authority
names is still refused.

identity 2 (medium; fixed by the lead in troth/gates/bundles.py, a strict xfail until then). The
same class in policy bundles: `gates.bundles._signer` verifies the signer's history with no
checkpoints (`verify_history(signed.history, now=now)`), so every bundle signed by an
authority (or a policy-admin) past 64 changes, whose history `create_bundle` carries as its
signer presents it (from a checkpoint), is refused `SIGNER_INVALID` by every verifier
(`verify_bundle` with the authority's fresh feed naming that checkpoint), and its own stored
bundles by `load_stored_bundle`. The fix belongs there: the feeds' word (`feed_checkpoints`),
as the chain verifier and (now) `verify_vc` take it; a stored bundle's signer by the store's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.support.feeds import superseded
from tests.support.gates import POLICIES, SUPPORT, TOOLS
from tests.support.parties import Party, make_party, signer_as
from troth import limits
from troth.credentials import (
    ChainVerifier,
    CredentialChain,
    TrustPolicy,
    VerifiedFeed,
    build_page,
    feed_genesis,
    issue_credential,
    next_head,
    write_page_sequence,
)
from troth.credentials.revocation_held import feed_checkpoints
from troth.credentials.vc import export_credential_vc
from troth.crypto import KeyType
from troth.errors import (
    CredentialError,
    CredentialFailure,
    IdentityFailure,
    PolicyError,
    PolicyFailure,
)
from troth.gates.bundles import create_bundle, load_stored_bundle, verify_bundle
from troth.gates.store import BundleStore
from troth.identity import (
    Checkpoint,
    Identifier,
    VerifiedIdentity,
    new_identity,
    rotate_identity,
)
from troth.node.verify import Sources, read_feed_file, verify_chain, verify_vc
from troth.vault import SoftwareVault

NOW = 1_800_000_000
T0 = NOW - 100_000
CHECKPOINT = 10  # the change the authority's feed names, and its history is presented from


class LongLived(NamedTuple):
    """An authority of MAX_IDENTITY_CHANGES + 6 changes, presented from change CHECKPOINT."""

    authority: Party
    full: VerifiedIdentity
    member: Party
    feed_file: Path


def _long_lived(tmp_path: Path) -> LongLived:
    """The authority, a member, and its feed file: page 0 signed at change CHECKPOINT (its
    history whole then) naming that change as its own supersession, page 1 signed under its
    newest change with its history presented from change CHECKPOINT."""
    vault = SoftwareVault()
    held = new_identity(vault, KeyType.ED25519, now=T0, valid_for=10**8)
    early = None
    for step in range(1, limits.MAX_IDENTITY_CHANGES + 6):
        held = rotate_identity(
            vault, held.identity, held.primary, held.next_key, now=T0 + step, valid_for=10**8
        )
        if step == CHECKPOINT:
            early = signer_as(vault, held.primary, held.identity, now=T0 + step)
    assert early is not None
    full = held.identity
    digest = full.identifier.digest
    presented = full.from_checkpoint(Checkpoint(digest, digest, CHECKPOINT))
    signer = signer_as(vault, held.primary, presented, now=T0 + 100)
    authority = Party(presented, held.primary, signer, held.next_key)
    entry = superseded(
        0,
        full.identifier,
        full.identifier,
        CHECKPOINT + 1,
        full.changes[CHECKPOINT].change_hash,
        at=T0 + 40,
    ).encode()
    head = next_head(feed_genesis(full.identifier), entry)
    first = build_page(early, [entry], start=0, head=head, latest=1, now=T0 + 50)
    second = build_page(signer, [], start=1, head=head, latest=1, now=NOW - 10)
    feed_file = tmp_path / "authority.feed"
    feed_file.write_bytes(b"".join(write_page_sequence([first, second])))
    return LongLived(authority, full, make_party(vault, now=T0), feed_file)


def _vc(world: LongLived) -> bytes:
    document = export_credential_vc(
        world.authority.signer,
        credential_id=b"\x07" * 16,
        subject=world.member.identifier,
        attributes=SUPPORT,
        valid_from=NOW - 500,
        valid_until=NOW + 3600,
        now=NOW - 500,
    )
    return json.dumps(document).encode()


def test_identity_1_a_long_lived_authoritys_vc_verifies_as_its_chain_does(
    tmp_path: Path,
) -> None:
    world = _long_lived(tmp_path)
    history = world.authority.identity.history
    assert world.authority.identity.first_index == CHECKPOINT
    sources = Sources(frozenset({world.authority.identifier}), tmp_path, [str(world.feed_file)])
    credential = issue_credential(
        world.authority.signer,
        subject=world.member.identifier,
        attributes=SUPPORT,
        now=NOW - 500,
        ttl=3600,
        depth=1,
    )
    chain = CredentialChain((credential,), (history,)).encode()
    assert verify_chain(chain, sources, now=NOW).actor == world.member.identifier
    verified = verify_vc(_vc(world), sources, now=NOW, issuer_history=history)
    assert verified.subject == world.member.identifier


def test_identity_1_a_checkpoint_no_feed_names_is_still_refused(tmp_path: Path) -> None:
    """The same history presented from a change the feed does not name (CHECKPOINT + 2): no
    one attests its earlier changes, and the VC is refused, naming why."""
    world = _long_lived(tmp_path)
    sources = Sources(frozenset({world.authority.identifier}), tmp_path, [str(world.feed_file)])
    digest = world.full.identifier.digest
    history = world.full.from_checkpoint(Checkpoint(digest, digest, CHECKPOINT + 2)).history
    with pytest.raises(CredentialError) as caught:
        verify_vc(_vc(world), sources, now=NOW, issuer_history=history)
    assert caught.value.reason is CredentialFailure.ISSUER_INVALID
    assert IdentityFailure.UNATTESTED_CHECKPOINT.value in str(caught.value)


def _signed_bundle(tmp_path: Path) -> tuple[Identifier, VerifiedFeed, bytes, ChainVerifier]:
    """The long-lived authority, its feed, a bundle it signed (its history presented from its
    checkpoint) and a verifier trusting it."""
    world = _long_lived(tmp_path)
    authority = world.authority.identifier
    feed = read_feed_file(str(world.feed_file), frozenset({authority}), NOW)
    bundle = create_bundle(
        world.authority.signer,
        authority=authority,
        policies=POLICIES,
        schema="",
        tools=TOOLS,
        revision=1,
        now=NOW - 100,
        ttl=3600,
    )
    return authority, feed, bundle, ChainVerifier(TrustPolicy(frozenset({authority})))


def test_identity_2_a_long_lived_authoritys_policy_bundle_verifies(tmp_path: Path) -> None:
    authority, feed, bundle, verifier = _signed_bundle(tmp_path)
    verified = verify_bundle(bundle, verifier=verifier, feeds={authority: feed}, now=NOW)
    assert verified.body.signer == authority


def test_identity_2_a_stored_bundle_of_a_long_lived_authority_loads_by_the_stores_word(
    tmp_path: Path,
) -> None:
    """The holder's own copy (`load_stored_bundle`, what a node reloads at every start): its
    checkpointed signer history is judged by `checkpoints` (a node passes its store's,
    `attested_by_store`); given none, it is refused as before (deny when in doubt)."""
    authority, feed, bundle, verifier = _signed_bundle(tmp_path)
    attests = feed_checkpoints({authority: feed}, now=NOW, max_staleness=300)
    loaded = load_stored_bundle(bundle, verifier=verifier, now=NOW, checkpoints=attests)
    assert loaded.body.signer == authority
    with pytest.raises(PolicyError) as caught:
        load_stored_bundle(bundle, verifier=verifier, now=NOW)
    assert caught.value.reason is PolicyFailure.SIGNER_INVALID
    store = BundleStore(verifier, checkpoints=attests)
    store.accept(bundle, feeds={authority: feed}, now=NOW)
    reloaded = BundleStore(verifier, store.table, checkpoints=attests)
    reloaded.reload(now=NOW)
    assert reloaded.active(authority) is not None
