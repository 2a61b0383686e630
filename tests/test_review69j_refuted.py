"""Review 69j (gaps): attacks that did not work.

- Two renewals of the node's channel identity at once (a maintenance round's and a stored
  credential's, `_took_credential`), on a vault whose key generation is slow: they run one
  after the other on the storage thread, each replacing the key the one before made (retired
  through the vault's retirement, not left under no record: deleted once its grace is over,
  review 69t), and the node shows the last.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.nodes import MemNet, run_memnet
from tests.test_review68v_renewal import _short_keys
from tests.test_review69j_gaps import _Generated
from troth.limits import RETIRED_CHANNEL_KEY_GRACE
from troth.vault.ephemeral import VaultDhKey


def test_two_renewals_at_once_leave_one_key_shown_and_none_orphaned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def test(net: MemNet) -> None:
        b = await net.node("b", prepare=_short_keys)  # every renewal makes a new channel key
        generated = _Generated(b, monkeypatch)
        first, second = await asyncio.gather(b._renew_identity(), b._renew_identity())
        assert generated.on_loop == [False, False]
        assert b.channels.me().attestation == second.attestation != first.attestation
        assert isinstance(first.static, VaultDhKey)
        assert isinstance(second.static, VaultDhKey)
        # the first's key kept its grace for the handshakes that took it (review 69t, chkeys
        # 1), recorded retired: deleted once it is over, none orphaned
        assert generated.held() == [first.static.handle, second.static.handle]
        b.node.identities.forget_retired(now=net.clock.now() + RETIRED_CHANNEL_KEY_GRACE)
        assert generated.held() == [second.static.handle]

    run_memnet(test, tmp_path)
