"""Review 56l: attacks on the trace layer's copies of a signer's history that did not work. Each
test is a real attempt, and fails if the defence breaks (tests/test_review56l_histories.py: the
ones that did, against a `TraceLog` alone).

1. On a node, the trace service's collector: a made-up change right after the copies of the
   agent the node holds (its checkpoint taken, the submitter the agent as a channel shows it) is
   refused by the node's store (`KnownHistories._extends` checks it follows the stored change as
   a rotation: review 23a, checkpoints 4) before the log sees it; the store keeps its copy, and
   the agent's real rotation is then taken.
2. A made-up change bridged by a history window (a later made-up change presented, the window
   from the log's copy's last change through the made-up one): the window is verified from the
   change the log holds, as a rotation, and refused (`verify_windows`); the log keeps nothing.
3. Offline: a log file holding a made-up change as the agent's newest history, with the window
   the log would keep of it (an operator's edit): `verify_log` refuses the window (it verifies
   as a history, pre-rotation included), whatever checkpoints the verifier takes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.parties import signer_as
from tests.support.traces import DAY, NOW, Held, db, set_newest_history, tool_call
from tests.test_review56l_histories import (
    AT,
    AUTHORITY,
    attested,
    made_up_next,
    one_record,
    real_next,
)
from troth.clock import FixedClock
from troth.crypto import KeyType, sha256
from troth.errors import IdentityFailure, TraceError, TraceFailure
from troth.identity import (
    ChangeBody,
    Checkpoint,
    Checkpoints,
    SignedChange,
    Signer,
    VerifiedIdentity,
    encode_history,
    next_key_digest,
    verify_history,
)
from troth.node import Node, init_node, open_node
from troth.trace import TraceLog, open_node_log, verify_log
from troth.trace.collect import TraceCollector
from troth.trace.signing import sign_record
from troth.trace.submit import Receipts, Status, Submission, SubmittedRecord
from troth.vault import KeyPurpose, SoftwareVault

MISMATCH = IdentityFailure.NEXT_KEY_MISMATCH.value


def collector(log: TraceLog, node: Node | None) -> TraceCollector:
    """A collector into `log` taking every checkpoint (a co-trusted authority's feed names the
    made-up change), storing signers in `node`'s store (None: nowhere), trusting no authority."""
    return TraceCollector(
        log,
        verifier=lambda: None,
        feeds=dict,
        observe=(lambda identity: None) if node is None else node.identities.observe,
        vouched=lambda identifier: frozenset(),
        checkpoints=lambda now: attested,
    )


def submit(
    into: TraceCollector,
    agent: Held,
    identity: VerifiedIdentity,
    signer: Signer,
    windows: tuple[bytes, ...] = (),
) -> Receipts:
    """`agent`'s next record signed by `signer` under `identity`, submitted as the agent."""
    head = into.log.head(agent.identifier)
    seq, prev = (0, None) if head is None else (head[0] + 1, head[1])
    time = into.log.clock.now()
    signed = sign_record(signer, tool_call(), seq=seq, prev=prev, time=time)
    submission = Submission(
        identity.history,
        (signer.attestation,),
        (),
        (SubmittedRecord(signed.envelope, dict(signed.disclosures)),),
        windows,
    )
    return into.submit(submission, submitter=agent.identifier, now=time)


def refused(receipts: Receipts, detail: str) -> None:
    (result,) = receipts.results
    assert result.status is Status.REFUSED
    assert result.reason is TraceFailure.SIGNER_INVALID
    assert detail in (result.detail or "")


def test_a_nodes_store_refuses_a_made_up_change_right_after_its_copy(troth_home: Path) -> None:
    """Refuted 1."""
    init_node("hub")
    clock = FixedClock(NOW)
    with open_node("hub") as node, open_node_log(node, clock=clock) as log:
        service = collector(log, node)
        agent = Held()
        assert submit(service, agent, agent.identity, agent.signer(NOW)).results[0].index == 0
        digest = agent.identifier.digest
        assert node.identities.store.get_history(digest) == (agent.identity.history, 1)
        clock.advance(AT - NOW)
        forged, thief = made_up_next(agent)
        refused(submit(service, agent, forged, thief), MISMATCH)
        assert node.identities.store.get_history(digest) == (agent.identity.history, 1)
        assert log.head(agent.identifier)[0] == 0  # type: ignore[index]
        real, signer = real_next(agent)
        assert submit(service, agent, real, signer).results[0].index == 1


def made_up_after_next(agent: Held) -> tuple[bytes, VerifiedIdentity, Signer]:
    """Two changes after `agent`'s current one, the first revealing a key of the maker's (the
    current key, stolen, signing it as previous), the second following it: the window from
    the agent's current change through the first, the second alone from a checkpoint (taken
    by the collector), and a signer as it."""
    vault = SoftwareVault()
    keys = [vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY) for _ in range(2)]
    current = agent.identity.current
    previous, signs, made = current.change_hash, (agent.vault, agent.held.primary), []
    for step, key in enumerate(keys, 1):
        following = next_key_digest(vault.public_key(keys[1])) if step == 1 else os.urandom(32)
        at = NOW + 30 + 10 * step
        body = ChangeBody(
            current.index + step,
            previous,
            vault.public_key(key),
            following,
            at,
            at,
            NOW + 3650 * DAY,
        ).encode()
        made.append(SignedChange(body, vault.sign(key, body), signs[0].sign(signs[1], body)))
        previous, signs = sha256(body), (vault, key)
    digest = agent.identifier.digest
    window = encode_history(
        [current.signed, made[0]],
        Checkpoint(digest, digest, current.index) if current.index else None,
    )
    checkpoint = Checkpoint(digest, AUTHORITY, current.index + 2)
    newest = verify_history(encode_history(made[1:], checkpoint), now=AT, checkpoints=attested)
    return window, newest, signer_as(vault, keys[1], newest, now=NOW + 60)


def test_a_window_through_a_made_up_change_is_refused(tmp_path: Path) -> None:
    """Refuted 2."""
    log, agent = one_record(tmp_path)
    with log:
        window, newest, thief = made_up_after_next(agent)
        refused(submit(collector(log, None), agent, newest, thief, (window,)), MISMATCH)
        assert log.history(agent.identifier) == agent.identity.history
        assert db(log).execute("SELECT count(*) FROM history_windows").fetchone() == (0,)


@pytest.mark.parametrize(
    ("checkpoints", "why"),
    [(None, "checkpointed history not attested"), (attested, MISMATCH)],
    ids=["own-windows", "taking-every-checkpoint"],
)
def test_an_edited_log_holding_a_made_up_change_does_not_verify(
    tmp_path: Path, checkpoints: Checkpoints | None, why: str
) -> None:
    """Refuted 3: by its own windows, the newest is attested only by the window that does not
    verify; taking the checkpoint, the window itself is refused."""
    log, agent = one_record(tmp_path)
    with log:
        forged, _ = made_up_next(agent)
        window = encode_history([agent.identity.current.signed, forged.changes[0].signed])
        raw = db(log)
        raw.execute(
            "INSERT INTO history_windows VALUES (?, ?, ?)", (agent.identifier.digest, 1, window)
        )
        raw.close()
        set_newest_history(log, agent, forged)
        with pytest.raises(TraceError) as caught:
            verify_log(log, checkpoints=checkpoints)
        assert caught.value.reason is TraceFailure.SIGNER_INVALID
        assert why in (caught.value.detail or "")
