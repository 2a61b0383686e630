"""Review 69o (area: wave1c): attacks on 69a's outbox at rotation and 69j's channel identity
lock that did not work.

- A rotation long after the rows were queued (1000 s, past the new key's 300 s of skew):
  each row signed again is dated within the new key's window (`resign_time` at most
  SEND_LATE before the rotation), so none fails the new key's time check and is left under
  the retired key (then set aside as a thief's).
- Rows of node.db's writer that break the rotation's reading of them (a truncated or random
  envelope, disclosures that do not decode, an empty attestation) do not make the rotation
  fail: a writer of node.db cannot block the agent's rotation (a compromised one above all).
- A delegate of the identity whose compromised rotation's revocation failed, on another node,
  leasing through the chain the identity signed before its rotation, while the revocation
  is due: refused (denied before the due check: the chain no longer gives it standing at
  the broker's node, which holds the rotated history; else the due check names the chain's
  issuer).
- A renewal of the channel identity that raises releases `_me_lock` (the next renewal runs).
- A cached channel identity past when it stops being valid is never shown on the event loop
  while a renewal runs: the loop reads it afresh.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import troth
from tests import test_review67f_secrets as review67f
from tests.support.public_api import READ, Agents
from tests.test_review67l_refuted import leased
from tests.test_review69a_outbox import _keys, _node_agent, _sent_under
from tests.test_review69j_gaps import _failing
from tests.test_trace_service import NOW
from troth.errors import SecretError
from troth.node.shown_identity import ShownIdentity
from troth.trace.signing import resolve_key


def test_rows_queued_long_before_a_rotation_are_signed_in_the_new_keys_window(
    tmp_path: Path,
) -> None:
    node, outbox = _node_agent(tmp_path)
    try:
        ids = [row.record for row in outbox.store.first(outbox.identifier.digest, 10)]
        node.identities.rotate("agent", now=NOW + 1000)
        assert _keys(outbox, node, NOW + 1010) == [True, True]
        assert _sent_under(outbox, node, NOW + 1010) == [(i, True) for i in ids]
    finally:
        outbox.close()
        node.close()


_MANGLED = {
    "truncated envelope": "UPDATE trace_outbox SET envelope = substr(envelope, 1, 20)",
    "random envelope": "UPDATE trace_outbox SET envelope = randomblob(500)",
    "disclosures": "UPDATE trace_outbox SET disclosures = CAST('{\"input\": 1}' AS BLOB)",
    "empty attestation": "UPDATE trace_outbox SET attestation = X''",
}


def test_rows_a_writer_of_node_db_mangled_do_not_block_a_rotation(tmp_path: Path) -> None:
    """Each mangling on the first of the two rows: the rotation commits, the other row is
    signed by the new key."""
    for name, mangle in _MANGLED.items():
        node, outbox = _node_agent(Path(tempfile.mkdtemp(dir=tmp_path)))
        try:
            agent = outbox.identifier.digest
            first = outbox.store.first(agent, 1)[0]
            node.db.execute(mangle + " WHERE pos = ?", (first.pos,))
            node.identities.rotate("agent", now=NOW + 10)  # raises nothing
            identity = node.identities.get("agent", now=NOW + 20).identity
            assert identity.change_count == 2, name
            second = outbox.store.first(agent, 10)[1]
            assert resolve_key(identity, second.attestation).is_current, name
        finally:
            outbox.close()
            node.close()


def _shown(clock: list[int], renew: Any) -> ShownIdentity:
    """A bare ShownIdentity (no runtime): its clock `clock[0]`, `channel_identity` `renew`."""
    shown = ShownIdentity.__new__(ShownIdentity)
    shown.clock = SimpleNamespace(now=lambda: clock[0])
    shown.name = "n"
    shown._me_cache = None
    shown._me_lock = threading.Lock()
    shown._renewing = None
    shown.channel_identity = renew  # type: ignore[method-assign]
    return shown


def test_a_renewal_that_raises_releases_the_lock() -> None:
    calls: list[int] = []

    def renew(name: str, *, now: int) -> Any:
        calls.append(now)
        if len(calls) == 1:
            raise OSError("the vault failed")
        return SimpleNamespace(static=None, attestation=b""), now + 600

    shown = _shown([NOW], renew)
    with pytest.raises(OSError, match="vault failed"):
        shown._renew_now()
    assert not shown._me_lock.locked()
    assert shown._renew_now().static is None  # the next one runs
    assert calls == [NOW, NOW]


def test_an_identity_past_its_validity_is_not_shown_on_the_loop() -> None:
    clock = [NOW]
    made: list[Any] = []

    def renew(name: str, *, now: int) -> Any:
        made.append(SimpleNamespace(static=None, attestation=b""))
        return made[-1], now + 100  # valid for 100 s

    shown = _shown(clock, renew)

    async def on_loop() -> Any:
        return shown._me()

    first = asyncio.run(on_loop())
    clock[0] = NOW + 100  # no longer valid
    second = asyncio.run(on_loop())
    assert second is not first
    assert second is made[-1]


world = review67f.world  # the fixture: acme's hub brokering `payments` to its members


def test_a_delegate_of_an_identity_due_is_refused_through_its_chain(
    world: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops = world.hub.identities.create("ops")
    world.hub.enroll(world.acme.ticket(READ), identity=ops)
    chain = world.hub.delegate(ops, to=world.sub, attributes=READ, ttl=600, purpose="p")
    world.agents.hold(world.sub, chain)
    leased(world, (world.agents, "sub"))
    _failing(monkeypatch)
    with pytest.raises(SecretError):
        world.hub.identities.rotate(ops, compromised=True)  # its revocation due

    async def main() -> None:
        async with world.hub.serve(listen=("127.0.0.1", 0)) as running:
            at, hub = running.address, running.identifier
            with pytest.raises(troth.TrothError, match=r"no current credential|compromised"):
                await world.agents.secrets.lease(
                    "payments", holder="sub", broker=at, expect=hub, scope=["refunds"]
                )

    asyncio.run(main())
