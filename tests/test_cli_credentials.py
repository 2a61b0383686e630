"""The credential CLI in-process: authority, tickets, enroll, delegate, verify, revoke, VC."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tests.support.cli import run, run_json
from troth.identity import Identifier
from troth.node import open_node


@pytest.fixture
def world(tmp_path: Path) -> dict[str, str]:
    authority = run_json("authority", "create", "acme")["identifier"]
    ids = {"authority": authority, "dir": str(tmp_path)}
    for name in ("customer", "support", "sub", "sibling"):
        ids[name] = run_json("identity", "create", name)["identifier"]
    ticket = run(
        "authority",
        "ticket",
        "create",
        "--authority",
        "acme",
        "--attr",
        "orders.customer=4471",
        "--attr",
        "orders.access=read",
        "--attr",
        "orders.access=write",
    ).stdout.strip()
    enrolled = run_json("enroll", ticket, "--as", "customer")
    assert enrolled["attributes"] == {"orders.access": ["read", "write"], "orders.customer": "4471"}
    return ids


def delegate(
    world: dict[str, str], frm: str, to: str, out: str, *attrs: str, code: int = 0, **opts: str
) -> Result:
    """`troth credential delegate` (options: ttl, node)."""
    args = [
        "credential",
        "delegate",
        "--as",
        frm,
        "--to",
        world[to],
        "--ttl",
        opts.get("ttl", "30m"),
        "--purpose",
        "resolve complaint 123",
        "--out",
        str(Path(world["dir"]) / out),
    ]
    for attr in attrs:
        args += ["--attr", attr]
    if "node" in opts:
        args += ["--node", opts["node"]]
    return run(*args, code=code)


def verify(world: dict[str, str], path: str | Path, *extra: str, code: int = 0) -> Any:
    """`troth credential verify PATH --trust <the authority> EXTRA... --json`."""
    args = ("credential", "verify", str(path), "--trust", world["authority"], *extra)
    return run_json(*args, code=code)


def test_enroll_delegate_verify(world: dict[str, str]) -> None:
    delegate(world, "customer", "support", "d1", "orders.customer=4471", "orders.access=read")
    run("credential", "import", str(Path(world["dir"]) / "d1"), "--as", "support")
    delegate(world, "support", "sub", "d2", "orders.customer=4471", ttl="10m")
    report = verify(world, str(Path(world["dir"]) / "d2"), "--authority", "acme")
    assert report["valid"] is True
    assert report["actor"] == world["sub"]
    assert [link["subject"] for link in report["chain"]] == [
        world["customer"],
        world["support"],
        world["sub"],
    ]
    assert report["attributes"] == {"orders.customer": "4471"}
    assert report["window"]["expires_at"] - report["window"]["not_before"] == 600
    human = run(
        "credential",
        "verify",
        str(Path(world["dir"]) / "d2"),
        "--trust",
        world["authority"],
        "--authority",
        "acme",
    )
    assert "purpose: resolve complaint 123" in human.stdout
    shown = run_json("credential", "show", "support")
    assert len(shown) == 1
    assert len(shown[0]["chain"]) == 2


def test_amplification_refused(world: dict[str, str]) -> None:
    result = delegate(world, "customer", "support", "x", "orders.access=delete", code=1)
    assert "amplifies" in result.stderr
    result = delegate(world, "customer", "support", "x", "orders.customer=4471", ttl="2h", code=1)
    assert "delegation expires after its parent (parent expires " in result.stderr
    assert result.stderr.rstrip().endswith("or less")


def test_verify_fails_closed(world: dict[str, str]) -> None:
    out = Path(world["dir"]) / "own"
    run("credential", "export", "customer", "--out", str(out))
    report = verify(world, str(out), code=1)
    assert report["reason"] == "no revocation feed for the authority"
    other = run_json("identity", "create", "stranger")["identifier"]
    report = run_json(
        "credential", "verify", str(out), "--trust", other, "--authority", "acme", code=1
    )
    assert report["valid"] is False
    report = verify(world, str(out), "--authority", "acme", "--presenter", world["sub"], code=1)
    assert report["reason"] == "subject is not the presenting identity"


def test_revocations(world: dict[str, str]) -> None:
    delegate(world, "customer", "support", "d1", "orders.customer=4471")
    run("credential", "import", str(Path(world["dir"]) / "d1"), "--as", "support")
    delegate(world, "support", "sub", "d2", "orders.customer=4471", ttl="10m")
    delegate(world, "customer", "sibling", "s1", "orders.customer=4471", ttl="10m")
    d2 = str(Path(world["dir"]) / "d2")
    middle = run_json("credential", "show", d2)["chain"][1]["id"]
    result = run(
        "revoke", "link", middle, "--chain", d2, "--as", "sub", "--authority", "acme", code=1
    )
    assert "upstream" in result.stderr
    run(
        "revoke",
        "link",
        middle,
        "--chain",
        d2,
        "--as",
        "customer",
        "--authority",
        "acme",
        "--reason",
        "resolved",
    )
    feed_file = str(Path(world["dir"]) / "feed")
    feed = run_json("revocations", "show", "--authority", "acme", "--out", feed_file)
    assert feed["count"] == 1
    assert feed["entries"][0]["revoked_by"] == world["customer"]
    report = verify(world, d2, "--feed", feed_file, code=1)
    assert report["reason"] == "revoked"
    assert report["link"] == 1
    verify(world, str(Path(world["dir"]) / "s1"), "--feed", feed_file)
    run("revoke", "identity", world["customer"], "--authority", "acme")
    report = verify(world, str(Path(world["dir"]) / "s1"), "--authority", "acme", code=1)
    assert report["reason"] == "revoked"
    run("revoke", "credential", "00" * 32, "--authority", "acme")
    assert run_json("revocations", "show", "--authority", "acme")["count"] == 3


def test_members_and_tickets(world: dict[str, str]) -> None:
    members = run_json("authority", "members", "list", "--authority", "acme")
    assert [m["identifier"] for m in members] == [world["customer"]]
    shown = run_json("authority", "members", "show", world["customer"], "--authority", "acme")
    assert shown["attributes"]["orders.customer"] == "4471"
    ticket = run_json(
        "authority",
        "ticket",
        "create",
        "--authority",
        "acme",
        "--enroller",
        "--uses",
        "2",
        "--ttl",
        "1h",
    )
    assert ticket["uses"] == 2
    assert ticket["ticket"].startswith("troth-ticket:")
    run("enroll", ticket["ticket"], "--as", "support")
    assert run_json("authority", "members", "show", world["support"], "--authority", "acme")[
        "attributes"
    ] == {"troth.role": "enroller"}
    removed = run_json("authority", "members", "remove", world["customer"], "--authority", "acme")
    assert len(removed["revoked_credentials"]) == 1
    run("authority", "members", "show", world["customer"], "--authority", "acme", code=1)
    run("authority", "ticket", "create", "--authority", "acme", "--ttl", "soon", code=2)
    run("enroll", "troth-ticket:garbage", "--as", "sub", code=1)
    run(
        "enroll",
        ticket["ticket"].replace("troth-ticket:", "troth-tickt:"),
        "--as",
        "sub",
        code=1,
    )


def test_refresh(world: dict[str, str]) -> None:
    refreshed = run_json("credential", "refresh", "customer")
    assert refreshed["authority"] == world["authority"]
    assert len(run_json("credential", "show", "customer")) == 2


def test_vc_export_and_verify(world: dict[str, str], tmp_path: Path) -> None:
    vc = tmp_path / "vc.json"
    run(
        "credential",
        "export",
        world["customer"],
        "--format",
        "vc",
        "--authority",
        "acme",
        "--out",
        str(vc),
    )
    document = json.loads(vc.read_text())
    assert document["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    report = verify(world, str(vc), "--format", "vc", "--authority", "acme")
    assert report["subject"] == "did:troth:" + world["customer"][1:]
    history = tmp_path / "acme.history"
    run("identity", "export", "acme", "--node", "acme", "--out", str(history))
    feed = tmp_path / "acme.feed"
    run("revocations", "show", "--authority", "acme", "--out", str(feed))
    verify(world, str(vc), "--format", "vc", "--issuer-history", str(history), "--feed", str(feed))
    document["credentialSubject"]["attributes"]["orders.access"] = ["admin"]
    vc.write_text(json.dumps(document))
    report = verify(world, str(vc), "--format", "vc", "--authority", "acme", code=1)
    assert report["reason"] == "bad signature"
    run("credential", "verify", "--format", "vc", str(vc), "--trust", world["authority"], code=2)


# -- issue 7: quota option, idempotent revocation, the stolen backup end to end -----------------


def test_revocation_quota_and_idempotent_revocation(world: dict[str, str]) -> None:
    created = run_json("authority", "create", "strict", "--revocation-quota", "5")
    assert created["revocation_quota"] == 5
    first = run_json("revoke", "credential", "11" * 32, "--authority", "acme")
    again = run_json("revoke", "credential", "11" * 32, "--authority", "acme", "--reason", "x")
    assert first["seq"] == again["seq"]
    assert run_json("revocations", "show", "--authority", "acme")["count"] == 1


def test_a_bad_feed_file_is_refused(world: dict[str, str]) -> None:
    out = Path(world["dir"]) / "own"
    run("credential", "export", "customer", "--out", str(out))
    bad = Path(world["dir"]) / "bad-feed"
    for content in (b"", b"\x5a\xff\xff\xff\xff", b"\x41\x00"):
        bad.write_bytes(content)
        report = verify(world, out, "--feed", str(bad), code=1)
        assert report["reason"] == "revocation feed invalid"


def test_stolen_backup_rollback_end_to_end(world: dict[str, str], troth_home: Path) -> None:
    """The review's reproduction: copy a node directory (a stolen backup), rotate on the real
    node, delegate from the stolen copy: every verifier with a fresh feed says "superseded
    history", with or without a store."""
    shutil.copytree(troth_home / "nodes" / "default", troth_home / "nodes" / "stolen")
    rotated = run_json("identity", "rotate", "customer")
    (announcement,) = rotated["announcements"]
    assert announcement["announced"] is True
    assert announcement["authority"] == world["authority"]
    delegate(world, "customer", "support", "stolen", "orders.customer=4471", node="stolen")
    stolen = Path(world["dir"]) / "stolen"
    for extra in ((), ("--no-store",)):
        report = verify(world, stolen, "--authority", "acme", *extra, code=1)
        assert report["reason"] == "superseded history"
        assert report["link"] == 1
    # the owner's own delegation, under its new history, verifies (and the store keeps it)
    delegate(world, "customer", "support", "owner", "orders.customer=4471")
    assert verify(world, Path(world["dir"]) / "owner", "--authority", "acme")["valid"] is True
    human = run("identity", "rotate", "customer")
    assert f"announced to acme ({world['authority'][:5]}…" in human.stdout


def test_an_unreachable_authority_is_a_warning(world: dict[str, str], troth_home: Path) -> None:
    far = run_json("authority", "create", "far")["identifier"]
    ticket = run("authority", "ticket", "create", "--authority", "far").stdout.strip()
    run("enroll", ticket, "--as", "sub")
    shutil.rmtree(troth_home / "nodes" / "far")  # it lives elsewhere now, at a dead address
    with open_node("default") as node:
        node.wallet.trust(Identifier.parse(far), "/tcp/127.0.0.1:9", now=int(time.time()))
    result = run("identity", "rotate", "sub")
    assert "warning: not announced to" in result.stderr
    assert "the rotation is committed" in result.stderr
    assert run_json("identity", "show", "sub")["changes"] == 2
