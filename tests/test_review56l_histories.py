"""Review 56l, histories: the trace log's copy of a signer's history against a history that
starts right after it (a checkpoint at the change after the log's copy's last).

Histories 1: the log judged such a history by its `previous` hash only (`check_extends` given
no `stored_last`), never by the key the stored last change committed to (pre-rotation), the
previous key's signature or the times, which the node's store checks (`KnownHistories._extends`;
review 23a, checkpoints 4). A change made up by whoever holds an old key of the agent (a stolen
backup's current key) or by a co-trusted authority (review 23a), attested by a checkpoint the
log's caller takes, naming the agent's stored last change as previous and revealing a key of its
own, was stored as the agent's newest history: the made-up key's records appended as the
agent's, and the agent's real rotation refused afterwards as a fork (locked out of its own
chain in the log). On a node the node's store refuses it first (tests/test_review56l_refuted.py);
a `TraceLog` used as a library (`verify_envelope` then `append`) had only the log's check.

Histories 2: the window the log kept of the copy such a history replaces ends at the copy's last
change; the change after it (which retires that change's keys) is in the newest history only,
which holds no earlier change. Offline verification then refused the agent's older records
("change N (which retired this key) is in no history the log kept"), and a verifier without
the node could not attest the newest history from the log's own windows: an honest agent back
after exactly 64 rotations (its presented history, its newest 64 changes, starts right after
the log's copy) left a log that `troth trace verify` refuses. Fixed: the log keeps the link too
(the copy's last change and the next, a window verified as a rotation).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from tests.support.parties import signer_as
from tests.support.traces import DAY, NOW, Held, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.crypto import KeyType
from troth.errors import TraceError, TraceFailure
from troth.identity import (
    ChangeBody,
    Checkpoint,
    SignedChange,
    Signer,
    VerifiedIdentity,
    encode_history,
    verify_history,
)
from troth.trace import TraceLog, verify_log
from troth.trace.export import export_jsonl, verify_export
from troth.trace.signing import sign_record, verify_envelope
from troth.vault import KeyPurpose, SoftwareVault

AT = NOW + 100  # the log's clock
AUTHORITY = os.urandom(32)  # a co-trusted authority (its checkpoint taken by the log's caller)


def attested(checkpoint: Checkpoint, change_hash: bytes) -> bool:
    """The log's caller's word on checkpointed histories: it takes the authority's."""
    return True


def made_up_next(agent: Held) -> tuple[VerifiedIdentity, Signer]:
    """A change after `agent`'s current one, naming it as previous and signed by its current
    key (a stolen backup's), revealing a key the current change did not commit to, presented
    from a checkpoint at it: as verified by a caller taking that checkpoint; and a signer as
    it."""
    thief = SoftwareVault()
    primary = thief.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    current = agent.identity.current
    body = ChangeBody(
        current.index + 1,
        current.change_hash,
        thief.public_key(primary),
        os.urandom(32),
        NOW + 50,
        NOW + 50,
        NOW + 3650 * DAY,
    ).encode()
    change = SignedChange(
        body, thief.sign(primary, body), agent.vault.sign(agent.held.primary, body)
    )
    checkpoint = Checkpoint(agent.identifier.digest, AUTHORITY, current.index + 1)
    forged = verify_history(encode_history([change], checkpoint), now=AT, checkpoints=attested)
    return forged, signer_as(thief, primary, forged, now=NOW + 60)


def real_next(agent: Held) -> tuple[VerifiedIdentity, Signer]:
    """`agent` rotated twice, its history presented from a checkpoint at the first new change
    (as its node presents its newest 64 changes, the first right after the log's copy); a
    signer as it."""
    first = agent.identity.current.index + 1
    agent.rotate(NOW + 40)
    agent.rotate(NOW + 50)
    changes = [change.signed for change in agent.identity.changes[first:]]
    checkpoint = Checkpoint(agent.identifier.digest, agent.identifier.digest, first)
    suffix = verify_history(encode_history(changes, checkpoint), now=AT, checkpoints=attested)
    return suffix, signer_as(agent.vault, agent.held.primary, suffix, now=NOW + 60)


def append_as(log: TraceLog, agent: Held, identity: VerifiedIdentity, signer: Signer) -> None:
    """`agent`'s next record signed by `signer`, verified under `identity` (`verify_envelope`,
    as a caller collecting records does) and appended."""
    head = log.head(agent.identifier)
    assert head is not None
    signed = sign_record(signer, tool_call(), seq=head[0] + 1, prev=head[1], time=AT)
    log.append(
        verify_envelope(
            signed.envelope,
            signer=identity,
            attestation=signer.attestation,
            disclosures=signed.disclosures,
        )
    )


def one_record(tmp_path: Path) -> tuple[TraceLog, Held]:
    """A log holding an agent's record at NOW, its clock then at AT."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    agent = Held()
    recorder(log, agent, clock).record(tool_call())
    clock.advance(AT - NOW)
    return log, agent


def test_a_made_up_change_right_after_the_logs_copy_is_refused(tmp_path: Path) -> None:
    """The made-up change's record is refused SIGNER_INVALID (its key is not the one the
    stored change committed to) and the log's copy stays; the agent's real rotation, and its
    records under it, are then appended."""
    log, agent = one_record(tmp_path)
    with log:
        forged, thief = made_up_next(agent)
        with pytest.raises(TraceError) as caught:
            append_as(log, agent, forged, thief)
        assert caught.value.reason is TraceFailure.SIGNER_INVALID
        assert log.head(agent.identifier) is not None
        assert log.head(agent.identifier)[0] == 0  # type: ignore[index]
        real, signer = real_next(agent)
        append_as(log, agent, real, signer)
        assert log.head(agent.identifier)[0] == 1  # type: ignore[index]


def test_a_real_change_right_after_the_logs_copy_leaves_a_log_that_verifies(
    tmp_path: Path,
) -> None:
    """The agent's real next change, presented from a checkpoint at it: the log takes it, and
    the log (and its export) then verify offline without the node, the older record's key
    retired by the change the log kept with it."""
    log, agent = one_record(tmp_path)
    with log:
        real, signer = real_next(agent)
        append_as(log, agent, real, signer)
        assert verify_log(log).size == 2
        out = io.StringIO()
        export_jsonl(log, out)
        assert verify_export(out.getvalue().encode().splitlines()).records == 2
