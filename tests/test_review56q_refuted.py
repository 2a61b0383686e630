"""Review 56q: attacks on the signed-chain check of a trace log (reviews 56f, 56k, 56l) that
did not work, each a real attempt that fails should the defence go.

1. A chain's issuer histories are judged at the latest time its bytes name (`_made_at`). A
   thief of an authority's retired key signs a credential dated before the rotation and hands
   the chain with the authority's history: the key is judged by that history (attested under
   its current change, at the credential's time), whatever time the histories are judged at
   and whatever unused history, dated far in the past or future, is added to the chain's
   bytes (no signature covers which histories a chain carries): refused at append and offline.
2. An unused history added to a chain's bytes moves the time its issuers are judged at only
   later, never back: a credential made after its issuer's key ran out stays refused.
3. A log's `issuers` is the node's word at each append, not a snapshot taken when the log
   opened: a rotation of an issuer stored after (by another opening of the node, as another
   process would) attests a chain presenting its history from that change.
4. Cost: each chain a log does not know yet is verified once, at its record's append (one
   `verify_structure` per record at most), once by `verify_log`; the log's known chains stay
   within TRACE_LOG_KNOWN_CACHE and an export's memo within MAX_TRACE_EXPORT_MEMO.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.support.gates import SUPPORT, GatesWorld, T, make_world
from tests.support.histories import DAY
from tests.support.parties import hand_signed, signer_as
from tests.support.traces import agent_log, counted_chain_checks, record_unchecked, under_chain
from tests.test_review56k_chains import chain_from
from troth import limits
from troth.clock import FixedClock
from troth.credentials import CredentialBody, CredentialChain, issue_credential
from troth.crypto import KeyType
from troth.errors import TraceError, TraceFailure
from troth.identity import Checkpoint, encode_history, new_identity, rotate_identity
from troth.node import init_node, open_node
from troth.trace import open_node_log
from troth.trace.export import export_jsonl, verify_export
from troth.trace.export_memo import ExportMemo
from troth.trace.recorder import TraceRecorder
from troth.trace.verify import verify_log

NOW = T + 10
YEAR = 365 * DAY


def padded(chain: bytes, world: GatesWorld, at: int) -> bytes:
    """`chain` carrying besides a history no credential names, made at `at`."""
    _, stranger, _ = new_identity(world.vault, KeyType.ED25519, now=at, valid_for=YEAR)
    decoded = CredentialChain.decode(chain)
    return CredentialChain(decoded.credentials, (*decoded.histories, stranger.history)).encode()


def refused_at_append(tmp_path: Path, world: GatesWorld, chain: bytes) -> TraceError:
    tmp_path.mkdir()
    _, recorder = agent_log(tmp_path, world, NOW)
    with pytest.raises(TraceError) as caught:
        recorder.record(under_chain(chain), chain=chain)
    assert caught.value.reason is TraceFailure.CREDENTIAL_INVALID
    return caught.value


@pytest.mark.parametrize("pad", [None, T - 5 * YEAR, T + 200 * DAY])
def test_refuted1_a_retired_key_signs_nothing_under_the_history_that_retires_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pad: int | None
) -> None:
    world = make_world()
    vault = world.vault
    primary, identity, following = new_identity(vault, KeyType.ED25519, now=T - 100, valid_for=YEAR)
    old = signer_as(vault, primary, identity, now=T - 100, ttl=30 * DAY)  # change 0's key
    _, rotated, _ = rotate_identity(vault, identity, primary, following, now=T - 50, valid_for=YEAR)
    backdated = issue_credential(  # by the retired key, dated before the rotation
        old, subject=world.support.identifier, attributes=SUPPORT, now=T - 80, ttl=DAY, depth=3
    )
    chain = CredentialChain((backdated,), (rotated.history,)).encode()
    if pad is not None:
        chain = padded(chain, world, pad)
    assert "older change" in str(refused_at_append(tmp_path / "append", world, chain))
    # offline too: the log as one without the check wrote it
    log, recorder = agent_log(tmp_path, world, NOW)
    record_unchecked(monkeypatch, recorder, chain)
    with pytest.raises(TraceError) as logged:
        verify_log(log)
    assert logged.value.reason is TraceFailure.CREDENTIAL_INVALID


def test_refuted2_an_unused_history_cannot_move_the_judgement_back(tmp_path: Path) -> None:
    world = make_world()
    vault = world.vault
    primary, identity, _ = new_identity(vault, KeyType.ED25519, now=T, valid_for=5 * DAY)
    signer = signer_as(vault, primary, identity, now=T, ttl=10 * DAY)
    # made on day 6: the authority's key ran out on day 5 (signed by hand: `issue_credential`
    # refuses a key past its valid_until since review 75g, delegation2 3)
    made = T + 6 * DAY
    body = CredentialBody(
        bytes(16),
        world.support.identifier,
        identity.identifier,
        SUPPORT,
        made,
        made,
        made + DAY,
        3,
        None,
    )
    late = hand_signed(signer, body)
    chain = CredentialChain((late,), (identity.history,)).encode()
    assert "current key valid" in str(refused_at_append(tmp_path / "plain", world, chain))
    earlier = padded(chain, world, T + 1)  # judged at the earliest time named, it would pass
    assert "current key valid" in str(refused_at_append(tmp_path / "padded", world, earlier))


def test_refuted3_a_logs_issuers_see_a_rotation_stored_after_it_opened(troth_home: Path) -> None:
    init_node("hub")
    clock = FixedClock(NOW)
    with open_node("hub") as node, open_node_log(node, clock=clock) as log:
        node.identities.create(now=NOW - 100, name="boss")
        agent = node.identities.create(now=NOW - 100, name="agent")
        signer = node.identities.signer
        recorder = TraceRecorder(log, lambda at: signer("agent", now=at), clock=clock)
        with open_node("hub") as other:  # another opening of the node: another process
            other.identities.rotate("boss", now=NOW - 50)
        boss = node.identities.get("boss", now=NOW).identity
        change = boss.changes[1]
        digest = boss.identifier.digest
        suffix = encode_history([change.signed], Checkpoint(digest, digest, 1))
        credential = issue_credential(
            node.identities.signer("boss", now=NOW - 10),
            subject=agent.identity.identifier,
            attributes=SUPPORT,
            now=NOW - 10,
            ttl=DAY,
            depth=3,
        )
        chain = CredentialChain((credential,), (suffix,)).encode()
        assert recorder.record(under_chain(chain), chain=chain).index == 0


def test_refuted4_each_new_chain_is_verified_once_and_the_caches_stay_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world()
    log, recorder = agent_log(tmp_path, world, NOW)
    monkeypatch.setattr(limits, "TRACE_LOG_KNOWN_CACHE", 2)
    calls = counted_chain_checks(monkeypatch)
    chains = [chain_from(world.authority.signer, world, ttl=DAY + n) for n in range(5)]
    for chain in chains:
        recorder.record(under_chain(chain), chain=chain)
        assert len(log._known_chains) <= 2
    recorder.record(under_chain(chains[-1]), chain=chains[-1])  # known: not again
    assert calls == chains
    calls.clear()
    assert verify_log(log).chains_checked == 6
    assert sorted(calls) == sorted(chains)  # once per chain
    out = io.StringIO()
    export_jsonl(log, out)
    calls.clear()
    memo = ExportMemo()
    monkeypatch.setattr("troth.trace.export.ExportMemo", lambda: memo)
    anchor = log.latest_checkpoint().note
    assert verify_export(out.getvalue().encode().splitlines(), anchor=anchor).records == 6
    assert sorted(calls) == sorted(chains)
    assert len(memo.chains) == 5 <= limits.MAX_TRACE_EXPORT_MEMO
