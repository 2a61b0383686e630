"""Review 70a (chkeys: second review of 69t's kept channel keys): attacks that did not work.

- A peer keeps a channel open across the grace of the key it was opened with: the key is used
  at the handshake only, so its deletion cuts nothing; requests over the channel are answered.
- The node's clock stepped far forward: the round deletes the kept key (due) and nothing else,
  the identity's current channel and signing keys still working.
- Two renewals inside one grace: each replaced key is kept until its own time, the second past
  the first's end, and the current key is never recorded.
- A kill between the vault's deletion of a kept key and its record's drop (the drop fails):
  the next call finds the key gone, counts it and drops the record; nothing else goes.
- A kept record for a handle the vault no longer holds (another process deleted it): counted
  and dropped by `forget_retired`; a rotation of its identity drops it too, and commits.
- The same kept record written twice (two processes' renewals recording the same key: one
  row, `INSERT OR IGNORE`) is deleted once.
- A writer of node.db without the PIN plants kept records of the agent naming another
  identity's token keys (its signing and primary keys), then the agent rotates as compromised:
  `_kept_keys` skips `owned_purpose_keys`'s check, but the token retires a key only as the
  purpose its label says (a channel key's, which no token key is), and the keys stay.
- node.db restored from a backup taken inside a grace (the kept key's row and record back,
  after the key was deleted): the first `forget_retired` past its time deletes it again; the
  renewed key, the one shown, stays.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SoftHsm
from tests.support.backups import copy_db, node_db, restore_db
from tests.support.hsm import NOW, agent_node_fixture  # noqa: F401  (the fixture `node`)
from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_review68v_renewal import _short_keys
from tests.test_review69t_chkeys import _handle, _renewed_channel_key
from troth.errors import KeyNotFound, StorageError
from troth.limits import RETIRED_CHANNEL_KEY_GRACE
from troth.node import Node, open_node
from troth.node.services import call, service_address
from troth.vault import KeyPurpose

GRACE = RETIRED_CHANNEL_KEY_GRACE


def test_a_channel_open_across_its_keys_grace_still_carries_requests(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        b = await net.node("b", prepare=_short_keys)  # every renewal makes a new channel key
        await b.enroll(net.ticket(), "b")
        held = b.channels.me()
        end = await b.channels.open(route(HUB), me=held)
        await b._renew_identity()
        net.clock.advance(GRACE)
        b.node.identities.forget_retired(now=net.clock.now())
        with pytest.raises(KeyNotFound):
            b.node.vault.public_key(_handle(held))
        assert not end.channel.closed
        assert await call(b.router, (end.enc, service_address("authority")), "feed", [0])
        await end.close()

    run_memnet(test, tmp_path)


def _agent_keys_work(node: Node, now: int) -> None:
    """The agent's current channel key does DH and its signing key signs, at `now`."""
    handle, key = node.identities.purpose_key("agent", KeyPurpose.SECURE_CHANNEL, now=now)
    node.vault.dh(handle, key.key)
    signer = node.identities.signer("agent", now=now)
    node.vault.sign(signer.handle, b"still the agent's")


def test_a_clock_stepped_far_forward_deletes_the_kept_key_only(
    softhsm: SoftHsm, node: Node
) -> None:
    old, new, later = _renewed_channel_key(node)
    assert node.identities.forget_retired(now=later + 100 * GRACE) == 1
    with pytest.raises(KeyNotFound):
        node.vault.public_key(old)
    node.vault.public_key(new)
    _agent_keys_work(node, later + 1)


def test_two_renewals_in_one_grace_keep_each_key_to_its_own_time(
    softhsm: SoftHsm, node: Node
) -> None:
    ident = node.identities
    ident.purpose_key_ttl = 400  # under the day before expiry: each call renews
    first, _ = ident.purpose_key("agent", KeyPurpose.SECURE_CHANNEL, now=NOW)
    second, _ = ident.purpose_key("agent", KeyPurpose.SECURE_CHANNEL, now=NOW + 10)
    third, _ = ident.purpose_key("agent", KeyPurpose.SECURE_CHANNEL, now=NOW + 20)
    assert len({first, second, third}) == 3
    assert ident.forget_retired(now=NOW + 10 + GRACE) == 1  # the first's time only
    with pytest.raises(KeyNotFound):
        node.vault.public_key(first)
    node.vault.public_key(second)
    assert ident.forget_retired(now=NOW + 20 + GRACE) == 1
    with pytest.raises(KeyNotFound):
        node.vault.public_key(second)
    node.vault.public_key(third)
    assert not any(str(third) in r for r in ident.store.retired_key_records(16))


def test_a_kill_between_the_deletion_and_the_drop_is_finished_next_time(
    softhsm: SoftHsm, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new, later = _renewed_channel_key(node)
    store = node.identities.store

    def killed(_handles: object) -> None:
        raise StorageError("killed before the drop")

    with monkeypatch.context() as patched:
        patched.setattr(store, "drop_retired_keys", killed)
        with pytest.raises(StorageError):
            node.identities.forget_retired(now=later + GRACE)
    with pytest.raises(KeyNotFound):
        node.vault.public_key(old)
    assert len(store.retired_key_records(16)) == 1
    assert node.identities.forget_retired(now=later + GRACE) == 1
    assert store.retired_key_records(16) == []
    node.vault.public_key(new)
    _agent_keys_work(node, later + 1)


def test_a_kept_record_whose_key_is_gone_is_dropped_and_rotates(
    softhsm: SoftHsm, node: Node
) -> None:
    old, _new, later = _renewed_channel_key(node)
    node.vault.delete(old)  # another process deleted it
    owner = node.identities.find("agent").identifier.hex()
    store = node.identities.store
    with store.transaction():  # and a second record of its identity, for a key gone as well
        store.add_retired_keys([f"~{later + 1}.{owner}~{old}"])
    assert node.identities.forget_retired(now=later + GRACE) == 2
    with store.transaction():
        store.add_retired_keys([f"~{later + 2 * GRACE}.{owner}~{old}"])
    node.identities.rotate("agent", now=later + 1)
    assert store.retired_key_records(16) == []


def test_the_same_kept_record_twice_is_one_row(softhsm: SoftHsm, node: Node) -> None:
    old, _new, later = _renewed_channel_key(node)
    store = node.identities.store
    (record,) = store.retired_key_records(16)
    with store.transaction():
        store.add_retired_keys([record])
    assert node.identities.forget_retired(now=later + GRACE) == 1
    with pytest.raises(KeyNotFound):
        node.vault.public_key(old)


def test_planted_kept_records_naming_another_identitys_token_keys_retire_none(
    softhsm: SoftHsm, node: Node
) -> None:
    ident = node.identities
    other = ident.create(now=NOW, name="other")
    signing = ident.signer("other", now=NOW).handle
    owner = ident.find("agent").identifier.hex()
    with ident.store.transaction():
        ident.store.add_retired_keys(
            [f"~{NOW + 1}.{owner}~{handle}" for handle in (signing, other.primary_key)]
        )
    ident.rotate("agent", now=NOW + 1, compromised=True)
    ident.forget_retired(now=NOW + GRACE)
    assert ident.signer("other", now=NOW + 2).handle == signing
    node.vault.sign(signing, b"still other's")
    node.vault.sign(other.primary_key, b"still other's")


def test_a_backup_from_inside_a_grace_restored_loses_the_kept_key_again(
    softhsm: SoftHsm, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    softhsm.init_node("hsm", monkeypatch)
    path, backup = node_db(troth_home, "hsm"), troth_home / "backup.db"
    with open_node("hsm") as node:
        node.identities.create(now=NOW, name="agent")
        old, new, later = _renewed_channel_key(node)
        copy_db(path, backup)
        assert node.identities.forget_retired(now=later + GRACE) == 1
    restore_db(path, backup)
    with open_node("hsm") as node:
        node.vault.public_key(old)  # back with the copy's rows
        assert node.identities.forget_retired(now=later + GRACE) == 1
        with pytest.raises(KeyNotFound):
            node.vault.public_key(old)
        handle, _ = node.identities.purpose_key("agent", KeyPurpose.SECURE_CHANNEL, now=later + 1)
        assert handle == new
