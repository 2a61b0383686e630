"""Review 47d, the secrets broker's `secret_lease_accounts` table.

1. The (identity, account) rows were never pruned. `insert_lease` files one row per chain: the
   accounts an identity's leases are counted under, which every query of an identity's leases
   reads (`leases_of`, `leases_in(identity=...)`: one index range per account and state). Ended
   leases are forgotten 30 days after they ended (review 45b) and their chains with them
   (review 46d), but the rows stayed: a member delegating to its agent from fresh members'
   chains, or minting fresh delegates (free, offline) that each lease once, grew the table
   by one row per pair for good, and an identity leasing under many accounts made each later
   query of its leases read one more range per account ever used. `LeaseBook.prune` now
   deletes the rows no lease (open or ended) is filed under, in a pass that starts with the
   chains' (in a round that forgot leases) and takes turns with it (one scan of the leases a
   round: a scan serving both cost ~1.6x the chains' alone); a row of a live lease stays
   (its identity's leases are still found, by its own queries and by a feed revoking it),
   and a row deleted under a store that remembers its chain as stored is filed again at
   that chain's next lease (the deletion moves the chains' epoch on).

2. The other tables, checked for the same growth: `secret_signing_keys` kept every token key
   a rotation retired, row and vault key, for good, though a retired key is published (and
   what it signed validates) only `limits.MAX_LEASE_TTL` after its retirement; each routine
   rotation added one more, read at every JWKS refresh. `Broker.prune` now forgets the keys
   retired more than `MAX_LEASE_TTL` + `RETIRED_KEY_GRACE` ago, row and vault key; the
   current key never. (`secret_lease_members`' standing rows, one per (authority, actor)
   kept on purpose by review 46d, and the append-only `secret_audit` are left as they are:
   see the review's report.)

The first three tests of 1 and the test of 2 were strict xfails until their fixes; the
fourth of 1 guards its rounds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.leases import ATTRS, CHAIN_TTL, RemoteStub, make_world, open_broker
from tests.support.parties import Party, make_party
from tests.test_review46d_secrets import LATER, _count
from troth import limits
from troth.credentials import CredentialChain, VerifiedCredential, delegate, issue_credential
from troth.errors import KeyNotFound, SecretError
from troth.secrets import AllowListPolicy, LeaseState, book
from troth.secrets.book import ENDED_LEASE_RETENTION, MAX_PRUNED_LEASES
from troth.secrets.broker import Broker
from troth.secrets.keys import RETIRED_KEY_GRACE
from troth.storage import SqliteIdentityStore
from troth.vault import KeyHandle


def _delegated(world: Any, member: Party, agent: Party) -> VerifiedCredential:
    """`agent`'s chain from `member` (credentialed by the world's authority): its account is
    `member`, its identity `agent`."""
    issued = issue_credential(
        world.authority.signer,
        subject=member.identifier,
        attributes=ATTRS,
        now=NOW,
        ttl=CHAIN_TTL,
        depth=1,
    )
    chain = delegate(
        member.signer,
        CredentialChain((issued,), (world.authority.identity.history,)),
        subject=agent.identifier,
        attributes=ATTRS,
        now=NOW,
        ttl=CHAIN_TTL,
        purpose="lease",
    )
    return world.verifier.verify(  # type: ignore[no-any-return]
        chain.encode(), presenter=agent.identifier, feeds=world.feeds(), now=NOW
    )


def _broker(tmp_path: Path, world: Any, allowed: list[Party], *, quota: int = 100) -> Broker:
    policy = AllowListPolicy({p.identifier: {"s": None} for p in [world.agent_b, *allowed]})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy, quota=quota)
    engine = RemoteStub()
    broker.engines[engine.kind] = engine
    broker.put_secret("s", engine.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)
    return broker


def _accounts_of(broker: Broker, identity: Party) -> set[bytes]:
    rows = broker.store.db.fetch_all(
        "SELECT account FROM secret_lease_accounts WHERE identity = ?",
        (identity.identifier.digest,),
    )
    return {bytes(row[0]) for row in rows}


def _parties(world: Any, n: int) -> list[Party]:
    return [make_party(world.vault, now=NOW) for _ in range(n)]


def test_the_accounts_of_forgotten_leases_are_forgotten(tmp_path: Path) -> None:
    """1: agent b leases under the chains of 8 fresh members (8 accounts), and 8 fresh
    delegates of a member lease once each (8 identities); every lease ends and is pruned.
    Their (identity, account) rows go with them (they stayed, 16 rows, for good); agent b's
    next query of its leases reads no account it no longer uses."""
    world = make_world(NOW)
    members, delegates = _parties(world, 8), _parties(world, 8)
    broker = _broker(tmp_path, world, delegates)
    owner = members[0]
    for credential in [_delegated(world, m, world.agent_b) for m in members] + [
        _delegated(world, owner, d) for d in delegates
    ]:
        issued = broker.issue(credential, "s", now=NOW)
        broker.revoke(credential, issued.lease_id, now=NOW)
    assert _count(broker, "secret_lease_accounts") == 16
    assert [broker.prune(LATER + round_) for round_ in range(2)] == [16, 0]  # chains, rows
    assert _count(broker, "secret_leases") == 0
    assert _count(broker, "secret_lease_accounts") == 0
    assert _accounts_of(broker, world.agent_b) == set()
    assert broker.leases(world.agent_b.identifier, include_ended=True) == []


def test_an_identity_with_a_live_or_retained_lease_keeps_its_accounts(tmp_path: Path) -> None:
    """1: agent b holds a live lease under member 0's chain, an ended lease still retained
    under member 1's, and ended leases past retention under members 2-5. A prune keeps the
    rows of the first two accounts only; its own listing still shows both leases, the quota
    of the live lease's account still counts it (quota 1: a second lease is refused), and a
    feed revoking agent b still ends its live lease (`leases_in(identity=...)`, through the
    rows kept)."""
    world = make_world(NOW)
    members = _parties(world, 6)
    broker = _broker(tmp_path, world, [], quota=1)
    for member in members[2:]:
        credential = _delegated(world, member, world.agent_b)
        issued = broker.issue(credential, "s", now=NOW)
        broker.revoke(credential, issued.lease_id, now=NOW)
    retained_credential = _delegated(world, members[1], world.agent_b)
    retained = broker.issue(retained_credential, "s", now=NOW + 100)
    broker.revoke(retained_credential, retained.lease_id, now=NOW + 100)
    live_credential = _delegated(world, members[0], world.agent_b)
    live = broker.issue(live_credential, "s", now=NOW)
    assert len(_accounts_of(broker, world.agent_b)) == 6
    for round_ in range(3):
        broker.prune(LATER + round_)
    assert _accounts_of(broker, world.agent_b) == {
        members[0].identifier.digest,
        members[1].identifier.digest,
    }
    listed = broker.leases(world.agent_b.identifier, include_ended=True)
    assert {lease.handle for lease in listed} == {live.lease.handle, retained.lease.handle}
    with pytest.raises(SecretError, match="1 open leases under member"):
        broker.issue(live_credential, "s", now=NOW + 1)
    feed = world.feed_revoking([(2, world.agent_b.identifier.digest)], now=NOW + 2)
    ended = broker.revoke_for_feed(feed, now=NOW + 2)
    assert [lease.handle for lease in ended] == [live.lease.handle]
    assert broker.store.get_lease(live.lease.handle).state is LeaseState.REVOKED  # type: ignore[union-attr]


def test_an_account_row_pruned_under_a_remembered_chain_is_filed_again(tmp_path: Path) -> None:
    """1: broker 1 remembers agent b's chain as stored (it skips writing the chain and its
    row again). Another broker on the database forgets b's ended lease and b's account row
    while the chain is still stored (its pass over the chains has not reached it). Broker 1's
    next lease under that chain files the row again: b's listing and a feed revoking b find
    that lease."""
    world = make_world(NOW)
    broker = _broker(tmp_path, world, [])
    credential = world.member_credential(world.agent_b)
    issued = broker.issue(credential, "s", now=NOW)
    broker.revoke(credential, issued.lease_id, now=NOW)
    _db2, other = open_broker(tmp_path / "node.db", now=NOW, policy=None)
    store = other.store
    with store.transaction():  # a round whose chain pass is elsewhere: the leases, the rows
        assert store.prune_ended(LATER - ENDED_LEASE_RETENTION, limit=MAX_PRUNED_LEASES) == 1
        store.prune_accounts(None, limit=100)
    assert (_count(broker, "secret_lease_chains"), _count(broker, "secret_leases")) == (1, 0)
    assert _count(broker, "secret_lease_accounts") == 0
    again = broker.issue(credential, "s", now=NOW + 1)
    assert _accounts_of(broker, world.agent_b) == {world.agent_b.identifier.digest}
    assert [lease.handle for lease in broker.leases(credential)] == [again.lease.handle]
    feed = world.feed_revoking([(2, world.agent_b.identifier.digest)], now=NOW + 2)
    ended = broker.revoke_for_feed(feed, now=NOW + 2)
    assert [lease.handle for lease in ended] == [again.lease.handle]
    other.close()
    broker.close()


def test_the_pass_over_the_account_rows_goes_on_across_rounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1: a round reads at most `MAX_PRUNE_ACCOUNTS_READ` rows (3 here), and the passes over
    the chains and the rows take turns (one scan of the leases a round): the rows of 8
    forgotten delegates go within the next rounds, which forget no lease, and the passes then
    stop (no scan of the leases in a round with nothing to do)."""
    monkeypatch.setattr(book, "MAX_PRUNE_ACCOUNTS_READ", 3)
    world = make_world(NOW)
    delegates = _parties(world, 8)
    broker = _broker(tmp_path, world, delegates)
    for agent in delegates:
        credential = _delegated(world, world.agent_b, agent)
        issued = broker.issue(credential, "s", now=NOW)
        broker.revoke(credential, issued.lease_id, now=NOW)
    store = broker.store
    calls: list[str] = []
    for name in ("prune_chains", "prune_accounts"):
        method = getattr(store, name)

        def counted(*args: Any, _name: str = name, _method: Any = method, **kwargs: Any) -> Any:
            calls.append(_name)
            return _method(*args, **kwargs)

        monkeypatch.setattr(store, name, counted)
    rows = []
    for round_ in range(6):
        assert broker.prune(LATER + round_) == (8 if round_ == 0 else 0)
        rows.append(_count(broker, "secret_lease_accounts"))
    assert rows == [8, 5, 2, 0, 0, 0]
    assert calls == ["prune_chains"] + ["prune_accounts"] * 3  # then nothing: the last
    assert _count(broker, "secret_lease_chains") == 0  # page was short, the pass through


# -- 2. retired token keys are forgotten --------------------------------------------------------


def test_a_token_key_retired_past_its_publication_is_forgotten(tmp_path: Path) -> None:
    """2: three routine rotations leave three retired keys. While a retired key is published
    (`MAX_LEASE_TTL` after its retirement) and for `RETIRED_KEY_GRACE` more, a prune keeps it;
    then its row and its vault key go. The current key stays however long it is current, and
    what it signs validates."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_b.identifier: {"t": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.put_secret("t", "token", {"scopes": ["read"], "audience": "api"}, b"", now=NOW)
    first = [k.handle for k in broker.store.signing_keys()]
    for at in (NOW + 1, NOW + 2, NOW + 3):
        broker.keys.rotate_signing_key(at)
    records = broker.store.signing_keys()
    assert len(records) == 4
    issued = broker.issue(world.member_credential(world.agent_b), "t", now=NOW + 4)
    assert issued.credential is not None
    token = str(issued.credential.reveal()["token"])
    kept_until = NOW + 1 + limits.MAX_LEASE_TTL + RETIRED_KEY_GRACE  # the first retired's
    broker.prune(NOW + 5)
    assert broker.validate_token(token, audience="api", now=NOW + 5).kid == records[-1].kid
    broker.prune(kept_until)
    assert len(broker.store.signing_keys()) == 4
    broker.prune(kept_until + 3)  # past the last retired key's
    (current,) = broker.store.signing_keys()
    assert current.retired_at is None
    assert current.kid == records[-1].kid
    for handle in first + [r.handle for r in records[:-1]]:
        with pytest.raises(KeyNotFound):
            broker.vault.public_key(KeyHandle.parse(handle))
    assert SqliteIdentityStore(broker.store.db).retired_keys(10) == []  # none left to delete
    far = kept_until + 10 * limits.MAX_LEASE_TTL
    broker.prune(far)
    assert [k.kid for k in broker.store.signing_keys()] == [current.kid]
    assert list(broker.jwks(far).keys) == [current.kid]
    assert broker.keys.token_signer(broker.issuer).kid == current.kid
    broker.vault.public_key(KeyHandle.parse(current.handle))  # its vault key is kept
