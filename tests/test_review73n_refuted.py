"""Review 73n (area: forks3): attacks on 73j's fork holds (troth.vault.pkcs11_session: a
per-thread chain of C calls releases a fork's hold, in the parent and the child, before the
child's `_unlock_in_child`) and on its `write_copies` (troth.transport.tcp_connection) in
ordinary use, that did not work, kept as guards (each bounded: a hang fails, it never blocks)."""

from __future__ import annotations

import asyncio
import ssl
import sys
from asyncio import sslproto

import pytest

from tests.conftest import SoftHsm
from tests.support.processes import survives
from tests.support.waits import until
from troth.routing import Router
from troth.transport import TcpSettings, TcpTransport
from troth.transport.connection import Listener
from troth.transport.tcp_connection import write_copies

_FORKERS = r"""
import contextlib, os, signal, sys, threading, time
from troth.crypto import KeyType
from troth.vault import KeyPurpose
from troth.vault import pkcs11 as vaults
from troth.vault.pkcs11 import Pkcs11Vault
from troth.vault.pkcs11_fork import _HELD

module, label, pin = sys.argv[1:4]
raised = []  # what a fork hook raised, CPython's "Exception ignored in" (parent and child)
sys.unraisablehook = lambda report: raised.append(repr(report.exc_value))
table = vaults._SESSIONS_LOCK  # the parent's (a child makes its own)
state = {"vault": None, "handle": None}
lock = threading.Lock()  # one child at a time logs in: SoftHSM2's file store (see below)


def child(signs):
    signal.alarm(10)  # a child that hangs ends (SIGALRM): no process outlives the test
    locks = [table] + [s.lock for s in vaults._SESSIONS.values()]
    if raised or _HELD.holds or any(lock._is_owned() for lock in locks):
        os._exit(4)  # a hook raised, a hold is listed, or a lock is held by this thread
    if vaults._SESSIONS_LOCK is table or vaults._SESSIONS_LOCK._is_owned():
        os._exit(5)
    if signs:  # its own session on the module initialised anew, the parent's key
        vault = Pkcs11Vault(module, label, pin)
        vault.sign(state["handle"], b"child")
        vault.close()
    os._exit(0)


def forker(number, errors):
    for _ in range(20):
        signs = number == 0 and state["vault"] is not None
        with lock if signs else contextlib.nullcontext():
            pid = os.fork()
            if pid == 0:
                child(signs)
            _, status = os.waitpid(pid, 0)
        if status:
            errors.append(status)


def forking(phase):
    errors = []
    threads = [threading.Thread(target=forker, args=(n, errors), daemon=True) for n in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    hung = any(thread.is_alive() for thread in threads)
    free = table.acquire(blocking=False)  # (this thread never forked: it holds nothing)
    if free:
        table.release()
    print(phase, "hung" if hung else "ok", sorted(set(errors)), free, flush=True)
    return not hung


def signer(stop, signed):
    while not stop.is_set():
        state["vault"].sign(state["handle"], b"parent")
        signed.append(1)


if forking("empty"):  # no vault open: a hold of the table's lock alone
    state["vault"] = Pkcs11Vault(module, label, pin)
    state["handle"] = state["vault"].generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    stop, signed = threading.Event(), []
    signers = [threading.Thread(target=signer, args=(stop, signed), daemon=True) for _ in "ab"]
    for thread in signers:
        thread.start()
    done = forking("signing")
    stop.set()
    for thread in signers:
        thread.join(10)
    if done and not any(thread.is_alive() for thread in signers):
        state["vault"].sign(state["handle"], b"after")
        state["vault"].delete(state["handle"])
        state["vault"].close()
        print("signed", bool(signed), flush=True)
print("raised", raised, flush=True)
os._exit(0)  # (a hung thread is reported, not waited for)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="fork from threads on Linux")
def test_threads_forking_at_once_while_others_sign_leave_every_lock_released_once(
    softhsm: SoftHsm,
) -> None:
    """73n refuted: 8 threads forking 20 times each at once (each child checks and exits at
    once), first with no vault open (the hooks hold the table's lock alone), then while two
    threads sign on SoftHSM2 and one forker's children open a vault of their own and sign
    with the parent's key: no fork hangs, no hook raises (CPython's "Exception ignored", in
    the parent or a child: a double release would be a RuntimeError there), in each child no
    hold is listed and neither the parent's table lock nor a session's is held by its thread
    (released by the same thread id as took them, before `_unlock_in_child` made the child's
    own table lock), and the parent signs after. (Children logging in one at a time: SoftHSM2's
    file store lists no token to a C_Initialize while another process logs in, found so here
    with 8 independent processes and no fork.)"""
    out = survives(_FORKERS, softhsm.module, softhsm.token_label, softhsm.pin, timeout=60)
    assert out.splitlines() == [
        "empty ok [] True",
        "signing ok [] True",
        "signed True",
        "raised []",
    ]


def test_a_tls_transport_is_not_taken_for_one_that_copies_what_is_written() -> None:
    """73n refuted: asyncio's TLS transport (its write keeps each object in a backlog until the
    TLS object encrypts it) has no `_buffer`: `write_copies` says no, so a payload not `bytes`
    is joined to its header there. (The node's connections are plain TCP, Noise inside.)"""

    async def main() -> bool:
        loop = asyncio.get_running_loop()
        context = ssl.create_default_context()
        waiter = loop.create_future()
        protocol = sslproto.SSLProtocol(
            loop, asyncio.Protocol(), context, waiter, server_hostname="peer"
        )
        return write_copies(sslproto._SSLProtocolTransport(loop, protocol))

    assert asyncio.run(main()) is False


def test_both_ends_of_a_node_connection_ask_the_transport_they_were_given() -> None:
    """73n refuted: `write_copies` asked of a transport not yet connected, or of another than
    the connection writes to: a node's connection, made and accepted on loopback by the event
    loop's own transport (what troth uses: plain TCP, no uvloop), is told at `connection_made`
    (the transport it then writes to, connected) what that transport does on this Python
    (3.11's copies what is written, 3.12's keeps it), at both ends."""

    async def main() -> list[bool]:
        server, client = (TcpTransport(Router(), TcpSettings()) for _ in range(2))
        try:
            host, port = await server.listen("127.0.0.1", 0, Listener())
            outgoing = await client.connect(host, port)
            await until(lambda: bool(server._accepted), timeout=5)
            (accepted,) = server._accepted
            return [outgoing._write_copies, accepted._write_copies]
        finally:
            await client.close()
            await server.close()

    copies = sys.version_info < (3, 12)
    assert asyncio.run(asyncio.wait_for(main(), 10)) == [copies, copies]
