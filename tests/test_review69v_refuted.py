"""Review 69v (wave4a): attacks that did not work.

- A node.db writer plants a kept-key record of an identity whose handle does not read (or an
  empty one) to fail its rotation: `_kept_keys` drops the record, the rotation commits and
  deletes the identity's real kept key.
- Many requests arriving together once node.db changed (a commit in another process) each
  start a read of the broker's rows due on a thread: one read, the others wait for it.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from types import SimpleNamespace

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import agent_node_fixture  # noqa: F401  (the fixture `node`)
from tests.test_review69t_chkeys import _renewed_channel_key
from troth.errors import KeyNotFound
from troth.identity import Identifier
from troth.node import Node
from troth.node.services import broker as broker_service
from troth.node.services.broker import BrokerService


def test_a_malformed_kept_record_of_the_identity_fails_not_its_rotation(
    softhsm: SoftHsm, node: Node
) -> None:
    old, _new, later = _renewed_channel_key(node)
    owner = node.identities.find("agent").identifier.hex()
    store = node.identities.store
    planted = [f"~{later}.{owner}~not a handle", f"~{later}.{owner}~"]
    with store.transaction():
        store.add_retired_keys(planted)
    node.identities.rotate("agent", now=later + 1, compromised=True)
    with pytest.raises(KeyNotFound):
        node.vault.public_key(old)
    assert not set(planted) & set(store.retired_key_records(16))


def test_requests_together_start_one_read_of_the_rows_due(monkeypatch: pytest.MonkeyPatch) -> None:
    stolen = Identifier(b"\x02" * 32)
    release = threading.Event()
    reads: list[int] = []

    def due_identities(_node: object) -> frozenset[Identifier]:
        reads.append(1)
        release.wait(5)
        return frozenset({stolen})

    monkeypatch.setattr(broker_service, "due_identities", due_identities)
    service = SimpleNamespace(
        _due=frozenset(),
        _due_seen=1,
        _due_retry=(0, 1),
        _due_reading=None,
        node=SimpleNamespace(db=SimpleNamespace(data_version=lambda: 2)),
    )
    noticed = functools.partial(BrokerService._due_noticed, service)  # type: ignore[arg-type]

    async def main() -> None:
        requests = [asyncio.ensure_future(noticed()) for _ in range(50)]
        for _ in range(5):
            await asyncio.sleep(0)
        release.set()
        await asyncio.gather(*requests)
        assert len(reads) == 1
        assert service._due == frozenset({stolen})

    asyncio.run(main())
