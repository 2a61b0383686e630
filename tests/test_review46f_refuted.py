"""Review 46f: attacks on the code merged in session 46 that failed, kept as guards (the
findings are in tests/test_review46f_session.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.test_review46d_secrets import LATER, _count, _stub_broker
from troth.authority import Authority
from troth.clock import SystemClock
from troth.errors import ConfigError, StorageError
from troth.identity import Identifier
from troth.node import init_node, open_node
from troth.node.home import read_private_file
from troth.node.runtime import NodeRuntime
from troth.node.traces import revoke_as_authority, traced_as
from troth.secrets import LeaseState
from troth.secrets.engine import SecretSpec
from troth.secrets.lease import SecretValue
from troth.secrets.members import standing_member
from troth.trace import open_node_log
from troth.trace.adapters import revocation_content
from troth.trace.record import Kind, ToolCall
from troth.trace.signing import RecordContent

# -- trace: a revocation's derived record id ----------------------------------------------------


def _acme(*names: str) -> dict[str, Identifier]:
    now = int(time.time())
    init_node("acme")
    with open_node("acme") as node:
        node.create_authority("acme", now=now)
        return {n: node.identities.create(now=now, name=n).identifier for n in names}


def test_another_agent_holding_the_derived_id_does_not_stop_the_record(troth_home: Path) -> None:
    """Attack: pre-empt a revocation's record. Its id is derived from the feed entry
    (authority, seq, what, target), so anyone can compute the next ones; agent `d` records
    copies of the revocation records of the next feed entries first. Refuted: ids are unique
    per agent, and the revocation is looked up and recorded as the authority's, so the real
    record is made (d's copies are d's own records)."""
    ids = _acme("c", "d")
    clock = SystemClock()
    with open_node("acme") as node:
        authority = node.authority()
        me = authority.identifier
        forged = {}
        with traced_as(node, "d", clock=clock) as recorder:
            for seq in range(4):
                content = revocation_content(
                    "identity", str(ids["c"]), authority=me, reason="gone", seq=seq
                )
                forged[seq] = recorder.record(content).record
        seq = revoke_as_authority(node, authority, ids["c"], reason="gone", clock=clock)
        record = forged[seq]
        with open_node_log(node, clock=clock) as log:
            assert set(log.agents_of(record)) == {ids["d"], me}
            assert log.size() == 5


def test_the_revokers_own_other_record_under_the_id_is_an_error_not_a_success(
    troth_home: Path,
) -> None:
    """Attack: make the revoker's log hold another record under the id first, so the
    revocation is taken as "already recorded". Only a holder of the revoker's key can sign
    one; and a record of another kind under the id is a typed StorageError (the feed entry is
    taken, its record missing), never the other record's receipt."""
    ids = _acme("c")
    clock = SystemClock()
    with open_node("acme") as node:
        authority = node.authority()
        me = authority.identifier
        with traced_as(node, str(me), clock=clock) as recorder:
            for seq in range(4):
                rid = revocation_content(
                    "identity", str(ids["c"]), authority=me, reason="gone", seq=seq
                ).id
                recorder.record(
                    RecordContent(Kind.TOOL_INVOCATION, tool=ToolCall("refund"), id=rid)
                )
        with pytest.raises(StorageError, match="could not be"):
            revoke_as_authority(node, authority, ids["c"], reason="gone", clock=clock)


# -- secrets: the chain tables' prune -----------------------------------------------------------


def test_a_revoking_lease_keeps_its_chain_and_standing_through_prunes(tmp_path: Path) -> None:
    """Attack: prune a chain that a lease still needs. A lease whose upstream revocation
    keeps failing stays REVOKING for longer than the retention; every prune keeps its chain
    and members (an open lease's chain), and the authority's standing row."""
    world, _policy, broker, engine = _stub_broker(tmp_path)
    credential = world.member_credential(world.agent_b)
    issued = broker.issue(credential, "s", now=NOW)

    def fail(spec: SecretSpec, ref: str | None, upstream: SecretValue) -> None:
        raise OSError("upstream gone")

    engine.revoke = fail  # type: ignore[method-assign]
    broker.sweep(issued.lease.expires_at + 1)
    (lease,) = broker.store.leases_in((LeaseState.REVOKING,), identity=None, limit=None)
    assert lease.handle == issued.lease.handle
    for round_ in range(3):
        broker.prune(LATER + round_ * 10)
    assert _count(broker, "secret_lease_chains") == 1
    members = broker.store.db.fetch_one(
        "SELECT COUNT(*) FROM secret_lease_members WHERE chain_hash = ?", (lease.chain_hash,)
    )
    assert members is not None
    assert members[0] > 0
    standing = standing_member(world.authority.identifier, world.agent_b.identifier)
    assert broker.store.has_member(standing)


# -- node home: private files -------------------------------------------------------------------


def test_a_private_file_that_is_a_fifo_a_directory_or_too_large_is_refused(tmp_path: Path) -> None:
    """Attack: hang or exhaust a command that reads a private file (node.json). A FIFO with
    no writer and a file past the limit are each a ConfigError at once (a directory:
    tests/test_review46f_session.py)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(ConfigError, match="not a regular file"):
        read_private_file(fifo)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 101)
    big.chmod(0o600)
    with pytest.raises(ConfigError, match="larger than 100"):
        read_private_file(big, max_bytes=100)
    assert read_private_file(big, max_bytes=101) == b"x" * 101
    big.chmod(0o644)
    with pytest.raises(ConfigError, match="accessible by others"):
        read_private_file(big)


# -- the refactor into mixins -------------------------------------------------------------------


@pytest.mark.parametrize("cls", [Authority, NodeRuntime])
def test_no_mixin_shadows_another(cls: type) -> None:
    """Attack: the split of Authority and NodeRuntime into mixins changed a method by
    accident (two classes of the MRO defining one name: the first one wins, silently). Every
    name is defined by one class of the MRO only, and no mixin holds class-level state (a
    mutable default shared by every instance)."""
    seen: dict[str, str] = {}
    for klass in cls.__mro__[:-1]:
        for name, value in vars(klass).items():
            if name.startswith("__") and name.endswith("__"):
                continue
            assert name not in seen, f"{name} in {klass.__name__} and {seen[name]}"
            seen[name] = klass.__name__
            assert callable(value) or isinstance(value, property | staticmethod | classmethod), (
                f"{klass.__name__}.{name} is class-level state"
            )
    assert len([k for k in cls.__mro__[:-1] if "__init__" in vars(k)]) == 1  # one constructor
