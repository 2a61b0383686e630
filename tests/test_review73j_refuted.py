"""Review 73j (area: forks2): attacks on 73d's fork holds and on the write-buffer join that did
not work, kept as guards (each bounded: a hang fails, it never blocks)."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from typing import Any

import pytest

from tests.conftest import SoftHsm
from tests.support.processes import survives
from tests.test_review72w_split import _held_here, _Session
from tests.test_review73d_forks import _signalled_at
from troth.routing import RoutedMessage, Router
from troth.transport import TcpSettings, TcpTransport
from troth.transport.tcp import TcpConnection
from troth.vault.pkcs11_fork import hold_sessions, release_held

_INTERRUPTED_FORKS = r"""
import inspect, os, signal, sys, threading, time
from troth.crypto import KeyType
from troth.vault import KeyPurpose, pkcs11_fork
from troth.vault import pkcs11 as vaults
from troth.vault.pkcs11 import Pkcs11Vault

module, label, pin = sys.argv[1:4]
lines, first = inspect.getsourcelines(pkcs11_fork._take_held)
waiting_at = first + next(n for n, line in enumerate(lines) if "filter(_take, mine)" in line)
raised = []
sys.unraisablehook = lambda report: raised.append(report.exc_type.__name__)
main = threading.main_thread().ident
vault = Pkcs11Vault(module, label, pin)
handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
(shared,) = [s for s in vaults._SESSIONS.values() if s.pid == os.getpid()]


def interrupt(to_main):
    with shared.lock:  # a signature in flight: the fork waits for it in hold_sessions
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until the fork waits inside its C call
            frame = sys._current_frames().get(main)
            if frame.f_code.co_name == "_take_held" and frame.f_lineno == waiting_at:
                break
            time.sleep(0.001)
        # to the forking thread: its wait is interrupted, the handler raises inside acquire;
        # to this one: the handler runs in the forking thread once its acquire returned
        signal.pthread_kill(main if to_main else threading.get_ident(), signal.SIGINT)


def after():
    vault.sign(handle, b"after")
    Pkcs11Vault(module, label, pin).close()


try:
    for to_main in (True, False):
        interrupter = threading.Thread(target=interrupt, args=(to_main,), daemon=True)
        interrupter.start()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        interrupter.join(10)
        checker = threading.Thread(target=after, daemon=True)
        checker.start()
        checker.join(10)
        print("hung" if interrupter.is_alive() or checker.is_alive() else "ok", flush=True)
        os.waitpid(pid, 0)  # (it exited at once)
finally:
    vault.delete(handle)
    vault.close()
print(*raised)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="fork and pthread_kill on Linux")
def test_ctrl_c_while_a_fork_waits_for_a_signature_leaves_no_lock_held(
    softhsm: SoftHsm,
) -> None:
    """73j refuted: a real SIGINT (KeyboardInterrupt) in a process on SoftHSM2 while its main
    thread's fork waits in `hold_sessions` for the session's lock (a signature in flight),
    sent to the forking thread (its wait interrupted: CPython's RLock.acquire runs the handler
    and returns with the lock not taken) and to the signing thread (the handler runs in the
    forking thread after its acquire returned: the lock listed by the same C call): the
    handler raised in the hook both times, the fork went on, and a signature and an open from
    another thread came back after each."""
    out = survives(_INTERRUPTED_FORKS, softhsm.module, softhsm.token_label, softhsm.pin, timeout=60)
    assert out.split() == ["ok", "ok", "KeyboardInterrupt", "KeyboardInterrupt"]


def test_a_raising_handler_in_a_fork_from_the_locks_holder_leaves_its_hold_as_it_was() -> None:
    """73j refuted: a thread that holds the session's lock (a signature) forks (a signal
    handler's fork, review 68d: the lock taken again, re-entrantly), a handler raising at each
    place one runs inside `hold_sessions`: after the fork's `release_held` the thread holds the
    lock exactly as before (released once more frees it; never released twice)."""
    point = 0
    while True:
        table, session = threading.RLock(), _Session()
        sessions: dict[Any, Any] = {"token": session}
        with session.lock:
            raised = _signalled_at(
                point,
                "hold_sessions",
                lambda: hold_sessions(sessions, table),  # noqa: B023 - this iteration's
            )
            release_held()
            assert not _held_here(table)
            assert _held_here(session.lock)  # the signature's own hold
        assert not _held_here(session.lock)
        if not raised:
            break
        point += 1
    assert point > 0


def test_a_bytearray_changed_after_its_frame_was_written_apart_is_sent_as_written() -> None:
    """73j refuted: through the event loop's own transport on this Python, a frame written
    behind bytes the socket did not take (so its payload goes apart from its header on 3.11),
    its payload a bytearray changed right after the send: the peer reads the bytes as they were
    written (3.11's write copies them; 3.12's would keep the bytearray, so it is joined)."""

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        mine, peer = socket.socketpair()
        with mine, peer:
            peer.setblocking(False)
            transport = TcpTransport(Router(), TcpSettings())
            connection = TcpConnection(transport, outgoing=True, listener=None, peer="p:1")
            writer, _ = await loop.create_connection(lambda: connection, sock=mine)
            try:
                while not writer.get_write_buffer_size():  # until the socket takes no more
                    await connection.send(RoutedMessage((), (), bytes(100 * 1024)))
                    await asyncio.sleep(0)  # (each frame its own loop iteration)
                payload = bytearray(b"written")
                await connection.send(RoutedMessage((), (), payload))
                payload[:] = b"changed"
                received = bytearray()
                while not received.endswith((b"written", b"changed")):
                    received += await loop.sock_recv(peer, 1 << 20)
                return bytes(received[-7:])
            finally:
                await transport.close()

    assert asyncio.run(asyncio.wait_for(main(), 10)) == b"written"
