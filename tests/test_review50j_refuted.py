"""Review 50j, attacks on review 50b's marks (troth.node.localdue) and a running node's poll of
them (troth.node.duewatch) that the code refutes.

The threat model: the files of the troth home are the trust boundary. A process that can open
another node's `node.db` (the same user) can already do anything to that node, so a mark it
writes is no new power; what must hold is that nothing reached over the network writes one
(tests/test_review50b_refuted.py), that a revocation the authority refused leaves none, and
that marks, however many, cost a running node a bounded number of syncs."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

import troth
import troth.node.traces
from tests.support.revocation import acme_and_sub_chain
from tests.test_review50b_revdue import _marks
from troth import limits
from troth.clock import SystemClock
from troth.identity import Identifier
from troth.node.duewatch import DueWatch
from troth.node.localdue import LocalDue


def test_a_link_revocation_the_authority_refuses_leaves_no_mark_at_the_other_nodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`sub`, the chain's subject and not its delegator, asks acme (on this machine) to revoke
    it: refused, and the mark its attempt made at `agents` (which trusts acme) goes with it
    (a local process without the authority's word marks nothing that stands)."""
    acme, chain = acme_and_sub_chain()
    cleared: list[list[str]] = []
    clear = LocalDue.clear

    def clearing(due: LocalDue) -> None:
        cleared.append(due.names)
        clear(due)

    with monkeypatch.context() as patched:
        patched.setattr(LocalDue, "clear", clearing)
        with troth.Node.open("sub") as sub, pytest.raises(troth.AuthorityError):
            sub.revoke(chain, by=sub.identity, reason="not mine")
    assert cleared == [["agents"]]  # marked before acme was asked, then cleared
    assert _marks("agents", acme) == 0
    with troth.Node.open("hub") as hub:
        assert hub._stored.authority().store.revocation_tip()[0] == 0


def test_a_revoker_killed_before_the_commit_leaves_marks_that_a_sync_clears() -> None:
    """The revoker is killed after marking `agents` and before acme commits: the mark stands
    (agents refuses acme's chains meanwhile: fail closed), nothing was revoked, and agents'
    next settling sync clears it."""
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        agents.enroll(acme.ticket({"orders.access": "read"}))
        member = agents.identity.identifier
        authority = hub._stored.authority()

        def killed(*_: object, **__: object) -> list[bytes]:
            raise KeyboardInterrupt

        authority.remove_member = killed  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt):
            troth.node.traces.remove_member_as_authority(
                hub._stored, authority, member, reason="left", clock=SystemClock()
            )
        assert hub._stored.authority().store.revocation_tip()[0] == 0
    assert _marks("agents", acme.identifier) == 1
    with troth.Node.open("agents") as agents:
        assert agents._stored.settle_due(acme.identifier, SystemClock().now())
    assert _marks("agents", acme.identifier) == 0


class _Looped:
    """What `DueWatch` uses of a runtime while an authority here revokes in a loop: a newer
    mark at every poll, held by the revocation under way (no sync clears it)."""

    def __init__(self, authority: Identifier) -> None:
        self.syncs = 0
        self.marks = [1]
        self.trust = SimpleNamespace(
            due=frozenset({authority}),
            hosted=None,
            routes={authority: "node:hub"},
            read_due=self._marked,
        )
        store = SimpleNamespace(marks_due=lambda digest: list(self.marks))
        self.node = SimpleNamespace(wallet=SimpleNamespace(store=store))
        self.worker = SimpleNamespace(run=self._run)

    def _marked(self) -> None:
        self.marks.append(self.marks[-1] + 1)

    async def _run(self, function: Any, *args: Any) -> Any:
        return function(*args)

    async def sync_trusted_feed(self, authority: Identifier) -> int:
        self.syncs += 1
        return 1


def test_a_revocation_loop_makes_a_node_sync_at_most_once_per_longest_wait() -> None:
    """Revocations in a loop (a newer mark at every poll for an hour): the node syncs
    that feed at most once per `DUE_RETRY_MAX` once its waits have grown, not at every mark
    nor at every poll (its other work is not starved by the marks)."""
    authority = Identifier(bytes(32))
    runtime = _Looped(authority)
    watch = DueWatch(runtime)  # type: ignore[arg-type]
    now = [0.0]
    watch.time = lambda: now[0]

    async def polls() -> None:
        while now[0] < 3600:
            await watch.poll()
            now[0] += limits.DUE_POLL

    asyncio.run(polls())
    assert len(runtime.marks) > 3600
    doubling = 6  # 1, 2, 4, 8, 16, then 30 s
    assert runtime.syncs <= doubling + 3600 / limits.DUE_RETRY_MAX
