"""Review 73d (area: forks): attacks on the PKCS#11 fork holds and the frames a connection
queues apart that did not work, kept as guards (each bounded: a hang fails, it never blocks)."""

from __future__ import annotations

import asyncio
import importlib
import logging
import multiprocessing
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import vault_fixture
from tests.test_review53n_queues import FakeSocket
from troth.crypto import KeyType
from troth.routing import RoutedMessage, Router
from troth.transport import TcpSettings, TcpTransport
from troth.transport.tcp import TcpConnection
from troth.transport.tcp_connection import SPLIT_FROM
from troth.vault import KeyHandle, KeyPurpose
from troth.vault import pkcs11 as pkcs11_vault
from troth.vault.pkcs11 import Pkcs11Vault

__all__ = ["vault_fixture"]

GUARD = 10.0
"""Seconds a thread is given to end: one still running has hung."""

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")


@pytest.fixture(name="handle")
def handle_fixture(vault: Pkcs11Vault) -> Iterator[KeyHandle]:
    """A key on the token, deleted after."""
    handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    try:
        yield handle
    finally:
        vault.delete(handle)


def _forks_while_signing(
    vault: Pkcs11Vault, handle: KeyHandle, softhsm: SoftHsm, fork: Callable[[], None]
) -> None:
    """`fork()` three times while a thread signs on; then, in another thread, a signature and a
    vault opened and closed (the session's lock and the table's are free): all in GUARD."""
    stop = threading.Event()
    signed: list[int] = []

    def signing() -> None:
        while not stop.is_set():
            vault.sign(handle, b"in flight")
            signed.append(1)

    def after() -> None:
        vault.sign(handle, b"after")
        Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin).close()
        signed.append(2)

    signer = threading.Thread(target=signing, daemon=True)
    signer.start()
    try:
        for _ in range(3):
            fork()
    finally:
        stop.set()
        signer.join(GUARD)
    assert not signer.is_alive()
    checker = threading.Thread(target=after, daemon=True)
    checker.start()
    checker.join(GUARD)
    assert not checker.is_alive()
    assert signed[-1] == 2


@needs_fork
def test_a_subprocess_with_a_preexec_fn_while_a_thread_signs(
    vault: Pkcs11Vault, handle: KeyHandle, softhsm: SoftHsm
) -> None:
    """73d refuted: subprocess with a preexec_fn forks with the fork hooks (in parent and child,
    where the preexec_fn runs) while another thread signs: no lock is left held, nothing hangs;
    tried three such subprocesses, then a signature and an open from another thread."""

    def run() -> None:
        subprocess.run(["true"], preexec_fn=os.getpid, check=True, timeout=GUARD)

    _forks_while_signing(vault, handle, softhsm, run)


@needs_fork
def test_a_fork_process_pool_while_a_thread_signs(
    vault: Pkcs11Vault, handle: KeyHandle, softhsm: SoftHsm
) -> None:
    """73d refuted: a ProcessPoolExecutor of the "fork" context forks its workers from the
    submitting thread while another thread signs: each worker runs, no lock is left held in the
    parent; tried three pools of one worker, then a signature and an open from another
    thread."""

    def run() -> None:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            assert pool.submit(os.getpid).result(timeout=GUARD) != os.getpid()

    _forks_while_signing(vault, handle, softhsm, run)


def test_split_frames_queued_are_given_back_once_on_close_and_on_reset() -> None:
    """73d refuted: frames queued apart (72m) and joined, for a peer whose write buffer is full,
    are given back to the node's counts exactly once whether the connection is closed (then
    lost) or reset (lost at once): tried both, the counts checked after (never below 0)."""

    async def main() -> None:
        transport = TcpTransport(Router(), TcpSettings())
        for closed in (True, False):
            connection = TcpConnection(transport, outgoing=True, listener=None, peer="10.0.0.8:1")
            connection.connection_made(FakeSocket("10.0.0.8", 1))
            connection.pause_writing()  # the peer reads nothing: frames queue
            for size in (SPLIT_FROM, 100, 2 * SPLIT_FROM):
                await connection.send(RoutedMessage((), (), memoryview(bytes(size + 7))[7:]))
            assert transport.queued_bytes > 3 * SPLIT_FROM
            if closed:
                await connection.close()
            connection.connection_lost(None)
            assert (transport.queued_bytes, transport.queued_from("10.0.0.8")) == (0, 0)
        await transport.close()

    asyncio.run(main())


class _Waited:
    """A session's lock that says when a thread other than its holder waits for it."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.waited = threading.Event()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not self.lock.acquire(blocking=False):
            self.waited.set()
            return self.lock.acquire(blocking, timeout)
        return True

    def release(self) -> None:
        self.lock.release()


@needs_fork
def test_a_signer_importing_and_logging_while_a_fork_waits_for_its_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """73d refuted: a thread forks while another holds a session's lock, and the holder then
    imports a module not yet imported and takes logging's lock (each held by a forking thread
    from its fork hooks on): the fork's hook runs before CPython takes the import lock, and
    before logging's hook (registered first, run after), so the holder goes on, lets go, and
    the fork ends; tried with a real os.fork from a thread, all bounded by GUARD."""
    session = SimpleNamespace(lock=_Waited(), pid=os.getpid())
    monkeypatch.setitem(pkcs11_vault._SESSIONS, ("73d", "waited"), session)
    (tmp_path / "troth_73d_fresh.py").write_text("VALUE = 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "troth_73d_fresh", raising=False)
    done: list[str] = []

    def holder() -> None:
        with session.lock.lock:  # an operation in flight
            session.lock.waited.wait(GUARD)  # the fork waits for it now
            done.append(str(importlib.import_module("troth_73d_fresh").VALUE))
            logging.getLogger("troth.review73d.fresh").debug("logged")
        done.append("released")

    def forker() -> None:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        done.append(f"exit {os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])}")

    threads = [threading.Thread(target=run, daemon=True) for run in (holder, forker)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(GUARD)
    assert not any(thread.is_alive() for thread in threads)
    assert done == ["7", "released", "exit 0"]
