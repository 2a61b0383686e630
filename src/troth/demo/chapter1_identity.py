"""Chapter 1: identities. A thousand agents, a rotation that keeps the identifier, a flipped byte
that is caught, a DID document."""

from __future__ import annotations

import json
import time
from pathlib import Path

from troth.clock import Clock
from troth.demo.story import Story
from troth.errors import IdentityError
from troth.identity import decode_history, did_document, verify_history
from troth.node import init_node, open_node


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
        story.say("rotated its primary key: a change signed by the new key and the old one")
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
