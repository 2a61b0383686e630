"""The CLI against hostile inputs: oversized and missing files, JSON that parsers read two ways,
revoked VCs, escape sequences in documents, and tickets kept out of the process list."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.support.cli import run, run_json
from troth import limits
from troth.cli.main import cli
from troth.cli.output import Reporter
from troth.node.daemon import node_status


def run_with_input(*args: str, stdin: bytes, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)
    assert result.exit_code == code, (result.output, result.stderr)
    return result


@pytest.fixture
def world(tmp_path: Path) -> dict[str, str]:
    """An authority `acme` with a member `customer` (enrolled) and two more identities."""
    ids = {"authority": run_json("authority", "create", "acme")["identifier"], "dir": str(tmp_path)}
    for name in ("customer", "support", "sub"):
        ids[name] = run_json("identity", "create", name)["identifier"]
    ids["ticket"] = run(
        "authority", "ticket", "create", "--authority", "acme", "--uses", "3"
    ).stdout.strip()
    run("enroll", ids["ticket"], "--as", "customer")
    return ids


def export_vc(world: dict[str, str], out: Path) -> dict[str, Any]:
    args = ("--authority", "acme", "--out", str(out))
    return run_json("credential", "export", world["customer"], "--format", "vc", *args)  # type: ignore[no-any-return]


def verify_vc(world: dict[str, str], path: Path, *extra: str, code: int = 0) -> Any:
    args = ("credential", "verify", "--format", "vc", str(path), "--trust", world["authority"])
    return run_json(*args, *extra, code=code)


# -- input files are read with a cap before anything else ---------------------------------------


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
@pytest.mark.parametrize(
    ("args", "limit"),
    [
        (("identity", "verify", "/dev/zero"), limits.MAX_IDENTITY_HISTORY_BYTES),
        (("identity", "import", "/dev/zero"), limits.MAX_IDENTITY_HISTORY_BYTES),
        (("credential", "import", "/dev/zero", "--as", "x"), limits.MAX_CHAIN_BYTES),
        (("credential", "verify", "/dev/zero", "--trust", "T" + "0" * 64), limits.MAX_CHAIN_BYTES),
        (
            ("credential", "verify", "--format", "vc", "/dev/zero", "--trust", "T" + "0" * 64),
            limits.MAX_VC_BYTES,
        ),
    ],
)
def test_endless_input_fails_at_once_with_an_io_error(args: tuple[str, ...], limit: int) -> None:
    result = run(*args, code=4)
    assert f"file is larger than {limit} bytes" in result.stderr


def test_oversized_side_files_refused(world: dict[str, str], tmp_path: Path) -> None:
    vc = tmp_path / "vc.json"
    export_vc(world, vc)
    big = tmp_path / "big"
    big.write_bytes(b"\0" * (limits.MAX_IDENTITY_HISTORY_BYTES + 1))
    # a feed file is read one page at a time: the first item is not a page, refused at once
    args = ("credential", "verify", str(vc), "--trust", world["authority"], "--feed", str(big))
    result = run(*args, code=1)
    assert "revocation feed invalid" in result.stderr
    result = run(
        *("credential", "verify", "--format", "vc", str(vc), "--trust", world["authority"]),
        *("--issuer-history", str(big)),
        code=4,
    )
    assert f"file is larger than {limits.MAX_IDENTITY_HISTORY_BYTES} bytes" in result.stderr


def test_missing_input_file_is_an_io_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    for args in (
        ("identity", "verify", missing),
        ("identity", "import", missing),
        ("credential", "import", missing, "--as", "x"),
        ("credential", "verify", missing, "--trust", "T" + "0" * 64),
    ):
        result = run(*args, code=4)
        assert "No such file or directory" in result.stderr


# -- W3C VCs: I-JSON, revocation status -----------------------------------------------------------


def test_vc_with_duplicated_json_key_refused(world: dict[str, str], tmp_path: Path) -> None:
    vc = tmp_path / "vc.json"
    export_vc(world, vc)
    text = vc.read_text()
    subject = f'"id": "did:troth:{world["customer"][1:]}"'
    assert subject in text
    # a parser keeping the first member reads the signed subject, one keeping the last (as
    # Python's json does) reads another: I-JSON refuses the document
    doubled = text.replace(subject, f'{subject}, "id": "did:troth:{world["sub"][1:]}"')
    vc.write_text(doubled)
    report = verify_vc(world, vc, "--authority", "acme", code=1)
    assert report["reason"] == "malformed"
    assert "duplicate member name 'id'" in report["detail"]


def test_vc_verify_checks_revocation_like_a_chain(world: dict[str, str], tmp_path: Path) -> None:
    vc = tmp_path / "vc.json"
    exported = export_vc(world, vc)
    report = verify_vc(world, vc, "--authority", "acme")
    assert report["valid"] is True
    assert report["credential_hash"] == exported["credential_hash"]
    assert report["within_skew"] is False
    assert "valid" in run(
        "credential", "verify", "--format", "vc", str(vc), "--trust", world["authority"],
        "--authority", "acme",
    ).stdout  # fmt: skip
    # without a feed there is no verdict "valid"
    history = tmp_path / "acme.history"
    run("identity", "export", "acme", "--node", "acme", "--out", str(history))
    report = verify_vc(world, vc, "--issuer-history", str(history), code=1)
    assert report["reason"] == "no revocation feed for the authority"
    # the credential itself revoked
    run("revoke", "credential", exported["credential_hash"], "--authority", "acme")
    assert verify_vc(world, vc, "--authority", "acme", code=1)["reason"] == "revoked"


def test_revoked_identitys_vc_refused(world: dict[str, str], tmp_path: Path) -> None:
    vc = tmp_path / "vc.json"
    export_vc(world, vc)
    run("revoke", "identity", world["customer"], "--authority", "acme")
    report = verify_vc(world, vc, "--authority", "acme", code=1)
    assert report["reason"] == "revoked"
    assert world["customer"] in report["detail"]
    feed = tmp_path / "feed"
    run("revocations", "show", "--authority", "acme", "--out", str(feed))
    history = tmp_path / "acme.history"
    run("identity", "export", "acme", "--node", "acme", "--out", str(history))
    args = ("--issuer-history", str(history), "--feed", str(feed))
    assert verify_vc(world, vc, *args, code=1)["reason"] == "revoked"


def test_removing_the_member_revokes_its_vcs(world: dict[str, str], tmp_path: Path) -> None:
    vc = tmp_path / "vc.json"
    exported = export_vc(world, vc)
    removed = run_json("authority", "members", "remove", world["customer"], "--authority", "acme")
    assert exported["credential_hash"] in removed["revoked_credentials"]
    assert verify_vc(world, vc, "--authority", "acme", code=1)["reason"] == "revoked"


# -- human output: text from documents cannot forge or erase lines -----------------------------

FORGED = "resolve complaint\n  link 5: forged -> T00\r\x1b[2K\x1b[1A\u202etxt"


def test_escape_sequences_cannot_forge_verify_output(world: dict[str, str], tmp_path: Path) -> None:
    chain = tmp_path / "d1"
    run(
        *("credential", "delegate", "--as", "customer", "--to", world["support"]),
        *("--ttl", "30m", "--purpose", FORGED, "--caveat", '"x\n  caveat: forged" != ""'),
        *("--out", str(chain)),
    )
    args = (
        "credential",
        "verify",
        str(chain),
        "--trust",
        world["authority"],
        "--authority",
        "acme",
        "--unevaluated-caveats",  # shown, not evaluated (review 50d, caveats 1)
    )
    human = run(*args).stdout
    lines = human.splitlines()
    assert not any(line.lstrip().startswith("link 5") for line in lines)
    assert sum(line.lstrip().startswith("caveat:") for line in lines) == 1
    assert not set(human) & {"\r", "\x1b", "\u202e"}
    escaped = "resolve complaint\\n  link 5: forged -> T00\\r\\x1b[2K\\x1b[1A\\u202etxt"
    assert f"purpose: {escaped}" in human
    # --json keeps the text as it is (JSON escapes it)
    assert json.loads(run(*args, "--json").stdout)["chain"][1]["purpose"] == FORGED


def test_errors_and_notes_are_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    reporter = Reporter(as_json=False)
    reporter.info("note\x1b[2J")
    with pytest.raises(SystemExit) as exited:
        reporter.fail(ValueError("bad input\n\x1b[1Atroth: valid"))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == "note\\x1b[2J\ntroth: bad input\\n\\x1b[1Atroth: valid\n"


# -- tickets from stdin or a file -----------------------------------------------------------


def test_enroll_reads_the_ticket_from_stdin(world: dict[str, str]) -> None:
    result = run_with_input(
        "enroll", "-", "--as", "support", "--json", stdin=world["ticket"].encode() + b"\n"
    )
    assert json.loads(result.stdout)["authority"] == world["authority"]


def test_enroll_reads_the_ticket_from_a_file(world: dict[str, str], tmp_path: Path) -> None:
    ticket = tmp_path / "ticket"
    ticket.write_text(world["ticket"] + "\n")
    ticket.chmod(0o600)
    assert run_json("enroll", str(ticket), "--as", "sub")["authority"] == world["authority"]
    ticket.write_bytes(b"x" * (limits.MAX_TICKET_TEXT + 1))
    result = run("enroll", str(ticket), "--as", "sub", code=4)
    assert f"file is larger than {limits.MAX_TICKET_TEXT} bytes" in result.stderr


@pytest.mark.parametrize(
    "argument", ["troth-ticket:AAAA", "troth-ticket:garbage!", "troth-ticket:", "nonexistent"]
)
def test_enroll_says_what_is_not_a_ticket(world: dict[str, str], argument: str) -> None:
    result = run("enroll", argument, "--as", "support", code=1)
    assert result.stderr.startswith("troth: not a troth ticket (")
    if argument == "nonexistent":
        assert argument not in result.stderr  # a mistyped ticket is never echoed


def test_enroll_refuses_binary_on_stdin(world: dict[str, str]) -> None:
    result = run_with_input("enroll", "-", "--as", "support", stdin=b"\xff\xfe", code=1)
    assert "not a troth ticket" in result.stderr


# -- node files are I-JSON ------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        '{"name": "default", "vault": "software", "vault": "pkcs11"}',  # duplicate member
        '{"name": "default", "version": 1.0}',  # a float where an integer is expected
        '{"name": "default", "version": true}',
        '{"name": "default", "vault": 7}',
        '{"name": "default", "surprise": "x"}',
        '["default"]',
        '{"name": "default", "version": NaN}',
    ],
)
def test_node_config_must_be_i_json_of_the_right_shape(troth_home: Path, config: str) -> None:
    run("identity", "list")  # creates the default node
    (troth_home / "nodes" / "default" / "node.json").write_text(config)
    result = run("identity", "list", code=3)
    assert "not a valid node configuration" in result.stderr


def test_status_file_with_duplicate_pid_is_not_trusted(troth_home: Path) -> None:
    run("identity", "list")
    status = troth_home / "nodes" / "default" / "status.json"
    status.write_text(f'{{"pid": 1, "pid": {os.getpid()}}}')
    status.chmod(0o600)  # as the node writes it: refused for its duplicate, not its mode
    assert node_status(troth_home, "default")["running"] is False
    status.write_text('{"pid": 1e400}')
    assert node_status(troth_home, "default")["running"] is False


def test_out_replaces_a_planted_symlink_and_never_writes_through_it(
    world: dict[str, str], tmp_path: Path
) -> None:
    """A symlink planted at an --out path (a shared directory) points at a file the user owns,
    say a key: the export replaces the link, and the file it pointed at is untouched."""
    precious = tmp_path / "vault.key"
    precious.write_bytes(b"the key")
    out = tmp_path / "history.cbor"
    out.symlink_to(precious)
    run("identity", "export", "customer", "--out", str(out))
    assert precious.read_bytes() == b"the key"
    assert not out.is_symlink()
    assert out.read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_out_to_a_missing_directory_is_an_io_error_and_leaves_nothing(tmp_path: Path) -> None:
    run("identity", "create", "someone")
    result = run("identity", "export", "someone", "--out", str(tmp_path / "no" / "x"), code=4)
    assert "cannot write" in result.stderr


def test_a_kept_checkpoint_larger_than_a_checkpoint_is_refused(tmp_path: Path) -> None:
    run("identity", "create", "someone")
    anchor = tmp_path / "anchor.note"
    anchor.write_bytes(b"x" * (limits.MAX_TRACE_CHECKPOINT_BYTES + 1))
    result = run("trace", "verify", "--checkpoint", str(anchor), code=4)
    assert "larger than" in result.stderr


def test_out_to_a_device_writes_through_it_and_leaves_it_a_device(tmp_path: Path) -> None:
    run("identity", "create", "someone")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    run("identity", "export", "someone", "--out", str(fifo))
    reader.join(10)
    assert received
    assert received[0]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # written through, not replaced by a file
    run("identity", "export", "someone", "--out", os.devnull)
    assert stat.S_ISCHR(os.lstat(os.devnull).st_mode)
