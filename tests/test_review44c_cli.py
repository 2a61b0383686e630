"""Review 44c, CLI: a security engineer's first sweep of the command line with hostile
arguments (every command, every file, name, duration and route argument mutated).

1. `troth credential export --format vc` issued the VC in the CLI: it chose the credential id
   and the validity window and wrote the issued record to the authority's store itself, so the
   Python API could not issue the VC the CLI issues, and the CLI was not thin (house rule 3).
   The authority issues it now (`Authority.issue_member_vc`), recording it in the same
   transaction: removing the member revokes it.
2. `--out -` wrote a file named `-` in the working directory and reported success, where every
   input takes `-` as stdin (and stdout could not carry a file and the `--json` result): it is
   refused as a usage error, naming /dev/stdout.
3. `troth trace export --json` without --out printed the JSONL export, one document a line,
   not one JSON document: it prints one object now, the proofs in a list beside the checkpoint.
4. `troth trace checkpoint | troth trace verify --checkpoint -` ignored the checkpoint piped in:
   `-` was taken as a kept checkpoint's file name, none there yet, so the log verified
   `unanchored` with exit 0 (the verifier believed it had anchored it) and the new checkpoint
   went to a file named `-`. --checkpoint is read and then replaced: `-` is refused.
5. `troth trace export --out "" --json` took the empty name for no --out: the JSONL export on
   stdout under --json. An empty file name is refused like `-`.
6. `troth credential delegate --out DIR/missing/x.chain` signed the delegation and recorded it
   in the node's signed trace log, then failed to write the chain (exit 4): the log holds a
   delegation nobody received, and a retry records another. The output file is opened first:
   nothing is delegated or recorded when it cannot be written; likewise a VC export is issued
   (recorded as issued) only when its file can be written.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.cli import run, run_json
from troth.cli import credential_cmds
from troth.cli.main import cli
from troth.clock import SystemClock
from troth.credentials.vc import vc_credential_hash
from troth.identity import Identifier
from troth.node import open_node


@pytest.fixture
def member(tmp_path: Path) -> str:
    """Authority acme on node acme, and customer enrolled in it: customer's identifier."""
    run_json("authority", "create", "acme")
    customer = str(run_json("identity", "create", "customer")["identifier"])
    ticket = run(
        "authority", "ticket", "create", "--authority", "acme", "--attr", "orders.access=read"
    ).stdout.strip()
    run_json("enroll", ticket, "--as", "customer")
    return customer


def test_the_authority_issues_a_members_vc_and_removing_the_member_revokes_it(
    member: str,
) -> None:
    subject, now = Identifier.parse(member), SystemClock().now()  # after the CLI made them
    with open_node("acme", home=Path(os.environ["TROTH_HOME"])) as node:
        authority = node.authority()
        document = authority.issue_member_vc(subject, now=now)
        assert document["credentialSubject"]["id"] == subject.did
        revoked = authority.remove_member(subject, now=now + 1)
    assert vc_credential_hash(document["id"]) in revoked


def test_the_vc_export_command_leaves_the_authoritys_store_to_the_authority() -> None:
    assert ".store." not in inspect.getsource(credential_cmds)


@pytest.mark.parametrize(
    "command",
    [
        ("identity", "export", "customer"),
        ("credential", "export", "customer"),
        ("revocations", "show", "--authority", "acme"),
        ("trace", "export"),
    ],
)
def test_out_dash_is_refused_never_a_file_named_dash(
    member: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    monkeypatch.chdir(tmp_path)
    refused = run_json(*command, "--out", "-", code=2)
    assert "/dev/stdout" in refused["message"]
    assert not (tmp_path / "-").exists()


def test_trace_export_json_without_out_is_one_document(member: str, tmp_path: Path) -> None:
    run_json("identity", "create", "helper")
    for purpose in ("one", "two"):  # each delegation is a trace record
        run_json(
            "credential",
            "delegate",
            "--as",
            "customer",
            "--to",
            "helper",
            "--ttl",
            "5m",
            "--attr",
            "orders.access=read",
            "--purpose",
            purpose,
            "--out",
            str(tmp_path / "c"),
        )
    exported = run("trace", "export").stdout.splitlines()
    assert len(exported) > 1  # one line a record
    document = json.loads(run("trace", "export", "--json").stdout)
    assert document["out"] is None
    records = [json.loads(line)["record"] for line in exported]  # each export: a new checkpoint
    assert [proof["record"] for proof in document["proofs"]] == records
    assert {proof["checkpoint"] for proof in document["proofs"]} == {document["checkpoint"]["note"]}


def test_trace_verify_refuses_checkpoint_dash(
    member: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    kept = run("trace", "checkpoint").stdout
    result = CliRunner().invoke(cli, ["trace", "verify", "--checkpoint", "-", "--json"], input=kept)
    assert result.exit_code == 2, result.stdout
    assert "--checkpoint" in json.loads(result.stdout)["message"]
    assert not (tmp_path / "-").exists()


def test_an_empty_out_is_refused(member: str) -> None:
    refused = run_json("trace", "export", "--out", "", code=2)
    assert "--out" in refused["message"]


def test_a_delegation_whose_chain_cannot_be_written_is_not_made(
    member: str, tmp_path: Path
) -> None:
    run_json("identity", "create", "helper")
    before = len(run_json("trace", "show"))
    out = str(tmp_path / "missing" / "x.chain")
    args = ["--as", "customer", "--to", "helper", "--ttl", "5m", "--purpose", "p", "--out", out]
    run_json("credential", "delegate", "--attr", "orders.access=read", *args, code=4)
    assert len(run_json("trace", "show")) == before
