"""Review 15's attacks: trace verification by the newest view (2d217ac), the identifier form
without "d" + hex (c1f4184), `troth authority list` pins (9203ba0, c1f4184).

Each test asserts the secure or correct behaviour and is marked xfail while main has the bug.
"""

# Held (tried, no test kept; "ran" = exercised here, "read" = from the code only):
# - ran: an observed signer whose stored copy holds changes 0..3, a key attested under change
#   0, 1, 2 or 3, a bundle whose history ends at that change: a record 50 s after the change
#   and one in the rotation's own second verify, one a second after it is refused (`after its
#   retirement`); the window from the stored copy (a checkpoint at `first + position`, none at
#   0) is attested by `attested_by_store` and passes `check_no_fork`.
# - read: the 1 s allowance gives a thief nothing beyond that second: it can date a record at
#   any earlier time anyway (formats.md's standing caveat), and rule 4 (the change index never
#   decreases along a chain) refuses an old-key record after a new-key one in that second.
#   Two changes in one second (a key-type change) retire the key at that second: a record in
#   it passes. `at < expires_at` and `at <= valid_until` match verify_attestation and
#   verify_history. The retirement check uses only the record's time and the change's, both
#   the signer's clock: the node's clock plays no part.
# - read: window_around is keyed by the record's agent (change_index filters by identifier;
#   verify_identity checks the window is the agent's, resolve_key the attestation's
#   identifier); a malformed stored copy gives None there but check_no_fork refuses the
#   bundle first (MALFORMED); a stored copy checkpointed after the key's change gives None,
#   and a bundle history ending before it is refused by check_no_fork (no local row: a gap).
#   key_in_rows without `checkpoints` would refuse an honest record under change k > 0, but
#   every caller that passes rows (troth trace verify) passes attested_by_store too.
# - read: c1f4184: names are [a-z0-9][a-z0-9._-]* of at most 64 characters, so "d" + 64 hex
#   (65 characters) is neither a name nor an identifier: `Names.identifier` says so
#   (`is_name`), no lookup can take it for another identity; every looks_like caller parses
#   only T- or DID-form text after it; _IDENTIFIER_TEXT (labels) matches only "T" + hex.
# - read: `_resolve` now asks the rows before the kept windows: a stored copy ending at the
#   key's change would shadow a later window's retirement, but the newest history lacks that
#   change only from a checkpoint, which attested_by_store attests by a local row (complete)
#   or a stored change past it (then the copy holds the key's next change too).
# - ran: `troth authority list` with one node's database overwritten by garbage: that
#   authority's row is dropped by the directory (not by _pin), the others listed.

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

import troth.cli.authority_cmds as authority_cmds
from tests.support.cli import run_json
from tests.support.traces import DAY, NOW, Held, open_log, tool_call, verify_export_on
from troth.clock import FixedClock
from troth.errors import TraceError
from troth.node import init_node, open_node
from troth.trace import TraceLog, TraceRecorder
from troth.trace.export import export_jsonl, verify_export

# -- 1. a retired log key signs checkpoints -------------------------------------------------------


def test_a_node_that_knows_the_rotation_refuses_a_checkpoint_signed_after_it(
    tmp_path: Path,
) -> None:
    """The log identity's signing key under change 0 leaks; the log identity rotates (change 1,
    a day later). The thief opens a log of its own bound to that identity with the leaked key
    (honest records of another agent in it) and exports it two days after the rotation: each
    bundle's `log.history` ends at change 0, so its checkpoint, signed a day after the key
    retired, verifies on a node that stores the log identity's history through change 1.
    2d217ac judges a record's key by the newest the verifier knows (formats.md, "Signatures
    outlive rotations", rule 3), but `_checkpoint` -> `verify_checkpoint` still resolves the
    log's key with `resolve_key` in the bundle's history: the log's signature, which vouches
    for the collector's checks ("When a record entered the log"), is forged with a retired
    key."""
    with pytest.raises(TraceError, match="after its retirement"):
        thief_export_verified(tmp_path)


def thief_export_verified(tmp_path: Path, *, checkpoint_at: int | None = None) -> None:
    """The log identity's key under change 0 leaks and it rotates a day later; the thief's own
    log, bound to that identity by the leaked key, takes another agent's record two days after
    the rotation (and, with `checkpoint_at`, a checkpoint the thief dates then) and is exported;
    a node that stores the identity's history through change 1 verifies the export."""
    owner = Held(now=NOW)
    leaked = owner.signer(NOW)
    owner.rotate(NOW + DAY)
    agent = Held(now=NOW)
    clock = FixedClock(NOW + 2 * DAY)
    out = io.StringIO()
    with TraceLog.open(tmp_path / "thief.db", clock=clock, signer=lambda now: leaked) as log:
        TraceRecorder(log, agent.signer(NOW + 2 * DAY), clock=clock).record(tool_call("any"))
        if checkpoint_at is not None:
            clock.advance(checkpoint_at - clock.now())
            log.checkpoint()
        export_jsonl(log, out)
    init_node("verifier")
    with open_node("verifier") as node:
        node.identities.import_history(owner.identity, now=NOW + DAY)
        verify_export_on(node.identities, out.getvalue())


def test_an_honest_record_verifies_while_another_process_extends_the_stored_copy(
    tmp_path: Path,
) -> None:
    """An honest record under victim's change 1, made between changes 1 and 2, its bundle's
    history ending at change 1 (the key current). Verifier process A has victim's copy through
    change 0 cached (KnownHistories, 10 s); process B (the node daemon, on the same store)
    then stores victim's history through change 2. A verifies the export: `check_no_fork`
    passes on the cached copy, `newest_view` asks `window_around`, which reads B's copy from
    the store and cuts the window [1, 2] with a checkpoint at 1; `attested_by_store` looks the
    checkpoint's change up in A's cache, which lacks change 1, so the honest record is refused
    as `signer identity invalid` (checkpointed history not attested). Before 2d217ac the rows
    were not read for a key the bundle shows current."""
    victim = Held(now=NOW)
    first = victim.identity
    victim.rotate(NOW + 100)
    key = victim.signer(NOW + 100)
    victim.rotate(NOW + 200)
    clock = FixedClock(NOW + 150)
    out = io.StringIO()
    with open_log(tmp_path / "log.db", clock) as log:
        TraceRecorder(log, key, clock=clock).record(tool_call("honest"))
        export_jsonl(log, out)
    init_node("verifier")
    with open_node("verifier") as process_a, open_node("verifier") as process_b:
        process_a.identities.import_history(first, now=NOW)  # A's cache: through change 0
        process_b.identities.import_history(victim.identity, now=NOW + 200)
        identities = process_a.identities
        report = verify_export(
            out.getvalue().encode().splitlines(),
            known=identities.check_no_fork,
            checkpoints=identities.attested_by_store,
            rows=identities.window_around,
        )
    assert report.records == 1


def test_a_recorder_keeps_recording_after_its_identity_rotates_elsewhere(
    tmp_path: Path,
) -> None:
    """A recorder asks its signer source again every 60 s (`_REFRESH_EVERY`: "a rotation
    elsewhere"). The identity rotates (another process, `troth identity rotate`), which deletes
    every purpose key; the recorder's next record within those 60 s signs with the deleted
    key and raises KeyNotFound (only TraceErrors of _RETRIED renew and retry): honest records
    fail after a rotation until the refresh."""
    init_node("acme")
    with open_node("acme") as acme:
        identities = acme.identities
        identities.create(now=NOW, name="agent")
        clock = FixedClock(NOW)
        with open_log(tmp_path / "log.db", clock) as log:
            recorder = TraceRecorder(
                log, lambda now: identities.signer("agent", now=now), clock=clock
            )
            recorder.record(tool_call("before"))
            identities.rotate("agent", now=NOW + 10)
            clock.advance(30)
            recorder.record(tool_call("after"))
            assert log.size() == 2


# -- 2. troth authority list --json ----------------------------------------------------------------

_PIN = re.compile(r"T[0-9a-f]{64}:[0-9a-f]+")


def test_authority_list_json_pin_is_a_pin_or_null(monkeypatch: pytest.MonkeyPatch) -> None:
    """c1f4184 keeps every row when an authority cannot say its pin, by putting
    "unavailable (<error>)" in the row's `pin`. In `--json` that is the field a script reads
    to pass to `troth enroll --authority-pin`: a pin and an error message share one string
    field, told apart only by parsing prose. It should be a pin or null (the reason in a
    field of its own)."""
    init_node("acme")
    with open_node("acme") as node:
        node.create_authority("acme", now=NOW)
    monkeypatch.setattr(authority_cmds, "CLOCK", FixedClock(NOW + 40 * 365 * DAY))
    rows = run_json("authority", "list")
    assert [r["name"] for r in rows] == ["acme"]
    for row in rows:
        assert row["pin"] is None or _PIN.fullmatch(row["pin"]), row["pin"]
