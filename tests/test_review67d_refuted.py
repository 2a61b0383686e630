"""Review 67d, refuted: attacks on the policy signing hold after a restore (reviews 66b, 66o,
66x, 66c2, 66e2, the before-stop mend 4f265e09) and on the hold a failed re-revoke places,
that did not work; each test fails if the defence it names breaks.

1. A crash between the bundle's store and the operator's word (`clear_hold`): the hold is not
   lifted before the bundle is durable (the word is written after `accept` commits), and not
   kept for good: the same push again (the bytes already active, no error) gives the word.
2. The same stolen copy put back a second time, after the operator's word ended the first
   restore's hold and the node signed above it: the second restore is another key (its
   counts are raised to the guard's at each restore found, so no later restore repeats an
   earlier one's), and the hold is on again.
3. Two connections: a handle opened before the operator's push (made by another) signs
   once the push committed (the check reads the table at each signing, no cached state),
   held until then.
4. A read-only connection (`PRAGMA query_only`): the check reads only (4f265e09: no table
   made on a check), so it refuses RESTORED, not a storage error, and passes once cleared.
5. A failed re-revoke while the authority is already held keeps what the first one lost
   beside its own (the list is never overwritten), and the earliest hold's time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.backups import node_db, restore_db
from tests.test_review66x_refuted import _sign
from tests.test_review67d_hold import restored_hub
from troth.clock import SystemClock
from troth.errors import PolicyError, PolicyFailure
from troth.gates import SqliteBundleTable
from troth.node import init_node, open_node
from troth.node.services import policy as policy_service
from troth.node.services.policy import install_bundle
from troth.node.services.policy_hold import check_may_sign


def test_1_a_crash_before_the_word_keeps_the_hold_and_the_push_again_lifts_it(
    troth_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, second = restored_hub(troth_home, tmp_path)

    def crash(*_: object) -> bool:
        raise SystemExit("killed")  # the process ends between the two transactions

    monkeypatch.setattr(policy_service, "clear_hold", crash)
    with pytest.raises(SystemExit):
        install_bundle(troth_home, "acme", second.read_bytes(), clock=SystemClock())
    monkeypatch.undo()
    with pytest.raises(PolicyError) as caught:  # the bundle stored, the word not given
        _sign(troth_home, 3)
    assert caught.value.reason is PolicyFailure.RESTORED
    again = install_bundle(troth_home, "acme", second.read_bytes(), clock=SystemClock())
    assert (again["new"], again["signing_hold_ended"]) == (False, True)
    assert _sign(troth_home, 3)


def test_2_the_same_copy_put_back_again_after_the_word_is_held_again(
    troth_home: Path, tmp_path: Path
) -> None:
    _, second = restored_hub(troth_home, tmp_path)
    install_bundle(troth_home, "acme", second.read_bytes(), clock=SystemClock())  # the word
    third = _sign(troth_home, 3)
    install_bundle(troth_home, "acme", third, clock=SystemClock())
    restore_db(node_db(troth_home, "acme"), tmp_path / "copy.db")  # the same copy again
    with pytest.raises(PolicyError) as caught:
        _sign(troth_home, 4)
    assert caught.value.reason is PolicyFailure.RESTORED


def test_3_a_handle_opened_before_anothers_push_signs_after_it(
    troth_home: Path, tmp_path: Path
) -> None:
    _, second = restored_hub(troth_home, tmp_path)
    with open_node("acme", home=troth_home) as node:
        hosted = node.hosted_authority()
        assert hosted is not None
        table = SqliteBundleTable(node.db)
        with pytest.raises(PolicyError):
            check_may_sign(table, hosted.identifier, now=NOW)
        install_bundle(troth_home, "acme", second.read_bytes(), clock=SystemClock())
        check_may_sign(table, hosted.identifier, now=NOW)


def test_4_the_check_reads_only(troth_home: Path, tmp_path: Path) -> None:
    _, second = restored_hub(troth_home, tmp_path)
    with open_node("acme", home=troth_home) as node:
        hosted = node.hosted_authority()
        assert hosted is not None
        table = SqliteBundleTable(node.db)  # the restore found (a write), then read-only
        node.db.execute("PRAGMA query_only = ON")
        with pytest.raises(PolicyError) as caught:
            check_may_sign(table, hosted.identifier, now=NOW)
        assert caught.value.reason is PolicyFailure.RESTORED
        node.db.execute("PRAGMA query_only = OFF")
    install_bundle(troth_home, "acme", second.read_bytes(), clock=SystemClock())
    with open_node("acme", home=troth_home) as node:
        hosted = node.hosted_authority()
        assert hosted is not None
        table = SqliteBundleTable(node.db)
        node.db.execute("PRAGMA query_only = ON")
        check_may_sign(table, hosted.identifier, now=NOW)
        node.db.execute("PRAGMA query_only = OFF")


def test_5_a_second_failed_re_revoke_keeps_the_firsts_list(troth_home: Path) -> None:
    init_node("acme")
    with open_node("acme") as node:
        authority = node.create_authority("acme", now=NOW)
        authority.store.hold(NOW, [("identity", b"\x01" * 32)])
        authority.store.hold(NOW + 5, [("credential", b"\x02" * 32)])
        assert authority.restore_held() == NOW
        again = authority.to_revoke_again()
        assert len(again["identities"]) == 1
        assert again["credentials"] == [(b"\x02" * 32).hex()]
