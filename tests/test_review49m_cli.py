"""Review 49m, CLI: four small gaps reviewers found in troth's command line.

1. `troth trace verify` of a node's own log said `valid: N record(s) verified` when records
   had been appended since the newest checkpoint: those are verified (signatures, chains) but
   not covered by the checkpoint, which `--json` said (`after_checkpoint`) and the text did not.
2. `troth authority list --json` left out the nodes that could not be read (the text says so
   on stderr, review 49g, cli 8): a script saw the authority gone, as the text once said.
3. node.json's `advertise` was taken as it was when read (its `listen` is checked: review
   49g, cli 6): the authority's tickets carried a route no node could send to.
4. `troth node start --tcp-listen ADDR` recorded ADDR in node.json before spawning the node
   and restored the old address when the start failed: a start killed (SIGKILL) while the
   node failed to bind never restored it, and every later plain start failed on ADDR.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.support.cli import run, run_json
from tests.support.traces import record_on_node
from troth.cli.main import cli
from troth.errors import ConfigError
from troth.node import daemon, init_node
from troth.node.home import write_private_file
from troth.node.node import node_dir


def test_verify_says_how_many_records_the_checkpoint_does_not_cover(
    troth_home: Path, tmp_path: Path
) -> None:
    """Cli 1: two records after the newest checkpoint, and the text said only `valid: 5
    record(s) verified`, as if the checkpoint covered all five."""
    run("identity", "create", "support")
    record_on_node(troth_home, 3)
    run("trace", "checkpoint")
    anchor = tmp_path / "anchor.note"
    run("trace", "verify", "--checkpoint", str(anchor))
    record_on_node(troth_home, 2)
    report = run_json("trace", "verify", "--checkpoint", str(anchor))
    assert (report["status"], report["records"], report["after_checkpoint"]) == ("valid", 5, 2)
    said = run("trace", "verify", "--checkpoint", str(anchor)).stdout
    assert said.startswith("valid: 5 record(s) verified")
    assert "2 record(s) after the checkpoint, not covered by it" in said
    run("trace", "checkpoint")
    said = run("trace", "verify", "--checkpoint", str(anchor)).stdout
    assert said.startswith("valid: 5 record(s) verified, against the kept checkpoint of 3")
    assert "after the checkpoint" not in said


def test_authority_list_json_names_the_nodes_it_could_not_read(troth_home: Path) -> None:
    """Cli 2: with authority acme's node damaged, `authority list --json` listed globex alone
    and nothing said acme's node could not be read (the text says so on stderr). It is a row
    of its own now, with every key the others have (a consumer reading them does not fail)
    and `error`, as `troth node list --json` does (review 49g, cli 9)."""
    run("authority", "create", "acme")
    run("authority", "create", "globex")
    (troth_home / "nodes" / "acme" / "node.json").write_bytes(b"{damaged")
    result = CliRunner().invoke(cli, ["authority", "list", "--json"])
    assert result.exit_code == 0, result.stdout
    rows = json.loads(result.stdout)
    readable = [r for r in rows if "error" not in r]
    assert [r["name"] for r in readable] == ["globex"]
    broken = [r for r in rows if "error" in r]
    assert len(broken) == 1
    assert broken[0]["node"] == "acme"
    assert "node.json" in broken[0]["error"]
    assert set(readable[0]) <= set(broken[0])
    assert broken[0]["identifier"] is None


@pytest.mark.parametrize("advertise", ["not a route", "/tcp", "/nosuch/x", "node:../x", ""])
def test_a_node_json_advertising_no_route_is_a_configuration_error(
    troth_home: Path, advertise: str
) -> None:
    """Cli 3: a node.json whose `advertise` is no route (hand-edited, damaged) was taken as it
    was, and `troth authority ticket create` put it in the ticket: the member's enrollment
    failed only when it was sent. Checked when read, as `listen` is: a ConfigError naming
    the file and the field."""
    run("authority", "create", "acme")
    path = node_dir(troth_home, "acme") / "node.json"
    config = json.loads(path.read_bytes())
    config["advertise"] = advertise
    write_private_file(path, json.dumps(config).encode())
    ticket = ("authority", "ticket", "create", "--authority", "acme", "--attr", "a.b=c")
    result = CliRunner().invoke(cli, [*ticket, "--json"])
    assert result.exit_code == 3, result.stdout
    message = json.loads(result.stdout)["message"]
    assert "node.json: advertise is node:NAME or a route" in message
    with pytest.raises(ConfigError, match="advertise"):
        daemon._config(troth_home, "acme")


def test_a_good_advertise_is_read(troth_home: Path) -> None:
    """Cli 3's check refuses no route a node can advertise."""
    init_node("n", home=troth_home)
    path = node_dir(troth_home, "n") / "node.json"
    for advertise in ("/tcp/example.org:4000", "/tcp/10.0.0.1:4000/relay/abc", "node:n"):
        config = json.loads(path.read_bytes())
        config["advertise"] = advertise
        write_private_file(path, json.dumps(config).encode())
        assert daemon._config(troth_home, "n").address() == advertise


def test_tcp_listen_is_recorded_only_once_the_node_listens(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cli 4: the start recorded --tcp-listen in node.json before spawning the node and put
    the old address back when the node failed (its port taken): a start killed (SIGKILL)
    meanwhile never put it back, and every later `troth node start` failed on that port. The
    node is given the address as an argument; node.json records it once the node is up, so
    a start killed at any point before leaves node.json as it was."""
    init_node("n", home=troth_home)
    seen: list[str | None] = []

    def spawn(home: Path, name: str, tcp_listen: str | None) -> dict[str, Any]:
        seen.append(daemon._config(home, name).listen)  # what a SIGKILL here leaves
        raise ConfigError("failed to start (port taken)")

    monkeypatch.setattr(daemon, "_spawn", spawn)
    with pytest.raises(ConfigError):
        daemon.start_daemon(troth_home, "n", "127.0.0.1:4999")
    assert seen == [None]
    assert daemon._config(troth_home, "n").listen is None

    def up(home: Path, name: str, tcp_listen: str | None) -> dict[str, Any]:
        seen.append(daemon._config(home, name).listen)
        return {"name": name, "running": True}

    monkeypatch.setattr(daemon, "_spawn", up)
    daemon.start_daemon(troth_home, "n", "127.0.0.1:4999")
    assert seen == [None, None]
    assert daemon._config(troth_home, "n").listen == "127.0.0.1:4999"
