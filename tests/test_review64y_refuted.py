"""Review 64y, refuted: attacks on review 64u's fork refusal (a member told her identity is
lost) and on review 64t's fixes (a stranger's reasons, the rollback guard after a rollback)
that did not work.

- A service's answer (RemoteError, Denied, Busy) whose text names a fork is no fork refusal:
  only the authenticated CLOSE of the peer the channel was pinned to is read so (a relay
  forwards sealed frames; a service of the authority's node answers with its own text).
- The authority a link reaches still has its fork refusal named (forked 1 keeps it).
- A bump in an inner transaction that raised, the outer one catching it and committing: there
  are no savepoints, the bump commits with the outer transaction, and the guard is raised to
  the count node.db holds (not ahead, not behind).
- A bump in an inner transaction whose outer one rolls back, then the scope armed: the guard
  stays at node.db's count.
- Two scopes each with a rolled back bump, armed in one transaction: each guard entry is at
  node.db's count (each guard's `_publish` is its own).
- The node's own refused announcement sent again opens one channel of its own per
  announcement, pinned to the authority (its rotated history shown to no one else), closed
  after even when refused again, carrying the same request as the shared channel did.
- review 64t access 1 keeps useful reasons: an anchor is still told the authority a pinned rule
  names, and a member whose only credential was dropped (expired) is told why.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from tests.conftest import NOW
from tests.support.gates import T, make_world
from tests.test_review64y_forked import refused_row
from troth.channel import VerifiedPeer
from troth.errors import Busy, Denied, IdentityFailure, RemoteError
from troth.identity import Identifier
from troth.node import announcements
from troth.node.access import AccessRequest, MembersOnly, PeerCaller, RulesPolicy, Standing
from troth.node.announcements import Announcer
from troth.node.forked_refusal import refused_as_fork
from troth.storage import SqliteDatabase
from troth.storage.rollback import RollbackGuard, read_guard

FORK = f"change 1: {IdentityFailure.FORK.value}"


@pytest.mark.parametrize(
    "answer", [RemoteError(FORK), Denied((FORK,)), Busy(f"busy: {FORK}")], ids=type
)
def test_a_service_answer_naming_a_fork_is_no_fork_refusal(answer: Exception) -> None:
    assert not refused_as_fork(answer)


def test_the_authority_a_link_reaches_still_has_its_fork_refusal_named() -> None:
    row = refused_row(Identifier(b"\x07" * 32))
    assert row.forked is True
    assert row.error is not None
    assert "troth revoke identity" in row.error


def _at_store(guard: RollbackGuard, scope: str, count: int) -> None:
    found = read_guard(guard.path)
    assert found is not None
    assert found[scope] == guard.counter() == count
    assert not guard.behind()


def test_a_bump_in_an_inner_transaction_caught_by_the_outer_commits_with_it(
    tmp_path: Path,
) -> None:
    db = SqliteDatabase(tmp_path / "node.db")
    guard = RollbackGuard(db, "authority")
    with db.transaction(), pytest.raises(RuntimeError), db.transaction():
        guard.bump(NOW)
        raise RuntimeError("the inner one fails after its bump")
    _at_store(guard, "authority", 1)
    assert RollbackGuard(db, "authority").check(NOW, lambda: 0) is None
    db.close()


def test_an_inner_bump_whose_outer_transaction_rolls_back_is_forgotten(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "node.db")
    guard = RollbackGuard(db, "broker")
    with pytest.raises(RuntimeError), db.transaction():
        with db.transaction():
            guard.bump(NOW)
        raise RuntimeError("the outer one fails after the inner one ended")
    with db.transaction():
        guard.arm()
    _at_store(guard, "broker", 0)
    assert RollbackGuard(db, "broker").check(NOW, lambda: 0) is None
    db.close()


def test_two_scopes_armed_in_one_transaction_after_rolled_back_bumps(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "node.db")
    one, two = RollbackGuard(db, "authority"), RollbackGuard(db, "broker")
    with pytest.raises(RuntimeError), db.transaction():
        one.bump(NOW)
        two.bump(NOW)
        two.bump(NOW)
        raise RuntimeError("a failure after the bumps")
    with db.transaction():
        one.arm()
        two.arm()
    _at_store(one, "authority", 0)
    _at_store(two, "broker", 0)
    db.close()


def _refusal(standing: Standing) -> str:
    world = make_world()
    authority = world.authority.identifier
    rules = {("orders", "read"): MembersOnly(authority=authority)}
    policy = RulesPolicy("hub", rules, lambda _p, _n: standing)
    caller = PeerCaller(VerifiedPeer(world.sub.identity, ()), "c")
    decision = policy.decide(AccessRequest(caller, "orders", "read", None, T + 10))
    assert not decision.allowed
    (reason,) = decision.reasons
    return reason.replace(str(authority), "AUTHORITY")


def test_an_anchor_and_a_member_whose_credential_was_dropped_keep_useful_reasons() -> None:
    anchor = _refusal(Standing((), is_anchor=True))
    assert "it holds no credential from AUTHORITY" in anchor
    member = _refusal(Standing((), dropped=("its credential expired",)))
    assert "its credential expired" in member
    stranger = _refusal(Standing(()))
    assert "AUTHORITY" not in member
    assert "AUTHORITY" not in stranger


class _Worker:
    async def run(self, function: Any, *args: Any, **named: Any) -> Any:
        return function(*args, **named)


def test_a_refused_resend_opens_one_channel_pinned_to_the_authority_and_closes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An authority refusing every `rotated` costs one channel of the node's own per
    announcement (no loop of them), pinned to that authority (the rotated history goes to
    no one else), closed after, and the request sent over it is the one the shared channel
    carried (nothing more shown)."""
    authority = Identifier(b"\x01" * 32)
    opened: list[tuple[str, Identifier | None]] = []
    closed: list[bytes] = []
    sent: list[tuple[bytes, Any]] = []

    async def close() -> None:
        closed.append(b"own")

    async def channel_to(route: Any, *, expect: Identifier) -> Any:
        return SimpleNamespace(enc=b"shared")

    async def channel_as(name: str, route: Any, *, expect: Identifier | None = None) -> Any:
        opened.append((name, expect))
        return SimpleNamespace(enc=b"own", close=close)

    async def rotated(told: bool) -> None:
        return None

    async def call(_router: Any, route: Any, _method: str, request: Any) -> Any:
        sent.append((route[0], request))
        raise Denied(("superseded history",))

    monkeypatch.setattr(announcements, "call", call)
    monkeypatch.setattr(announcements, "rotated_request", lambda *a, **k: b"request")
    announcer = Announcer(
        cast(Any, SimpleNamespace(identities=SimpleNamespace())),
        cast(Any, SimpleNamespace(hosted=None, routes={authority: "/tcp/hub:4000"})),
        own="n",
        worker=cast(Any, _Worker()),
        clock=cast(Any, SimpleNamespace(now=lambda: 1)),
        router=cast(Any, None),
        channel_to=channel_to,
        rotated=rotated,
        channel_as=channel_as,
    )
    with pytest.raises(Denied):
        asyncio.run(announcer._announce("n", authority))
    assert opened == [("n", authority)]
    assert closed == [b"own"]
    assert sent == [(b"shared", b"request"), (b"own", b"request")]
