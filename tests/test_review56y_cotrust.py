"""Review 56y, chains 2 (review 56q, chains 1; review 23a's rule): a node's trace log takes a
chain's checkpointed issuer history on its word (`CredentialWallet.checkpoints`: its stored
copies, or a held feed of the checkpoint's authority, else of any trusted authority), and
`troth trace verify` on the node now judges it so too. Another authority the node trusts
(Z) names, in its own feed, a change 1 of the node's own identity "boss" whose key is Z's:
a chain rooted at "boss", signed by Z's key, is appended and `troth trace verify --node`
says "1 record(s) verified", though the node holds boss's full history, which has no such
change: a fork the node's own check of a chain's issuer history refuses ("history forks from
the stored copy": the store-or-extend check of `troth credential verify --node` and of a
handshake, `NodeTrust._issuer_known`, binds over the chain's root: review 23a, 29a), which
the trace's chain check never made. Left a strict xfail (review 56y); fixed (review 56z): the
log's append (`TraceLog.chain_issuers`, set by `open_node_log`) and the node's verification
(`troth trace verify --node`, its log or a file) run that check (`node.verify.trace_issuers`)
on every issuer history of a chain, once per chain."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.feeds import pages, superseded
from tests.support.gates import SUPPORT
from tests.support.histories import DAY
from tests.support.parties import make_party, signer_as
from tests.support.traces import record_unchecked, under_chain
from tests.test_review56y_chains import boss_and_agent
from troth.credentials import CredentialChain, issue_credential
from troth.crypto import KeyType
from troth.errors import IdentityError, TraceError, TraceFailure
from troth.identity import Checkpoint, encode_history, new_identity, rotate_identity, verify_history
from troth.node.verify import _issuer_check
from troth.vault import SoftwareVault

YEAR = 365 * DAY


def test_chains2_a_co_trusted_feed_cannot_give_the_nodes_identity_a_key(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = int(time.time())
    vault = SoftwareVault()
    z = make_party(vault, now=now - 1000)
    primary, first, following = new_identity(vault, KeyType.ED25519, now=now - 900, valid_for=YEAR)
    primary, rotated, _ = rotate_identity(
        vault, first, primary, following, now=now - 800, valid_for=YEAR
    )
    change = rotated.changes[1]  # Z's own key, presented as boss's change 1
    with boss_and_agent(troth_home, now) as (node, boss, agent, recorder):
        suffix = encode_history([change.signed], Checkpoint(boss.digest, z.identifier.digest, 1))
        presented = verify_history(suffix, now=now, checkpoints=lambda c, h: True)
        forged = signer_as(vault, primary, presented, now=now - 700, ttl=30 * DAY)
        node.wallet.trust(z.identifier, "127.0.0.1:1", now=now)
        entry = superseded(0, boss, z.identifier, 2, change.change_hash, at=now - 20)
        (page,) = pages(z, [entry], now=now - 10, per_page=10)
        node.wallet.update_feed(page, authority=z.identifier, now=now - 10)
        credential = issue_credential(
            forged, subject=agent, attributes=SUPPORT, now=now - 50, ttl=DAY, depth=3
        )
        chain = CredentialChain((credential,), (suffix,)).encode()
        with pytest.raises(IdentityError, match="forks from the stored copy"):
            _issuer_check(node)(presented, boss)  # the node's own check of an issuer history
        with pytest.raises(TraceError, match="forks from the stored copy") as caught:
            recorder.record(under_chain(chain), chain=chain)  # was: appended, "signed by boss"
        assert caught.value.reason is TraceFailure.CREDENTIAL_INVALID
        # the log as one without the check wrote it: the node's verification refuses it too
        assert record_unchecked(monkeypatch, recorder, chain).index == 0
    result = run("trace", "verify", "--node", "hub", code=1)  # was: "1 record(s) verified"
    assert "forks from the stored copy" in result.stderr
    export = troth_home / "export.jsonl"
    run("trace", "export", "--format", "jsonl", "--out", str(export), "--node", "hub")
    result = run("trace", "verify", "--file", str(export), "--node", "hub", code=1)
    assert "forks from the stored copy" in result.stderr
