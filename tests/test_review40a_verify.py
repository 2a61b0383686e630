"""Review 40a, verify: review 38d's judgement of a bare history by the held feeds (verify 1-2)
lived in the CLI (`troth.cli.identity_cmds._check_current`), against the project rule that a
command is one library call: a library caller importing a history at a node (`node.identities.
import_history`, what the command called) stored the stolen backup a held feed supersedes.

Review 40a, verify 1: moved into the library (`troth.node.verify.verify_bare_history`,
`import_bare_history`, `check_not_superseded`); the commands call them. The public `troth` API
has no bare-history import or verify (its `Verifier` verifies chains, judged by the feed).
These pin the library calls on review 38d's world.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.test_review38d_verify import _desk_holding_acmes_word
from troth.errors import CredentialError, CredentialFailure
from troth.node import open_node
from troth.node.verify import import_bare_history, verify_bare_history


def test_the_library_import_refuses_a_history_a_held_feed_supersedes(troth_home: Path) -> None:
    stale, real = _desk_holding_acmes_word(troth_home)
    now = int(time.time())
    with open_node("desk") as desk:
        with pytest.raises(CredentialError) as refused:
            import_bare_history(desk, stale.read_bytes(), now=now)
        assert refused.value.reason is CredentialFailure.SUPERSEDED
        assert desk.identities.stored_changes(real.identifier) is None
        assert import_bare_history(desk, real.history, now=now).current.index == 1
        assert desk.identities.stored_changes(real.identifier) == 2


def test_the_library_verify_refuses_a_history_a_held_feed_supersedes(troth_home: Path) -> None:
    stale, real = _desk_holding_acmes_word(troth_home)
    now = int(time.time())
    with open_node("desk") as desk:
        with pytest.raises(CredentialError) as refused:
            verify_bare_history(desk, stale.read_bytes(), now=now)
        assert refused.value.reason is CredentialFailure.SUPERSEDED
        assert "the authority knows change 1" in str(refused.value)
        assert verify_bare_history(desk, real.history, now=now).identifier == real.identifier
