"""Review 63y: attacks on today's merged fixes that did not work.

Traces (63s traces 1/2: an export grown past the kept checkpoint judged by the line of the
kept size's last record, `prefix_root`, `judge_line_kept`, `_attests_kept`):
- `prefix_root` gives the root of the first index + 1 leaves for every leaf of every tree
  up to 64 leaves, and a proof with one left hash changed is refused, never read as another
  prefix root.
- A fork at kept sizes 1, 2, 4 (powers of two) and 5 (one past) is INCONSISTENT; the honest
  grown log's export at the same sizes is VALID.
- An export holding the line of the kept size's last record twice, or the honest
  log's line spliced into the fork's export, is refused (a repeated index; lines against
  different checkpoints), never VALID.
- Another log's line at the kept size's index is UNANCHORED against the kept note.
- A line carrying the forger's own history as the log's is refused (the history must be the
  origin's identifier), never VALID.
- An honest export after the log rotated its key, against a note kept before the rotation
  (signed by the old key), is not INCONSISTENT (unanchored: its lines lack the old key's
  attestation, as `_attests_kept` documents).

Credentials (63n credentials 1-3):
- `extended` never drops a history an earlier link needs: the delegator's only such
  history is her own as an earlier issuer, and `delegate` refuses that chain as a cycle.
- `best()` does not skip a chain whose delegator carries the history a held feed's
  supersession names (rotated, re-delegated): it is picked over the superseded chain that
  expires last.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.feeds import pages, superseded
from tests.support.parties import make_party, signer_as
from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.credentials import (
    Attributes,
    CredentialChain,
    delegate,
    issue_credential,
)
from troth.errors import CredentialError, CredentialFailure, TraceError, TraceFailure
from troth.identity import rotate_identity
from troth.node import init_node, open_node
from troth.trace import TraceLog
from troth.trace.checkpoint import AnchorStatus
from troth.trace.export import export_jsonl, verify_bundle, verify_export
from troth.trace.merkle import MemoryTree, leaf_hash, prefix_root
from troth.vault import SoftwareVault


def _export(log: TraceLog) -> list[bytes]:
    out = io.StringIO()
    export_jsonl(log, out)
    return out.getvalue().encode().splitlines()


def _copy_db(tmp_path: Path, source: str, target: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        if (tmp_path / f"{source}{suffix}").exists():
            shutil.copy(tmp_path / f"{source}{suffix}", tmp_path / f"{target}{suffix}")


def fork_at(tmp_path: Path, kept_size: int) -> tuple[bytes, list[bytes], list[bytes]]:
    """A log of `kept_size` records checkpointed (the kept note); the same log forked before
    its last record (another record there, and two more, by the same log key); the real log
    grown by two. Returns the kept note and the fork's and the grown log's export lines."""
    clock = FixedClock(NOW)
    owner, agent = Held(), Held()
    real = open_log(tmp_path / "real.db", clock, owner)
    for _ in range(kept_size - 1):
        recorder(real, agent, clock).record(tool_call())
    real.close()
    _copy_db(tmp_path, "real.db", "fork.db")
    real = open_log(tmp_path / "real.db", clock, owner)
    recorder(real, agent, clock).record(tool_call("real-last"))
    kept = real.checkpoint().note
    fork = open_log(tmp_path / "fork.db", clock, owner)
    for name in ("forked-last", "forked-1", "forked-2"):
        recorder(fork, agent, clock).record(tool_call(name))
    forked = _export(fork)
    fork.close()
    for name in ("real-1", "real-2"):
        recorder(real, agent, clock).record(tool_call(name))
    grown = _export(real)
    real.close()
    return kept, forked, grown


def test_prefix_root_is_the_prefix_tree_root_and_a_changed_left_hash_is_refused() -> None:
    leaves = [leaf_hash(b"%d" % i) for i in range(64)]
    tree = MemoryTree(leaves)
    for size in range(1, 65):
        root = tree.root(size)
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert prefix_root(index, size, leaves[index], proof, root) == tree.root(index + 1)
    proof = tree.inclusion_proof(37, 50)  # 37 = 0b100101: left hashes at levels 0, 2, 5
    for at in range(len(proof)):
        changed = [*proof]
        changed[at] = leaf_hash(b"forged")
        with pytest.raises(TraceError) as caught:
            prefix_root(37, 50, leaves[37], changed, tree.root(50))
        assert caught.value.reason is TraceFailure.PROOF_INVALID


@pytest.mark.parametrize("kept_size", [1, 2, 4, 5])
def test_a_fork_at_a_power_of_two_or_one_past_is_inconsistent(
    tmp_path: Path, kept_size: int
) -> None:
    kept, forked, grown = fork_at(tmp_path, kept_size)
    with pytest.raises(TraceError) as caught:
        verify_export(forked, anchor=kept)
    assert caught.value.reason is TraceFailure.INCONSISTENT
    report = verify_export(grown, anchor=kept)
    assert report.status is AnchorStatus.VALID
    assert report.checkpoint is not None
    assert report.checkpoint.size == kept_size + 2


def test_two_lines_at_the_kept_index_or_a_spliced_honest_line_are_refused(
    tmp_path: Path,
) -> None:
    kept, forked, grown = fork_at(tmp_path, 3)
    with pytest.raises(TraceError) as twice:
        verify_export([*grown, grown[2]], anchor=kept)
    assert twice.value.reason is TraceFailure.REPLAYED  # a repeated index
    spliced = [forked[0], forked[1], grown[2], forked[3], forked[4]]
    with pytest.raises(TraceError) as caught:
        verify_export(spliced, anchor=kept)
    assert caught.value.reason is TraceFailure.MALFORMED
    moved = json.loads(grown[2])  # the honest line re-pointed at the fork's checkpoint
    moved["checkpoint"] = json.loads(forked[2])["checkpoint"]
    with pytest.raises(TraceError) as proof:
        verify_bundle(json.dumps(moved).encode(), anchor=kept)
    assert proof.value.reason is TraceFailure.PROOF_INVALID


def test_another_logs_line_at_the_kept_index_is_unanchored(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    kept, _, _ = fork_at(tmp_path / "a", 3)
    other, _, grown = fork_at(tmp_path / "b", 3)
    assert other != kept
    assert verify_bundle(grown[2], anchor=kept).status is AnchorStatus.UNANCHORED
    assert verify_export(grown, anchor=kept).status is AnchorStatus.UNANCHORED


def test_a_line_carrying_the_forgers_own_history_is_refused(tmp_path: Path) -> None:
    kept, forked, _ = fork_at(tmp_path, 3)
    forger = Held()
    signer = forger.signer(NOW)
    line = json.loads(forked[2])
    line["log"] = {
        "history": base64.b64encode(forger.identity.history).decode(),
        "attestations": [base64.b64encode(signer.attestation).decode()],
    }
    with pytest.raises(TraceError):
        verify_bundle(json.dumps(line).encode(), anchor=kept)


def test_an_honest_export_after_a_log_key_rotation_is_not_inconsistent(tmp_path: Path) -> None:
    """Its lines carry the new key's attestation only, so they do not attest the kept note
    (`_attests_kept`): unanchored, as before review 63s, never INCONSISTENT (a fork made
    after a log key rotation or renewal is refused: review 65i, traces 1)."""
    clock = FixedClock(NOW)
    owner, agent = Held(), Held()
    log = open_log(tmp_path / "log.db", clock, owner)
    for _ in range(3):
        recorder(log, agent, clock).record(tool_call())
    kept = log.checkpoint().note  # by the log's first key
    log.close()
    owner.rotate(NOW + 100)
    later = FixedClock(NOW + 200)
    log = open_log(tmp_path / "log.db", later, owner)
    for _ in range(4):
        recorder(log, agent, later).record(tool_call())
    lines = _export(log)
    log.close()
    assert verify_export(lines, anchor=kept).status is AnchorStatus.UNANCHORED
    assert verify_bundle(lines[2], anchor=kept).status is AnchorStatus.UNANCHORED


# -- credentials (63n credentials 1-3: `extended` replaces the delegator's other history,
# `best()` passes over chains that no longer check or carry a superseded issuer history) --

T = 1_780_000_000
DAY = 86_400
READ = Attributes({"orders.access": "read"})


def test_a_delegator_already_an_issuer_of_the_chain_is_refused_before_extended() -> None:
    """The only history of the delegator an earlier link could need is her own as its
    issuer: a chain where she issued a link and is delegated to again is a cycle, refused
    by `delegate` before `extended` could replace the history that link was signed under."""
    vault = SoftwareVault()
    a, m, b = (make_party(vault, now=T) for _ in range(3))
    root = issue_credential(
        a.signer, subject=m.identifier, attributes=READ, now=T, ttl=DAY, depth=4
    )
    chain = delegate(
        m.signer,
        CredentialChain((root,), (a.identity.history,)),
        subject=b.identifier,
        attributes=READ,
        now=T,
        ttl=DAY - 100,
        purpose="p",
    )
    with pytest.raises(CredentialError) as caught:
        delegate(
            b.signer, chain, subject=m.identifier, attributes=READ, now=T + 1, ttl=100, purpose="p"
        )
    assert caught.value.reason is CredentialFailure.CYCLE


def test_best_keeps_a_chain_whose_delegator_carries_her_superseding_history(
    tmp_path: Path,
) -> None:
    """No false skip: nora rotated and re-delegated with her new history; the feed naming
    her rotation supersedes the old chain (expiring last) only, and `best` picks the new one
    over the old and over a shorter direct chain."""
    vault = SoftwareVault()
    acme, nora = make_party(vault, now=T), make_party(vault, now=T)
    primary, rotated, _ = rotate_identity(
        vault, nora.identity, nora.primary, nora.next_primary, now=T + 10, valid_for=30 * DAY
    )
    nora_now = signer_as(vault, primary, rotated, now=T + 10, ttl=30 * DAY)
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        me = node.identities.create(now=T, name="me")
        direct = CredentialChain(
            (
                issue_credential(
                    acme.signer, subject=me.identifier, attributes=READ, now=T, ttl=5 * DAY, depth=2
                ),
            ),
            (acme.identity.history,),
        ).encode()
        to_nora = issue_credential(
            acme.signer, subject=nora.identifier, attributes=READ, now=T, ttl=20 * DAY, depth=2
        )
        parent = CredentialChain((to_nora,), (acme.identity.history,))

        def via(signer: Any, at: int, ttl: int) -> bytes:
            return delegate(
                signer, parent, subject=me.identifier, attributes=READ, now=at, ttl=ttl, purpose="p"
            ).encode()

        old, new = via(nora.signer, T, 19 * DAY), via(nora_now, T + 15, 14 * DAY)
        for chain in (direct, old, new):
            node.wallet.hold("me", chain, now=T + 16)
        assert node.wallet.best("me", now=T + 30, needs=READ) == old  # expires last
        node.wallet.trust(acme.identifier, "/tcp/127.0.0.1:9", now=T)
        entry = superseded(
            0, nora.identifier, acme.identifier, 2, rotated.current_change_hash, at=T + 20
        )
        (page,) = pages(acme, [entry], now=T + 20, per_page=1)
        node.wallet.update_feed(page, authority=acme.identifier, now=T + 20)
        assert node.wallet.best("me", now=T + 30, needs=READ) == new
        assert node.wallet.best("me", now=T + 30) == new
