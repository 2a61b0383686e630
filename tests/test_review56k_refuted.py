"""Review 56k: attacks on this session's merges that did not work (each test fails if the
defence it pins breaks)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.support.gates import SUPPORT, T, make_world
from tests.support.parties import make_party
from tests.support.traces import bare_collector
from tests.test_review56k_chains import NOW, forged_root, support_log, under
from troth.credentials import CredentialChain, issue_credential
from troth.errors import TraceError, TraceFailure
from troth.trace.export import export_jsonl, verify_bundle, verify_export
from troth.trace.signing import sign_record
from troth.trace.submit import Submission, SubmittedRecord
from troth.trace.verify import verify_log


def self_rooted(world: object) -> bytes:
    """The support agent's credential issued by an authority the attacker made itself."""
    own = make_party(world.vault, now=T)  # type: ignore[attr-defined]
    credential = issue_credential(
        own.signer,
        subject=world.support.identifier,  # type: ignore[attr-defined]
        attributes=SUPPORT,
        now=T,
        ttl=30 * 86_400,
        depth=3,
    )
    return CredentialChain((credential,), (own.identity.history,)).encode()


@pytest.mark.parametrize("kind", ["self-rooted", "forged checkpoint"])
def test_a_trace_collector_refuses_a_chain_its_node_does_not_trust(
    tmp_path: Path, kind: str
) -> None:
    """A member submits a record under a chain rooted in an authority it made itself, or in
    the real authority's name from a checkpoint no one attests: the collector verifies the
    chain against the node's anchors and feeds (ChainVerifier.verify) before the log sees it,
    and nothing is appended."""
    world = make_world()
    log, _ = support_log(tmp_path, world)
    chain = self_rooted(world) if kind == "self-rooted" else forged_root(world)
    signer = world.support.signer
    verified = sign_record(signer, under(chain), seq=0, prev=None, time=NOW)
    batch = Submission(
        signer.identity.history,
        (signer.attestation,),
        (chain,),
        (SubmittedRecord(verified.envelope, verified.disclosures),),
    )
    receipts = bare_collector(log, world.verifier).submit(batch, submitter=None, now=NOW)
    (result,) = receipts.results
    assert (result.delivered, result.reason) == (False, TraceFailure.CREDENTIAL_INVALID)
    assert log.size() == 0


def test_offline_verification_refuses_a_forged_checkpointed_root_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log written without the append check (a crafted file) holding a record under a root
    history presented from a checkpoint no one attests: verify_log, verify_export and
    verify_bundle with no stored histories refuse it (the checkpoint is not taken as carried
    there)."""
    world = make_world()
    log, recorder = support_log(tmp_path, world)
    forged = forged_root(world)
    monkeypatch.setattr("troth.trace.log.check_chain_signed", lambda *a, **k: None)
    recorder.record(under(forged), chain=forged)
    monkeypatch.undo()
    with pytest.raises(TraceError) as logged:
        verify_log(log)
    assert logged.value.reason is TraceFailure.CREDENTIAL_INVALID
    out = io.StringIO()
    export_jsonl(log, out)
    (line,) = out.getvalue().encode().splitlines()
    anchor = log.latest_checkpoint().note
    for verify in (verify_export, verify_bundle):
        with pytest.raises(TraceError) as caught:
            verify([line] if verify is verify_export else line, anchor=anchor)  # type: ignore[operator]
        assert caught.value.reason is TraceFailure.CREDENTIAL_INVALID
