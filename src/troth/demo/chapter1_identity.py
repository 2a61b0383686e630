"""Chapter 1: identities. A thousand agents, a rotation that keeps the identifier, a flipped byte
that is caught, a DID document, and a rotation that retires a stolen key."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from troth.clock import Clock
from troth.demo.story import Story
from troth.errors import IdentityError
from troth.identity import (
    ChangeBody,
    SignedChange,
    decode_history,
    did_document,
    encode_history,
    next_key_digest,
    verify_history,
    verify_signed_by,
)
from troth.node import Node, init_node, open_node
from troth.vault import KeyPurpose


def run(story: Story, home: Path, clock: Clock) -> None:
    story.chapter(1, "Identity: every agent its own key and identifier")
    init_node("agents", home=home)
    with open_node("agents", home=home) as node:
        start = time.perf_counter()
        agents = node.identities.create_many(1000, now=clock.now(), name_prefix="agent")
        elapsed = time.perf_counter() - start
        story.say(
            f"created 1,000 agent identities in {elapsed * 1000:.0f} ms "
            f"({1000 / elapsed:,.0f} identities/s), keys sealed in the node's software vault"
        )
        agent = agents[7]
        before = agent.identifier
        story.say(f"{agent.name}: {before}")
        story.say(f"  key {agent.identity.current_key.data.hex()[:16]}... (1 change)")

        rotated = node.identities.rotate(agent.name or "", now=clock.now())
        story.say(
            "rotated its primary key: revealed the next key committed in change 0, "
            "signed by it and the old key"
        )
        story.say(f"  key {rotated.identity.current_key.data.hex()[:16]}... (2 changes)")
        story.say(f"  identifier unchanged: {rotated.identifier == before} ({rotated.identifier})")

        history = node.identities.export(agent.name or "")
        verified = verify_history(history, now=clock.now())
        story.say(f"exported history: {len(history)} bytes, verifies as {verified.identifier}")

        signature = decode_history(history)[1].signature
        offset = history.index(signature) + 10
        tampered = bytearray(history)
        tampered[offset] ^= 0x01
        story.say(f"flip one bit of byte {offset} (inside change 1's signature) and verify again:")
        try:
            verify_history(bytes(tampered), now=clock.now())
            story.say("  accepted (this must never happen)")
        except IdentityError as exc:
            story.say(f"  rejected: {exc}")

        story.say("its DID document (current verification key as a Multikey):")
        for line in json.dumps(did_document(rotated.identity), indent=2).splitlines():
            story.say("  " + line)

    _stolen_backup(story, home, clock)


def _stolen_backup(story: Story, home: Path, clock: Clock) -> None:
    """Pre-rotation and store-or-extend against a stolen backup (docs/formats.md)."""
    story.say("")
    story.say("a rotation retires a stolen key:")
    init_node("laptop", home=home)
    init_node("verifier", home=home)
    with open_node("laptop", home=home) as laptop:
        laptop.identities.create(now=clock.now(), name="courier")
    shutil.copytree(home / "nodes" / "laptop", home / "nodes" / "stolen")
    story.say("  a backup of node laptop is stolen: primary key k0 and the sealed next key k1")
    with (
        open_node("laptop", home=home) as owner,
        open_node("stolen", home=home) as thief,
        open_node("verifier", home=home) as verifier,
    ):
        owner.identities.rotate("courier", now=clock)
        current = verify_history(owner.identities.export("courier"), now=clock.now())
        verifier.identities.observe(current)
        story.say("  the owner rotates (reveals k1); a verifier stores the 2-change history")
        signer = thief.identities.signer("courier", now=clock.now())
        message = b"pay the thief"
        presented = verify_history(signer.identity.history, now=clock.now())
        verify_signed_by(
            presented, signer.attestation, message, signer.sign(message), at=clock.now()
        )
        story.say("  the thief signs with a key attested under k0: a stateless verifier accepts it")
        story.say(
            "  (it relies on the authority's feed); the verifier that stored the new history:"
        )
        _refusal(story, "    ", lambda: verifier.identities.observe(presented))
        story.say(
            "  with k0 alone, a rotation to the thief's own key [c0, c1'], for every verifier:"
        )
        _refusal(
            story, "    ", lambda: verify_history(_forged_rotation(thief, clock), now=clock.now())
        )
        forked = thief.identities.rotate("courier", now=clock)  # the backup holds k1 too
        story.say("  the thief rotates its copy with the stolen k1, a fork of the owner's history:")
        _refusal(story, "    ", lambda: verifier.identities.observe(forked.identity))


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
