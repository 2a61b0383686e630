"""Review 54i: identity change histories as peers see them (layer 1). Each test is an attack
that worked before its fix (docs/formats.md, "Pre-rotation and stored histories")."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from tests.support.feeds import pages, superseded
from tests.support.parties import make_party
from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import IdentityError, IdentityFailure
from troth.identity import rotate_identity, verify_history
from troth.node import init_node, open_node
from troth.trace.export import export_jsonl
from troth.vault import SoftwareVault


def _export_after_rotation(tmp_path: Path) -> tuple[Held, bytes, Path]:
    """An agent's record at change 0, a rotation, a record at change 1, in a log: the agent,
    its history before the rotation (a stolen backup's), the log's JSONL export."""
    agent = Held()
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    recorder(log, agent, clock).record(tool_call())
    before = agent.identity.history
    agent.rotate(NOW + 100)
    clock.advance(200)
    recorder(log, agent, clock).record(tool_call())
    out = io.StringIO()
    export_jsonl(log, out)
    log.close()
    export = tmp_path / "export.jsonl"
    export.write_text(out.getvalue())
    return agent, before, export


def test_a_rotation_a_trace_verification_saw_refuses_the_stale_backup_after(
    tmp_path: Path, troth_home: Path
) -> None:
    """Identity 1: `troth trace verify --file EXPORT --node N` verified the agent's rotation
    (the export's newest history, extending N's stored copy) and stored nothing
    (`check_no_fork`), so N imported (and admitted at a handshake) the stale backup, the
    retired key, right after: the promise of review 50g (verify 1) for `troth identity verify
    --node`, which stores a verified extension of a stored copy."""
    agent, before, export = _export_after_rotation(tmp_path)
    backup = tmp_path / "backup.history"
    backup.write_bytes(before)
    init_node("verifier")
    run("identity", "import", str(backup), "--node", "verifier")  # the node knows change 0
    answer = run_json("trace", "verify", "--file", str(export), "--node", "verifier")
    assert answer["verified"] is True
    with open_node("verifier") as node:
        assert node.identities.stored_changes(agent.identifier) == 2
        with pytest.raises(IdentityError) as caught:
            node.identities.observe(verify_history(before, now=NOW + 300))
        assert caught.value.reason is IdentityFailure.ROLLBACK


@pytest.mark.xfail(
    strict=True,
    reason="review 54i, identity 2 (not fixed): a stored fork outranks the owner's authority's "
    "feed at a node; both histories are refused there for good",
)
def test_the_owners_authoritys_feed_outranks_a_fork_the_node_stored_first(
    troth_home: Path,
) -> None:
    """Identity 2 (open): a thief holding alice's whole backup rotates her change 0 its own
    way, and desk stores that fork first (`troth identity import` here; by the code, a
    handshake of the thief with her stolen acme credential too, and her own handshake is then
    refused the same way: `_known_by` judges a stored full copy as binding). Acme, her
    authority, then names her real change 1 in its feed and desk holds it: desk refuses the
    fork (`superseded history`) and her real history (`history forks from the stored copy`),
    for good. A stateless verifier's memory lets the root's feed outrank a fork it saw first
    (review 40a, memory 3 and 4: docs/formats.md, "Pre-rotation and stored histories"); a
    node's store does not: the thief locks her out of every node that saw its fork first,
    whatever her authority says. A fix must give that word only to an authority with
    standing over her (a co-trusted authority's feed must not wipe another's member's copy:
    review 41a, memory 1)."""
    now = int(time.time())
    vault = SoftwareVault()
    acme, alice = make_party(vault, now=now - 100), make_party(vault, now=now - 100)
    real = rotate_identity(
        vault, alice.identity, alice.primary, alice.next_primary, now=now - 50, valid_for=86_400
    ).identity
    fork = rotate_identity(  # the same keys (the backup's), another next-key commitment
        vault, alice.identity, alice.primary, alice.next_primary, now=now - 45, valid_for=86_400
    ).identity
    init_node("desk")
    forked, mine = troth_home / "fork.history", troth_home / "real.history"
    forked.write_bytes(fork.history)
    mine.write_bytes(real.history)
    run("identity", "import", str(forked), "--node", "desk")
    entry = superseded(
        0, alice.identifier, acme.identifier, 2, real.current_change_hash, at=now - 40
    )
    (page,) = pages(acme, [entry], now=now - 30, per_page=1)
    with open_node("desk") as desk:
        desk.wallet.trust(acme.identifier, f"node:{acme.identifier}", now=now)
        desk.wallet.update_feed(page, authority=acme.identifier, now=now)
    run("identity", "verify", str(forked), "--node", "desk", code=1)  # superseded
    run("identity", "import", str(mine), "--node", "desk")  # refused: a fork of the copy
