"""Review 47o, bundles 1: a proof bundle and a JSONL export carried one signer history per
record, so an old record of an agent past 64 changes (signed under a history its log keeps
only as a window, `history_windows`) did not verify offline once the verifier's copy of the
agent had moved past that window ("nothing here shows it is an older prefix"), nor for a
verifier with no copy of the agent at all: `troth trace verify --node hub` passed, `troth
trace verify --file` of the hub's own export did not (docs/traces.md, "Signer histories",
named the limit reviews 47i and 47l left).

A bundle (version 2) now carries the log's windows that link the record's history to the
agent's newest history the log holds and back to its change 0 (`signer.windows`, the
history's place among them `signer.at`), checked as the collector checks the windows a batch
carries (each verified from a change the one before it holds, `check_windows`): the export
verifies on the hub, and with a fresh home (no copy of the agent) verified and unanchored,
never valid without a kept checkpoint.
"""

from __future__ import annotations

import base64
import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run, run_json
from tests.support.nodes import MemNet, run_memnet
from tests.support.traces import NOW, Held
from tests.test_review27t_collect import NOW as NOW_47B
from tests.test_review27t_collect import _collector
from tests.test_review47b_limits import _largest, _largest_signer
from tests.test_review47l_windows import _rotate, _Silent, recorded_then_rotated
from tests.test_trace_node import step
from troth import limits
from troth.encoding import cbor
from troth.errors import IdentityError, IdentityFailure, TraceError, TraceFailure
from troth.identity import Identifier, VerifiedIdentity
from troth.trace.checkpoint import AnchorStatus
from troth.trace.export import bundle_text, export_jsonl, prove, verify_bundle, verify_export
from troth.trace.links import link_windows
from troth.trace.record import REDACTABLE
from troth.trace.signing import open_envelope
from troth.trace.verify import Known

ROUNDS = (20,) * 8  # 160 rotations, no record between: review 47l's set-up


def _hub_with_an_old_record(tmp_path: Path) -> None:
    """Agent `agent-a` records once (change 0), rotates 160 times without a record, records
    again (from a checkpoint past change 64), then rotates 30 more times: the hub's copy of it
    moves past the history of its newest record in the log too."""

    async def test(net: MemNet) -> None:
        agent, client, _first = await recorded_then_rotated(net)
        later = client.record(step(1))
        await client.flush(20)
        assert later.result() == 1
        await _rotate(net, agent, "agent-a", 30)

    run_memnet(test, tmp_path / "home", budget=180)
    run("trace", "checkpoint", "--node", "hub")
    run("trace", "verify", "--node", "hub")


def test_the_export_and_an_old_records_proof_verify_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub's JSONL export and the proof of the agent's record at change 0 verify with
    `troth trace verify --file` on the hub (valid against its kept checkpoint), and on a fresh
    home that holds no copy of the agent: verified, unanchored (not valid) without a kept
    checkpoint, valid with the hub's."""
    _hub_with_an_old_record(tmp_path)
    export = tmp_path / "export.jsonl"
    run("trace", "export", "--format", "jsonl", "--out", str(export), "--node", "hub")
    assert len(export.read_text().splitlines()) == 2
    first = json.loads(export.read_text().splitlines()[0])["record"]["id"]
    bundle = tmp_path / "first.json"
    run("trace", "prove", first, "--out", str(bundle), "--node", "hub")
    kept = tmp_path / "kept.checkpoint"
    run("trace", "verify", "--node", "hub", "--checkpoint", str(kept))
    for path in (export, bundle):
        answer = run_json("trace", "verify", "--file", str(path), "--node", "hub")
        assert answer["verified"] is True
    monkeypatch.setenv("TROTH_HOME", str(tmp_path / "fresh"))
    run("node", "init", "verifier")
    for path in (export, bundle):
        answer = run_json("trace", "verify", "--file", str(path), "--node", "verifier")
        assert (answer["verified"], answer["valid"], answer["status"]) == (
            True,
            False,
            "unanchored",
        )
        anchored = run_json(
            "trace", "verify", "--file", str(path), "--node", "verifier", "--checkpoint", str(kept)
        )
        assert (anchored["valid"], anchored["status"]) == (True, "valid")


# -- the bundles, without a network (review 47l's silent agent) --------------------------------


def _silent_export(tmp_path: Path) -> tuple[_Silent, list[dict[str, Any]]]:
    """An agent with a record at change 0, then 150 silent rotations and a record from change
    118 bridged by two windows (0-63, 63-118): the log's export, line by line."""
    silent = _Silent(tmp_path / "trace.db", 150)
    assert silent.submit(silent.bridging()).delivered
    out = io.StringIO()
    export_jsonl(silent.log, out)
    return silent, [json.loads(line) for line in out.getvalue().splitlines()]


def _lines(bundles: list[dict[str, Any]]) -> list[bytes]:
    return [bundle_text(b).encode() for b in bundles]


def _moved_on(agent: Identifier, first: int) -> Known:
    """A verifier's stored copy of `agent` from change `first` on, as a node's refuses a
    history that ends before it begins (`check_no_fork`: no row of its own shows a prefix)."""

    def known(identity: VerifiedIdentity) -> None:
        if identity.identifier == agent and identity.current.index < first:
            raise IdentityError(
                IdentityFailure.UNATTESTED_CHECKPOINT,
                "nothing here shows it is an older prefix",
                identity.current.index,
            )

    return known


def test_an_export_verifies_by_the_windows_it_carries(tmp_path: Path) -> None:
    """The old record carries the windows forward to the newest history (63-118, from 118);
    the newest record those back to change 0 (0-63, 63-118): each line verifies alone with no
    stored copy of the agent, unanchored, and with a copy that moved past the old record's
    history. Stripped of its windows, the newest is refused with no copy (its checkpoint
    unattested), the old one by the copy that moved on."""
    silent, bundles = _silent_export(tmp_path)
    old, new = bundles
    assert (old["version"], old["signer"]["at"], len(old["signer"]["windows"])) == (2, 0, 2)
    assert (new["version"], new["signer"]["at"], len(new["signer"]["windows"])) == (2, 2, 2)
    moved = _moved_on(silent.agent.identifier, 118)
    for known in (None, moved):
        report = verify_export(_lines(bundles), known=known)
        assert (report.records, report.status) == (2, AnchorStatus.UNANCHORED)
    for bundle, known in ((old, moved), (new, None)):
        assert verify_bundle(bundle, known=known).status is AnchorStatus.UNANCHORED
        bare = copy.deepcopy(bundle)
        del bare["signer"]["windows"], bare["signer"]["at"]
        bare["version"] = 1
        with pytest.raises(TraceError) as refused:
            verify_bundle(bare, known=known)
        assert refused.value.reason is TraceFailure.SIGNER_INVALID
    silent.log.close()


def _tampered(bundle: dict[str, Any], other: bytes) -> dict[str, dict[str, Any]]:
    """The old record's bundle with its windows made wrong, by what is wrong with them."""
    windows = bundle["signer"]["windows"]
    cases: dict[str, dict[str, Any]] = {}

    def case(name: str, **signer: Any) -> None:
        changed = copy.deepcopy(bundle)
        changed["signer"].update(signer)
        cases[name] = changed

    case("a window left out", windows=windows[1:])
    case("another identity's window", windows=[base64.b64encode(other).decode(), *windows])
    case("the history out of place", at=1)
    case("at past the windows", at=3)
    case("no windows", windows=[])
    case("too many windows", windows=windows * 3)
    case("windows not base64", windows=["not base64!"])
    return cases


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("a window left out", TraceFailure.SIGNER_INVALID),
        ("another identity's window", TraceFailure.SIGNER_INVALID),
        ("the history out of place", TraceFailure.SIGNER_INVALID),
        ("at past the windows", TraceFailure.MALFORMED),
        ("no windows", TraceFailure.MALFORMED),
        ("too many windows", TraceFailure.MALFORMED),
        ("windows not base64", TraceFailure.MALFORMED),
    ],
)
def test_windows_that_do_not_link_the_history_are_refused(
    tmp_path: Path, case: str, reason: TraceFailure
) -> None:
    """Windows that do not chain the record's history to a newer one (a window left out,
    another identity's, the history put where it does not follow) are refused, as are
    malformed ones, whatever the verifier holds."""
    silent, (old, _new) = _silent_export(tmp_path)
    other = Held()
    for number in range(3):
        other.rotate(NOW + 60 + number)
    with pytest.raises(TraceError) as refused:
        verify_bundle(_tampered(old, other.identity.history)[case])
    assert refused.value.reason is reason, refused.value
    silent.log.close()


def test_a_link_longer_than_the_bound_is_not_carried(tmp_path: Path) -> None:
    """Five windows forward from the record's history to the newest (over
    MAX_TRACE_PROOF_WINDOWS): none is carried (the bundle is version 1, verified where the
    verifier's copy still holds the history); four are."""
    silent = _Silent(tmp_path / "trace.db", 0)
    silent.rotate(60, NOW + 60)
    spans = [(0, 10), (10, 20), (20, 30), (30, 40), (40, 50), (50, 60)]
    histories = [silent.window(first, last) for first, last in spans]
    assert limits.MAX_TRACE_PROOF_WINDOWS == 4
    assert link_windows(histories[0], histories[1:-1], histories[-1]) is None
    assert link_windows(histories[1], histories[2:-1], histories[-1]) == (histories[2:], 0)
    linked = link_windows(histories[-1], histories[:-1], histories[-1])
    assert linked == (histories[1:-1], 4)  # back: the four nearest it
    silent.log.close()


def test_the_largest_record_proves_within_an_answer_with_the_most_windows(
    tmp_path: Path,
) -> None:
    """MAX_TRACE_PROOF_OVERHEAD counts the windows a bundle may carry: the largest record a
    trace service accepts (review 47b's), its bundle given MAX_TRACE_PROOF_WINDOWS windows of
    MAX_IDENTITY_HISTORY_BYTES, is still within a service answer (MAX_SERVICE_MESSAGE), and
    what it holds beside the values within the overhead (less the chain it names not)."""
    _world, _log, collector = _collector(tmp_path)
    each = limits.MAX_TRACE_RECORD_DISCLOSURE_BYTES // len(REDACTABLE)
    batcher, queued = _largest(NOW_47B, _largest_signer(), each)
    batch = batcher.next_batch(NOW_47B)
    assert batch is not None, queued.error
    (result,) = collector.submit(batch.submission, submitter=None, now=NOW_47B).results
    assert result.delivered, result.detail
    record = open_envelope(batch.submission.records[0].envelope)[0].id
    bundle = prove(collector.log, record)
    window = base64.b64encode(bytes(limits.MAX_IDENTITY_HISTORY_BYTES)).decode()
    bundle["version"] = 2
    bundle["signer"]["windows"] = [window] * limits.MAX_TRACE_PROOF_WINDOWS
    bundle["signer"]["at"] = limits.MAX_TRACE_PROOF_WINDOWS
    answer = bundle_text(bundle, lines=True)
    frame = len(cbor.encode(["troth.service.response", 2, (1 << 64) - 1, True, answer]))
    assert frame <= limits.MAX_SERVICE_MESSAGE
    values = sum(len(d.value) for d in batch.submission.records[0].disclosures.values())
    assert frame - values <= limits.MAX_TRACE_PROOF_OVERHEAD - 4 * -(-limits.MAX_CHAIN_BYTES // 3)
