"""Review 48n: what was right already, or stays so with the fix (passing tests).

1. A chain the node refuses for good (revoked, expired) stays `delegation chain does not
   verify`: only a stale or missing feed is refused for now.
2. A refusal for good (here `bad signature`) sets the record aside at once, with its reason,
   reported by the outbox's status (`troth node status`, `troth trace outbox`).
3. The wire: a refusal for now encodes as every refusal, `[2, reason text, detail]`, and a
   reason the receiver does not know decodes as `malformed` (what a client of before review
   48n makes of `not accepted yet`: it sets the record aside, as it did before).
4. A storage failure on the node (its log's commit) fails the request: the batch goes again.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support.traces import NOW, Held, bare_collector, open_log
from tests.test_review48n_retry import _StaleVerifier
from tests.test_trace_service import (  # noqa: F401 - `service` is a fixture
    FlakyService,
    Service,
    client_for,
    service,
    tool,
)
from troth.clock import FixedClock
from troth.encoding import cbor
from troth.errors import CredentialFailure, TraceFailure
from troth.storage import SqliteDatabase
from troth.trace.outbox import TraceOutbox
from troth.trace.submit import Receipts, Status, SubmitResult


@pytest.mark.parametrize("failure", [CredentialFailure.REVOKED, CredentialFailure.EXPIRED])
def test_a_chain_refused_for_good_stays_refused_for_good(
    tmp_path: Path, failure: CredentialFailure
) -> None:
    log = open_log(tmp_path / "trace.db", FixedClock(0))
    verifier: Any = _StaleVerifier(failure)
    collector = bare_collector(log, verifier)
    outcome = collector._credential(b"chain", Held().identity, 0)
    assert getattr(outcome, "reason", None) is TraceFailure.CREDENTIAL_INVALID
    log.close()


def test_a_refusal_for_good_is_set_aside_at_once_and_reported(tmp_path: Path) -> None:
    party = Held()
    db = SqliteDatabase(tmp_path / "node.db")
    outbox = TraceOutbox(db, party.identifier, lambda now: party.signer(now))
    queued = outbox.add(tool("refund"), now=NOW)
    assert outbox.next_batch(NOW) is not None
    answer = ["troth.trace.receipts", 1, [[2, "bad signature", "no"]], None, None]
    outbox.answered(Receipts.from_cbor(answer, expected=1), now=NOW)
    assert queued.done
    assert queued.error is not None
    assert queued.error.reason is TraceFailure.BAD_SIGNATURE
    status = outbox.status()
    assert (status["queued"], status["refused"]) == (0, 1)
    assert status["recent_refusals"][0]["reason"] == "bad signature"
    outbox.close()
    db.close()


def test_a_refusal_for_now_is_a_refusal_on_the_wire() -> None:
    refused = SubmitResult(Status.REFUSED, reason=TraceFailure.NOT_YET, detail="stale")
    assert refused.to_cbor() == [2, "not accepted yet", "stale"]
    decoded = SubmitResult.from_cbor(cbor.decode(cbor.encode(refused.to_cbor())))
    assert decoded.transient
    assert not decoded.delivered
    unknown = SubmitResult.from_cbor([2, "a reason of a later release", "x"])
    assert unknown.reason is TraceFailure.MALFORMED
    assert not unknown.transient


def test_a_storage_failure_on_the_node_fails_the_request_and_it_goes_again(
    service: Service,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """4. A transient storage failure as the node's log commits the batch is no refusal: the
    collector raises (the service answers `failed`), the client sends the batch again after
    its backoff, and the record is appended once."""
    failed: list[str] = []

    def disk_full(name: str) -> None:
        if name == "trace.append.before-commit" and not failed:
            failed.append(name)
            raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr("troth.trace.log.crash_point", disk_full)
    flaky = FlakyService(service, service.world.support, loss=0.0)
    client = client_for(flaky)

    async def main() -> Any:
        queued = client.record(tool("refund"))
        await client.flush(10)
        await client.stop()
        return queued

    queued = asyncio.run(main())
    assert failed
    assert queued.result() == 0
    assert client.failures == 1
    assert service.log.size() == 1
