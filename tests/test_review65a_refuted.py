"""Review 65a, refuted: attacks on the fork refusals of reviews 64u, 64y, 64a2 and 65a (forked
1 and 2) that did not work.

- A service answer naming a fork in any other form than the authority's own refusal of a
  `rotated` request (`AuthorityError: request invalid (<a fork's detail>)`) is no fork
  refusal: another authority reason quoting a fork's words, the fork's words after other text,
  a busy answer of that form, a denial of that form.
- A co-trusted authority (one the node's identity holds no credential of) answering a link's
  attempt in that form still has it shown as the plain error it is (review 64a2's judges
  apply to the answer as to a CLOSE).
- The agent's announcement refused as a fork, repeated round after round, keeps one entry in
  the running node's `refused_as_fork` and adds no fork evidence at the authority after the
  first refusal (the refusal is not persisted, but retrying it grows nothing).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import MemNet, run_memnet
from tests.test_review65a_forked import agent_forked
from troth.errors import Busy, Denied, IdentityFailure, RemoteError
from troth.identity import Identifier
from troth.node.forked_refusal import refused_as_fork
from troth.node.links import Backoff, Link, LinkRow, Links

FORK = f"change 1: {IdentityFailure.FORK.value}"
ANSWERED = f"AuthorityError: request invalid ({FORK})"


@pytest.mark.parametrize(
    "answer",
    [
        RemoteError(f"AuthorityError: not a member of this authority ({FORK})"),
        RemoteError(f"AuthorityError: request invalid (superseded history: {FORK})"),
        RemoteError(f"relay r: {ANSWERED}"),
        RemoteError(f"AuthorityError: request invalid ({FORK}"),  # not the whole answer
        Busy(ANSWERED),
        Denied((ANSWERED,)),
    ],
    ids=str,
)
def test_only_the_authoritys_own_answer_naming_a_fork_is_one(answer: Exception) -> None:
    assert refused_as_fork(RemoteError(ANSWERED))  # the form 65a forked 1 reads
    assert not refused_as_fork(answer)


class _SlowBackoff(Backoff):
    def delay(self, attempt: int, random: Any) -> float:
        return 60.0


def _answered_row(credited: bool) -> LinkRow:
    """The row of a link to an authority (credited by the node's identity or not) whose
    node answered the attempt with the authority's fork refusal of a `rotated` request."""
    authority = Identifier(b"\x03" * 32)

    async def run() -> LinkRow:
        async def restore(link: Link) -> None:
            raise RemoteError(ANSWERED)

        links = Links(restore, backoff=_SlowBackoff(), judges=lambda _: credited)
        link = links.link("/tcp/partner:4000")
        link.authority = authority
        links.resume("/tcp/partner:4000")
        async with asyncio.timeout(5):
            while link.error is None:
                await asyncio.sleep(0)
        (row,) = links.rows()
        await links.stop()
        return row

    return asyncio.run(run())


def test_a_co_trusted_authoritys_answer_naming_a_fork_is_no_fork_on_its_link() -> None:
    assert _answered_row(credited=True).forked is True  # the judge's word counts
    row = _answered_row(credited=False)
    assert row.forked is False
    assert row.error == ANSWERED


def test_an_agents_fork_refused_round_after_round_grows_nothing(tmp_path: Path) -> None:
    refused: list[list[dict[str, str]]] = []
    forks: list[int] = []

    async def test(net: MemNet) -> None:
        owner, bot = await agent_forked(net)
        hub = net.hub
        assert hub is not None
        for _ in range(4):
            (row,) = await owner.announce_rotations("bot")
            assert row["forked"] is True
            refused.append(owner.status()["refused_as_fork"])
            forks.append(len(hub.node.identities.forks(bot.identifier)))

    run_memnet(test, tmp_path / "home", budget=30)
    assert all(len(entries) == 1 for entries in refused)
    assert refused[0] == refused[-1]
    assert forks[0] == forks[-1] <= 1
