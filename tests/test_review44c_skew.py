"""Review 44c, skew: `troth credential verify` decided in the CLI whether only the clock-skew
allowance made a chain valid (`within_skew`, in its --json), where the VC verifier decides it
in the library (`VerifiedVC.within_skew`): the Python API had no way to ask. The verified
chain answers it now (`VerifiedCredential.within_skew(now)`), the CLI only prints it.
"""

from __future__ import annotations

import inspect

from tests.test_credentials_verify import SKEW, T, World, world  # noqa: F401 (the fixture)
from troth.cli import credential_cmds


def test_the_verified_chain_says_whether_only_the_skew_made_it_valid(world: World) -> None:  # noqa: F811
    expires = T + 3600  # the root's window: T .. T + 3600
    world.feed_at(expires + SKEW - 1)
    late = world.verify(world.root, world.alice, now=expires + SKEW - 1)
    world.feed_at(T + 10)
    inside = world.verify(world.root, world.alice, now=T + 10)
    assert late.within_skew(expires + SKEW - 1)
    assert not inside.within_skew(T + 10)
    assert inside.within_skew(T - 1)
    assert "within_skew = now" not in inspect.getsource(credential_cmds)
