"""Review 54t, identity 1: an identity's fork evidence counts against its source, the
member at the root of the newest chain the node verified for it (review 54m, identity 1), and
a chain of a later expiry replaces that member (`vouchers`: docs/storage.md, "Vouchers"). A
thief holding the victim's keys, with a member who delegates to the victim's identifier (a
credential needs no consent of its subject) and whose own delegates' forks fill
MAX_FORK_RECORDS_PER_SOURCE (free: she holds their keys), shows that chain at a handshake as
the victim: the victim's row now names that member, and the thief's fork is refused with no
evidence kept, the store far from full. Was a strict xfail until review 54x: the source is
now the member of the identity's first voucher row (`voucher_sources`, written once), which a
later chain does not move (tests/test_review54x_identity.py)."""

from __future__ import annotations

import os

import pytest

from tests.support.histories import DAY, T0, encode, extend, honest_history
from tests.test_review54m_identity import ACME, NOW, forked, node  # noqa: F401 - fixture
from troth import limits
from troth.errors import IdentityError
from troth.node import Node
from troth.storage.sqlite_vouchers import SqliteVoucherStore


def test_a_thief_cannot_move_a_victims_forks_to_a_full_source(
    node: Node,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "MAX_FORK_RECORDS_PER_SOURCE", 4)
    mallory, alice = os.urandom(32), os.urandom(32)
    forked(node, mallory, forks=2)
    forked(node, mallory, forks=2)  # her share, filled with her own delegates' forks
    base = honest_history(1)
    real = extend(base, T0 + DAY)
    victim = node.identities.import_history(encode(real.changes), now=NOW).identifier
    vouchers = SqliteVoucherStore(node.db)
    vouchers.vouch(victim.digest, ACME, NOW + DAY, alice)  # alice's delegate
    # the thief, as the victim, shows mallory's delegation, expiring later than alice's
    vouchers.vouch(victim.digest, ACME, NOW + 2 * DAY, mallory)
    thiefs = extend(base, T0 + 2 * DAY)  # a rotation with the victim's committed key
    with pytest.raises(IdentityError):
        node.identities.import_history(encode(thiefs.changes), now=NOW)
    assert node.identities.forks(victim)  # the evidence of the victim's leaked keys
