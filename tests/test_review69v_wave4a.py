"""Review 69v (wave4a: 69t's kept channel keys) findings.

wave4a 1 (low: a node.db writer keeps every replaced channel key for good, and the round's
  retired-key step fails each time) a `retired_keys` record beginning with the kept-key mark
  but not of its form (`~`, `~5`: no second mark) raised IndexError in `forget_retired`
  (`text.split(RETIRED_DUE_MARK, 2)[2]`), an untyped error, before any record was dropped: it
  sorts before every real kept record (`~<due>.…`), so from then on no kept channel key was
  deleted (a private key kept in the vault for good) and the maintenance round logged the
  failure every time. Now a record that names no key is dropped, as one whose handle does not
  read was.
wave4a 2 (low: handshakes fail at a renewal on a node configured so) `ChannelLimits` took a
  `handshake_timeout` above `limits.RETIRED_CHANNEL_KEY_GRACE`: a handshake that took the
  node's channel key before its renewal may still run past the grace, its DH then failing on
  the deleted key. Now refused (ValueError, a ConfigError from node settings) as the
  other limits are.
wave4a 3 (low-medium: a compromised rotation leaves a channel key of the old history usable
  for up to the grace, 300 s) `_kept_keys` looked for the rotated identity's kept channel
  keys among the first RETIRED_KEYS_PER_CALL (256) `retired_keys` records only: behind 256
  others (other identities' kept keys due before it, token keys whose deletion failed) the
  key stayed in the vault until its time, and a running node whose cached identity showed it
  (renewed in another process just before the rotation) went on showing the retired history's
  attestation (`_still_held` found the key). Now every kept record is read, a page at a time
  (`retired_key_records(limit, after=...)`, in handle order).
wave4a 4 (low: a stolen key's identity leased in a narrow window) the broker's
  `_due_noticed` recorded node.db's new data version before reading the rows due (now on a
  thread of its own, the lead's change): a request arriving while that read ran saw the
  version as read and was judged on the set from before it, so a lease or forward for an
  identity whose compromised rotation had just committed (its revocation failed) was served.
  Now such a request waits for the read in flight (shared, shielded from a caller's cancel).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import NOW, agent_node_fixture  # noqa: F401  (the fixture `node`)
from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_review68v_renewal import TTL, _short_keys
from tests.test_review69t_chkeys import _renewed_channel_key
from troth.errors import ConfigError, KeyNotFound
from troth.identity import Identifier
from troth.identity.retired_keys import RETIRED_KEYS_PER_CALL
from troth.limits import MAX_HANDSHAKE_TIMEOUT, RETIRED_CHANNEL_KEY_GRACE
from troth.node import Node
from troth.node.channel_limits import ChannelLimits
from troth.node.services import broker as broker_service
from troth.node.services.broker import BrokerService
from troth.vault import KeyPurpose


@pytest.mark.parametrize("planted", ["~", "~5", "~abc"])
def test_wave4a1_a_malformed_kept_record_keeps_no_key_for_good(
    softhsm: SoftHsm, node: Node, planted: str
) -> None:
    old, _new, later = _renewed_channel_key(node)
    store = node.identities.store
    with store.transaction():
        store.add_retired_keys([planted])
    assert node.identities.forget_retired(now=later + RETIRED_CHANNEL_KEY_GRACE) == 2
    with pytest.raises(KeyNotFound):
        node.vault.public_key(old)
    assert store.retired_key_records(10) == []


def test_wave4a2_a_handshake_timeout_past_the_kept_keys_grace_is_refused() -> None:
    # at most the grace less the cached identity's time (review 70a, chkeys 3: the grace itself
    # was taken, and a handshake taking a key replaced a minute before ran past its grace)
    ChannelLimits(handshake_timeout=MAX_HANDSHAKE_TIMEOUT)
    with pytest.raises(ValueError, match="handshake_timeout"):
        ChannelLimits(handshake_timeout=MAX_HANDSHAKE_TIMEOUT + 1)


def test_wave4a2_from_the_environment_a_typed_error() -> None:
    with pytest.raises(ConfigError, match="handshake_timeout"):
        ChannelLimits.from_environment(
            {"TROTH_CHANNELS_HANDSHAKE_TIMEOUT": str(RETIRED_CHANNEL_KEY_GRACE + 1)}
        )


def test_wave4a3_a_compromised_rotation_ends_its_kept_key_behind_many_records(
    softhsm: SoftHsm, node: Node
) -> None:
    old, _new, later = _renewed_channel_key(node)
    store = node.identities.store
    other = "00" * 32  # another identity's kept keys, due before the agent's (sorted first)
    with store.transaction():
        store.add_retired_keys(
            [f"~{later - 1}.{other}~software:x25519:{n:04d}" for n in range(RETIRED_KEYS_PER_CALL)]
        )
    node.identities.rotate("agent", now=later + 1, compromised=True)
    with pytest.raises(KeyNotFound):
        node.vault.public_key(old)


def test_wave4a3_a_node_shows_not_the_retired_history_after_a_rotation_elsewhere(
    tmp_path: Path,
) -> None:
    """The node's cached identity shows a channel key another process's renewal replaced
    (kept its grace), then that process rotates the identity as compromised (its kept key
    deleted however many records lie before it): the node's next handshake shows the new
    history, and the hub takes it."""

    async def test(net: MemNet) -> None:
        b = await net.node("b", prepare=_short_keys)
        await b.enroll(net.ticket(), "b")
        held = b.channels.me()
        ident = b.node.identities
        later = net.clock.now() + TTL - 1  # the key renewed (its replacement due)
        with ident.store.transaction():  # other identities' kept keys, due before it
            ident.store.add_retired_keys(
                [f"~{later}.{'00' * 32}~software:x25519:{n:04d}" for n in range(300)]
            )
        ident.purpose_key(b.name, KeyPurpose.SECURE_CHANNEL, now=later)
        ident.rotate(b.name, now=net.clock.now() + 1, compromised=True)
        shown = b.channels.me()
        assert shown.history != held.history
        end = await b.channels.open(route(HUB))
        assert end.channel.me.attestation == shown.attestation
        await end.close()

    run_memnet(test, tmp_path)


def test_wave4a4_a_request_during_the_due_rows_read_waits_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request arriving while another's read of the rows due runs (node.db changed: a
    compromised rotation in another process) is judged on what that read finds, not on the
    set from before it."""
    stolen = Identifier(b"\x01" * 32)
    release = threading.Event()

    def due_identities(_node: object) -> frozenset[Identifier]:
        release.wait(5)
        return frozenset({stolen})

    monkeypatch.setattr(broker_service, "due_identities", due_identities)
    db = SimpleNamespace(data_version=lambda: 7)
    service = SimpleNamespace(
        _due=frozenset(),
        _due_seen=1,
        _due_retry=(0, 1),
        _due_reading=None,
        node=SimpleNamespace(db=db),
    )
    noticed = functools.partial(BrokerService._due_noticed, service)  # type: ignore[arg-type]

    async def main() -> None:
        first = asyncio.ensure_future(noticed())
        await asyncio.sleep(0)  # the first request's read has started
        second = asyncio.ensure_future(noticed())
        for _ in range(5):
            await asyncio.sleep(0)
        served_stale = second.done() and stolen not in service._due
        release.set()
        await asyncio.gather(first, second)
        assert not served_stale
        assert service._due == frozenset({stolen})

    asyncio.run(main())
