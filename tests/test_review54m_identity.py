"""Review 54m: identity fork evidence and stored histories (docs/storage.md, "Schema": the
`identity_forks` table). Each was a strict xfail until its fix."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.histories import DAY, T0, encode, extend, honest_history
from tests.test_review54i_identity import _desk, _forked, _names, _refused
from tests.test_trust_scope import NOW as T_NOW
from tests.test_trust_scope import Two, make_two
from troth import limits
from troth.channel import verify_peer
from troth.errors import ChannelError, IdentityError
from troth.identity import Identifier, VerifiedIdentity
from troth.identity.known import StoredSpan
from troth.node import Node, init_node, open_node
from troth.node.copies import feed_outranks
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


def test_a_member_keeps_no_more_than_its_share(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """Identity 1: one source's forks past MAX_FORK_RECORDS_PER_SOURCE are not kept (its first
    ones stay), while the store has room; another source's still are."""
    monkeypatch.setattr(limits, "MAX_FORK_RECORDS_PER_SOURCE", 3)
    flooder = os.urandom(32)
    first, second = (forked(node, flooder, forks=2) for _ in range(2))
    assert len(node.identities.forks(first)) == 2
    assert len(node.identities.forks(second)) == 1  # the source's third
    other = forked(node, os.urandom(32), forks=2)
    assert len(node.identities.forks(other)) == 2


def test_a_lone_victims_evidence_is_never_evicted(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Identity 1: with the store full of sources holding one record each (identities with no
    voucher, each its own source), a new one's fork is not kept: no record is evicted for it,
    so none of theirs goes. A source holding two loses one for a newcomer's first."""
    monkeypatch.setattr(limits, "MAX_FORK_RECORDS", 3)
    lone = [forked(node) for _ in range(3)]
    late = forked(node)
    assert node.identities.forks(late) == []
    assert all(len(node.identities.forks(v)) == 1 for v in lone)
    monkeypatch.setattr(limits, "MAX_FORK_RECORDS", 5)
    two = forked(node, forks=2)
    assert len(node.identities.forks(two)) == 2
    again = forked(node)
    assert len(node.identities.forks(again)) == 1
    assert len(node.identities.forks(two)) == 1
    assert all(len(node.identities.forks(v)) == 1 for v in lone)
    assert node.identities.forks(forked(node)) == []  # every source holds one now
    assert sum(len(node.identities.forks(v)) for v in [*lone, two, again]) == 5


def test_a_floods_newest_record_goes_first(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """Identity 1: the record evicted for another source's fork is the flooding source's
    newest: its first ones stay (later input never erases earlier evidence of the same
    source)."""
    monkeypatch.setattr(limits, "MAX_FORK_RECORDS", 4)
    flooder = os.urandom(32)
    first = forked(node, flooder, forks=2)
    last = forked(node, flooder, forks=2)
    victim = forked(node, os.urandom(32))
    assert len(node.identities.forks(first)) == 2
    assert len(node.identities.forks(last)) == 1
    assert len(node.identities.forks(victim)) == 1


def _imported_fork(name: str) -> tuple[Two, VerifiedIdentity, VerifiedIdentity]:
    """Node `name` stores a thief's fork of alice's change 0 (`troth identity import`: no
    authority vouched for it there): alice, her real rotation, the fork."""
    two = make_two()
    real, fork = _forked(two)
    init_node(name)
    with open_node(name) as node:
        node.identities.import_history(fork.history, now=T_NOW)
    return two, real, fork


def test_her_only_authoritys_feed_outranks_an_imported_fork(troth_home: Path) -> None:
    """Identity 2: a fork stored where no authority vouched for it (an import, a pinned peer's
    first handshake) refused alice for good after acme, the one authority desk trusts, named
    her real rotation in its feed (54i's rule needs an authority that vouched for her here).
    Now the word of every authority desk trusts, each the root of a chain she shows and naming
    her change, outranks such a copy; kept as fork evidence."""
    two, real, fork = _imported_fork("desk")
    with open_node("desk") as node:
        desk, trust = _desk(node, two, two.acme)
        chain = two.chain(two.acme)
        assert "history forks from the stored copy" in _refused(trust, real, chain)
        _names(node, desk, two.acme, real)
        assert verify_peer(trust, real, (chain,), T_NOW).identifier == real.identifier
        assert node.identities.store.get_history(real.identifier.digest) == (real.history, 2)
        kept = {(k.index, k.change_hash) for k in node.identities.forks(real.identifier)}
        assert (1, fork.current_change_hash) in kept
        assert "history forks from the stored copy" in _refused(trust, fork, chain)
        # the judges are the trusted authorities, but for one of their own histories: none
        span = StoredSpan(0, tuple(c.change_hash for c in fork.changes))
        roots = {two.acme.identifier, real.identifier}
        judged = feed_outranks(real, roots, frozenset(), desk.feeds, {two.acme.identifier})
        assert judged(span)
        assert not feed_outranks(real, roots, frozenset(), desk.feeds, roots)(span)


def test_one_of_two_trusted_authorities_does_not_outrank_an_imported_fork(
    troth_home: Path,
) -> None:
    """Identity 2's limit: desk trusts acme and globex; with no voucher, every authority it
    trusts judges, so acme's word alone (globex silent) replaces nothing, whichever chains she
    shows; both naming her change do."""
    two, real, _ = _imported_fork("desk")
    with open_node("desk") as node:
        desk, trust = _desk(node, two, two.acme, two.globex)
        both = (two.chain(two.acme), two.chain(two.globex))
        _names(node, desk, two.acme, real)
        with pytest.raises(ChannelError, match="history forks from the stored copy"):
            verify_peer(trust, real, both, T_NOW)
        _names(node, desk, two.globex, real)
        assert verify_peer(trust, real, both, T_NOW).identifier == real.identifier
        assert node.identities.store.get_history(real.identifier.digest) == (real.history, 2)


def test_a_swept_voucher_leaves_her_copy_to_no_co_trusted_authority(troth_home: Path) -> None:
    """Identity 2's limit, 54i's guarantee kept: desk stored alice's rotation with acme's
    chain, and acme's row lapsed and was swept (no voucher left): globex's feed naming the
    thief's fork, shown with globex's chain (or with both, acme silent), replaces nothing."""
    two = make_two()
    real, fork = _forked(two)
    init_node("desk")
    with open_node("desk") as node:
        desk, trust = _desk(node, two, two.acme, two.globex)
        verify_peer(trust, real, (two.chain(two.acme),), T_NOW)
        assert desk.vouchers.of(real.identifier) == {two.acme.identifier}
        with node.db.transaction():
            node.db.execute("DELETE FROM vouchers WHERE identifier = ?", (real.identifier.digest,))
    with open_node("desk") as node:
        desk, trust = _desk(node, two, two.acme, two.globex)
        assert not desk.vouchers.of(real.identifier)
        _names(node, desk, two.globex, fork)
        for shown in ((two.chain(two.globex),), (two.chain(two.acme), two.chain(two.globex))):
            with pytest.raises(ChannelError, match="history forks from the stored copy"):
                verify_peer(trust, fork, shown, T_NOW)
        assert node.identities.store.get_history(real.identifier.digest) == (real.history, 2)
