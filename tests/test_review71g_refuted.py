"""Review 71g (area: outbox2): attacks tried on the rows a rotation leaves to the outbox
(troth.trace.outbox_tickets) that did not work, kept as passing tests. Each: the agent's two
rows queued, a rotation that signs one again and lists the other in its ticket, then a thief
holding the retired key and node.db."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.test_review69a_outbox import plant
from tests.test_review70b_outbox import resent_to_an_older_service
from tests.test_review71g_outbox2 import Rotated
from tests.test_trace_service import NOW, F, Service, service, tool  # noqa: F401 - a fixture
from troth.trace.export import bundle_text
from troth.trace.outbox_tickets import write_ticket
from troth.trace.signing import open_envelope, sign_record

_STALE = F.ATTESTATION_STALE.value


def _thiefs(rotated: Rotated) -> bytes:
    """A thief's record signed by the retired key, dated before the rotation: its envelope."""
    forged = sign_record(
        rotated.stolen, tool("wire_transfer"), seq=0, prev=None, time=NOW - 600, random=os.urandom
    )
    return forged.envelope


def test_a_listed_rows_envelope_replaced_by_a_thiefs_is_set_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried: replace the envelope of the row the ticket lists with the thief's record
    (retired key), the row's hash column kept as listed: the hash the outbox checks is the
    verified envelope's, so the row is set aside, not signed by the new key."""
    rotated = Rotated(tmp_path, monkeypatch)
    try:
        with rotated.db.transaction():
            rotated.db.execute(
                "UPDATE trace_outbox SET envelope = ?, disclosures = NULL WHERE record = ?",
                (_thiefs(rotated), rotated.ids[1]),
            )
        assert rotated.sent() == [(rotated.ids[0], True)]
        assert rotated.refused() == [(rotated.ids[1], _STALE)]
    finally:
        rotated.close()


@pytest.mark.parametrize("how", ["signed by the retired key", "a hash added"])
def test_a_ticket_written_by_a_thief_lists_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Tried: the thief's row planted, and the ticket made to list its hash: written anew
    signed by the retired key (a key of an older change: not the current one), or the hash
    added to the ticket the rotation wrote (its signature no longer verifies). The thief's
    row is set aside (the honest row the ticket listed with it too: a writer of node.db can
    delete rows anyway)."""
    rotated = Rotated(tmp_path, monkeypatch)
    try:
        forged = plant(rotated.outbox, rotated.agent, rotated.stolen, stale=True)
        agent = rotated.agent.identifier.digest
        with rotated.db.transaction():
            if how == "a hash added":
                rotated.db.execute(
                    "UPDATE trace_outbox_resign SET hashes = hashes || ? WHERE agent = ?",
                    (forged.hash, agent),
                )
            else:
                (listed,) = rotated.db.fetch_one(
                    "SELECT hashes FROM trace_outbox_resign WHERE agent = ?", (agent,)
                )
                write_ticket(rotated.db, agent, rotated.stolen, [listed, forged.hash])
        assert rotated.sent() == [(rotated.ids[0], True)]
        assert sorted(rotated.refused()) == sorted(
            [(rotated.ids[1], _STALE), (forged.record.id, _STALE)]
        )
    finally:
        rotated.close()


def test_a_ticket_of_no_change_of_the_agent_stalls_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried: keep the outbox asking for its signer again, forever, with a ticket whose key
    attestation is of no change of the agent's history (a writer of node.db's): it asks at
    most its bound of times, sends the row the rotation signed again, and sets the listed one
    aside (the ticket lists nothing)."""
    rotated = Rotated(tmp_path, monkeypatch)
    try:
        with rotated.db.transaction():
            rotated.db.execute("UPDATE trace_outbox_resign SET attestation = X'00'")
        assert rotated.sent() == [(rotated.ids[0], True)]
        assert rotated.refused() == [(rotated.ids[1], _STALE)]
    finally:
        rotated.close()


def _anothers(log: Service, record: str) -> str:
    """The bundle of the agent's other record in the log (another record under the id)."""
    ids = [open_envelope(stored.envelope)[0].id for stored in log.log.records()]
    (other,) = [found for found in ids if found != record]
    return bundle_text(log.collector.prove(other, requester=None, now=NOW), lines=True)


def _signature_changed(log: Service, record: str) -> str:
    """The record's bundle, its envelope's signature another's (64 zero bytes)."""
    bundle = log.collector.prove(record, requester=None, now=NOW)
    envelope = json.loads(bundle["envelope"])
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(64)).decode()
    bundle["envelope"] = json.dumps(envelope, separators=(",", ":"))
    return bundle_text(bundle, lines=True)


@pytest.mark.parametrize("proved", [_anothers, _signature_changed, lambda _s, _r: "[]"])
def test_a_replayed_record_whose_log_copy_is_not_it_stays_refused(
    service: Service,  # noqa: F811
    tmp_path: Path,
    proved: Callable[[Service, str], str],
) -> None:
    """Tried (review 71g, outbox2 2): have a REPLAYED record counted delivered by the copy a
    service's `prove` shows: another record's (of other content: a thief's under the id), the
    record with a signature that does not verify, or no bundle: each stays refused (set
    aside REPLAYED), as before."""
    sent, asked, refused = resent_to_an_older_service(service, tmp_path, proved)
    assert asked == sent
    assert refused == [F.REPLAYED.value] * 2
