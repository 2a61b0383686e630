"""Chapter 1: identities. acme's fleet of a thousand agents, each with its own key; the
support agent rotates its key and keeps its identifier; a flipped bit is caught; its DID
document; and a rotation that retires the keys of a stolen backup."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from troth.clock import Clock
from troth.demo.story import Story
from troth.errors import IdentityError
from troth.identity import (
    ChangeBody,
    SignedChange,
    VerifiedIdentity,
    attest_purpose_key,
    decode_history,
    did_document,
    encode_history,
    next_key_digest,
    verify_history,
    verify_signed_by,
)
from troth.node import Node, init_node, open_node
from troth.vault import KeyPurpose

FLEET = 1000


def run(story: Story, home: Path, clock: Clock) -> None:
    story.chapter(1, "Identity: every agent its own key and identifier")
    init_node("agents", home=home)
    with open_node("agents", home=home) as node:
        node.identities.create_many(FLEET - 1, now=clock.now(), name_prefix="agent")
        agent = node.identities.create(now=clock.now(), name="support-agent")
        story.say(f"acme runs {FLEET:,} agents on node agents: {FLEET:,} identities, each with")
        story.say("  its own key in the node's vault (software, sealed at rest)")
        label = story.meet("support-agent", agent.identifier)
        story.say(f"one of them is the support agent: {label}")
        story.say("  its identifier is the hash of its first signed change (T + 64 hex digits)")
        story.say(f"  primary key {agent.identity.current_key.data.hex()[:16]}…, 1 change")

        rotated = node.identities.rotate("support-agent", now=clock.now())
        story.say("it rotates its key: change 0 had committed to the next key (its hash);")
        story.say("  change 1 reveals that key and is signed by it and by the old one")
        story.say(f"  primary key {rotated.identity.current_key.data.hex()[:16]}…, 2 changes")
        same = "unchanged" if rotated.identifier == agent.identifier else "CHANGED"
        story.say(f"  identifier {same}: {rotated.identifier}")
        story.proved("each agent has its own key in the vault; its identifier survives rotation")

        history = node.identities.export("support-agent")
        verified = verify_history(history, now=clock.now())
        story.say(
            f"its history, as others receive it: {len(history)} bytes (the 2 signed changes, "
            "canonical CBOR)"
        )
        story.say(f"  a verifier recomputes the identifier from it: {verified.identifier}")
        signature = decode_history(history)[1].signature
        offset = history.index(signature) + 10
        tampered = bytearray(history)
        tampered[offset] ^= 0x01
        story.say(f"flip one bit of byte {offset} (inside change 1's signature) and verify again:")
        _refusal(story, "  ", lambda: verify_history(bytes(tampered), now=clock.now()))
        story.proved("a history with one flipped bit is rejected")

        story.say("its DID document (did:troth; the current key as a Multikey):")
        for line in json.dumps(did_document(rotated.identity), indent=2).splitlines():
            story.say("  " + line)

    _stolen_backup(story, home, clock)


def _stolen_backup(story: Story, home: Path, clock: Clock) -> None:
    """Pre-rotation and store-or-extend against a stolen backup (docs/formats.md)."""
    story.say("")
    story.say("a recovery rotation retires the keys of a stolen backup:")
    init_node("laptop", home=home)
    init_node("verifier", home=home)
    with open_node("laptop", home=home) as laptop:
        courier = laptop.identities.create(now=clock.now(), name="courier")
    label = story.meet("courier", courier.identifier)
    story.say(f"  a courier agent lives on node laptop: {label}")
    shutil.copytree(home / "nodes" / "laptop", home / "nodes" / "stolen")
    story.say("  a backup of the laptop is stolen: it holds the courier's primary key k0 and")
    story.say("  its next key k1 (sealed; change 0 commits to it)")
    with (
        open_node("laptop", home=home) as owner,
        open_node("stolen", home=home) as thief,
        open_node("verifier", home=home) as verifier,
    ):
        # a plain rotation would reveal k1, which the backup holds (review 34a, identity 1)
        owner.identities.rotate("courier", now=clock, compromised=True)
        current = verify_history(owner.identities.export("courier"), now=clock.now())
        verifier.identities.observe(current)
        story.say("  the owner rotates with --compromised: past k1 (the backup holds it) to k2,")
        story.say("  made now; a verifier that saw the courier before stores the new history")
        signer = thief.identities.signer("courier", now=clock.now())
        message = b"pay the thief"
        presented = verify_history(signer.identity.history, now=clock.now())
        verify_signed_by(
            presented, signer.attestation, message, signer.sign(message), at=clock.now()
        )
        story.say("  the thief signs with the old history (key k0):")
        story.say("    a verifier that never saw the rotation accepts it: it learns of rotations")
        story.say("    from the authority's revocation feed (chapter 2)")
        story.say("    the verifier that stored the new history:")
        _refusal(story, "    ", lambda: verifier.identities.observe(presented))
        story.say("  the thief rotates to a key of its own, signed with k0 (a forged change 1):")
        _refusal(
            story, "    ", lambda: verify_history(_forged_rotation(thief, clock), now=clock.now())
        )
        story.say("  the thief signs under the owner's new history with the stolen k1:")
        _refusal(story, "    ", lambda: _signed_with_stolen_next_key(thief, current, clock))
        forked = thief.identities.rotate("courier", now=clock)  # the backup holds k1 too
        story.say(
            "  the thief rotates its copy with the stolen k1 (a fork of the owner's history):"
        )
        _refusal(story, "    ", lambda: verifier.identities.observe(forked.identity))
    story.proved(
        "a stolen backup cannot roll back, forge a rotation, or fork a history a verifier stored"
    )


def _signed_with_stolen_next_key(thief: Node, current: VerifiedIdentity, clock: Clock) -> None:
    """A signature by a key of the thief's, attested under the owner's current change with the
    backup's next key k1 (what a plain rotation would have made the current key)."""
    now = clock.now()
    stolen = thief.identities.get("courier", now=now).next_key
    own = thief.vault.generate(stolen.key_type, KeyPurpose.SIGNING)
    attestation = attest_purpose_key(
        thief.vault,
        stolen,
        current,
        KeyPurpose.SIGNING,
        thief.vault.public_key(own),
        now=now,
        expires_at=now + 3600,
    )
    message = b"pay the thief"
    verify_signed_by(current, attestation, message, thief.vault.sign(own, message), at=now)


def _forged_rotation(thief: Node, clock: Clock) -> bytes:
    """[c0, c1'] introducing a key of the thief's, signed by it and by the stolen k0."""
    local = thief.identities.get("courier", now=clock.now())
    own = thief.vault.generate(local.primary_key.key_type, KeyPurpose.PRIMARY)
    now = clock.now()
    body = ChangeBody(
        1,
        local.identity.current_change_hash,
        thief.vault.public_key(own),
        next_key_digest(thief.vault.public_key(own)),
        now,
        now,
        now + 86_400,
    ).encode()
    forged = SignedChange(
        body, thief.vault.sign(own, body), thief.vault.sign(local.primary_key, body)
    )
    return encode_history([local.identity.changes[0].signed, forged])


def _refusal(story: Story, indent: str, attempt: Callable[[], object]) -> None:
    try:
        attempt()
        story.say(indent + "accepted (this must never happen)")
    except IdentityError as exc:
        story.say(f"{indent}refused: {exc}")
