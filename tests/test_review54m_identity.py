"""Review 54m: identity fork evidence and stored histories (docs/storage.md, "Schema": the
`identity_forks` table). Each was a strict xfail until its fix."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.histories import DAY, T0, encode, extend, honest_history
from troth import limits
from troth.errors import IdentityError
from troth.identity import Identifier
from troth.node import Node, init_node, open_node
from troth.storage.sqlite_vouchers import SqliteVoucherStore

NOW = T0 + 3 * DAY
ACME = b"\x0a" * 32


@pytest.fixture
def node(troth_home: Path) -> Iterator[Node]:
    init_node("n")
    with open_node("n") as node:
        yield node


def forked(node: Node, member: bytes | None = None, forks: int = 1) -> Identifier:
    """A new identity whose history `node` stores and `forks` forks of it refused there (each
    kept as evidence when the store keeps it); `member`: the member at the root of the chain
    the node verified for it (a voucher row, as a handshake records: a delegate's member)."""
    base = honest_history(1)
    real, *forged = [extend(base, T0 + DAY + n) for n in range(forks + 1)]
    identity = node.identities.import_history(encode(real.changes), now=NOW)
    if member is not None:
        SqliteVoucherStore(node.db).vouch(identity.identifier.digest, ACME, NOW + DAY, member)
    for fork in forged:
        with pytest.raises(IdentityError):
            node.identities.import_history(encode(fork.changes), now=NOW)
    return identity.identifier


@pytest.mark.xfail(strict=True, reason="review 54m, identity 1: one member's forks crowd out")
def test_one_members_delegates_forks_do_not_crowd_out_anothers(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Identity 1: a member mints delegates for free (MAX_VOUCHED_PER_MEMBER of them), has
    each admitted and shows MAX_FORKS_PER_IDENTITY forks of each: MAX_FORK_RECORDS (1,024)
    filled, and no later fork of anyone else (not a local identity) was kept or reported: the
    evidence that another member's keys leaked was lost to one member's flood. The records are
    now shared per source (the member at the root of the chains the node verified for the
    identity, else the identity itself): a full store evicts a record of the source holding the
    most, so the victim's fork is kept."""
    monkeypatch.setattr(limits, "MAX_FORK_RECORDS", 8)
    flooder = os.urandom(32)
    for _ in range(2):
        forked(node, flooder, forks=limits.MAX_FORKS_PER_IDENTITY)
    victim = forked(node, os.urandom(32))
    (kept,) = node.identities.forks(victim)
    assert kept.index == 1
