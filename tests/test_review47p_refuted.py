"""Review 47p, refuted: attacks on the history windows of `troth.trace.submit` version 2 and
on `trace.held` (review 47l, windows 1) that the code already stops.

- Replay: the same bridging windows sent again (the request byte for byte, again and again; or
  fresh batches carrying the windows cut otherwise) store nothing more: once a batch bridged
  the gap, the history reaches back to the log's copy and windows are ignored unchecked, and
  `history_windows` is keyed by (identifier, last change), so rows grow only with the
  signer's own signed changes.
- Windows whose batch is refused before the log (its key not sent) are not kept, nor is the
  log's copy of the signer moved.
- Windows sent backwards (the second before the first) do not chain: refused, nothing kept.
- A member storing windows for another (its batch of the other's history, the other's
  windows with it) is refused as a signer not its own, and leaves the other's copy as it was:
  the other's own windows bridge it afterwards (no denial of service).
- `held` as an oracle: a member's argument is ignored, the answer is where the log's copy of
  the caller itself ends.
- The window charge is taken before any verification: a member over its byte budget is
  refused `busy` and its windows never reach the collector.
- A window not in canonical form (a byte after it, a tag before it), which the log would keep
  as sent, does not decode: refused, nothing kept.
- A hostile service's `held` (a negative index, which would run the client's window spans
  back without end on its node's storage thread; a malformed answer) is refused by the client.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from tests.support.traces import Held
from tests.test_review46a_traces import _service
from tests.test_review47i_collector import _batch
from tests.test_review47l_windows import LATE, _Silent
from troth import limits
from troth.channel.verification import VerifiedPeer
from troth.errors import RemoteError, TraceFailure
from troth.identity import VerifiedIdentity, indexed_hashes
from troth.node.access import Decision, PeerCaller
from troth.node.services.base import RequestContext
from troth.node.services.trace import _held
from troth.trace.stored import history_windows
from troth.trace.submit import Receipts, Submission


def _as_member(identity: VerifiedIdentity) -> RequestContext:
    return RequestContext(
        PeerCaller(VerifiedPeer(identity, ()), "channel-1"), (), Decision(True), LATE
    )


def _rows(silent: _Silent) -> list[tuple[Any, ...]]:
    conn = silent.log.store.connection()
    return [tuple(row) for row in conn.execute("SELECT * FROM history_windows ORDER BY last")]


def test_replayed_or_recut_windows_store_nothing_more(tmp_path: Path) -> None:
    """After the bridging batch, the same request again and again (answered `already`) and 20
    fresh batches whose windows are cut at other changes leave `history_windows` as it was.
    Ten replays, not the 1,000 this test once sent (71m, ci): the rows are compared exactly
    with those before, and a replay that stored anything would show after the first; no bound
    is reached by a count of replays (rows are keyed by the signer's own changes), so the
    990 more showed nothing more and took 25 s of CI."""
    silent = _Silent(tmp_path / "trace.db", 150)
    late = dataclasses.replace(
        _batch(silent.collector, silent.agent.signer(LATE), LATE), windows=silent.bridging()
    )
    (first,) = silent.collector.submit(late, submitter=None, now=LATE).results
    assert first.delivered, first.detail
    kept = _rows(silent)
    assert len(kept) == 3  # the log's copy of change 0 the newest dropped, then 0-63, 63-118
    for _ in range(10):
        (again,) = silent.collector.submit(late, submitter=None, now=LATE).results
        assert again.index == first.index, again
    for cut in range(1, 21):
        recut = (silent.window(0, 60 + cut), silent.window(60 + cut, 118))
        assert silent.submit(recut).delivered
    assert _rows(silent) == kept
    silent.log.close()


def test_windows_of_a_batch_refused_before_the_log_are_not_kept(tmp_path: Path) -> None:
    """The bridging windows with a batch whose key is not sent (refused `unknown key` before
    any append): no window, the log's copy of the agent as it was."""
    silent = _Silent(tmp_path / "trace.db", 150)
    before = silent.log.history(silent.agent.identifier)
    late = _batch(silent.collector, silent.agent.signer(LATE), LATE)
    late = dataclasses.replace(late, attestations=(), windows=silent.bridging())
    (result,) = silent.collector.submit(late, submitter=None, now=LATE).results
    assert result.reason is TraceFailure.UNKNOWN_KEY, result
    assert history_windows(silent.log.store) == {}
    assert silent.log.history(silent.agent.identifier) == before
    silent.log.close()


def test_windows_sent_backwards_are_refused(tmp_path: Path) -> None:
    """63-118 then 0-63: the first does not start at a change the log's copy holds."""
    silent = _Silent(tmp_path / "trace.db", 150)
    good = silent.bridging()
    result = silent.submit(good[::-1])
    assert result.reason is TraceFailure.SIGNER_INVALID, result
    assert "window 0" in result.detail
    assert history_windows(silent.log.store) == {}
    silent.log.close()


def test_a_member_cannot_store_windows_for_another(tmp_path: Path) -> None:
    """Member A sends B's batch with B's windows: refused (a member submits only the records
    it signs), nothing kept; B's own windows then bridge its copy."""
    silent = _Silent(tmp_path / "trace.db", 150)  # B
    intruder = Held()  # A
    service = _service(silent.collector)
    before = silent.log.history(silent.agent.identifier)
    late = _batch(silent.collector, silent.agent.signer(LATE), LATE)
    late = dataclasses.replace(late, windows=silent.bridging())
    answer = asyncio.run(service.submit(late.to_cbor(), _as_member(intruder.identity)))
    (result,) = Receipts.from_cbor(answer, expected=1).results
    assert result.reason is TraceFailure.SIGNER_INVALID, result
    assert "a member submits only the records it signs" in result.detail
    assert history_windows(silent.log.store) == {}
    assert silent.log.history(silent.agent.identifier) == before
    answer = asyncio.run(service.submit(late.to_cbor(), _as_member(silent.agent.identity)))
    (result,) = Receipts.from_cbor(answer, expected=1).results
    assert result.delivered, result.detail
    silent.log.close()


def test_held_tells_a_member_only_of_itself(tmp_path: Path) -> None:
    """B (in the log) asks `held` naming A (not in the log): B's own last change; A naming B:
    null."""
    silent = _Silent(tmp_path / "trace.db", 0)  # B, its record at change 0
    stranger = Held()  # A, nothing in the log
    service = _service(silent.collector)
    mine = asyncio.run(service.held([str(stranger.identifier)], _as_member(silent.agent.identity)))
    stored = silent.log.history(silent.agent.identifier)
    assert stored is not None
    assert mine == [0, indexed_hashes(stored)[1][-1]]
    theirs = asyncio.run(
        service.held([str(silent.agent.identifier)], _as_member(stranger.identity))
    )
    assert theirs is None
    silent.log.close()


def test_the_window_charge_is_taken_before_any_verification(tmp_path: Path) -> None:
    """Submissions with the most windows (that the collector would verify: the agent's copy
    needs a bridge) until `busy`: the refused one never reached the collector."""
    silent = _Silent(tmp_path / "trace.db", 150)
    service = _service(silent.collector)
    reached: list[Submission] = []
    submit = silent.collector.submit

    def counted(submission: Submission, **kwargs: Any) -> Any:
        reached.append(submission)
        return submit(submission, **kwargs)

    silent.collector.submit = counted  # type: ignore[method-assign]
    windows = (bytes(1000),) * limits.MAX_TRACE_SUBMIT_WINDOWS
    context = _as_member(silent.agent.identity)
    sent = 0
    with pytest.raises(RemoteError, match="busy"):
        for _ in range(limits.TRACE_SUBMIT_BURST_BYTES // limits.TRACE_SUBMIT_CHARGE + 1):
            batch = _batch(silent.collector, silent.agent.signer(LATE), LATE)
            sent += 1
            asyncio.run(
                service.submit(dataclasses.replace(batch, windows=windows).to_cbor(), context)
            )
    assert 0 < len(reached) == sent - 1
    silent.log.close()


@pytest.mark.parametrize("change", ["trailing byte", "tag before"])
def test_a_window_not_in_canonical_form_is_refused(tmp_path: Path, change: str) -> None:
    """The log keeps a window's bytes as sent: a window with a byte after its document, or a
    CBOR tag before it, does not decode (window 0), and nothing is kept."""
    silent = _Silent(tmp_path / "trace.db", 150)
    first, second = silent.bridging()
    bent = first + b"\x00" if change == "trailing byte" else b"\xc0" + first
    result = silent.submit((bent, second))
    assert result.reason is TraceFailure.SIGNER_INVALID, result
    assert "window 0: " in result.detail
    assert history_windows(silent.log.store) == {}
    silent.log.close()


@pytest.mark.parametrize("answer", [[-1, bytes(32)], [0, bytes(31)], [0], "0"])
def test_a_hostile_services_held_answer_is_refused(answer: Any) -> None:
    """A service answering `held` with a negative index (windows from before change 0: the
    client's spans would run back without end) or a malformed one: RemoteError, no windows."""
    with pytest.raises(RemoteError, match="malformed answer to held"):
        _held(answer)
