"""Review 57o: attacks on this session's new code that did not work (each test fails if the
defence it shows breaks)."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.histories import DAY
from tests.test_reconnect import until
from tests.test_resilience_enrollment import Hub, hub, prepare, troth  # noqa: F401
from tests.test_review57f_forwards import _inject_spec
from tests.test_review57g_authority import ORDERS, Member, _link_after_rotation, member  # noqa: F401
from tests.test_review57o_authority import delegated_below
from troth.authority import Ticket
from troth.authority.client import check_ticket, enroll_request, revoke_request
from troth.clock import FixedClock
from troth.credentials import Attributes
from troth.errors import (
    AuthorityError,
    AuthorityFailure,
    IdentityError,
    IdentityFailure,
    SecretError,
)
from troth.identity import Identifier, IdentityService, rotate_identity
from troth.node import init_node, open_node
from troth.routing import Address, RoutedMessage, Router, Source
from troth.secrets import HttpRequest
from troth.secrets.engines.http_inject import HttpInjectEngine
from troth.storage import SqliteAuthorityStore, SqliteDatabase, SqliteIdentityStore
from troth.transport import Listener, TcpSettings, TcpTransport, frame
from troth.transport.tcp_connection import CUT_BATCH, TcpConnection
from troth.vault import SoftwareVault

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs 127/8")
SINK = Address("service", "sink")


def _sink(payload: bytes) -> bytes:
    return frame(RoutedMessage((SINK,), (), payload).encode())


def _run(test: Callable[[TcpTransport, list[bytes], int], Awaitable[None]]) -> None:
    """`test` with a bare TCP transport listening on loopback, the payloads its SINK got (in
    order) and its port."""

    async def main() -> None:
        router, got = Router(), []

        async def sink(message: RoutedMessage, source: Source | None) -> None:
            got.append(bytes(message.payload))

        router.register(SINK, sink)
        transport = TcpTransport(router, TcpSettings())
        _host, port = await transport.listen("127.0.0.1", 0, Listener(frozenset({SINK})))
        try:
            await asyncio.wait_for(test(transport, got, port), 30)
        finally:
            await transport.close()

    asyncio.run(main())


def _only(transport: TcpTransport) -> TcpConnection:
    (connection,) = transport.connections()
    assert isinstance(connection, TcpConnection)
    return connection


@linux
def test_frames_cut_in_batches_arrive_all_in_order_and_reading_goes_on() -> None:
    """Transport (57c's batches): 6,000 messages in one write, tiny ones and every 97th of
    3,000 bytes (frames split across reads and across the `CUT_BATCH` boundary), while the
    source is far past its queue (64 frames) and its share: each arrives once, in order; a
    message sent after the burst on the same connection arrives too (reading resumed, no
    stall), and once the peer closes nothing is left charged to the budget."""
    count = 6_000
    payloads = [n.to_bytes(4, "big") * (750 if n % 97 == 0 else 1) for n in range(count)]

    async def test(transport: TcpTransport, got: list[bytes], port: int) -> None:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(map(_sink, payloads)))
        await writer.drain()
        await until(lambda: len(got) == count, 20)
        assert got == payloads
        assert _only(transport).frames_read == count > 5 * CUT_BATCH
        writer.write(_sink(b"tail"))
        await writer.drain()
        await until(lambda: len(got) == count + 1, 10)
        assert got[-1] == b"tail"
        writer.close()
        await until(lambda: not transport.connections(), 10)
        assert transport.inbound.held == 0

    _run(test)


@linux
def test_a_connection_closed_between_batches_routes_nothing_more_and_frees_its_budget() -> None:
    """Transport: the node closes a connection (as eviction does) while frames of its last
    read still wait in the read buffer, a batch a turn: none of them is routed after the close,
    the frames queued are given up, and the budget holds nothing for it."""
    count = 60_000

    async def test(transport: TcpTransport, got: list[bytes], port: int) -> None:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_sink(b"") * count)
        await writer.drain()
        await until(lambda: bool(transport.connections()) and _only(transport)._cutting, 10)
        connection = _only(transport)
        await connection.close()
        routed = len(got)
        assert routed < count
        for _ in range(50):  # turns of the loop in which the next batches would have come
            await asyncio.sleep(0)
        assert len(got) == routed
        assert not connection._frames
        assert transport.inbound.held == 0
        writer.close()

    _run(test)


@linux
def test_a_stale_backups_ticket_opens_no_channel_where_the_rotation_is_stored(
    hub: Hub,  # noqa: F811 - the fixture imported above
    troth_home: Path,
) -> None:
    """Authority (57e's `_ticket_history`: a ticket whose authority history is an older prefix
    of the stored copy is taken): a thief restores a backup of acme's node taken before acme
    rotated and runs it at its own address, where the backup's own tickets name it. A node that
    stored acme's rotation takes such a ticket now, but the channel to the ticket's address is
    judged against the stored, rotated history: the thief's handshake (the pre-rotation key) is
    refused, nothing is redeemed, nothing held, and the stored copy stays rotated. A node that
    never saw the rotation (`agent2`) is enrolled by the thief, as it was before (what the
    stored rotation is for)."""
    setup = prepare(hub.route)  # the ticket names the thief's address (hub's port)
    init_node("agent2")
    with open_node("acme") as acme, open_node("agent2") as agent2:
        authority = acme.authority()
        agent2.identities.create(now=int(time.time()), name="agent2")
        second = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"team.name": "x"}),
            address=hub.route,
            now=int(time.time()),
        )
    nodes = troth_home / "nodes"
    shutil.copytree(nodes / "acme", troth_home / "backup")  # the thief's copy: change 0
    troth("identity", "rotate", "acme", "--node", "acme")
    with open_node("acme") as acme, open_node("agent") as agent:
        rotated_history = acme.authority().history()
        agent.identities.import_history(rotated_history, now=int(time.time()))  # a channel's
        digest = acme.authority().identifier
    shutil.move(nodes / "acme", troth_home / "real-acme")
    shutil.move(troth_home / "backup", nodes / "acme")  # the thief runs the stale backup
    hub.start()
    refused = troth("enroll", setup.ticket, "--as", "agent", "--node", "agent", code=None)
    assert refused.returncode != 0, refused.stdout
    assert "peer invalid (history is older than the stored copy" in refused.stderr
    taken = troth("enroll", str(second), "--as", "agent2", "--node", "agent2", code=None)
    assert taken.returncode == 0, taken.stdout + taken.stderr
    hub.stop()
    with open_node("agent") as agent, open_node("acme") as thief:
        assert not agent.wallet.held("agent")
        assert agent.identities.stored_changes(digest) == 2  # still the rotated copy
        store = SqliteAuthorityStore(thief.db)
        assert store.count_redemptions(setup.member.digest) == 0


def test_refused_revoke_requests_keep_only_rotations_of_stored_identities_once(
    member: Member,  # noqa: F811 - the fixture imported above
) -> None:
    """Refuted (57g's `_keep_issuers`, before any decision): 50 revoke requests by an identity
    the authority does not know (not upstream of the link: refused), each carrying a chain with
    her rotated history and two issuers and a subject it does not store: only her rotation is
    stored and published, once; nothing of the others, nor of the requester, is kept."""
    now = NOW + 20
    link = _link_after_rotation(member, now)
    below = delegated_below(member, link, now)
    store, identities = member.authority.store, member.authority.identities
    her = Identifier(member.member.identities.find("member").identifier)
    entries = []
    for step in range(50):
        request = revoke_request(
            member.member.identities,
            "below",
            member.authority.identifier,
            credential_hash=link.credentials[-1].hash,
            chain=below.encode(),
            reason="",
            now=now + step,
        )
        with pytest.raises(AuthorityError) as refused:
            member.authority.revoke_link(request, now=now + step)
        assert refused.value.reason is AuthorityFailure.NOT_UPSTREAM
        entries.append(store.revocation_tip()[0])
    assert identities.stored_changes(her) == 2
    assert store.latest_supersession(her.digest) is not None
    assert len(set(entries)) == 1  # one supersession, at the first request; nothing after
    assert identities.stored_changes(member.sub) is None
    assert identities.stored_changes(member.below) is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"_method": "GET", "_method": "DELETE"}',  # duplicate keys: the last wins in JSON.parse
        b'{"\\u005f\\u006d\\u0065\\u0074\\u0068\\u006f\\u0064": "DELETE"}',  # the whole key
        b"amount=1&%5Fmethod=DELETE",  # form-urlencoded `%5F`
        b"amount=1&%5f%6d%65%74%68%6f%64=DELETE",  # every letter escaped
        b"amount=1&_METHOD=DELETE",
    ],
)
def test_other_spellings_of_the_method_parameter_are_refused(body: bytes) -> None:
    """Secrets (57f's normalisation): duplicate JSON keys, a key escaped whole, `%5F` and
    percent-escapes of every letter, upper case: each is `_method` to the check too."""
    request = HttpRequest("POST", "/orders", (), body)
    with pytest.raises(SecretError, match="method-override"):
        HttpInjectEngine().check_request(_inject_spec(), ("write",), request)


@pytest.mark.parametrize(
    "name", ["X_HTTP_Method", "X.Method.Override", "x_method_override", "X-Forwarded_Prefix"]
)
def test_method_and_forwarding_headers_are_dropped_in_every_cgi_spelling(name: str) -> None:
    """Secrets: `X-HTTP-Method` and `X-Method-Override` (ASP.NET's, Google's) and an
    `X-Forwarded-*` are dropped under `_` and `.` spellings; a name with a look-alike letter
    (Cyrillic U+0435 for `e`) is not a token: the request is refused, not forwarded."""
    spec = _inject_spec()
    request = HttpRequest("POST", "/orders", ((name, "DELETE"), ("X-Kept", "1")), b"")
    _target, headers = HttpInjectEngine().check_request(spec, ("write",), request)
    assert headers == [("X-Kept", "1")]
    homoglyph = HttpRequest("POST", "/orders", (("X-HTTP-M\u0435thod", "DELETE"),), b"")
    with pytest.raises(SecretError, match="malformed"):
        HttpInjectEngine().check_request(spec, ("write",), homoglyph)


def test_a_ticket_with_a_stored_prefix_and_a_fork_is_refused(tmp_path: Path) -> None:
    """Authority (57e's `_ticket_history`): a node stores acme's history rotated three times;
    the thief, holding the keys of change 1 (a backup taken after the first rotation), writes a
    ticket whose history is changes 0 and 1 and a rotation of its own (shorter than the stored
    copy, as an older prefix is): a fork, refused by
    `check_ticket` and `enroll_request` (not taken as an older prefix), and the stored copy is
    unchanged; the plain prefix (changes 0 and 1) is taken, naming acme."""
    from tests.test_review57g_refuted import NOW as AT
    from tests.test_review57g_refuted import YEAR, rotated

    vault = SoftwareVault()
    once = rotated(vault, times=1).after  # changes 0 and 1: what the backup holds
    two, fork = (  # acme's change 2, and the thief's own from the same keys
        rotate_identity(vault, once.identity, once.primary, once.next_key, now=at, valid_for=YEAR)
        for at in (AT - DAY + 1, AT - 3)
    )
    real = rotate_identity(  # and acme's change 3: the fork is shorter than the stored copy
        vault, two.identity, two.primary, two.next_key, now=AT - 2, valid_for=YEAR
    ).identity
    db = SqliteDatabase(tmp_path / "n.db")
    identities = IdentityService(SoftwareVault(), SqliteIdentityStore(db), clock=FixedClock(AT))
    identities.import_history(real.history, now=AT)
    assert identities.stored_changes(real.identifier) == 4
    prefix = Ticket(b"\x03" * 16, once.identity.history, "/tcp/thief:4000")
    assert check_ticket(identities, prefix, now=AT) == real.identifier
    forked = Ticket(b"\x03" * 16, fork.identity.history, "/tcp/thief:4000")
    identities.create(now=AT, name="holder")
    for attempt in (
        lambda: check_ticket(identities, forked, now=AT),
        lambda: enroll_request(identities, "holder", forked, now=AT),
    ):
        with pytest.raises(IdentityError) as refused:
            attempt()
        assert refused.value.reason is IdentityFailure.FORK
    assert identities.stored_changes(real.identifier) == 4
    assert identities.check_history(real.history, now=AT).identifier == real.identifier
