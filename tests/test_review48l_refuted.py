"""Review 48l, vault cache: attacks tried that the code already refuted."""

from __future__ import annotations

import troth
from tests.support.cli import troth_process
from troth.node.traces import traced_as
from troth.trace.record import Kind
from troth.trace.signing import RecordContent


def test_a_recorder_records_under_the_new_history_after_a_cli_compromised_rotation() -> None:
    """Attack: a running node's recorder asks its signer source again only every 60 s, so after
    `troth identity rotate --compromised` in the CLI its next record would be signed by the
    retired key (still in its vault's cache), under the superseded history. Refuted even
    before review 48l's vault fix: the node's log reads the signer's history from node.db and
    refuses the record (ATTESTATION_STALE), and the recorder signs it again with a signer
    asked afresh; since the fix the vault refuses the retired key first (KeyNotFound, the
    same renewal)."""
    with troth.Node.open("agent") as node:
        node.identity  # noqa: B018  (created)
        stored, clock = node._stored, node._clock
        with traced_as(stored, "agent", clock=clock) as recorder:
            recorder.record(RecordContent(Kind.MESSAGE))
            troth_process("identity", "rotate", "agent", "--compromised", "--node", "agent")
            recorder.record(RecordContent(Kind.MESSAGE))
            signer, _ = recorder._signers.current(clock.now())
            assert signer.identity.history == stored.identities.export("agent")
