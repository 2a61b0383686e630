"""Review 69j (gaps): two gaps earlier helpers left (69c: channel keys; 69d: broker).

gaps 1 (medium: a second channel key, one orphaned in the vault; the event loop held by a slow
  sign) `ShownIdentity._renew_identity` cleared the cached channel identity, then renewed it on
  the storage thread. With a vault whose generate/sign is slow (an HSM), a handshake arriving
  in that gap found no cache and renewed on the event loop too: two channel keys generated and
  attested at once, the loser's key left in the vault under no record, and the loop blocked
  for the HSM's sign. A cached identity past its time was renewed on the loop as well. Now
  the cache stays while the storage thread renews (the loop shows it meanwhile), renewals hold
  one lock, and a loop finding the cache past its time (still valid) starts the renewal on the
  storage thread and shows the cached identity.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import MemNet, run_memnet
from tests.test_review68v_renewal import _short_keys
from troth.errors import KeyNotFound
from troth.node.runtime import NodeRuntime
from troth.node.shown_identity import IDENTITY_CACHE
from troth.crypto import KeyType
from troth.vault import KeyHandle, KeyPurpose

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
        assert shown == [before] * 3 and True not in generated.on_loop  # none on the loop
        for _ in range(40):
            await asyncio.sleep(SLOW_HSM / 4)
            if b.channels.me().attestation != before:
                break
        assert b.channels.me().attestation != before
        assert generated.on_loop == [False] and len(generated.held()) == 1  # one renewal

    run_memnet(test, tmp_path)
