"""Review 57p: attacks on this session's newest code (reviews 57j and 57k) that did not work."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import pytest
from click.testing import CliRunner

from tests.support.gates import ADMIN, T, make_world, rotate
from tests.support.parties import make_party
from tests.test_review57a_gates import _no_child
from tests.test_review57j_gates import _two_of_revision_1
from troth.cli.main import cli, main
from troth.cli.output import Reporter
from troth.credentials import CredentialChain, issue_credential
from troth.crypto import sha256
from troth.errors import PolicyError
from troth.gates import BundleStore, ToolCall
from troth.node import init_node, open_node
from troth.node.services.node_policies import NodePolicies


def _main(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    monkeypatch.setattr(sys, "argv", ["troth", *argv])
    with pytest.raises(SystemExit) as exited:
        main()
    code = exited.value.code
    return code if isinstance(code, int) else 1


def test_a_result_shown_before_leaves_a_later_bug_its_json_error(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review 57k's process-level "result shown" flag (cli 2): a command run in the same
    process before (by `main`, or by `cli` through CliRunner, which `main` does not wrap) left
    it set; a later `main` whose command fails with a bug before any result still prints its
    error object on stdout with --json, exit 70 (not stderr only, the script reading nothing)."""
    assert _main(monkeypatch, "identity", "create", "a", "--json") == 0
    assert json.loads(capsys.readouterr().out)["name"] == "a"
    runner = CliRunner().invoke(cli, ["identity", "list", "--json"])
    assert runner.exit_code == 0, runner.output

    def bug(self: Reporter, *args: Any) -> NoReturn:
        raise RuntimeError("injected: a bug before the result")

    monkeypatch.setattr(Reporter, "result", bug)
    assert _main(monkeypatch, "identity", "create", "b", "--json") == 70
    out, _ = capsys.readouterr()
    assert json.loads(out)["error"] == "InternalError"


def test_the_replaced_same_revision_bundle_replayed_does_not_decide_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review 57j's gates 1-2 (`_replace_stored` taking the table's own bytes, the dormant
    digest): the higher digest the table's lower one replaced, handed again to the node that
    held it (a replay: its very bytes, a no-op there), does not decide again while the lower
    one is dormant, nor is it offered; a store whose active one is the lower refuses it."""
    world = make_world()
    one, other = _two_of_revision_1(world)
    running = world.store(one)
    pushed = BundleStore(world.verifier, running.table)
    pushed.reload(now=T + 6)
    pushed.accept(other, feeds=world.feeds(), now=T + 6)
    with monkeypatch.context() as patched:
        _no_child(patched)
        assert running.reload(now=T + 10) == []
    running.accept(one, feeds=world.feeds(), now=T + 11)  # the replay
    member = world.credential(world.support_chain, world.support)
    call = ToolCall("lookup_order", {"order_id": "o"})
    assert not world.point(running).decide(member, call, now=T + 12).allowed
    assert running.dormant.ahead(world.authority.identifier.digest, 1, sha256(one))
    with pytest.raises(PolicyError):
        pushed.accept(one, feeds=world.feeds(), now=T + 12)
    assert running.table.load(world.authority.identifier.digest) == other


def test_an_issuer_history_shown_again_at_each_decision_writes_nothing_more(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 57j's storing `_issuer_known` on the decision path (every caller's chain is
    verified again at each decision): a rotation shown in a chain is stored once; the same
    chain shown a thousand times more opens no write transaction on the identity store (a
    member's flood of calls is no flood of writes)."""
    world = make_world()
    acme = world.authority
    rotated, new = rotate(world, acme, T + 20)
    member = make_party(world.vault, now=T)
    credential = issue_credential(
        new.signer, subject=member.identifier, attributes=ADMIN, now=T + 25, ttl=3600, depth=0
    )
    chain = CredentialChain((credential,), (rotated.history,)).encode()
    init_node("desk")
    with open_node("desk") as node:
        node.identities.observe(acme.identity)
        policies = NodePolicies(node, world.feeds().get)
        policies.trust(frozenset({acme.identifier}), now=T + 30)
        assert policies.store is not None
        verifier = policies.store.verifier

        def verify() -> None:
            verifier.verify(chain, presenter=member.identifier, feeds=world.feeds(), now=T + 30)

        verify()
        assert node.identities.stored_changes(acme.identifier) == 2  # the rotation, stored
        store = node.identities.store
        writes: list[int] = []
        transaction = store.transaction

        def counted() -> Any:
            writes.append(1)
            return transaction()

        monkeypatch.setattr(store, "transaction", counted)
        for _ in range(1000):
            verify()
        assert writes == []
