"""Review 69t (chkeys): attacks that did not work.

- A writer of node.db without the PIN plants a kept-key record (`~<time>.<identifier>~`, the
  form a channel key's renewal records) naming an identity's current signing key in the token,
  due at once or far ahead: `forget_retired` asks the token for its retirement proof as for
  any record, finds none, and the key stays, signing.
- A rotation of one identity does not end another identity's kept channel key: a handshake
  that took the other's identity before its renewal still runs for the grace.
"""

from __future__ import annotations

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import NOW, agent_node_fixture  # noqa: F401  (the fixture `node`)
from tests.test_review69t_chkeys import _renewed_channel_key
from troth.identity.service import PURPOSE_KEY_TTL
from troth.limits import RETIRED_CHANNEL_KEY_GRACE
from troth.node import Node
from troth.vault import KeyPurpose


@pytest.mark.parametrize("ahead", [0, 10 * RETIRED_CHANNEL_KEY_GRACE])
def test_a_planted_kept_key_record_destroys_no_token_key(
    softhsm: SoftHsm, node: Node, ahead: int
) -> None:
    signer = node.identities.signer("agent", now=NOW)
    owner = node.identities.find("agent").identifier.hex()
    store = node.identities.store
    with store.transaction():
        store.add_retired_keys([f"~{NOW + ahead}.{owner}~{signer.handle}"])
    node.identities.forget_retired(now=NOW + 1)
    node.identities.forget_retired(now=NOW + ahead + 1)
    node.vault.sign(signer.handle, b"still in the token")
    assert node.identities.signer("agent", now=NOW + 2).handle == signer.handle


def test_another_identitys_rotation_keeps_a_kept_channel_key(softhsm: SoftHsm, node: Node) -> None:
    old, new, later = _renewed_channel_key(node)
    node.identities.create(now=NOW, name="other")
    node.identities.rotate("other", now=later + 1)
    peer = node.vault.public_key(new)
    node.vault.dh(old, peer)  # still there for the handshakes that took it
    assert node.identities.forget_retired(now=later + RETIRED_CHANNEL_KEY_GRACE) == 1
    assert later < NOW + PURPOSE_KEY_TTL
    node.identities.purpose_key("agent", KeyPurpose.SECURE_CHANNEL, now=later + 2)
