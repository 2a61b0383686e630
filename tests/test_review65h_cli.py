"""Review 65h, CLI: the command line as a security engineer meets it.

1. (medium: a verifier's presenter check passed for anyone's VC) `troth credential verify
   --format vc FILE --trust A --presenter WHO` ignored --presenter: a VC issued to the
   customer verified, exit 0 "valid", for a script asking whether the support agent presented
   it, where a chain whose last subject is not --presenter is refused (WRONG_SUBJECT, exit 1).
   A VC's subject must now be --presenter: else it is WRONG_SUBJECT, exit 1, as a chain's.
2. (low: an operator told leases were revoked at a broker they were not revoked at) `troth
   lease revoke --holder WHO --broker ROUTE` ignored --broker (and --expect): it revoked
   WHO's leases at the broker the local node --node runs and said "revoked N lease(s)", where
   the operator named another broker (the one WHO leased from). --holder takes neither now:
   a usage error (exit 2) saying that --holder acts on --node's own broker.
3. (low: a pinned issuer history silently not used) `troth credential verify CHAIN
   --issuer-history FILE` ignored FILE (it is read only with --format vc): a verifier that
   meant to judge the chain's authority by a history it holds got a verdict by the histories
   the chain carries, without a word. It is a usage error now (exit 2), as --authority is
   for `credential export` without --format vc.
4. (low: an operator responding to a leaked ticket told it was never redeemed) `troth
   authority ticket void` of a ticket whose uses were all redeemed said "nothing to void: the
   ticket expired, was voided already or never was this authority's": an operator voiding a
   ticket seen in a log read that no one got in with it, where someone had, perhaps the one
   who read the log. It now names that case too, and where to see who redeemed it (troth
   authority members list, members remove).
5. (low: a usage mistake judged as a verdict) `troth credential verify - --feed /dev/stdin`
   (and `troth policy test --chain - --feed /dev/stdin`) read stdin twice: the chain took it,
   the feed read what was left (nothing from a pipe; the chain again from a redirected file)
   and the verdict was "revocation feed invalid", exit 1, as if a forged feed had been given.
   --feed is /dev/stdin's reader like any other input now (`stdin_once`): a usage error, exit 2,
   naming both, before anything is read.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import run, run_json


def _vc(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A VC acme issued to its member `customer`, and the identifiers of the identities."""
    ids = {"acme": run_json("authority", "create", "acme")["identifier"]}
    for name in ("customer", "support"):
        ids[name] = run_json("identity", "create", name)["identifier"]
    ticket = run("authority", "ticket", "create", "--authority", "acme").stdout.strip()
    run("enroll", ticket, "--as", "customer")
    vc = tmp_path / "customer.vc"
    run("credential", "export", "customer", "--format", "vc", "--authority", "acme",
        "--out", str(vc))  # fmt: skip
    return vc, ids


def _verify(vc: Path, *extra: str, code: int) -> dict[str, object]:
    args = ("credential", "verify", "--format", "vc", str(vc), "--trust", "acme")
    result = run(*args, "--authority", "acme", *extra, "--json", code=code)
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_cli1_a_vc_presented_by_another_identity_is_refused(tmp_path: Path) -> None:
    vc, ids = _vc(tmp_path)
    refused = _verify(vc, "--presenter", "support", code=1)
    assert refused["valid"] is False
    assert refused["reason"] == "subject is not the presenting identity"
    assert ids["customer"][1:] in str(refused["detail"])
    refused = _verify(vc, "--presenter", ids["support"], code=1)
    assert refused["reason"] == "subject is not the presenting identity"


def test_cli1_a_vc_presented_by_its_subject_verifies(tmp_path: Path) -> None:
    vc, ids = _vc(tmp_path)
    for presenter in ("customer", ids["customer"]):
        valid = _verify(vc, "--presenter", presenter, code=0)
        assert valid["subject"] == "did:troth:" + ids["customer"][1:]
    assert _verify(vc, code=0)["subject"] == "did:troth:" + ids["customer"][1:]


def test_cli2_holder_with_a_broker_route_is_a_usage_error() -> None:
    run_json("node", "create", "hub")
    run_json("identity", "create", "agent", "--node", "hub")
    for extra in (("--broker", "/tcp/127.0.0.1:4000"), ("--expect", "hub")):
        args = ("lease", "revoke", "--holder", "agent", *extra, "--node", "hub")
        refused = run_json(*args, code=2)
        assert extra[0] in refused["message"]
        assert "--node" in refused["message"]


def test_cli3_issuer_history_with_a_chain_is_a_usage_error(tmp_path: Path) -> None:
    vc, _ = _vc(tmp_path)
    history = tmp_path / "acme.id"
    run("identity", "export", "acme", "--node", "acme", "--out", str(history))
    chain = tmp_path / "customer.chain"
    run("credential", "export", "customer", "--out", str(chain))
    args = ("credential", "verify", str(chain), "--trust", "acme", "--authority", "acme")
    refused = run_json(*args, "--issuer-history", str(history), code=2)
    assert "--issuer-history" in refused["message"]
    assert "--format vc" in refused["message"]
    run_json(*args, code=0)  # the chain itself verifies
    _verify(vc, "--issuer-history", str(history), code=0)  # and a VC takes the history


def test_cli4_voiding_a_redeemed_ticket_says_it_may_have_been_redeemed(tmp_path: Path) -> None:
    run_json("authority", "create", "acme")
    run_json("identity", "create", "intruder")
    ticket = tmp_path / "ticket"
    ticket.write_text(run("authority", "ticket", "create", "--authority", "acme").stdout)
    ticket.chmod(0o600)
    run("enroll", str(ticket), "--as", "intruder")
    said = run("authority", "ticket", "void", str(ticket), "--authority", "acme").stdout
    assert "redeemed" in said
    assert "troth authority members list --authority acme" in said
    data = run_json("authority", "ticket", "void", str(ticket), "--authority", "acme")
    assert data["voided"] is False


def test_cli5_a_feed_and_a_chain_both_on_stdin_is_a_usage_error(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from troth.cli.main import cli

    _vc(tmp_path)
    chain = tmp_path / "customer.chain"
    run("credential", "export", "customer", "--out", str(chain))
    bundle = tmp_path / "b.bundle"
    policies, tools = tmp_path / "p.cedar", tmp_path / "t.json"
    policies.write_text('@id("a") permit(principal, action, resource);\n')
    tools.write_text('{"lookup": {"type": "object"}}')
    run("policy", "bundle", "create", "--policies", str(policies), "--tools", str(tools),
        "--revision", "1", "--as", "acme", "--authority", "acme", "--node", "acme",
        "--out", str(bundle))  # fmt: skip
    for args in (
        ["credential", "verify", "-", "--trust", "acme", "--feed", "/dev/stdin"],
        [
            "policy",
            "test",
            "--bundle",
            str(bundle),
            "--chain",
            "-",
            "--trust",
            "acme",
            "--tool",
            "lookup",
            "--feed",
            "/dev/stdin",
        ],
    ):
        result = CliRunner().invoke(cli, [*args, "--json"], input=chain.read_bytes())
        assert result.exit_code == 2, result.stdout
        message = json.loads(result.stdout)["message"]
        assert "--feed" in message
        assert "stdin" in message
