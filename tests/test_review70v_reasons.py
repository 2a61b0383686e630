"""Review 70v, link revocation reasons: both ends of review 70q's member bound agree.

70v reasons 1: the authority refuses a member's (or its delegates') link revocation reason past
MAX_MEMBER_REVOCATION_REASON_BYTES of UTF-8 (review 70q, feeds 1), but `Node.revoke`,
`RunningNode.revoke` and `troth revoke link` still took up to MAX_REVOCATION_REASON characters
for one: the member signed and sent a request the authority was bound to refuse, and learnt it
as the authority's `request invalid` (a TrothError, exit 1), not as the bad argument it was
(ArgumentError; a usage error, exit 2). The client now refuses it before signing, naming the
limit; an identity revoking as its own authority keeps MAX_REVOCATION_REASON characters.

70v reasons 2: asking again to revoke a link already in the feed, with a reason past the
member bound (a retried request signed before the bound, or another delegator's), was refused
(`request invalid`) where it had been answered with the existing entry's number: the bound
keeps what a member makes the feed hold, and such an answer writes nothing (the entry, and its
reason, are the first request's). The bound now applies to an entry that would be written.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import troth
from tests import test_authority
from tests.conftest import NOW
from tests.support.cli import run
from tests.support.public_api import READ, acme_and_agents
from tests.test_authority import Setup
from tests.test_authority_feed import delegations
from troth import limits
from troth.credentials import RevocationEntry

setup = test_authority.setup  # the fixture, shared

BOUND = limits.MAX_MEMBER_REVOCATION_REASON_BYTES
_MEMBER = "MAX_MEMBER_REVOCATION_REASON_BYTES"
OVER = "\U0001f600" * (BOUND // 4 + 1)  # 17 characters, 68 bytes: within 256 characters


def test_node_revoke_refuses_a_member_s_long_reason_before_signing(troth_home: Path) -> None:
    """70v reasons 1: a member's `Node.revoke` with a reason of 17 four-byte characters (68
    bytes, within MAX_REVOCATION_REASON characters) is an ArgumentError naming
    MAX_MEMBER_REVOCATION_REASON_BYTES, nothing sent; one of exactly the bound is taken, and
    the link is the feed's first entry (review 70q's end-to-end test, which took the
    authority's `request invalid` for it, is this one now)."""
    with acme_and_agents() as world:
        agents = world.agents
        chain = agents.delegate(world.support, to=world.sub, attributes=READ, ttl=60, purpose="x")
        with pytest.raises(troth.ArgumentError) as refused:
            agents.revoke(chain, by=world.support, reason=OVER)
        assert "MAX_MEMBER_REVOCATION_REASON_BYTES" in str(refused.value)
        assert "68 bytes" in str(refused.value)
        widest = "\U0001f600" * (BOUND // 4)
        assert agents.revoke(chain, by=world.support, reason=widest) == 0


def test_running_node_revoke_refuses_a_member_s_long_reason(troth_home: Path) -> None:
    """70v reasons 1, inside `serve`: `RunningNode.revoke` of a member's link with the 68-byte
    reason is the same ArgumentError; nothing sent, the link revoked after is entry 0."""
    with acme_and_agents() as world:
        agents = world.agents
        chain = agents.delegate(world.support, to=world.sub, attributes=READ, ttl=60, purpose="x")

        async def main() -> int:
            async with agents.serve() as running:
                with pytest.raises(troth.ArgumentError, match=_MEMBER):
                    await running.revoke(chain, by=world.support, reason=OVER)
                return await running.revoke(chain, by=world.support, reason="done")

        assert asyncio.run(main()) == 0


def test_troth_revoke_link_refuses_a_member_s_long_reason_as_a_usage_error(
    troth_home: Path, tmp_path: Path
) -> None:
    """70v reasons 1, the CLI: `troth revoke link --reason` of BOUND + 1 ASCII characters by a
    member is a usage error (exit 2) naming the bound, not the authority's refusal (exit 1);
    nothing was sent: the same link revoked after with a short reason is entry 0."""
    with acme_and_agents() as world:
        chain = world.agents.delegate(
            world.support, to=world.sub, attributes=READ, ttl=60, purpose="x"
        )
        authority = str(world.acme.identifier)
    path = tmp_path / "sub.chain"
    path.write_bytes(chain.chain)
    args = (
        *("revoke", "link", chain.id.hex(), "--chain", str(path), "--as", "support"),
        *("--authority", authority, "--node", "agents", "--reason"),
    )
    refused = run(*args, "x" * (BOUND + 1), code=2)
    assert f"at most {BOUND} bytes" in refused.output
    assert f"revoked link {chain.id.hex()} (feed entry 0)" in run(*args, "done").output


def test_a_link_already_revoked_is_answered_whatever_the_reason(setup: Setup) -> None:
    """70v reasons 2: a member revokes a link with a short reason, then asks again (another
    request) with a reason past the member bound: the existing entry's number, nothing
    written, the entry's reason still the first one."""
    ((target, chain),) = delegations(setup, 1)
    seq = setup.revoke_link("customer", target, chain, reason="key lost")
    length = setup.feed_length()
    again = setup.revoke_link("customer", target, chain, reason=OVER, now=NOW + 1)
    assert again == seq
    assert setup.feed_length() == length
    (row,) = setup.authority.store.revocation_page(seq, 1 << 20, len)
    assert RevocationEntry.decode(row).reason == "key lost"


def test_an_authority_revoking_as_itself_keeps_the_longest_reason(troth_home: Path) -> None:
    """70v reasons 1, the exception: the hub's `Node.revoke` of a member's link as acme itself
    (the authority's own identity) takes MAX_REVOCATION_REASON four-byte characters, as the
    authority's own revocations do; the client bounds only the reason of someone else."""
    with acme_and_agents() as world:
        chain = world.agents.delegate(
            world.support, to=world.sub, attributes=READ, ttl=60, purpose="x"
        )
        wide = "\U0001f600" * limits.MAX_REVOCATION_REASON
        assert world.hub.revoke(chain, by=str(world.acme.identifier), reason=wide) == 0
