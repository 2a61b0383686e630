"""Review 54c, crash safety: attacks that failed (the code was right). Real `troth` processes
killed (TROTH_CRASH_AT) at the steps of operations no earlier crash test killed, then the
stores reopened and the command run again: what was acknowledged stands, nothing half-made
blocks the retry, and the retry completes the operation."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.support.cli import run_json
from tests.support.forked import troth_forked
from troth.credentials.revocation_entry import RevocationKind
from troth.faults import CRASH_POINTS
from troth.node import init_node, open_node
from troth.storage import SqliteAuthorityStore

POINTS = (
    "identity.create.before-commit",
    "identity.create.after-commit",
    "node.file.before-rename",
    "node.file.after-rename",
    "authority.revoke.after-commit",
)


def test_the_points_are_declared() -> None:
    assert set(POINTS) <= set(CRASH_POINTS)


def test_an_authority_create_killed_at_each_step_is_created_by_the_same_command() -> None:
    """`troth authority create NAME` makes node NAME (its node.json, its database and vault
    key), then the authority's identity and configuration in one transaction (the identity's
    own commit is nested in it): killed after node.json, or before or after the identity's
    commit, it leaves at most the node, and the same command makes the authority, with one
    identity of that name."""
    for point in (
        "node.file.after-rename",
        "identity.create.before-commit",
        "identity.create.after-commit",
    ):
        name = "a" + point.split(".")[-1].replace("-", "")
        troth_forked("authority", "create", name, crash=point)
        with open_node(name) as node:
            assert node.hosted_authority() is None
            assert [i.name for i in node.identities.list_local()] == []
        made = json.loads(troth_forked("authority", "create", name, "--json").stdout)
        with open_node(name) as node:
            assert [i.name for i in node.identities.list_local()] == [name]
            hosted = node.hosted_authority()
            assert hosted is not None
            assert str(hosted.identifier) == made["identifier"]


def test_a_node_create_killed_before_its_configuration_is_renamed_is_no_node() -> None:
    """`troth node create n` killed with node.json still a temporary file beside its place:
    no node (not listed, not opened), and the same command creates it."""
    troth_forked("node", "create", "n", crash="node.file.before-rename")
    assert run_json("node", "list") == []
    made = json.loads(troth_forked("node", "create", "n", "--json").stdout)
    assert [row["name"] for row in run_json("identity", "list", "--node", "n")] == ["n"]
    assert made["name"] == "n"


def test_a_secret_put_killed_before_node_json_names_the_broker_is_completed_by_the_same_command(
    troth_home: Path, tmp_path: Path
) -> None:
    """`troth secret put` stores the secret (sealed, committed), then adds `broker` to the
    services node.json names: killed before the new node.json is renamed, the secret is
    stored and node.json is the old one, whole; the same command again puts it and adds the
    service."""
    init_node("acme")
    config = tmp_path / "token.json"
    config.write_text(json.dumps({"scopes": ["read"], "ttl": 60, "audience": "api"}))
    put = ("secret", "put", "tok", "--engine", "token", "--config", str(config), "--json")
    troth_forked(*put, "--node", "acme", crash="node.file.before-rename")
    node_json = json.loads((troth_home / "nodes" / "acme" / "node.json").read_text())
    assert "broker" not in node_json["services"]
    with open_node("acme") as node:
        stored = node.db.fetch_all("SELECT name FROM secret_store", ())
    assert [row[0] for row in stored] == ["tok"]
    again = json.loads(troth_forked(*put, "--node", "acme").stdout)
    assert again["service_added"] is True
    node_json = json.loads((troth_home / "nodes" / "acme" / "node.json").read_text())
    assert "broker" in node_json["services"]


def test_a_member_removal_killed_after_its_commit_stands() -> None:
    """`troth authority members remove` killed after the authority's commit: the member is
    gone and its credential is in the feed (both in the one transaction); the same command
    again says it is not a member (the removal asked for stands: nothing to complete, the
    other nodes here were marked due a sync of the feed before the commit: review 50b; the
    mark is checked here, on a node no daemon runs: review 50b's running one, with the marks
    made no more, still refused the removed member's chain, told some other way)."""
    troth_forked("authority", "create", "acme")
    ticket = troth_forked(
        "authority", "ticket", "create", "--authority", "acme", "--attr", "team.name=x"
    ).stdout.strip()
    init_node("agent")
    with open_node("agent") as agent:
        member = agent.identities.create(now=int(time.time()), name="agent").identifier
    troth_forked("enroll", "-", "--as", "agent", "--node", "agent", input_text=ticket)
    with open_node("acme") as node:
        issued = SqliteAuthorityStore(node.db).unexpired_issued(member.digest, 0)
    assert len(issued) == 1
    remove = ("authority", "members", "remove", str(member), "--authority", "acme", "--json")
    troth_forked(*remove, crash="authority.revoke.after-commit")
    with open_node("acme") as node:
        store = SqliteAuthorityStore(node.db)
        assert store.get_member(member.digest) is None
        assert store.find_revocation(int(RevocationKind.CREDENTIAL), issued[0]) is not None
        hosted = node.hosted_authority()
    assert hosted is not None
    with open_node("agent") as agent:  # no daemon here to clear it (review 71v, testpower 3)
        assert [due for due, _ in agent.wallet.store.syncs_due()] == [hosted.identifier.digest]
    again = json.loads(troth_forked(*remove, code=1).stdout)
    assert again["reason"] == "not a member of this authority"


def test_a_vault_key_made_at_a_first_opening_killed_at_each_step_opens_the_node(
    troth_home: Path,
) -> None:
    """A node whose node.json alone was written (`troth node create` killed after its rename):
    the next command makes node.db, then vault.key (the vault's KEK, a private file written
    exclusively). Killed before vault.key's rename (a temporary beside it) or after it (no key
    check sealed yet): node.db is no fresh database beside a key made for another, and the
    next command opens the node and completes what it was asked."""
    troth_forked("node", "create", "n", crash="node.file.after-rename")
    directory = troth_home / "nodes" / "n"
    assert not (directory / "node.db").exists()
    create = ("identity", "create", "a", "--node", "n")
    troth_forked(*create, crash="node.file.before-rename")
    assert not (directory / "vault.key").exists()
    troth_forked(*create, crash="node.file.after-rename")
    assert (directory / "vault.key").stat().st_size == 32
    troth_forked(*create)
    assert [row["name"] for row in run_json("identity", "list", "--node", "n")] == ["a"]
