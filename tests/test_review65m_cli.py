"""Review 65m (review of 65h's CLI fixes, 65g's tool listing and 65f's admin chain), CLI
findings with their fixes.

CLI 1. (low: a usage mistake judged as a verdict; 65h cli 5 bypassed) `troth credential verify
   CHAIN --feed /dev/stdin --feed /dev/stdin` (and `policy test ... --feed /dev/stdin --feed
   /dev/stdin`) read stdin twice: `feed_inputs` keyed the feeds by their names, so a name given
   twice was one input to `stdin_once`, the first feed read the pipe, the second nothing, and
   the verdict was "revocation feed invalid" (exit 1), as if a forged feed had been given. Each
   --feed is an input of its own now: a usage error (exit 2) before anything is read.
CLI 2. (low: a presenter check silently dropped) `troth credential verify CHAIN --presenter ""`
   took the empty presenter as none given (the chain's last subject): anyone's chain was valid,
   exit 0, for a script whose presenter variable was empty, where a VC with the same option was
   refused as naming no identity (exit 2). A chain's --presenter is resolved as a VC's now.
CLI 3. (low: an operator's upstream secret silently dropped) `troth secret put NAME --engine
   token --config C --value-file FILE` ignored FILE (a token secret has no upstream value: the
   broker signs with a key of its own vault) and said the secret was stored: an operator who
   meant the file's key to sign the tokens (an upstream signing secret) had relying parties
   configured for a key never used, without a word. It is a usage error now (exit 2), as 65h
   made --issuer-history with a chain.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.support.cli import run, run_json
from troth.cli.main import cli


def _chain(tmp_path: Path) -> Path:
    """The chain of acme's member `customer`, exported to a file."""
    run_json("authority", "create", "acme")
    run_json("identity", "create", "customer")
    ticket = run("authority", "ticket", "create", "--authority", "acme").stdout.strip()
    run("enroll", ticket, "--as", "customer")
    chain = tmp_path / "customer.chain"
    run("credential", "export", "customer", "--out", str(chain))
    return chain


def test_cli1_one_feed_name_given_twice_is_two_readers_of_stdin(tmp_path: Path) -> None:
    chain = _chain(tmp_path)
    feed = tmp_path / "acme.feed"
    run("revocations", "show", "--authority", "acme", "--out", str(feed))
    twice = ["--feed", "/dev/stdin", "--feed", "/dev/stdin"]
    verify = ["credential", "verify", str(chain), "--trust", "acme"]
    test = ["policy", "test", "--bundle", str(feed), "--chain", str(chain), "--trust", "acme"]
    for args in ([*verify, *twice], [*test, "--tool", "lookup", *twice]):
        result = CliRunner().invoke(cli, [*args, "--json"], input=feed.read_bytes())
        assert result.exit_code == 2, result.stdout
        message = json.loads(result.stdout)["message"]
        assert "--feed /dev/stdin and --feed /dev/stdin (--feed #2) both read stdin" in message
    # a file (not stdin) named twice is read twice, as before
    args = ["credential", "verify", str(chain), "--trust", "acme", "--feed", str(feed)]
    assert run_json(*args, "--feed", str(feed))["valid"] is True


def test_cli2_an_empty_presenter_names_no_identity(tmp_path: Path) -> None:
    chain = _chain(tmp_path)
    args = ("credential", "verify", str(chain), "--trust", "acme", "--authority", "acme")
    refused = run_json(*args, "--presenter", "", code=2)
    assert refused["error"] == "NotFound"
    assert "'' is neither an identifier" in refused["message"]
    assert run_json(*args, "--presenter", "customer")["valid"] is True
    assert run_json(*args)["valid"] is True


def test_cli3_a_value_file_for_a_token_secret_is_a_usage_error(tmp_path: Path) -> None:
    run_json("authority", "create", "hub")
    config, value = tmp_path / "p.json", tmp_path / "signing.key"
    config.write_text(json.dumps({"audience": "payments", "scopes": ["refunds"], "ttl": 120}))
    value.write_text("an upstream signing secret")
    put = ("secret", "put", "payments", "--engine", "token", "--config", str(config))
    refused = run_json(*put, "--value-file", str(value), "--node", "hub", code=2)
    assert "--value-file" in refused["message"]
    assert "token secret has no upstream value" in refused["message"]
    assert run_json(*put, "--node", "hub")["engine"] == "token"
