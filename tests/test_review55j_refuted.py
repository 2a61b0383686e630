"""Review 55j (cross-layer, key rotation), refuted attacks: what a stolen pre-rotation key
still gets once the verifier knows of the rotation. The attacker holds a copy of alice's node
directory taken before she rotated (`troth identity rotate --compromised`: every key the copy
holds retired). Each test is a real attempt that succeeds if the defence it names breaks.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest

import troth
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    TrustPolicy,
    VerifiedFeed,
    delegate,
    verify_feed,
)
from troth.crypto import KeyType
from troth.errors import CredentialError, CredentialFailure, Denied, Unreachable
from troth.identity import Identifier, Signer, attest_purpose_key, verify_history
from troth.identity.change import decode_history, encode_history
from troth.node import Node, open_node
from troth.node.authorities import announce_here
from troth.node.verify import _issuer_check, import_bare_history
from troth.vault import KeyHandle, KeyPurpose


@pytest.fixture
def nodes(troth_home: Path) -> tuple[Identifier, Identifier]:
    """alice, a member of acme (its authority on node acme); desk, trusting acme (it serves
    echo to members); thief, a copy of alice's node directory (vault key and node.db) taken
    now. Returns alice's identifier and desk's."""
    with troth.Node.open("acme") as acme:
        ticket = acme.create_authority().ticket({"team.name": "x"})
        authority = acme.identity.identifier
    with troth.Node.open("alice") as alice:
        alice.enroll(ticket)
        identifier = alice.identity.identifier
    with troth.Node.open("desk") as desk:
        served = desk.identity.identifier
    with open_node("desk") as node:
        node.wallet.trust(authority, "node:acme", now=int(time.time()))
    shutil.copytree(troth_home / "nodes" / "alice", troth_home / "nodes" / "thief")
    return identifier, served


def _acme_id() -> Identifier:
    with open_node("acme") as node:
        return node.authority().identifier


def _rotate_unannounced(name: str) -> None:
    """`name`'s node rotates its identity as compromised; its authority is not told yet (it
    was unreachable: the node announces at its next maintenance round)."""
    with open_node(name) as node:
        node.identities.rotate(name, now=int(time.time()), compromised=True)


def test_an_open_channel_of_the_stolen_key_gets_nothing_once_the_node_admitted_the_rotation(
    troth_home: Path, nodes: tuple[Identifier, Identifier], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refuted: "the thief's channel opened before alice's rotation keeps her rights until
    desk's next maintenance round re-checks its peers (every 30 s)". The thief opens a channel
    to desk as alice (her pre-rotation history, channel key and attestation, her credential
    from acme) and is served. Alice rotates as compromised, unannounced (acme hears nothing:
    no feed says it), and only opens a channel to desk: desk stores her new history (3
    changes), which refuses the thief's at a new handshake (review 50g). On the thief's open
    channel, the next request is denied at once: the copy desk stored is newer (review 55j,
    rotation 1), and, admitting alice, desk's decision point verified her chain with her new
    history as presenter, so its verifier's memory refuses an older one too
    (troth.credentials.memory). Standings are kept per second, so the request is sent in the
    next second (the wait is at most one). Acme stays unreachable: alice's serve announced the
    rotation at its start, and desk, synced, refused the thief as `superseded history` instead,
    or, its mark read before its sync, alice (review 69p, flake 1)."""

    def unreachable(*_: object, **__: object) -> None:
        raise Unreachable("acme is unreachable")

    monkeypatch.setattr("troth.node.announcements.announce_locally", unreachable)
    alice_id, desk_id = nodes

    async def main() -> tuple[object, str]:
        with (
            troth.Node.open("desk") as desk,
            troth.Node.open("thief") as thief,
        ):
            async with (
                desk.serve(listen=("127.0.0.1", 0)) as at,
                thief.serve() as stolen,
                stolen.connect(at.address, expect=desk_id) as channel,
            ):
                before = await channel.call("echo", "echo", "as alice")
                served_at = int(time.time())
                _rotate_unannounced("alice")
                with troth.Node.open("alice") as alice:
                    async with (
                        alice.serve() as running,
                        running.connect(at.address, expect=desk_id) as own,
                    ):
                        assert own.peer == desk_id  # her handshake only: no request yet
                with open_node("desk") as node:
                    assert node.identities.stored_changes(alice_id) == 3  # desk knows
                    assert node.wallet.store.syncs_due() == []  # no feed says it
                while int(time.time()) == served_at:  # a standing is kept for its second
                    await asyncio.sleep(0.05)
                with pytest.raises(Denied) as denied:
                    await channel.call("echo", "echo", "still alice")
                return before, str(denied.value)

    before, denied = asyncio.run(main())
    assert before == "as alice"
    assert "older than the" in denied


def _thiefs_prefix_signer(thief: Node, new_history: bytes, now: int) -> Signer:
    """A signing key of the thief's, attested with the key alice's compromised rotation
    revealed first (k1: the copy's committed next key) under the prefix of her new history
    that ends at the change revealing it (change 1 of 3): no fork, an older prefix."""
    prefix = verify_history(encode_history(decode_history(new_history)[:2]), now=now)
    revealed = KeyHandle.parse(thief.identities.find("alice").next_key or "")
    key = thief.vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    attestation = attest_purpose_key(
        thief.vault,
        revealed,
        prefix,
        KeyPurpose.SIGNING,
        thief.vault.public_key(key),
        now=now,
        expires_at=now + 3600,
    )
    return Signer(prefix, thief.vault, key, attestation, now + 3600)


def _acme_feed(acme: Identifier, now: int) -> VerifiedFeed:
    with open_node("acme") as node:
        page = node.authority().feed(now=now)
    return verify_feed(page, authority=acme, now=now, max_staleness=60)


def test_a_delegation_signed_with_the_revealed_key_under_the_older_prefix_is_refused(
    troth_home: Path, nodes: tuple[Identifier, Identifier]
) -> None:
    """Refuted: "after a compromised rotation the copy's next key k1 still signs: change 1
    of alice's new history reveals it, so the thief signs under that prefix (no fork, no
    stale change 0) and its delegations pass". The thief delegates alice's acme credential
    (held in the copy) to an identity of its own, signed with k1 under alice's changes 0-1.
    Desk learnt of the rotation from her history alone (acme not told: its feed is silent):
    its store refuses the issuer history, older than its copy. Then alice announces it: a
    verifier with no store and acme's fresh feed refuses it as superseded."""
    alice_id, _ = nodes
    acme = _acme_id()
    _rotate_unannounced("alice")
    now = int(time.time())
    with open_node("alice") as node:
        new_history = node.identities.export("alice")
    with open_node("thief") as thief:
        mallory = thief.identities.create(now=now, name="mallory").identifier
        (held,) = thief.wallet.held("alice")
        signer = _thiefs_prefix_signer(thief, new_history, now)
        chain = delegate(
            signer,
            CredentialChain.decode(held.chain),
            subject=mallory,
            attributes=Attributes({"team.name": "x"}),
            now=now,
            ttl=600,
            purpose="test",
        ).encode()
    policy = TrustPolicy(frozenset({acme}))
    silent = _acme_feed(acme, now)
    assert ChainVerifier(policy).verify(  # control: what knows nothing of the rotation
        chain, presenter=mallory, feeds={acme: silent}, now=now
    )
    with open_node("desk") as desk:
        import_bare_history(desk, new_history, now=now)  # desk learns of the rotation
        verifier = ChainVerifier(policy, known_in=_issuer_check(desk))
        with pytest.raises(CredentialError) as stored:
            verifier.verify(chain, presenter=mallory, feeds={acme: silent}, now=now)
    assert stored.value.reason is CredentialFailure.ISSUER_INVALID
    assert "older than the stored copy" in str(stored.value)
    with open_node("alice") as node:
        announce_here(node, "alice", now=now)  # acme's feed names her change 2
    with pytest.raises(CredentialError) as fed:
        ChainVerifier(policy).verify(
            chain, presenter=mallory, feeds={acme: _acme_feed(acme, now)}, now=now
        )
    assert fed.value.reason is CredentialFailure.SUPERSEDED
    assert alice_id == signer.identity.identifier
