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
"""

from __future__ import annotations

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import NOW, agent_node_fixture  # noqa: F401  (the fixture `node`)
from tests.test_review69t_chkeys import _renewed_channel_key
from troth.errors import ConfigError, KeyNotFound
from troth.identity.retired_keys import RETIRED_KEYS_PER_CALL
from troth.limits import RETIRED_CHANNEL_KEY_GRACE
from troth.node import Node
from troth.node.channel_limits import ChannelLimits


@pytest.mark.parametrize("planted", ["~", "~5", "~abc", "~~"])
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
    ChannelLimits(handshake_timeout=RETIRED_CHANNEL_KEY_GRACE)
    with pytest.raises(ValueError, match="handshake_timeout"):
        ChannelLimits(handshake_timeout=RETIRED_CHANNEL_KEY_GRACE + 1)


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
