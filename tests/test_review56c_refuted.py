"""Review 56c: attacks on the public Python API that did not work; each test would fail if the
defence broke.

- A `Credential` made by hand (dataclasses.replace of a real one) naming another member's
  real credential id, given to `Node.revoke`: the authority refuses it (the link is not in the
  chain), and the other member's credential still verifies.
- One naming an authority it is not rooted at: NotFound, nothing revoked.
- A node shared by threads that write (identities, enrollment, delegation) and read: no
  sqlite3 error, nothing lost (review 51e covered a verifier shared by threads).
- The programs of docs/python.md and README.md run under `-W error::ResourceWarning`: nothing
  they open is left to the garbage collector.
- A `Channel` kept past its `connect` block: a RoutingError, never a call on a closed channel.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

import troth
from tests.support.public_api import READ, Agents, acme_and_agents, greet
from tests.support.readme import python_program

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Scene:
    base: Agents
    other: troth.Identity
    others: troth.Credential
    chain: troth.Credential


@pytest.fixture
def scene() -> Iterator[Scene]:
    with acme_and_agents() as base:
        other = base.agents.identities.create("other")
        others = base.agents.enroll(base.acme.ticket(READ), identity=other)
        chain = base.agents.delegate(
            base.support, to=base.sub, attributes=READ, ttl=600, purpose="p"
        )
        yield Scene(base, other, others, chain)


def _verifier(base: Agents) -> troth.Verifier:
    return troth.Verifier(trust=[base.acme.identifier], feeds=base.acme)


def test_a_credential_naming_another_members_id_revokes_nothing(scene: Scene) -> None:
    base = scene.base
    forged = dataclasses.replace(scene.chain, id=scene.others.id)
    with pytest.raises(troth.AuthorityError):
        base.agents.revoke(forged, by=base.support)
    assert _verifier(base).verify(scene.others, presenter=scene.other).actor == (
        scene.other.identifier
    )


def test_a_credential_naming_another_authority_revokes_nothing(scene: Scene) -> None:
    base = scene.base
    forged = dataclasses.replace(scene.chain, authority=base.support.identifier)
    with pytest.raises(troth.NotFound):
        base.agents.revoke(forged, by=base.support)
    assert _verifier(base).verify(scene.chain, presenter=base.sub).actor == base.sub.identifier


def test_a_node_shared_by_threads_that_write(scene: Scene) -> None:
    base = scene.base
    verifier = troth.Verifier(trust=[base.acme.identifier], feeds=[base.agents, base.acme])

    def work(n: int) -> int:
        helper = base.agents.identities.create(f"helper-{n}")
        base.agents.delegate(base.support, to=helper, attributes=READ, ttl=60, purpose="p")
        verifier.verify(scene.chain, presenter=base.sub)
        return len(base.agents.credentials(base.support))

    with ThreadPoolExecutor(4) as pool:
        held = list(pool.map(work, range(4)))
    assert held == [1, 1, 1, 1]
    names = {identity.name for identity in base.agents.identities.all()}
    assert {f"helper-{n}" for n in range(4)} <= names


@pytest.mark.parametrize("document", ["docs/python.md", "README.md"])
def test_the_documented_programs_leave_nothing_open(tmp_path: Path, document: str) -> None:
    script = tmp_path / "program.py"
    script.write_text(python_program((ROOT / document).read_text()))
    env = {**os.environ, "TROTH_HOME": str(tmp_path / "home")}
    env.pop("TROTH_VAULT_KEY", None)
    env.pop("TROTH_NODE", None)
    done = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", str(script)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "ResourceWarning" not in done.stderr  # one in a finaliser is only printed


def test_a_channel_kept_past_its_block_is_refused() -> None:
    async def kept(agents: troth.Node) -> object:
        with troth.Node.open("desk") as desk:
            async with desk.serve(listen=("127.0.0.1", 0), services=[greet]) as running:
                async with agents.connect(running.address, expect=running.identifier) as ch:
                    assert await ch.call("greet", "hi") == "hi"
                return await ch.call("greet", "hi")

    with acme_and_agents() as base, pytest.raises(troth.RoutingError):
        asyncio.run(kept(base.agents))
