"""Review 38d, verify: a stolen backup's history shown to `troth identity verify --node` and
`troth identity import` at a node that never stored the identity but holds the feed of its
authority, which says the owner rotated (a supersession: docs/formats.md, "Revocation feed").

Alice, a member of acme, rotates (say her current key leaked) and announces it: acme's feed
names her change 1. Desk trusts acme and holds that feed, but has not stored alice's history.
A thief holding the stale backup (her history ending at change 0, whose key it holds) shows it
to desk's operator.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.feeds import pages, superseded
from tests.support.parties import Party, make_party
from troth.identity import VerifiedIdentity, rotate_identity
from troth.node import init_node, open_node
from troth.vault import SoftwareVault


def _rotated(vault: SoftwareVault, alice: Party, now: int) -> VerifiedIdentity:
    return rotate_identity(
        vault, alice.identity, alice.primary, alice.next_primary, now=now, valid_for=86_400
    ).identity


def _desk_holding_acmes_word(troth_home: Path) -> tuple[Path, VerifiedIdentity]:
    """Desk trusts acme and holds its feed superseding alice's change 0; the stale backup of
    alice's history is written to a file (returned with her real history)."""
    now = int(time.time())
    vault = SoftwareVault()
    acme, alice = make_party(vault, now=now - 100), make_party(vault, now=now - 100)
    real = _rotated(vault, alice, now - 50)
    entry = superseded(
        0, alice.identifier, acme.identifier, 2, real.current_change_hash, at=now - 40
    )
    (page,) = pages(acme, [entry], now=now - 30, per_page=1)
    init_node("desk")
    with open_node("desk") as desk:
        desk.wallet.trust(acme.identifier, f"node:{acme.identifier}", now=now)
        desk.wallet.update_feed(page, authority=acme.identifier, now=now)
        assert desk.identities.stored_changes(alice.identifier) is None
    stale = troth_home / "alice-backup.history"
    stale.write_bytes(alice.identity.history)
    return stale, real


def test_verify_at_a_node_refuses_a_history_its_feed_supersedes(troth_home: Path) -> None:
    """Review 38d, verify 1. `troth identity verify --node desk` said the stolen backup's
    history was `valid`, its current key the one the owner retired: desk judged it against its
    stored copies only, and holds none of alice; the feed it holds, acme's word that her
    history has a change 1, was not asked. An operator checking a history before trusting it
    (or importing it) was told the thief's key speaks for alice.

    Was a strict xfail until `identity verify --node` (and `import`) judged the history by the
    held feeds as a stranger's is judged (every held feed; a trusted authority's own history by
    its own feed): `superseded history`, exit 1."""
    stale, real = _desk_holding_acmes_word(troth_home)
    result = run("identity", "verify", str(stale), "--node", "desk", "--json", code=1)
    verdict = json.loads(result.stdout)
    assert verdict["valid"] is False
    assert verdict["reason"] == "superseded history"
    assert "the authority knows change 1" in verdict["detail"]
    # her real history verifies there
    path = troth_home / "alice.history"
    path.write_bytes(real.history)
    assert json.loads(run("identity", "verify", str(path), "--node", "desk", "--json").stdout)[
        "valid"
    ]


def test_import_at_a_node_refuses_a_history_its_feed_supersedes(troth_home: Path) -> None:
    """Review 38d, verify 2. `troth identity import` stored the stolen backup's history at desk
    (and printed it as alice's, its current key the retired one), though desk holds acme's word
    that it is superseded. Was a strict xfail until import judged it by the held feeds as
    `verify --node` does (verify 1): refused, nothing stored."""
    stale, real = _desk_holding_acmes_word(troth_home)
    run("identity", "import", str(stale), "--node", "desk", code=1)
    with open_node("desk") as desk:
        assert desk.identities.stored_changes(real.identifier) is None
    path = troth_home / "alice.history"
    path.write_bytes(real.history)
    run("identity", "import", str(path), "--node", "desk")
    with open_node("desk") as desk:
        assert desk.identities.stored_changes(real.identifier) == 2


@pytest.mark.parametrize("command", ["verify", "import"])
def test_without_a_feed_the_stale_backup_is_still_a_valid_history(
    troth_home: Path, command: str
) -> None:
    """The control: a node holding no feed that speaks of alice has no word against her
    backup (a stateless verifier accepts it: docs/formats.md, "Pre-rotation and stored
    histories")."""
    now = int(time.time())
    alice = make_party(SoftwareVault(), now=now - 100)
    init_node("desk")
    stale = troth_home / "alice-backup.history"
    stale.write_bytes(alice.identity.history)
    run("identity", command, str(stale), "--node", "desk")


def test_verify_at_a_node_refuses_a_fork_its_feed_supersedes(troth_home: Path) -> None:
    """The same for a fork: a thief holding the whole backup (k0 and the committed k1) rotates
    alice's c0 to a change 1 of its own; desk, holding acme's word on her real change 1, calls
    it superseded (another change), where it stores no copy of hers (verify 1's fix)."""
    now = int(time.time())
    vault = SoftwareVault()
    acme, alice = make_party(vault, now=now - 100), make_party(vault, now=now - 100)
    real = _rotated(vault, alice, now - 50)
    fork = _rotated(vault, alice, now - 45)  # the same keys, another next-key commitment
    assert fork.current_change_hash != real.current_change_hash
    entry = superseded(
        0, alice.identifier, acme.identifier, 2, real.current_change_hash, at=now - 40
    )
    (page,) = pages(acme, [entry], now=now - 30, per_page=1)
    init_node("desk")
    with open_node("desk") as desk:
        desk.wallet.trust(acme.identifier, f"node:{acme.identifier}", now=now)
        desk.wallet.update_feed(page, authority=acme.identifier, now=now)
    path = troth_home / "fork.history"
    path.write_bytes(fork.history)
    verdict = json.loads(
        run("identity", "verify", str(path), "--node", "desk", "--json", code=1).stdout
    )
    assert verdict["reason"] == "superseded history"
    assert "another change" in verdict["detail"]
