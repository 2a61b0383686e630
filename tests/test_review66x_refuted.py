"""Review 66x: attacks on the policy signing hold (reviews 66b, 66o: hold 1) and on the export
floor (review 66o, traces 1) that did not work, each a test that fails if the defence it names
breaks.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.backups import copy_db, node_db, restore_db
from tests.support.gates import POLICIES, TOOLS
from tests.support.parties import make_party
from tests.support.traces import NOW, Held
from tests.test_review45f_policy import bundles, held
from tests.test_review66h_backdating import AGENTS, START, Agent
from troth import limits
from troth.authority.core import ROLE
from troth.clock import FixedClock, SystemClock
from troth.credentials import Attributes, CredentialChain, issue_credential
from troth.errors import PolicyError, PolicyFailure, TraceError
from troth.gates import SqliteBundleTable
from troth.gates.bundles import POLICY_ADMIN
from troth.identity import Identifier
from troth.node import init_node, open_node
from troth.node.services.policy import install_bundle, sign_bundle_as
from troth.node.services.policy_hold import check_may_sign
from troth.storage.rollback import RollbackGuard, restored_rows
from troth.trace import TraceLog
from troth.trace.export import export_jsonl, verify_export
from troth.vault import SoftwareVault

DAY = 86_400


def _sign(home: Path, revision: int, **extra: bool) -> bytes:
    with open_node("acme", home=home) as node:
        authority = node.hosted_authority()
        assert authority is not None
        return sign_bundle_as(
            node,
            "acme",
            authority=authority.identifier,
            policies=POLICIES,
            schema="",
            tools=TOOLS,
            services={},
            revision=revision,
            now=SystemClock().now(),
            ttl=3600,
            **extra,
        )


def test_bundles_a_peer_sends_never_read_as_a_restore(troth_home: Path, tmp_path: Path) -> None:
    """A member or peer feeds the hub bundles (each stored: a count in the `policy` scope),
    the same ones again, older ones, the node reopened between: no restore is recorded (the
    count and the guard move together), so no one outside the node's files locks its operator
    out of signing."""
    first, second = bundles(troth_home, tmp_path)
    clock = SystemClock()
    for data in (first, second, first, second, second):
        if data is first and held(troth_home) == [2]:  # an older one, after the newer
            with pytest.raises(PolicyError):
                install_bundle(troth_home, "acme", data.read_bytes(), clock=clock)
        else:
            install_bundle(troth_home, "acme", data.read_bytes(), clock=clock)
        with open_node("acme", home=troth_home) as node:
            assert SqliteBundleTable(node.db).restored is None
            assert not [r for r in restored_rows(node.db) if r.scope == "policy"]
    assert _sign(troth_home, 3)


def test_the_operators_word_does_not_lift_a_held_back_bundle(
    troth_home: Path, tmp_path: Path
) -> None:
    """`fleet_holds_none` on a node that holds its authority's bundle back (so it knows the
    fleet held one): still RESTORED; the word covers only an authority it holds none of."""
    first, second = bundles(troth_home, tmp_path)
    clock = SystemClock()
    install_bundle(troth_home, "acme", first.read_bytes(), clock=clock)
    path, copy = node_db(troth_home, "acme"), tmp_path / "copy.db"
    copy_db(path, copy)
    install_bundle(troth_home, "acme", second.read_bytes(), clock=clock)
    restore_db(path, copy)
    with pytest.raises(PolicyError) as caught:
        _sign(troth_home, 2, fleet_holds_none=True)
    assert caught.value.reason is PolicyFailure.RESTORED


def test_a_clock_stepped_back_behind_the_restore_keeps_the_hold(
    troth_home: Path, tmp_path: Path
) -> None:
    """The node's clock stepped back behind the time the restore was found (or far forward
    then back): the hold stays at every time (review 66c2: it has no time limit any more,
    where it ended MAX_POLICY_BUNDLE_TTL after the restore)."""
    first, _ = bundles(troth_home, tmp_path)
    path, copy = node_db(troth_home, "acme"), tmp_path / "copy.db"
    copy_db(path, copy)
    install_bundle(troth_home, "acme", first.read_bytes(), clock=SystemClock())
    restore_db(path, copy)
    with open_node("acme", home=troth_home) as node:
        authority = node.hosted_authority()
        assert authority is not None
        table = SqliteBundleTable(node.db)
        found = table.restored
        assert found is not None
        for now in (
            found.at - 10 * 365 * DAY,
            found.at,
            found.at + limits.MAX_POLICY_BUNDLE_TTL - 1,
            found.at + limits.MAX_POLICY_BUNDLE_TTL,
            found.at + 10 * 365 * DAY,
        ):
            with pytest.raises(PolicyError):
                check_may_sign(table, authority.identifier, now=now)
        check_may_sign(table, authority.identifier, now=found.at, fleet_holds_none=True)


def test_a_policy_admin_on_a_restored_member_node_is_held_too(tmp_path: Path) -> None:
    """The delegated path: a member's policy-admin signing the authority's bundle on its own
    node (its chain from the wallet), that node.db restored from a copy from before a bundle
    it stored: RESTORED as for the authority itself; the operator's word lets it sign."""
    vault = SoftwareVault()
    now = int(time.time())
    acme = make_party(vault, now=now - 60)
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        me = node.identities.create(now=now - 60, name="me")
        own = issue_credential(
            acme.signer,
            subject=me.identifier,
            attributes=Attributes({ROLE: POLICY_ADMIN}),
            now=now - 60,
            ttl=5 * DAY,
            depth=1,
        )
        node.wallet.hold("me", CredentialChain((own,), (acme.identity.history,)).encode(), now=now)
        SqliteBundleTable(node.db)
    path, copy = node_db(tmp_path, "n"), tmp_path / "copy.db"
    copy_db(path, copy)
    with open_node("n", home=tmp_path) as node:
        guard = RollbackGuard(node.db, "policy")
        with node.db.transaction():  # a bundle stored after the copy (what `_stored` counts)
            guard.bump()
    restore_db(path, copy)

    def sign(node_home: Path, authority: Identifier, **extra: bool) -> bytes:
        with open_node("n", home=node_home) as node:
            return sign_bundle_as(
                node,
                "me",
                authority=authority,
                policies=POLICIES,
                schema="",
                tools=TOOLS,
                services={},
                revision=1,
                now=now,
                ttl=3600,
                **extra,
            )

    with pytest.raises(PolicyError) as caught:
        sign(tmp_path, acme.identifier)
    assert caught.value.reason is PolicyFailure.RESTORED
    assert sign(tmp_path, acme.identifier, fleet_holds_none=True)


_OPS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(-400, 400), st.integers(-300, 300), st.booleans()),
    min_size=1,
    max_size=6,
)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(_OPS)
def test_an_honest_log_exported_verifies_against_every_note_it_signed(
    ops: list[tuple[int, int, int, bool]],
) -> None:
    """Honest log -> export -> `verify_export` against every checkpoint note it signed (one a
    verifier may have kept) is never refused by the floor (66o traces 1 holds every line past
    the kept note to it): three agents' records dated anywhere within the skew, the log's
    clock stepped forward and back (an append it refuses is not in the log), checkpoints
    between, the log's key renewed (op 3)."""
    with tempfile.TemporaryDirectory() as where:
        owner = Held()
        owner.signer(NOW)
        clock = FixedClock(START)
        log = TraceLog.open(
            Path(where) / "log.db", clock=clock, signer=lambda now: owner.signer(NOW)
        )
        agents, renewed = [Agent(held) for held in AGENTS], NOW
        for who, step, offset, checkpoint in ops:
            clock.advance(step)
            if who == 3:
                renewed += 1
                owner.rotate(renewed)
                continue
            with contextlib.suppress(TraceError):  # refused: a record the log never held
                agents[who].append(log, clock.now() + offset)
            if checkpoint:
                log.checkpoint()
        log.checkpoint()
        out = io.StringIO()
        export_jsonl(log, out)
        lines = [line.encode() for line in out.getvalue().splitlines()]
        notes = log.checkpoints()
        log.close()
    for note in notes if lines else []:
        verify_export(lines, anchor=note)
