"""Review 56k, chains: attacks on the signed-chain check of a trace log (review 56f, chains 1).

1. A log checks at append that a chain given with a record is signed by its issuers
   (`check_chain_signed`), but took every checkpointed issuer history "as carried"
   (`issuers_carried`): the first change of a history presented from a checkpoint is vouched
   for by the checkpoint alone, so a chain whose root history was the attacker's own key
   presented as change 1 of the real authority's identity (no authority attests it) was
   "signed by its issuer" and appended, naming the real authority. Any checkpoint index works,
   not only past 64 changes. Now the log takes a checkpointed issuer history only on its own
   word source (`TraceLog.issuers`: a node's stored copies and held feeds; none: refused, as an
   offline `verify_log` refuses it) or from a collector that verified the chain against the
   node's trust (the `VerifiedCredential` it hands with it).
2. The chain's issuer histories were judged at the record's time, but once per chain (the
   log's known chains, `verify_log`'s chains seen, an export's memo): a record after the
   issuer's key ran out was admitted, verify_log and an export in log order said valid, the
   line alone or the lines reversed were refused. They are judged at the latest time the chain
   names (`chain_signed._made_at`): the answer is the chain's alone (its window at a record's
   time stays the verifier's question, as docs/traces.md says).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.support.gates import SUPPORT, GatesWorld, T, make_world
from tests.support.histories import DAY
from tests.support.parties import signer_as
from tests.support.traces import agent_log, counted_chain_checks, under_chain
from troth.clock import FixedClock
from troth.credentials import ChainVerifier, CredentialChain, TrustPolicy, issue_credential
from troth.crypto import KeyType
from troth.errors import TraceError, TraceFailure
from troth.identity import (
    ChangeBody,
    Checkpoint,
    Checkpoints,
    SignedChange,
    Signer,
    encode_history,
    new_identity,
    next_key_digest,
    verify_history,
)
from troth.trace.collect import TraceCollector
from troth.trace.export import export_jsonl, verify_bundle, verify_export
from troth.trace.signing import sign_record
from troth.trace.submit import Submission, SubmittedRecord
from troth.trace.verify import verify_log
from troth.vault import KeyPurpose

NOW = T + 10


def forged_root(world: GatesWorld, index: int = 70) -> bytes:
    """The support agent's chain re-made by an attacker: its root credential issued in the
    real authority's name, signed by the attacker's key, carried in a history presented from a
    checkpoint (change `index`) that names the real authority's identifier."""
    vault = world.vault
    primary = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    body = ChangeBody(
        index,
        bytes(32),
        vault.public_key(primary),
        next_key_digest(vault.public_key(vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY))),
        T - 100,
        T - 100,
        T + 365 * 86_400,
    )
    encoded = body.encode()
    change = SignedChange(encoded, vault.sign(primary, encoded), bytes(64))
    authority = world.authority.identifier
    checkpoint = Checkpoint(authority.digest, authority.digest, index)
    history = encode_history([change], checkpoint)
    identity = verify_history(history, now=T, checkpoints=lambda c, h: True)
    assert identity.identifier == authority  # the real authority's name, the attacker's key
    return chain_from(signer_as(vault, primary, identity, now=T), world)


def chain_from(signer: Signer, world: GatesWorld, ttl: int = 30 * 86_400) -> bytes:
    """The support agent's credential from `signer`, with the history it signs under."""
    credential = issue_credential(
        signer, subject=world.support.identifier, attributes=SUPPORT, now=T, ttl=ttl, depth=3
    )
    return CredentialChain((credential,), (signer.identity.history,)).encode()


@pytest.mark.parametrize("index", [1, 70])
def test_chains1_the_log_refuses_a_root_history_no_one_attests(tmp_path: Path, index: int) -> None:
    world = make_world()
    log, recorder = agent_log(tmp_path, world, NOW)
    forged = forged_root(world, index)
    with pytest.raises(TraceError) as caught:
        recorder.record(under_chain(forged), chain=forged)
    assert caught.value.reason is TraceFailure.CREDENTIAL_INVALID
    assert "checkpoint" in str(caught.value)
    recorder.record(under_chain(world.support_chain), chain=world.support_chain)  # the real one
    assert verify_log(log).chains_checked == 1


def test_chains1_a_checkpointed_issuer_history_stands_on_the_logs_word(tmp_path: Path) -> None:
    """What the fix keeps: a checkpointed issuer history the log's `issuers` attests (a node's
    stored copy or held feed names the change) is appended, one it does not is refused."""
    world = make_world()
    log, recorder = agent_log(tmp_path, world, NOW)
    forged = forged_root(world)
    asked: list[int] = []

    def issuers(now: int) -> Checkpoints:
        asked.append(now)
        return lambda checkpoint, change_hash: checkpoint.index == 70

    log.issuers = issuers
    recorder.record(under_chain(forged), chain=forged)
    assert asked == [NOW]
    other = forged_root(world, 71)
    with pytest.raises(TraceError) as caught:
        recorder.record(under_chain(other), chain=other)
    assert caught.value.reason is TraceFailure.CREDENTIAL_INVALID


def test_chains1_a_chain_a_trace_service_verified_is_not_checked_again(tmp_path: Path) -> None:
    """The collector hands the log its `VerifiedCredential` (verified against the node's
    anchors and feeds, a stronger check): the log takes that chain and only that chain."""
    world = make_world()
    log, _ = agent_log(tmp_path, world, NOW)
    forged = forged_root(world)
    verifier = ChainVerifier(TrustPolicy(frozenset({world.authority.identifier})))
    credential = verifier.verify_structure(forged, now=T, checkpoints=lambda c, h: True)
    signer = world.support.signer
    first = sign_record(signer, under_chain(forged), seq=0, prev=None, time=NOW)
    log.wait(pending := log.enqueue(first, chain=forged, credential=credential))
    assert pending.result().index == 0
    other = forged_root(world, 71)  # another chain: the credential is not its verification
    second = sign_record(signer, under_chain(other), seq=1, prev=first.hash, time=NOW)
    log.wait(pending := log.enqueue(second, chain=other, credential=credential))
    with pytest.raises(TraceError) as caught:
        pending.result()
    assert caught.value.reason is TraceFailure.CREDENTIAL_INVALID


def short_lived_authority_chain(world: GatesWorld) -> bytes:
    """The support agent's credential from an authority whose key is valid 5 days (a day's
    credential, by a day's signing key)."""
    primary, identity, _next = new_identity(world.vault, KeyType.ED25519, now=T, valid_for=5 * DAY)
    return chain_from(signer_as(world.vault, primary, identity, now=T, ttl=DAY), world, DAY)


def test_chains2_what_the_log_admits_under_a_chain_every_line_verifies_alone(
    tmp_path: Path,
) -> None:
    """Two records under one chain, the second after the issuer's key ran out (the chain's
    window at a record's time is the verifier's own question: docs/traces.md). The chain was
    judged at the first record's time only: the log admitted the second (the chain known),
    verify_log and verify_export with the lines in log order said valid, while that line alone
    (verify_bundle), or the export with its lines the other way round, was refused."""
    world = make_world()
    log, recorder = agent_log(tmp_path, world, NOW)
    chain = short_lived_authority_chain(world)
    recorder.record(under_chain(chain), chain=chain)
    assert isinstance(recorder.clock, FixedClock)
    recorder.clock.advance(6 * DAY)
    recorder.record(under_chain(chain), chain=chain)
    assert verify_log(log).chains_checked == 2
    out = io.StringIO()
    export_jsonl(log, out)
    lines = out.getvalue().encode().splitlines()
    anchor = log.latest_checkpoint().note
    assert verify_export(lines, anchor=anchor).records == 2
    assert verify_export(lines[::-1], anchor=anchor).records == 2
    for line in lines:
        verify_bundle(line, anchor=anchor)


def test_chains1_a_chain_a_member_sends_is_verified_once_outside_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collector verifies a member's chain against the node's trust; the log verified it
    again by its bytes inside the commit (the write transaction every appender waits on), for
    each chain it did not know yet. It now takes the collector's verification."""
    world = make_world()
    log, _ = agent_log(tmp_path, world, NOW)
    calls = counted_chain_checks(monkeypatch)
    collector = TraceCollector(
        log,
        verifier=lambda: world.verifier,
        feeds=world.feeds,
        observe=lambda identity: None,
        vouched=lambda identifier: frozenset(),
    )
    (result,) = collector.submit(sent(world, world.support_chain), submitter=None, now=NOW).results
    assert result.delivered, result
    assert calls == []  # verify() checks the bytes itself; the log does not again
    assert verify_log(log).chains_checked == 1


def sent(world: GatesWorld, chain: bytes) -> Submission:
    """The support agent's first record under `chain`, as its client sends it (with it)."""
    signer = world.support.signer
    verified = sign_record(signer, under_chain(chain), seq=0, prev=None, time=NOW)
    records = (SubmittedRecord(verified.envelope, verified.disclosures),)
    return Submission(signer.identity.history, (signer.attestation,), (chain,), records)
