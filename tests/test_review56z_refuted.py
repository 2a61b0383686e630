"""Review 56z, refuted: attacks on the trace chain check's issuer histories (review 56y, chains
2, fixed here) that did not work against the fix: variants of that attack, each refused at the
log's append by the node's own check of an issuer history against its stored copy
(`node.verify.trace_issuers`; without it, as before the fix, each was appended)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.feeds import pages, superseded
from tests.support.gates import SUPPORT
from tests.support.histories import DAY
from tests.support.parties import make_party, signer_as
from tests.support.traces import under_chain
from tests.test_review56y_chains import boss_and_agent
from troth.credentials import CredentialChain, delegate, issue_credential
from troth.crypto import KeyType
from troth.errors import TraceError, TraceFailure
from troth.identity import Checkpoint, encode_history, new_identity, rotate_identity, verify_history
from troth.vault import SoftwareVault

YEAR = 365 * DAY


@pytest.mark.parametrize(("index", "rooted_at_z"), [(3, False), (1, True)])
def test_a_co_trusted_feed_gives_boss_no_key_past_its_copy_nor_under_its_own_chain(
    troth_home: Path, index: int, rooted_at_z: bool
) -> None:
    """Z (trusted by hub) names its own key change `index` of hub's identity boss in its
    feed: a change past the end of hub's copy of boss (a gap, not a fork: 3), or change 1 under
    a chain rooted at Z itself, whose root has standing over its issuers (Z delegates to the
    forged boss, which delegates to the agent)."""
    now = int(time.time())
    vault = SoftwareVault()
    z = make_party(vault, now=now - 1000)
    primary, history, following = new_identity(
        vault, KeyType.ED25519, now=now - 900, valid_for=YEAR
    )
    for turn in range(index):
        primary, history, following = rotate_identity(
            vault, history, primary, following, now=now - 850 + turn, valid_for=YEAR
        )
    change = history.changes[index]  # Z's own key, presented as boss's change `index`
    with boss_and_agent(troth_home, now) as (node, boss, agent, recorder):
        checkpoint = Checkpoint(boss.digest, z.identifier.digest, index)
        suffix = encode_history([change.signed], checkpoint)
        presented = verify_history(suffix, now=now, checkpoints=lambda c, h: True)
        forged = signer_as(vault, primary, presented, now=now - 700, ttl=30 * DAY)
        node.wallet.trust(z.identifier, "127.0.0.1:1", now=now)
        entry = superseded(0, boss, z.identifier, index + 1, change.change_hash, at=now - 20)
        (page,) = pages(z, [entry], now=now - 10, per_page=10)
        node.wallet.update_feed(page, authority=z.identifier, now=now - 10)
        if rooted_at_z:
            root = issue_credential(
                z.signer, subject=boss, attributes=SUPPORT, now=now - 60, ttl=DAY, depth=3
            )
            held = CredentialChain((root,), (z.identity.history,))
            chain = delegate(
                forged, held, subject=agent, attributes=SUPPORT, now=now - 50, ttl=3600, purpose="t"
            ).encode()
            assert CredentialChain.decode(chain).histories[1] == suffix
        else:
            credential = issue_credential(
                forged, subject=agent, attributes=SUPPORT, now=now - 50, ttl=DAY, depth=3
            )
            chain = CredentialChain((credential,), (suffix,)).encode()
        with pytest.raises(TraceError) as caught:
            recorder.record(under_chain(chain), chain=chain)
        assert caught.value.reason is TraceFailure.CREDENTIAL_INVALID
        assert f"{boss}'s history: change {index}: " in str(caught.value)  # `check_issuers`
