"""Review 70a (chkeys: second review of 69t's kept channel keys) findings.

chkeys 1 (low: a node.db writer keeps every replaced channel key for good, and the round's
  retired-key step fails each time) `_due` read a kept record's time with `str.isdigit`, which
  takes digits `int` does not (`~²…`: superscripts, other scripts' digit signs): `int` raised
  ValueError, an untyped error, in `forget_retired` before any record was dropped. The record
  sorts after every real kept record, in the first page while there are fewer than
  RETIRED_KEYS_PER_CALL: from then on no kept channel key was deleted (69v, wave4a 1's kind,
  by another spelling). Now only ASCII digits are a time; any other is no time (due at once).
chkeys 2 (low-medium: a node.db writer hangs every rotation of an identity, a compromised one
  included, spinning a core) `retired_key_records` handed a BLOB record to Python as
  `str(b'…')`; SQLite sorts a BLOB after every TEXT, so `_kept_keys`'s next page, asked for the
  records after that text, began with the same BLOBs: with RETIRED_KEYS_PER_CALL of them the
  rotation read the same page for ever, inside its write transaction. (`forget_retired` also
  "dropped" such a record each call, by a text that matched it not.) Now the store reads TEXT
  records only: a BLOB is no record a troth writes, and names no key.
chkeys 3 (low: handshakes fail at a renewal on a node configured so) A running node shows its
  cached channel identity up to IDENTITY_CACHE (60 s) after another process renewed its key
  (`troth mcp connect`, a second runtime on the node): a handshake taking it then does its DH
  up to `handshake_timeout` later, and 69v (wave4a 2) let that timeout be the whole grace
  (300 s), so the DH came after the round had deleted the key (`limits.RETIRED_CHANNEL_KEY_GRACE`
  says one minute of cache and a handshake's timeout fit inside). Now the timeout is at most
  `limits.MAX_HANDSHAKE_TIMEOUT`, the grace less IDENTITY_CACHE.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import agent_node_fixture  # noqa: F401  (the fixture `node`)
from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_review68v_renewal import _short_keys
from tests.test_review69t_chkeys import _renewed_channel_key
from troth.errors import ChannelError, KeyNotFound
from troth.identity.retired_keys import RETIRED_KEYS_PER_CALL
from troth.limits import RETIRED_CHANNEL_KEY_GRACE
from troth.node import Node
from troth.node.channel_limits import ChannelLimits
from troth.node.shown_identity import IDENTITY_CACHE
from troth.storage import IdentityStore
from troth.vault import KeyPurpose

PAGES_AT_MOST = 8
"""Pages of `retired_keys` a rotation may read here (the records planted fill two)."""


@pytest.mark.parametrize("due", ["²", "1²"])
def test_chkeys1_a_kept_record_of_non_ascii_digits_keeps_no_key_for_good(
    softhsm: SoftHsm, node: Node, due: str
) -> None:
    old, _new, later = _renewed_channel_key(node)
    store = node.identities.store
    owner = node.identities.find("agent").identifier.hex()
    with store.transaction():
        store.add_retired_keys([f"~{due}.{owner}~software:x25519:0000000000000001"])
    assert node.identities.forget_retired(now=later + RETIRED_CHANNEL_KEY_GRACE) == 2
    with pytest.raises(KeyNotFound):
        node.vault.public_key(old)
    assert store.retired_key_records(10) == []


def _plant_blobs(store: IdentityStore, count: int) -> None:
    """`count` BLOB rows in node.db's `retired_keys` (a writer of the file, not troth)."""
    db = store._db  # type: ignore[attr-defined]
    with store.transaction():
        for n in range(count):
            db.execute("INSERT INTO retired_keys VALUES (?)", (b"~blob %04d" % n,))


def _bounded_pages(store: IdentityStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail (not hang) a caller that reads more than PAGES_AT_MOST pages of retired keys."""
    read: Callable[..., list[str]] = store.retired_key_records
    pages = [0]

    def bounded(limit: int, *, after: str = "") -> list[str]:
        pages[0] += 1
        if pages[0] > PAGES_AT_MOST:
            raise AssertionError("the same page of retired keys read again and again")
        return read(limit, after=after)

    monkeypatch.setattr(store, "retired_key_records", bounded)


def test_chkeys2_blob_records_hang_no_compromised_rotation(
    softhsm: SoftHsm, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, _new, later = _renewed_channel_key(node)
    store = node.identities.store
    _plant_blobs(store, RETIRED_KEYS_PER_CALL + 1)
    _bounded_pages(store, monkeypatch)
    node.identities.rotate("agent", now=later + 1, compromised=True)
    with pytest.raises(KeyNotFound):
        node.vault.public_key(old)  # the kept key went with the rotation, at its commit


def test_chkeys2_a_page_after_a_blob_record_is_not_the_same_page(
    softhsm: SoftHsm, node: Node
) -> None:
    """The store's paging itself: the records after the last one read are others (or none)."""
    store = node.identities.store
    _plant_blobs(store, 4)
    with store.transaction():
        store.add_retired_keys(["~1.00~software:x25519:0000000000000001"])
    first = store.retired_key_records(2, after="~")
    assert all(isinstance(r, str) and r.startswith("~") for r in first)
    assert not set(first) & set(store.retired_key_records(2, after=first[-1]))


def test_chkeys3_a_key_renewed_elsewhere_is_shown_a_cache_long_and_its_handshake_fits(
    tmp_path: Path,
) -> None:
    """The node shows the key another process's renewal replaced IDENTITY_CACHE on; the
    longest handshake the limits allow, taking it then, does its DH before the key's grace
    ends (past the grace it fails: the key is gone)."""

    async def test(net: MemNet) -> None:
        b = await net.node("b", prepare=_short_keys)  # every renewal makes a new channel key
        await b.enroll(net.ticket(), "b")
        held = b.channels.me()
        renewed_at = net.clock.now()
        b.node.identities.purpose_key(b.name, KeyPurpose.SECURE_CHANNEL, now=renewed_at)
        net.clock.advance(IDENTITY_CACHE - 1)
        late = b.channels.me()  # a handshake takes the node's identity now
        assert late.attestation == held.attestation  # the cached one: the replaced key
        shown_for = net.clock.now() - renewed_at
        with pytest.raises(ValueError, match="handshake_timeout"):
            ChannelLimits(handshake_timeout=RETIRED_CHANNEL_KEY_GRACE - shown_for + 1)
        net.clock.advance(RETIRED_CHANNEL_KEY_GRACE - shown_for)  # the grace is over
        await b.maintain()
        with pytest.raises(ChannelError):
            await b.channels.open(route(HUB), me=late)  # its DH after the grace

    run_memnet(test, tmp_path)
