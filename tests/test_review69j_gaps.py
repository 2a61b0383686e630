"""Review 69j (gaps): two gaps earlier helpers left (69c: channel keys; 69d: broker).

gaps 1 (medium: a second channel key, one orphaned in the vault; the event loop held by a slow
  sign) `ShownIdentity._renew_identity` cleared the cached channel identity, then renewed it on
  the storage thread. With a vault whose generate/sign is slow (an HSM), a handshake arriving
  in that gap found no cache and renewed on the event loop too: two channel keys generated and
  attested at once, the loser's key left in the vault under no record, and the loop blocked
  for the HSM's sign. A cached identity past its time was renewed on the loop as well. Now
  the cache stays while the storage thread renews (the loop shows it meanwhile), renewals hold
  one lock, and a loop finding the cache past its time (still valid) starts the renewal on the
  storage thread and shows the cached identity. (The lead first narrowed this: the renewal
  deleted the old identity's channel key, and a handshake showing it failed KeyNotFound, 69k's
  relay-move tests. Restored by review 69t, chkeys 1: a replaced channel key is kept a grace;
  the cached identity is not shown once its channels are due for replacement.)

gaps 2 (medium: a stolen key's leases served past the owner's compromised rotation) When the
  broker's start could not finish the revocation a compromised rotation left due (review 67l:
  `broker_revoke_due`; the engine down, the store busy), it logged a warning and got ready all
  the same: the identity whose key was stolen was leased (and renewed, forwarded) until the
  next maintenance round, nothing showing it. Now, while that revocation fails, the broker
  refuses `issue`, `renew` and `forward` to callers whose identity or chain names an identity
  due (every caller when which ones are unknown), serves the others, tries again at its sweeps
  with a doubling wait (`DUE_RETRY_MAX_SECONDS`) and each round, and its status shows
  `revocations_due`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import troth
from tests import test_review67f_secrets as review67f
from tests.support.nodes import MemNet, run_memnet
from tests.support.public_api import READ, Agents
from tests.test_review67l_refuted import leased
from tests.test_review68v_renewal import _short_keys
from troth.crypto import KeyType
from troth.errors import KeyNotFound, SecretError, SecretFailure, StorageError
from troth.node.runtime import NodeRuntime
from troth.node.services import broker as broker_service
from troth.node.services.broker import local_broker
from troth.node.shown_identity import IDENTITY_CACHE
from troth.secrets import Broker
from troth.vault import KeyHandle, KeyPurpose

world = review67f.world  # the fixture: acme's hub brokering `payments` to its members

SLOW_HSM = 0.3  # seconds each generate takes (an HSM's key generation)


class _Generated:
    """The channel keys a node's vault generated, and on which threads (the loop's or not)."""

    def __init__(self, node: NodeRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
        self.handles: list[KeyHandle] = []
        self.on_loop: list[bool] = []
        vault = node.node.vault
        real = vault.generate

        def slow(key_type: KeyType, purpose: KeyPurpose) -> KeyHandle:
            self.on_loop.append(threading.current_thread() is threading.main_thread())
            time.sleep(SLOW_HSM)
            handle = real(key_type, purpose)
            if purpose is KeyPurpose.SECURE_CHANNEL:
                self.handles.append(handle)
            return handle

        monkeypatch.setattr(vault, "generate", slow)
        self.vault = vault

    def held(self) -> list[KeyHandle]:
        """The generated channel keys the vault still holds."""
        out = []
        for handle in self.handles:
            try:
                self.vault.public_key(handle)
            except KeyNotFound:
                continue
            out.append(handle)
        return out


def test_gaps1_a_handshake_during_a_renewal_makes_no_second_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def test(net: MemNet) -> None:
        b = await net.node("b", prepare=_short_keys)  # every renewal makes a new channel key
        before = b.channels.me().attestation
        generated = _Generated(b, monkeypatch)
        renewal: asyncio.Future[Any] = asyncio.ensure_future(b._renew_identity())
        await asyncio.sleep(SLOW_HSM / 3)  # the storage thread inside the HSM's generate
        shown = b.channels.me()  # a handshake arriving now
        renewed = await renewal
        assert generated.on_loop == [False]  # one key, made off the loop
        assert shown.attestation == before  # the previous attestation, until the renewal
        assert b.channels.me().attestation == renewed.attestation != before
        assert generated.held() == [renewed.static.handle]  # none orphaned

    run_memnet(test, tmp_path)


def test_gaps1_a_cache_past_its_time_is_renewed_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def test(net: MemNet) -> None:
        b = await net.node("b", prepare=_short_keys)
        before = b.channels.me().attestation
        generated = _Generated(b, monkeypatch)
        net.clock.advance(IDENTITY_CACHE + 1)
        shown = [b.channels.me().attestation for _ in range(3)]  # three handshakes
        assert shown == [before] * 3
        assert True not in generated.on_loop
        for _ in range(40):
            await asyncio.sleep(SLOW_HSM / 4)
            if b.channels.me().attestation != before:
                break
        assert b.channels.me().attestation != before
        assert generated.on_loop == [False]
        assert len(generated.held()) == 1

    run_memnet(test, tmp_path)


# -- gaps 2 --------------------------------------------------------------------------------


def _failing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every operator revocation of an identity fails (its engine down, the audit refused)."""

    def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise SecretError(SecretFailure.ENGINE_FAILED, "the engine is down")

    monkeypatch.setattr(Broker, "revoke_identity", fail)


def _rotated_with_its_revocation_due(world: Agents, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`ops` (hosted on the hub) and `support` lease; `ops` rotated as compromised, its leases'
    revocation failing (recorded due, as a rotation killed before it leaves it)."""
    ops = world.hub.identities.create("ops")
    world.hub.enroll(world.acme.ticket(READ), identity=ops)
    leased(world, (world.agents, "support"), (world.hub, "ops"))
    _failing(monkeypatch)
    with pytest.raises(SecretError):
        world.hub.identities.rotate(ops, compromised=True)
    return ops


def test_gaps2_a_failed_due_revocation_refuses_its_identity_until_done(
    world: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    _rotated_with_its_revocation_due(world, monkeypatch)

    async def main() -> None:
        async with world.hub.serve(listen=("127.0.0.1", 0)) as running:
            at, hub = running.address, running.identifier
            # what `troth node status` shows (no public call shows it in-process)
            status = running._runtime.status()["services"]["broker"]
            assert status["revocations_due"] == 1
            with pytest.raises(troth.TrothError, match="compromised rotation"):
                await world.hub.secrets.lease(
                    "payments", holder="ops", broker=at, expect=hub, scope=["refunds"]
                )
            # the broker serves the others
            await world.agents.secrets.lease(
                "payments", holder="support", broker=at, expect=hub, scope=["refunds"]
            )

    asyncio.run(main())


def test_gaps2_the_due_revocation_retried_once_the_engine_is_back(
    world: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops = _rotated_with_its_revocation_due(world, monkeypatch)

    async def main() -> None:
        async with world.hub.serve(listen=("127.0.0.1", 0)) as running:
            at, hub = running.address, running.identifier
            service = local_broker(running._runtime)  # (no public call runs a round now)
            monkeypatch.undo()  # the engine back
            await service.maintain(service.clock.now())
            assert service.status()["revocations_due"] == 0
            assert world.hub.secrets.revoke_holder(ops) == []  # revoked by the retry
            await world.hub.secrets.lease(  # ops (its new key) served again
                "payments", holder="ops", broker=at, expect=hub, scope=["refunds"]
            )

    asyncio.run(main())


def test_gaps2_which_identities_are_due_unknown_refuses_every_caller(
    world: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deny when in doubt: the revocation failed and the rows due could not be read either."""
    _rotated_with_its_revocation_due(world, monkeypatch)

    def unreadable(*_args: Any) -> Any:
        raise StorageError("the store is busy")

    monkeypatch.setattr(broker_service, "due_identities", unreadable)

    async def main() -> None:
        async with world.hub.serve(listen=("127.0.0.1", 0)) as running:
            at, hub = running.address, running.identifier
            assert local_broker(running._runtime).status()["revocations_due"] is None
            with pytest.raises(troth.TrothError, match="compromised rotation"):
                await world.agents.secrets.lease(
                    "payments", holder="support", broker=at, expect=hub, scope=["refunds"]
                )

    asyncio.run(main())
