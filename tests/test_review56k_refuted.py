"""Review 56k: attacks on this session's merges that did not work (each test fails if the
defence it pins breaks)."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run
from tests.support.gates import GatesWorld, T, make_world
from tests.support.leases import LeaseWorld
from tests.support.parties import make_party
from tests.support.traces import (
    agent_log,
    bare_collector,
    offline_refusals,
    record_on_node,
    record_unchecked,
)
from tests.test_review56k_chains import NOW, chain_from, forged_root, sent
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    _admin_sql,
    login,
    now,
    orders,
    setup,
    world,
)
from troth.cli import output_stream
from troth.errors import TraceFailure


def self_rooted(gates: GatesWorld) -> bytes:
    """The support agent's credential issued by an authority the attacker made itself."""
    return chain_from(make_party(gates.vault, now=T).signer, gates)


@pytest.mark.parametrize("kind", ["self-rooted", "forged checkpoint"])
def test_a_trace_collector_refuses_a_chain_its_node_does_not_trust(
    tmp_path: Path, kind: str
) -> None:
    """A member submits a record under a chain rooted in an authority it made itself, or in
    the real authority's name from a checkpoint no one attests: the collector verifies the
    chain against the node's anchors and feeds (ChainVerifier.verify) before the log sees it,
    and nothing is appended."""
    gates = make_world()
    log, _ = agent_log(tmp_path, gates, NOW)
    chain = self_rooted(gates) if kind == "self-rooted" else forged_root(gates)
    receipts = bare_collector(log, gates.verifier).submit(
        sent(gates, chain), submitter=None, now=NOW
    )
    (result,) = receipts.results
    assert (result.delivered, result.reason) == (False, TraceFailure.CREDENTIAL_INVALID)
    assert log.size() == 0


def test_offline_verification_refuses_a_forged_checkpointed_root_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log written without the append check (a crafted file) holding a record under a root
    history presented from a checkpoint no one attests: verify_log, verify_export and
    verify_bundle with no stored histories refuse it (the checkpoint is not taken as carried
    there)."""
    gates = make_world()
    log, recorder = agent_log(tmp_path, gates, NOW)
    forged = forged_root(gates)
    record_unchecked(monkeypatch, recorder, forged)
    refusals = offline_refusals(log)
    assert [refused.reason for refused in refusals] == [TraceFailure.CREDENTIAL_INVALID] * 3


# -- exports: the spooled `trace export --json` (review 56f, exports 1) -----------------------


def _spools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Any]:
    """The spools `spooled_result` makes from now on (kept to look at), with a small memory
    part and their files in a directory of the test's own."""
    made: list[Any] = []
    real = tempfile.SpooledTemporaryFile

    def spool(*args: Any, **kwargs: Any) -> Any:
        made.append(real(*args, **kwargs))
        return made[-1]

    (tmp_path / "spool").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "spool"))
    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", spool)
    monkeypatch.setattr(output_stream, "TRACE_EXPORT_SPOOL_BYTES", 64)
    return made


def test_a_spilled_export_is_an_unnamed_file_only_its_owner_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Past the spool's memory the document goes to a file no other user can read (0600) and
    no one can open by a name (unlinked: O_TMPFILE, or mkstemp then unlink), gone at close."""
    made = _spools(monkeypatch, tmp_path)
    seen: list[os.stat_result] = []

    def chunks() -> Iterator[str]:
        yield "x" * 200
        seen.append(os.fstat(made[0].fileno()))  # rolled over: a real file
        yield "y"

    output_stream.spooled_result(chunks())
    assert capsys.readouterr().out == "x" * 200 + "y\n"
    (st,) = seen
    assert (stat.S_IMODE(st.st_mode) & 0o077, st.st_nlink) == (0, 0)
    assert os.listdir(tmp_path / "spool") == []
    assert made[0].closed


@pytest.mark.parametrize("stop", [KeyboardInterrupt, OSError])
def test_a_spilled_export_cut_short_leaves_no_file_and_prints_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stop: type[BaseException],
) -> None:
    """^C (or a failure) while the bundles are made, after the spool went to disk: the file
    is closed (and, unnamed, gone) and stdout holds nothing."""
    made = _spools(monkeypatch, tmp_path)

    def chunks() -> Iterator[str]:
        yield "x" * 200
        raise stop()

    with pytest.raises(stop):
        output_stream.spooled_result(chunks())
    assert capsys.readouterr().out == ""
    assert made[0].closed
    assert os.listdir(tmp_path / "spool") == []


def test_a_full_disk_under_the_spool_prints_only_the_error_object(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spool's file on a full disk (/dev/full: every write ENOSPC): the export fails with
    exit 4 and stdout holds the error object alone, never bytes read back from a file that
    took none."""
    run("identity", "create", "support")
    record_on_node(troth_home, 3)
    monkeypatch.setattr(output_stream, "TRACE_EXPORT_SPOOL_BYTES", 64)

    def full(mode: str = "w+b", buffering: int = -1, **kwargs: Any) -> Any:
        encoding, errors, newline = (kwargs.get(k) for k in ("encoding", "errors", "newline"))
        return open("/dev/full", mode, buffering, encoding, errors, newline)

    monkeypatch.setattr(tempfile, "TemporaryFile", full)
    error = json.loads(run("trace", "export", "--json", code=4).stdout)
    assert "No space left on device" in error["message"], error


# -- postgres: what review 56b leaves out of a template's copy (TROTH_REQUIRE_PG=1) ------------


def test_a_permanent_table_of_the_template_is_copied_whatever_it_is_called(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixtures
    orders: OrdersDb,  # noqa: F811 - the fixtures
) -> None:
    """Only temporary tables are left out (by `relpersistence`, not by name): an UNLOGGED
    table, and a permanent one named like a temporary one in a schema named like a lease's,
    that the template reads are read by its lease too."""
    _admin_sql(
        orders,
        "CREATE UNLOGGED TABLE u (x int); INSERT INTO u VALUES (1)",
        "CREATE SCHEMA tl_0123abcd; CREATE TABLE tl_0123abcd.pg_temp_1 (x int)",
        "INSERT INTO tl_0123abcd.pg_temp_1 VALUES (2)",
        f"GRANT USAGE ON SCHEMA tl_0123abcd TO {orders.reader}",
        f"GRANT SELECT ON u, tl_0123abcd.pg_temp_1 TO {orders.reader}",
    )
    broker = setup(tmp_path, world, orders)
    lease = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
    with login(orders, lease.credential.reveal()) as session:
        assert session.execute("SELECT x FROM u").fetchall() == [(1,)]
        assert session.execute("SELECT x FROM tl_0123abcd.pg_temp_1").fetchall() == [(2,)]
    broker.close()


def test_a_lasting_role_named_like_a_lease_role_gives_a_lease_no_more_than_its_template(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixtures
    orders: OrdersDb,  # noqa: F811 - the fixtures
) -> None:
    """A role an admin made with a lease role's name (tl_<8 hex>_<32 hex>) owns a table the
    template reads under a restrictive policy: left out of the copy as a lease's object, the
    lease is not granted it at all (fewer rights, never the rows the policy hides from the
    template)."""
    owner = "tl_0123abcd_" + "0" * 32
    _admin_sql(
        orders,
        f"CREATE ROLE {owner} NOLOGIN",
        "CREATE TABLE kept (x int); INSERT INTO kept VALUES (3)",
        f"ALTER TABLE kept OWNER TO {owner}",
        "ALTER TABLE kept ENABLE ROW LEVEL SECURITY",
        "CREATE POLICY everyone ON kept USING (true)",
        f"CREATE POLICY hidden ON kept AS RESTRICTIVE TO {orders.reader} USING (false)",
        f"GRANT SELECT ON kept TO {orders.reader}",
    )
    import psycopg

    try:
        broker = setup(tmp_path, world, orders)
        lease = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
        session = login(orders, lease.credential.reveal())
        with session, pytest.raises(psycopg.errors.InsufficientPrivilege):
            session.execute("SELECT x FROM kept")
        broker.close()
    finally:
        _admin_sql(orders, f"DROP OWNED BY {owner}", f"DROP ROLE {owner}")
