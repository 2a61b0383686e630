"""Review 58g: attacks on this session's merges that did not work (each a real attempt that
fails if the defence breaks): the checked restore release, the authority service's request
budgets."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_attacks_review2 import throwaway_delegate
from tests.test_review57i_restore import _refused
from tests.test_review58b_release import _release, _remote_acme, restored_member
from tests.test_review58e_budgets import LIMITED
from troth.authority.client import revoke_request, rotated_request
from troth.cli.main import cli
from troth.credentials import CredentialChain
from troth.errors import RemoteError
from troth.limits import ENROLL_REQUESTS_BURST
from troth.node import open_node
from troth.node.runtime import NodeRuntime
from troth.node.services import call, service_address


async def ask_as(net: MemNet, runtime: NodeRuntime, name: str, method: str, body: bytes) -> Any:
    """`method` of the hub's authority service, asked as `runtime`'s local identity `name`."""
    authority = net.authority.identifier
    end = await runtime.channel_to(
        route(HUB), also_trust=frozenset({authority}), expect=authority, identity=name
    )
    return await call(runtime.router, (end.enc, service_address("authority")), method, body)


def test_a_delegate_spending_revoke_and_rotated_requests_leaves_its_member_revoking_it(
    tmp_path: Path,
) -> None:
    """m's agent, seeing its revocation coming, sends revoke and rotated requests past the
    burst (its own and its member's delegates' account); m still revokes the agent's link and
    announces its own history."""

    async def test(net: MemNet) -> None:
        m = await net.member("m")
        throwaway_delegate(m, "agent", {"agents.team": "support"})
        authority, ids = net.authority.identifier, m.node.identities
        chain = m.node.wallet.best("agent", now=net.clock.now())
        link = CredentialChain.decode(chain).credentials[-1].hash
        for attempt in range(ENROLL_REQUESTS_BURST + 2):
            now = net.clock.now()
            for method, body in (
                ("rotated", rotated_request(ids, "agent", authority, now=now)),
                (
                    "revoke",
                    revoke_request(
                        ids,
                        "agent",
                        authority,
                        credential_hash=link,
                        chain=chain,
                        reason="",
                        now=now,
                    ),
                ),
            ):
                with pytest.raises(RemoteError) as refused:
                    await ask_as(net, m, "agent", method, body)
                if attempt > ENROLL_REQUESTS_BURST:
                    assert LIMITED in str(refused.value)
        now = net.clock.now()
        revoking = revoke_request(
            ids, "m", authority, credential_hash=link, chain=chain, reason="agent gone", now=now
        )
        assert isinstance(await ask_as(net, m, "m", "revoke", revoking), int)
        await ask_as(net, m, "m", "rotated", rotated_request(ids, "m", authority, now=now))

    run_memnet(test, tmp_path / "home", budget=60)


@pytest.mark.parametrize(
    "env",
    [
        {"TROTH_VOUCH_NOT_ROTATED": "1"},
        {"TROTH_IDENTITY_RELEASE_RESTORED_VOUCH": "1"},
        {"TROTH_IDENTITY_RELEASE_RESTORED_VOUCH_NOT_ROTATED": "true"},
    ],
)
def test_the_vouch_is_not_reached_by_the_environment(
    troth_home: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    """No environment variable stands for `--vouch-not-rotated`: acme away, refused."""
    restored_member(troth_home, tmp_path)
    _remote_acme(held_at=int(time.time()) + 100)
    args = ["identity", "release-restored", "agent", "--node", "agent", "--json"]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 1, result.output
    with open_node("agent") as agent:
        _refused(lambda: agent.identities.signer("agent", now=int(time.time())))


def test_a_page_dated_ahead_accepted_before_the_hold_is_dated_when_accepted(
    troth_home: Path, tmp_path: Path
) -> None:
    """acme's clock 250 s ahead: a page it signed before the hold, dated after it, accepted by
    agent before the hold, counts as issued when accepted: no evidence."""
    now = restored_member(troth_home, tmp_path)
    with open_node("acme") as acme, open_node("agent") as agent:
        authority = acme.authority().identifier
        page = acme.authority().feed(now=now + 250, since=agent.wallet.feed_since(authority))
        agent.wallet.update_feed(page, authority=authority, now=now)
    _remote_acme(held_at=now + 100)
    refused = _release("agent", code=1)["message"]
    assert f"issued at {now}, before the hold" in refused
