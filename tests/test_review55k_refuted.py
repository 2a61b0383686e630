"""Review 55k: attacks on this session's fixes (reviews 55a, 55d, 55f) that did not work, as
passing tests (each fails if the defence it shows breaks)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.gates import T, make_world
from tests.support.held_source import HeldSources
from tests.test_reconnect import until
from tests.test_review53n_queues import FakeSocket, feed
from tests.test_review55d_lifecycle import _swap_signing_handles
from tests.test_review55d_vault import _AAD, _sealing
from troth.errors import PolicyError, VaultError
from troth.gates import ToolCall, check_caveat
from troth.node import init_node, open_node
from troth.node.rekey import rekey_vault
from troth.storage import SqliteDatabase
from troth.transport.tcp import TcpConnection
from troth.vault import KeyPurpose

# -- transport: review 55a's holds -----------------------------------------------------------


def test_a_hold_ends_when_the_held_sources_connection_closes_and_its_frames_go() -> None:
    """The stranger that passed its share closes its connection while its frames wait and a
    peer of its address is held: the closed connection's frames are still routed, and once
    they are, the peer reads again (no release that never comes), and nothing is left of the
    source in the holds."""

    async def main() -> None:
        net = HeldSources()
        stranger, _ = net.over_share("10.0.0.1")
        peer, peer_socket = net.accept("10.0.0.1", 1001)
        assert peer_socket.paused
        stranger.connection_lost(None)
        assert net.transport.holds.held("10.0.0.1")  # its frames still wait
        net.release.set()
        await until(lambda: not peer_socket.paused, 10)
        assert net.transport.inbound.held == 0
        assert not net.transport.holds.held("10.0.0.1")
        peer.connection_lost(None)
        assert net.transport.holds._by_host == {}
        await net.transport.close()

    asyncio.run(main())


def test_many_source_addresses_leave_nothing_in_the_holds() -> None:
    """Connections from 500 addresses, each bringing a frame, then closed; and a source held
    and released: the holds keep no entry per address once they are gone."""

    async def main() -> None:
        net = HeldSources()
        net.over_share("10.0.0.1")
        for n in range(500):
            connection, socket = net.accept(f"10.1.{n // 250}.{n % 250}", 2000)
            feed([(connection, socket, [1])])
            connection.connection_lost(None)
        net.release.set()
        await until(lambda: net.transport.inbound.held == 0, 10)
        for connection in list(net.transport.connections()):
            assert isinstance(connection, TcpConnection)
            connection.connection_lost(None)
        holds = net.transport.holds
        assert holds._by_host == {}
        assert holds._held == set()

    asyncio.run(main())


def test_a_held_address_does_not_hold_the_nodes_own_connection_to_it() -> None:
    """A stranger at 10.0.0.1 passes its share; the node's own (outgoing) connection to a peer
    at that address is not held, reads, and its frames are counted apart."""

    async def main() -> None:
        net = HeldSources()
        net.over_share("10.0.0.1")
        own = TcpConnection(net.transport, outgoing=True, listener=None, peer="10.0.0.1:7000")
        socket = FakeSocket("10.0.0.1", 7000)
        own.connection_made(socket)
        assert not socket.paused
        feed([(own, socket, [2])])
        assert not socket.paused
        assert net.transport.inbound.held_own > 0
        net.release.set()
        await until(lambda: net.transport.inbound.held == 0, 10)
        await net.transport.close()

    asyncio.run(main())


# -- vault and identity: review 55d ----------------------------------------------------------


def test_a_rekey_cut_short_by_a_damaged_row_leaves_every_seal_key_as_it_was(
    troth_home: Path,
) -> None:
    """A row that does not unseal, after a seal key's, stops the rekey half way (the seal key
    already given its fresh value in memory): the rollback leaves the row as it was, so what
    the node seals next (in a fresh open) unseals after another open, and what it sealed before
    too; no value the store does not hold seals anything."""
    init_node("n")
    with open_node("n") as node:
        vault = _sealing(node)
        seal_key = vault.generate_seal_key()
        before = vault.seal(seal_key, b"before", _AAD)
    db = SqliteDatabase(troth_home / "nodes" / "n" / "node.db")
    try:
        with db.transaction():  # a row no KEK of this node sealed, after the seal key's
            db.execute(
                "INSERT INTO vault_keys (key_id, key_type, purpose, sealed, created_at) "
                "VALUES (?, 16, 0, ?, 0)",
                (1 << 40, b"\x01" + bytes(60)),
            )
    finally:
        db.close()
    with pytest.raises(VaultError):
        rekey_vault("n", home=troth_home)
    with open_node("n") as node:
        after = _sealing(node).seal(seal_key, b"after", _AAD)
    with open_node("n") as node:
        vault = _sealing(node)
        assert vault.unseal(seal_key, before, _AAD) == b"before"
        assert vault.unseal(seal_key, after, _AAD) == b"after"


def test_a_seal_keys_earlier_values_open_nothing_sealed_under_another_seal_key(
    troth_home: Path,
) -> None:
    """A blob sealed under one seal key, before or after two rekeys, does not unseal as
    another's, nor under another place (AAD). (Each seal key held three values then; since
    review 62i, rekey 1, a rekey replaces the value, so the blobs sealed before a rekey, kept
    here outside node.db, are not re-sealed and open under nothing.)"""
    init_node("n")
    with open_node("n") as node:
        vault = _sealing(node)
        first, second = vault.generate_seal_key(), vault.generate_seal_key()
        sealed = [vault.seal(first, b"first's", _AAD)]
    for _ in range(2):
        rekey_vault("n", home=troth_home)
        with open_node("n") as node:
            sealed.append(_sealing(node).seal(first, b"first's", _AAD))
    with open_node("n") as node:
        vault = _sealing(node)
        assert vault.unseal(first, sealed[-1], _AAD) == b"first's"
        for blob in sealed[:-1]:  # under values the rekeys replaced (review 62i)
            with pytest.raises(VaultError):
                vault.unseal(first, blob, _AAD)
        for blob in sealed:
            with pytest.raises(VaultError):
                vault.unseal(second, blob, _AAD)
            with pytest.raises(VaultError):
                vault.unseal(first, blob, b"another place")


def test_a_record_pointed_at_another_key_is_renewed_once_not_at_every_use(
    troth_home: Path,
) -> None:
    """A writer of node.db swaps alice's and bob's signing key handles (review 55d, lifecycle
    1): alice's next signer renews her record, and the one after uses that renewal (no new key
    at every use: the vault does not grow per call), bob's key left where it was."""
    init_node("n")
    with open_node("n") as node:
        alice = node.identities.create(now=NOW, name="alice")
        bob = node.identities.create(now=NOW, name="bob")
        node.identities.signer("alice", now=NOW)
        bob_key, _ = node.identities.purpose_key("bob", KeyPurpose.SIGNING, now=NOW)
    _swap_signing_handles(
        troth_home / "nodes" / "n" / "node.db", alice.identifier.digest, bob.identifier.digest
    )
    with open_node("n") as node:
        renewed = node.identities.signer("alice", now=NOW + 10)
        again = node.identities.signer("alice", now=NOW + 20)
        assert again.handle == renewed.handle != bob_key
        assert again.attestation == renewed.attestation
        node.vault.public_key(bob_key)  # not retired by alice's renewal


# -- gates: review 55f's like weight ---------------------------------------------------------

_STAR_AS_ESCAPE = 'context.args.order_id like "\\u{2a}' + "a" * 40 + '"'
"""`\\u{2a}` is `*` to Cedar's pattern: a wildcard, as the weight counts it."""


@pytest.mark.parametrize(
    "caveat",
    [
        _STAR_AS_ESCAPE,
        'context.args.order_id like "*' + "\\u{61}" * 40 + '"',
        'if context.args.order_id like "*' + "a" * 40 + '" then true else false',
        '[context.args.order_id like "*' + "a" * 40 + '"].containsAny([true])',
        '{a: context.args.order_id like "*' + "a" * 40 + '"}.a',
        " && ".join(['context.args.order_id like "*' + "a" * 10 + '"'] * 3),
    ],
    ids=["escaped-star", "escaped-literals", "if", "set", "record", "terms"],
)
def test_like_work_is_counted_however_the_caveat_hides_it(caveat: str) -> None:
    """Escapes (a `*` or its literals as `\\u{...}`), `like` inside an `if`, a set literal,
    a record literal, or spread over `&&` terms: each counted as the pattern it is, over the
    bound refused when checked."""
    with pytest.raises(PolicyError) as caught:
        check_caveat(caveat)
    assert "MAX_CAVEAT_LIKE_WEIGHT" in caught.value.detail


def test_a_chain_of_ordinary_suffix_patterns_is_decided() -> None:
    """Six suffix patterns in one link (`*.txt`-like, 30 of like work together, within the
    bound): decided, the call allowed where every one holds."""
    caveats = tuple(f'!(context.args.order_id like "*.ex{n}")' for n in range(6))
    world = make_world(sub_caveats=caveats)
    point = world.point(world.store(world.bundle()))
    sub = world.credential(world.sub_chain, world.sub)
    decision = point.decide(sub, ToolCall("lookup_order", {"order_id": "4471"}), now=T + 10)
    assert decision.allowed
