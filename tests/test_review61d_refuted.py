"""Review 61d, gates: attacks on the signed bundles, the bundle store and the tool gate that
did not work. Each test is a real attempt, and fails if its defence breaks.

- a bundle rolled back to an older signed revision (same signer) once the newer one expired,
  in memory and after a restart from the node's table;
- a thief holding the authority's key from before a rotation signs a permissive bundle;
- a process killed at every SQLite statement (and crash point) of a bundle's install: the
  table holds one whole bundle, the older or the newer, and it decides;
- a policy that errors at evaluation (an overflow in a `forbid`) beside a permit: denied;
- typed values through tool arguments (entity and extension escapes, floats, NaN, -0, bools
  for integers, big integers, null, a lone surrogate, extra record fields): denied (`arguments`);
- a direct caller of the tool gate whose argument keys collide once written as JSON: the tool
  runs with exactly the arguments judged;
- credential attribute values written to look like Cedar or JSON syntax: only tags;
- a delegation back to an agent already in the chain (two entities of one uid): refused
  when made (and by every verifier: review 54q).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.backups import copy_db
from tests.support.gates import POLICIES, TOOLS, GatesWorld, T, make_world, rotate, superseding
from tests.support.killed import KILLS, killed_after
from troth.clock import FixedClock
from troth.credentials import Attributes, CredentialChain, delegate, issue_credential
from troth.errors import CredentialError, PolicyError, PolicyFailure
from troth.faults import CRASH_EXIT_CODE
from troth.gates import (
    BundleStore,
    Outcome,
    SqliteBundleTable,
    Tool,
    ToolCall,
    ToolGate,
    create_bundle,
)
from troth.storage import SqliteDatabase
from troth.storage.rollback import guard_path

CAPPED = POLICIES.replace("<= 1000", "<= 10")
"""The support-desk policies with the refund cap at 10 (the newer revision's)."""
REFUND = {"order_id": "o-1", "amount": 500}
"""A refund the default policies allow and `CAPPED` forbids."""


@pytest.fixture(scope="module")
def world() -> GatesWorld:
    return make_world()


def _refund(world: GatesWorld, store: BundleStore, now: int, **args: Any) -> Any:
    member = world.credential(world.support_chain, world.support, now=now)
    return world.point(store).decide(member, ToolCall("refund", args or REFUND), now=now)


# -- bundles ----------------------------------------------------------------------------------


def test_an_older_revision_does_not_come_back_when_the_newer_expires(
    world: GatesWorld, tmp_path: Path
) -> None:
    older = world.bundle(revision=1, ttl=30 * 86_400)  # long-lived and permissive
    newer = world.bundle(revision=2, ttl=3600, now=T + 100, policies=CAPPED)  # short-lived
    db = SqliteDatabase(tmp_path / "node.db")
    store = BundleStore(world.verifier, SqliteBundleTable(db, now=T + 5))
    store.accept(older, feeds=world.feeds(), now=T + 5)
    store.accept(newer, feeds=world.feeds(), now=T + 105)
    later = T + 7200  # the newer one has expired; the older one has not
    feeds = {world.authority.identifier: world.feed}
    with pytest.raises(PolicyError) as running:
        store.accept(older, feeds=feeds, now=later)
    db.close()
    db = SqliteDatabase(tmp_path / "node.db")
    restarted = BundleStore(world.verifier, SqliteBundleTable(db, now=later))
    restarted.reload(now=later)
    with pytest.raises(PolicyError) as after_restart:
        restarted.accept(older, feeds=feeds, now=later)
    db.close()
    assert (running.value.reason, after_restart.value.reason) == (PolicyFailure.ROLLBACK,) * 2


def test_a_thief_of_the_rotated_away_authority_key_signs_no_bundle() -> None:
    world = make_world()
    store = world.store(world.bundle(revision=1))
    assert _refund(world, store, T + 10).allowed
    rotated, authority = rotate(world, world.authority, T + 100)
    world.feed = superseding(authority, rotated, world.authority, T + 100)
    thief = create_bundle(  # the old key, after the rotation: a permit of everything
        world.authority.signer,
        authority=world.authority.identifier,
        policies=POLICIES + '@id("all") permit(principal, action, resource);\n',
        schema="",
        tools=TOOLS,
        revision=5,
        now=T + 200,
        ttl=86_400,
    )
    for into in (store, BundleStore(world.verifier)):
        with pytest.raises(PolicyError) as refused:
            into.accept(thief, feeds=world.feeds(), now=T + 210)
        assert refused.value.reason is PolicyFailure.SIGNER_SUPERSEDED


def _killed_install(world: GatesWorld, base: Path, path: Path, at: int | str) -> int:
    """The newer bundle installed on a copy of `base` (holding the older) at `path`, the
    process killed at SQLite statement `at` (an int) or crash point `at` (a name)."""
    copy_db(base, path)
    shutil.copy(guard_path(base), guard_path(path))
    newer = world.bundle(revision=2, policies=CAPPED)  # signed alike each time: the same bytes

    def install() -> None:
        db = SqliteDatabase(path)
        store = BundleStore(world.verifier, SqliteBundleTable(db, now=T + 6))
        store.reload(now=T + 6)
        store.accept(newer, feeds=world.feeds(), now=T + 6)
        db.close()

    if isinstance(at, str):
        return killed_after(0, install, at)
    return killed_after(at, install)


def test_an_install_killed_anywhere_leaves_one_whole_bundle_deciding(
    world: GatesWorld, tmp_path: Path
) -> None:
    base = tmp_path / "base.db"
    db = SqliteDatabase(base)
    BundleStore(world.verifier, SqliteBundleTable(db, now=T + 5)).accept(
        world.bundle(revision=1), feeds=world.feeds(), now=T + 5
    )
    db.close()
    points: list[int | str] = [
        "node.policy-bundle.before-commit",
        "node.policy-bundle.after-commit",
        "storage.rollback-guard.before-write",
        "storage.rollback-guard.after-write",
    ]
    older, newer = world.bundle(revision=1), world.bundle(revision=2, policies=CAPPED)
    statement, kept = 0, dict[bytes | None, Path]()
    while statement < 200:  # each SQLite statement of the install, until one runs to the end
        statement += 1
        points.append(statement)
        if _killed_install(world, base, tmp_path / f"at-{statement}.db", statement) == 0:
            break
    assert KILLS[-1] == statement - 1  # the last ran every statement: none was left out
    for at in points:
        path = tmp_path / f"at-{at}.db"
        if isinstance(at, str):
            # each named point is reached (73m blind 2: a point renamed or moved off the install
            # ran it to its end, exit 0, and passed unseen)
            assert _killed_install(world, base, path, at) == CRASH_EXIT_CODE, at
        db = SqliteDatabase(path)
        table = SqliteBundleTable(db, now=T + 7)
        held = table.load(world.authority.identifier.digest)
        assert table.restored is None, at  # the rollback guard agrees with the table
        assert not table.held_back(), at
        assert held in (older, newer), at  # one whole bundle, the older or the newer
        kept.setdefault(held, path)
        db.close()
    assert set(kept) == {older, newer}
    for held, path in kept.items():  # each decides: the older allows, the newer forbids
        db = SqliteDatabase(path)
        store = BundleStore(world.verifier, SqliteBundleTable(db, now=T + 7))
        store.reload(now=T + 7)
        assert _refund(world, store, T + 10).allowed is (held == older)
        db.close()


# -- decisions --------------------------------------------------------------------------------


def test_a_forbid_that_overflows_denies_a_call_the_permits_allow(world: GatesWorld) -> None:
    overflow = (
        '@id("overflowing") forbid(principal, action == Action::"invoke:refund", resource)\n'
        "  when { context.args.amount + 9223372036854775000 > 0 };\n"
    )
    store = world.store(world.bundle(revision=3, policies=POLICIES + overflow))
    decision = _refund(world, store, T + 10, order_id="o-1", amount=2000)
    assert not decision.allowed
    assert "policy overflowing could not be evaluated" in decision.errors


SEND = {
    "type": "object",
    "properties": {
        "r": {"type": "object", "properties": {"to": {"type": "string"}}},
        "n": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}
SEND_POLICIES = (
    POLICIES + '@id("send") permit(principal, action == Action::"invoke:send", resource);\n'
)


@pytest.mark.parametrize(
    "args",
    [
        {"r": {"__entity": {"type": "Agent", "id": "x"}}},
        {"r": {"to": {"__extn": {"fn": "ip", "arg": "10.0.0.1"}}}},
        {"r": {"to": {"__entity": {"type": "Tool", "id": "refund"}}}},
        {"tags": [{"__extn": {"fn": "decimal", "arg": "1.0"}}]},
        {"r": {"to": ["ceo"]}},
        {"r": {"to": "ceo", "cc": "x"}},
        {"r": {"to": "c\ud800"}},
        {"n": 6.0},
        {"n": float("nan")},
        {"n": -0.0},
        {"n": True},
        {"n": 2**53 + 1},
        {"n": -(2**63)},
        {"tags": "abc"},
        {"n": None},
        {"r": {"to": None}},
        {"tags": [None]},
    ],
)
def test_typed_values_through_arguments_are_denied(world: GatesWorld, args: Any) -> None:
    store = world.store(world.bundle(policies=SEND_POLICIES, tools={**TOOLS, "send": SEND}))
    member = world.credential(world.support_chain, world.support)
    point = world.point(store)
    assert point.decide(member, ToolCall("send", {"r": {"to": "x"}}), now=T + 10).allowed
    decision = point.decide(member, ToolCall("send", args), now=T + 10)
    assert (decision.allowed, decision.outcome) == (False, Outcome.ARGUMENTS)


class _Key(str):
    """A key equal in text to another but not the same dict key (its own hash)."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(("other", str(self)))

    def __eq__(self, other: object) -> bool:
        return self is other


def test_colliding_keys_run_with_the_arguments_judged(world: GatesWorld) -> None:
    ran: list[dict[str, Any]] = []

    def refund(order_id: str, amount: int) -> str:
        ran.append({"order_id": order_id, "amount": amount})
        return "refunded"

    store = world.store(world.bundle(revision=4))
    gate = ToolGate(world.point(store), [Tool.from_function(refund)], clock=FixedClock(T + 10))
    member = world.credential(world.support_chain, world.support)
    for first, second in ((20, 5000), (5000, 20)):
        args = {"order_id": "o-1", "amount": first, _Key("amount"): second}
        result = gate.invoke(member, "refund", args)
        assert result.allowed is (second <= 1000)  # judged as JSON reads it: the last
        assert ran == ([{"order_id": "o-1", "amount": second}] if result.allowed else [])
        ran.clear()


# -- credentials into entities ----------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        'read", "write',
        'read"]}, "orders.access": ["write',
        'Agent::"x"',
        "write\u200b",
        "\uff57\uff52\uff49\uff54\uff45",  # fullwidth
        '{"__extn": {"fn": "decimal", "arg": "1.0"}}',
    ],
)
def test_attribute_values_that_look_like_syntax_stay_one_tag(world: GatesWorld, value: str) -> None:
    store = world.store(world.bundle())
    party = world.new_member()[0]
    credential = issue_credential(
        world.authority.signer,
        subject=party.identifier,
        attributes=Attributes({"orders.access": value}),
        now=T,
        ttl=3600,
        depth=0,
    )
    chain = CredentialChain((credential,), (world.authority.identity.history,))
    member = world.credential(chain.encode(), party)
    decision = world.point(store).decide(
        member, ToolCall("refund", {"order_id": "o", "amount": 1}), now=T + 10
    )
    assert (decision.allowed, decision.outcome) == (False, Outcome.NO_PERMIT)


def test_a_delegation_back_into_the_chain_is_refused(world: GatesWorld) -> None:
    # two links of one subject would be two entities of one uid (the root's wider tags)
    with pytest.raises(CredentialError, match="delegation cycle"):
        delegate(  # the sub-agent hands its read access back to the support agent
            world.sub.signer,
            CredentialChain.decode(world.sub_chain),
            subject=world.support.identifier,
            attributes=Attributes({"orders.access": "read"}),
            now=T,
            ttl=3600,
            purpose="back",
        )
