"""Review 46f: an adversarial review of the code merged in session 46 (the trace log's
crash-safe redaction, derived revocation record ids, the outbox's redaction, the secrets
broker's chain pruning and sweep budget, the control socket and private-file reads, CLI stdin,
and the authority/runtime mixin refactor). Each finding here was a strict xfail first; the
attacks that failed are in tests/test_review46f_refuted.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.test_review46e_outbox_redaction import HEAD, TAIL, content, default_off
from tests.test_trace_service import (  # noqa: F401 - `service` is a fixture
    NOW,
    Service,
    service,
)
from troth.errors import ConfigError
from troth.node.home import read_private_file
from troth.storage import SqliteDatabase
from troth.trace.outbox import TraceOutbox, redact_outbox


def test_an_unanswered_batch_is_not_sent_again_with_a_value_redacted_since(
    tmp_path: Path,
    service: Service,  # noqa: F811
) -> None:
    """Outbox 1. The node reads a batch and sends it; the trace service does not answer (down
    for hours: the outbox keeps the batch in memory and sends the same one again until it is
    answered). The operator runs `troth trace redact` on the queued record meanwhile: it
    reports the value deleted from the outbox. The resend carried the value as first read,
    and the service's log took it: a redaction that reported success while the value went on
    to be delivered. The batch sent again is now read again where a row changed since.

    Was a strict xfail until the fix (troth.trace.outbox, `TraceOutbox.next_batch`: an
    unanswered batch is read again when a row's size changed since it was read)."""
    party = service.world.support
    db = SqliteDatabase(tmp_path / "node.db")
    default_off(db)
    outbox = TraceOutbox(db, party.identifier, lambda now: party.signer)
    try:
        record = outbox.add(content(HEAD, TAIL, pad=6000), now=NOW).record
        assert outbox.claim()
        first = outbox.next_batch(NOW)
        assert first is not None  # sent; no answer comes
        assert redact_outbox(db, record, "args") is True
        again = outbox.next_batch(NOW + 30)
        assert again is not None
        (sent,) = again.submission.records
        assert "args" not in sent.disclosures
        outbox.answered(service.submit(again.submission, party), now=NOW + 30)
        assert outbox.pending() == 0
        assert service.log.disclosures(record) == {}
    finally:
        outbox.close()
        db.close()


def test_a_private_file_that_is_a_directory_is_a_config_error_and_leaks_no_descriptor(
    tmp_path: Path,
) -> None:
    """Home 1. `read_private_file` (node.json, the vault's key file, the books) opens the
    path without waiting and checks it is a regular file (review 46b), but it wrapped the
    descriptor in a file object before that check: a directory there (`node.json/`) raised
    IsADirectoryError ("Is a directory: 16", naming a descriptor, not the path), an untyped
    error where its contract and its callers (`open_node`: ConfigError, exit 3) expect a
    ConfigError, and the descriptor stayed open (each `list_nodes` leaked one).

    Was a strict xfail until the fix (troth.node.home: the checks before the file object, the
    descriptor closed on every failure)."""
    folder = tmp_path / "node.json"
    folder.mkdir(mode=0o700)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        with pytest.raises(ConfigError, match="not a regular file"):
            read_private_file(folder)
    assert len(os.listdir("/proc/self/fd")) == before
