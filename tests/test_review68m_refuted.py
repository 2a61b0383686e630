"""Review 68m, fixes: attacks on four fixes of this session (68b, 68d, 68e, 68f) that did not
work, each a passing test that fails if the defence it names breaks.

1. 68b (`peer_host`): a peer choosing its own scope id. A client binds and connects to ::1
   naming scope id 7; the accepted socket's peername carries the kernel's scope id (0: Linux
   sets one only for a link-local or link-scoped multicast peer, as the receiving interface),
   so the peer is `::1`, one source, with no zone of its choosing.
2. 68b: peernames the socket could give: an IPv4 one (two items), a scope id past any index
   (2**40: `if_indextoname` overflows), one of no interface (gone since), one of an interface
   that has a name (`lo`), one whose host already carries its zone: each one host, the zone
   the interface's name or else its index, never raised, never doubled. The zone keeps two
   links' link-local peers apart (their /64 is one).
3. 68d (re-entrant session locks): a signal handler's second operation on the session while
   the first is in flight. python-pkcs11's `sign` runs C_SignInit and C_Sign in one compiled
   call with no Python code of its own between them (a garbage collection's finalizer aside),
   so a handler runs inside a search (`C_FindObjects*`: attribute decoding is Python), not a
   signature. There the token refuses the second operation (`CKR_OPERATION_ACTIVE`, SoftHSM2
   as the standard says; so it would inside a signature) and the first
   either finishes with a signature that verifies, or fails typed (`VaultError`: the refused
   search's clean-up ended the first's search, `OperationNotInitialized`); no wrong
   signature, no key used in its place, no lock left held (another thread signs after), and
   the session still serves (the refusals are not taken for a dead session).
4. 68e (the start window): a stranger asking the page at the feed's end again and again in
   the window after a start makes the node sign at most one per second (the window's rule),
   and cannot keep it open: once the clock passes the skew after the first page asked for,
   the page is served again for FEED_REUSE s, however often it was asked for meanwhile.
5. 68f (`create` decided again): a create that arrived while the caller's credential was
   valid and ran after its expiry is decided at the time it runs (the relay's clock), not at
   its arrival: refused, the name not put up.
6. 68d: a signal handler opening the token mid-open (after the first open's login, before
   its entry in the session table, whose lock it re-enters): the token refuses its login
   (`UserAlreadyLoggedIn`, a typed ConfigError), the first open stands, and no login is left
   behind the process's back (the token opens again once the first is closed).
"""

from __future__ import annotations

import signal
import socket
import sys
from pathlib import Path
from typing import Final

import pytest

from tests.conftest import SoftHsm
from tests.support.nodes import MemNet, run_memnet
from tests.test_feed_budgets import grow_feed
from tests.test_review55a_refuted import Stranger, with_stranger
from tests.test_review68d_pkcs11 import run, token_directory
from tests.test_review68e_floor import _restart
from troth import limits
from troth.errors import Denied
from troth.node.access import AccessRequest, Decision
from troth.node.services.authority import FEED_REUSE, AuthorityService
from troth.node.services.plugin import RequestContext
from troth.transport.connection import peer_host, source_host
from troth.vault.pkcs11_session import module_spelling

_LINUX: Final = pytest.mark.skipif(sys.platform != "linux", reason="Linux's scope ids, `lo`")


@_LINUX
def test_1_a_peer_cannot_choose_its_scope_id() -> None:
    """1: the client names scope id 7 binding and connecting to ::1; the node's side sees
    none, and the peer's host has no zone."""
    try:
        server = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        pytest.skip("no IPv6 here")
    with server:
        try:
            server.bind(("::1", 0))
        except OSError:
            pytest.skip("no ::1 here")
        server.listen()
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as client:
            client.bind(("::1", 0, 0, 7))
            client.connect(("::1", server.getsockname()[1], 0, 7))
            accepted, peername = server.accept()
            with accepted:
                assert peername[3] == 0
                assert peer_host(accepted.getpeername()) == "::1"
                assert source_host(peer_host(peername)) == "loopback"  # (this host: 69b)


@_LINUX
def test_2_every_peername_is_one_host_with_its_zone_by_name_or_index() -> None:
    """2: IPv4; a scope id past any index; one of no interface; `lo` by its name; a host with
    its zone already; two links' link-local peers two sources."""
    assert peer_host(("192.0.2.7", 4000)) == "192.0.2.7"
    assert peer_host(("2001:db8::1", 4000, 0, 0)) == "2001:db8::1"
    assert peer_host(("fe80::1", 4000, 0, 2**40)) == f"fe80::1%{2**40}"
    unused = max(index for index, _ in socket.if_nameindex()) + 1000
    assert peer_host(("fe80::1", 4000, 0, unused)) == f"fe80::1%{unused}"
    lo = socket.if_nametoindex("lo")
    assert peer_host(("fe80::1", 4000, 0, lo)) == "fe80::1%lo"
    assert peer_host(("fe80::1%lo", 4000, 0, lo)) == "fe80::1%lo"
    one, other = (source_host(peer_host(("fe80::1", 1, 0, i))) for i in (lo, unused))
    assert one == "fe80::/64%lo"
    assert other == f"fe80::/64%{unused}"


_SECOND_IN_HANDLER: Final = """
import faulthandler, signal, sys, threading
from pkcs11 import attributes as p11_attributes
from troth.crypto import KeyType, verify_signature
from troth.errors import VaultError
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault

faulthandler.dump_traceback_later(20, exit=True)  # hung: the test reads the traceback
module, pin = sys.argv[1:]
vault = Pkcs11Vault(module, "one", pin)
key, other = (vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY) for _ in range(2))
vault.sign(other, b"o")  # its object found: a sign of it searches for nothing
for second in ("sign", "find", "delete"):
    fresh = Pkcs11Vault(module, "one", pin)  # the same session, no key found through it yet
    ran = []

    def handler(signum, frame):  # the second operation, on the session in use
        try:
            if second == "sign":
                vault.sign(other, b"inner")
            elif second == "find":
                vault.public_key(key)
            else:
                vault.delete(key)
            ran.append("done")
        except VaultError as exc:
            ran.append(str(exc))

    def profile(frame, event, arg):  # the signal arrives while the first one searches
        if event == "call" and not ran and frame.f_code.co_name == "unpack_attributes":
            if frame.f_globals.get("__name__") == p11_attributes.__name__:
                signal.raise_signal(signal.SIGUSR1)

    signal.signal(signal.SIGUSR1, handler)
    sys.setprofile(profile)
    try:
        signature = fresh.sign(key, b"m")
        verify_signature(vault.public_key(key), signature, b"m")
        first = "verified"
    except VaultError as exc:
        first = str(exc)
    sys.setprofile(None)
    print(second, "|", ran, "|", first)
    signed = []
    thread = threading.Thread(target=lambda: signed.append(vault.sign(other, b"t")), daemon=True)
    thread.start()
    thread.join(10)
    verify_signature(vault.public_key(other), signed[0], b"t")
    verify_signature(fresh.public_key(other), fresh.sign(other, b"f"), b"f")
    fresh.close()
vault.delete(other)
vault.close()
"""


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="no SIGUSR1 here")
def test_3_a_signal_handlers_second_operation_mid_search_is_refused_typed(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    """3: the handler signs, searches, deletes while the first operation searches: each
    second operation is refused by the token (or runs outside any crypto operation); the
    first signs correctly or fails typed; nothing is left held; the session serves."""
    env = token_directory(tmp_path, softhsm, "one")
    lines = run(_SECOND_IN_HANDLER, env, module_spelling(softhsm.module), softhsm.pin)
    outcomes = {line.split(" | ")[0]: line.split(" | ")[1:] for line in lines}
    assert set(outcomes) == {"sign", "find", "delete"}
    sign_ran, sign_first = outcomes["sign"]
    assert "OperationActive" in sign_ran
    assert sign_first == "verified"
    for second in ("find", "delete"):
        ran, first = outcomes[second]
        assert "OperationActive" in ran
        assert first == "verified" or "OperationNotInitialized" in first


_OPEN_IN_HANDLER: Final = """
import faulthandler, signal, sys
from troth.errors import ConfigError, VaultError
from troth.vault.pkcs11 import Pkcs11Vault

faulthandler.dump_traceback_later(20, exit=True)  # hung: the test reads the traceback
module, pin = sys.argv[1:]
ran = []

def handler(signum, frame):  # opens the token while the first open has logged in
    try:
        Pkcs11Vault(module, "one", pin).close()
        ran.append("opened")
    except (ConfigError, VaultError) as exc:
        ran.append(str(exc))

def profile(frame, event, arg):  # after the first open's login, before its table entry
    if event == "call" and not ran and frame.f_code.co_name == "__init__":
        if frame.f_globals.get("__name__") == "troth.vault.pkcs11_session":
            signal.raise_signal(signal.SIGUSR1)

signal.signal(signal.SIGUSR1, handler)
sys.setprofile(profile)
first = Pkcs11Vault(module, "one", pin)
sys.setprofile(None)
print(ran[0])
first.close()
Pkcs11Vault(module, "one", pin).close()  # no login left behind the process's back
print("opened again")
"""


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="no SIGUSR1 here")
def test_6_a_signal_handlers_open_mid_open_is_refused_typed_and_leaves_no_login(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    """6: the handler opens the token between the first open's login and its entry in the
    session table (the table's lock re-entered): the token refuses the second login
    (`UserAlreadyLoggedIn`, a ConfigError), the first open stands, and once it is closed the
    token opens again in the process."""
    env = token_directory(tmp_path, softhsm, "one")
    refused, again = run(_OPEN_IN_HANDLER, env, module_spelling(softhsm.module), softhsm.pin)
    assert "UserAlreadyLoggedIn" in refused
    assert again == "opened again"


def _signings(service: AuthorityService) -> list[int]:
    """The times the hub's authority signs a feed page at, from now on."""
    times: list[int] = []
    authority = service.authority
    sign = authority.feed_page

    def counted(*, now: int, since: int = 0) -> tuple[bytes, int]:
        times.append(now)
        return sign(now=now, since=since)

    authority.feed_page = counted  # type: ignore[method-assign]
    return times


def test_4_the_start_window_signs_once_a_second_and_closes(tmp_path: Path) -> None:
    """4: the page at the feed's end asked 20 times a second in the window after a start:
    one signature a second; past the window, the page is served again for FEED_REUSE s."""

    async def test(net: MemNet) -> None:
        latest = grow_feed(net, 4, 1)
        _restart(net)
        assert net.hub is not None
        service = net.hub.host.services["authority"]
        assert isinstance(service, AuthorityService)
        signed = _signings(service)
        start = net.clock.now()
        window = limits.MAX_CLOCK_SKEW_SECONDS
        seconds = [*range(10), *range(window - 5, window + 1)]  # its start and its end
        for second in seconds:
            now = start + second
            pages = {service._page(latest, now) for _ in range(20)}
            assert len(pages) == 1
        assert len(signed) == len(seconds)  # one a second asked in
        last = service._page(latest, start + window)  # signed at the window's last second
        for now in range(start + window + 1, start + window + FEED_REUSE):
            assert service._page(latest, now) == last  # served again: the window closed
        assert len(signed) == len(seconds)

    run_memnet(test, tmp_path / "home")


def test_5_a_create_that_runs_after_its_callers_expiry_is_refused(tmp_path: Path) -> None:
    """5: b's `create b2` arrived before its credential's expiry (the relay's decision point
    refuses a request made at or after it) and runs after it: refused, b2 not up."""

    async def test(net: Stranger) -> None:
        b = net.relay.relays["b"]
        end = net.hub.channels.find(b.channel)
        assert end is not None
        assert end.caller is not None
        expiry = net.relay.clock()

        def decide(request: AccessRequest) -> Decision:
            return Decision(request.now < expiry, ("expired",))

        arrived = RequestContext(end.caller, (), Decision(True, ()), expiry - 10)
        net.relay.decide = decide
        with pytest.raises(Denied, match="expired"):
            await net.relay.create("b2", arrived)
        assert "b2" not in net.relay.relays

    with_stranger(tmp_path, test)
