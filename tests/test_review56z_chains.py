"""Review 56z, chains (review 56y, chains 2, fixed): a node's trace log and its own verification
judge each issuer history a chain carries against the node's stored copies
(`node.verify.trace_issuers`), not on a held feed's word alone. What that check must still take:
an honest issuer's history presented from the change its OWN authority's feed names, the node
holding an older copy of it (here; none held: review 56q, chains 1), and a chain made before
its issuer rotated, an older prefix of the stored copy (review 56y, chains 1; 56q, chains 2).
And it runs once per new chain, not once per record."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.member_chains import member_chain
from tests.support.traces import under_chain
from troth.identity import Identifier, VerifiedIdentity
from troth.node import Node, verify
from troth.trace.chain_signed import IssuerCheck


def verified_everywhere(home: Path) -> None:
    """`troth trace verify` on hub verifies its log and an export of it."""
    run("trace", "verify", "--node", "hub")
    export = home / "export.jsonl"
    run("trace", "export", "--format", "jsonl", "--out", str(export), "--node", "hub")
    run("trace", "verify", "--file", str(export), "--node", "hub")


def test_an_issuer_history_its_own_authority_checkpoints_extends_the_stored_copy(
    troth_home: Path,
) -> None:
    with member_chain(troth_home, int(time.time()), stored=True) as (recorder, chain):
        assert recorder.record(under_chain(chain), chain=chain).index == 0
    verified_everywhere(troth_home)


def test_the_issuer_check_runs_once_per_chain_not_per_record(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Identifier] = []
    check = verify._issuer_check

    def counted(node: Node) -> IssuerCheck:
        inner = check(node)

        def issuer(identity: VerifiedIdentity, root: Identifier) -> None:
            calls.append(identity.identifier)
            inner(identity, root)

        return issuer

    monkeypatch.setattr(verify, "_issuer_check", counted)
    with member_chain(troth_home, int(time.time()), stored=True) as (recorder, chain):
        for _ in range(3):
            recorder.record(under_chain(chain), chain=chain)
    assert len(calls) == 1  # the log's append: its one issuer, once
    run("trace", "verify", "--node", "hub")
    assert len(calls) == 2  # the log's verification: once for its three records
    export = troth_home / "export.jsonl"
    run("trace", "export", "--format", "jsonl", "--out", str(export), "--node", "hub")
    run("trace", "verify", "--file", str(export), "--node", "hub")
    assert len(calls) == 3  # the export's three lines: once
