"""Review 50g, backup: a stolen or restored backup, and old-but-genuine state replayed. Attacks
tried that the code already refuses (each passes).

Refuted 1: a member node's node.db copied before `troth identity rotate --compromised` and
restored (the vault's sealed keys are in node.db: the copy holds the pre-rotation key and its
committed next key) speaks for the identity nowhere the newer history was seen: its refresh is
a rollback at the authority, a delegation it signs with the pre-rotation key is superseded for
every verifier holding the authority's feed, and a rotation of its own from the copy is a fork
the authority refuses and keeps as evidence (`troth identity forks`).

Refuted 2: an authority's node.db restored from a backup (its feed shorter than the one its
holders synced): a holder that stored the newer feed refuses the shorter one, and the restored
authority's next entries (another entry at a position the holder holds: a forked feed), and
keeps every revocation it verified.

Refuted 3: an old, genuine page of a feed (signed before the one held) replayed to its holder
is refused, and the held feed is unchanged.

Refuted 4: a member replaying its enrollment (the same ticket, within its window) after its
credential was revoked gets the same, revoked credential back: never a fresh one.

Refuted 5: a genuine channel session recorded (handshake and data) and replayed to a fresh end
opens nothing and delivers nothing.

Refuted 6: a secrets broker's node.db restored from a copy refuses the tokens minted after the
copy was taken (their leases are unknown to it: an unknown `jti` is revoked).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.backups import copy_db, node_db, restore_db, thief_copy
from tests.support.channels import T, dropped, make_world
from tests.support.cli import run
from tests.support.enroll import acme_and_agent, enroll_in_process
from tests.support.leases import make_world as lease_world
from tests.support.leases import open_broker
from troth import enrollment
from troth.channel import ChannelState, DropReason, Established, Received, SecureChannel
from troth.clock import FixedClock
from troth.credentials import CredentialChain
from troth.errors import (
    AuthorityError,
    AuthorityFailure,
    CredentialError,
    CredentialFailure,
    SecretError,
    SecretFailure,
)
from troth.identity import Identifier
from troth.node import open_node
from troth.node.authorities import sync_from
from troth.secrets import AllowListPolicy


def _backup(home: Path, name: str, to: Path) -> None:
    """A consistent copy of node `name`'s node.db (SQLite's online backup), the node closed."""
    copy_db(node_db(home, name), to)


def _restore(home: Path, name: str, copy: Path) -> None:
    """Node `name`'s node.db put back as a thief's machine holds the copy (no guard)."""
    thief_copy(node_db(home, name), copy)


def test_a_restored_member_node_speaks_for_its_rotated_identity_nowhere(
    troth_home: Path, tmp_path: Path
) -> None:
    """Refuted 1."""
    run("authority", "create", "acme")
    run("node", "create", "agent")  # with its identity `agent`
    run("identity", "create", "sub", "--node", "agent")
    ticket = run("authority", "ticket", "create", "--authority", "acme", "--attr", "team.name=x")
    code = tmp_path / "ticket"
    code.write_text(ticket.stdout)
    run("enroll", str(code), "--as", "agent", "--node", "agent")
    copy = tmp_path / "agent.db"
    _backup(troth_home, "agent", copy)
    run("identity", "rotate", "agent", "--compromised", "--node", "agent")  # announced to acme

    _restore(troth_home, "agent", copy)  # the stolen (or carelessly restored) copy
    refused = run("credential", "refresh", "agent", "--node", "agent", code=1)
    assert "older than the stored copy" in refused.stderr  # a rollback at the authority
    chain = tmp_path / "s.chain"
    run(
        "credential", "delegate", "--as", "agent", "--to", "sub", "--attr", "team.name=x",
        "--ttl", "30m", "--purpose", "p", "--out", str(chain), "--node", "agent",
    )  # fmt: skip
    for node in ([], ["--node", "acme"]):
        verdict = run(
            "credential", "verify", str(chain), "--trust", "acme", "--authority", "acme", *node,
            code=1,
        )  # fmt: skip
        assert "superseded history" in verdict.stderr
    assert run("identity", "forks", "agent", "--node", "acme").stdout.startswith("no fork ")
    rotated = run("identity", "rotate", "agent", "--node", "agent")  # the copy's own rotation
    assert "forks from the stored copy" in rotated.stderr  # not announced: refused at acme
    forks = run("identity", "forks", "agent", "--node", "acme").stdout
    assert forks.startswith("change 1 ")  # kept there as evidence of the leak


def test_a_holder_refuses_a_restored_authoritys_shorter_and_forked_feed(
    troth_home: Path, tmp_path: Path
) -> None:
    """Refuted 2."""
    now = int(time.time())
    clock = FixedClock(now)
    with acme_and_agent(None, now) as (authority, agent, _member, ticket):
        enroll_in_process(agent, "agent", authority, ticket, clock)
        acme = authority.identifier
        sync_from(agent, authority, now=now)
    copy = tmp_path / "acme.db"
    _backup(troth_home, "acme", copy)
    revoked = Identifier(os.urandom(32))
    with open_node("acme") as node, open_node("agent") as agent:
        node.authority().revoke_identity(revoked, now=now + 10)
        assert sync_from(agent, node.authority(), now=now + 20).count == 1

    _restore(troth_home, "acme", copy)
    with open_node("acme") as node, open_node("agent") as agent:
        host = node.authority()
        with pytest.raises(AuthorityError) as holding:  # no page while held (review 65o, feed 2)
            sync_from(agent, host, now=now + 30)
        assert holding.value.reason is AuthorityFailure.RESTORED
        assert host.release_restored() is not None  # released without revoking again
        with pytest.raises(AuthorityError, match="the feed has 0 entries"):
            sync_from(agent, host, now=now + 30)  # the holder asks from where it ends
        for n in range(2):  # the restored feed's entry 0 (then 1) is not the one held
            host.revoke_identity(Identifier(os.urandom(32)), now=now + 40 + n)
            with pytest.raises(CredentialError) as refused:
                sync_from(agent, host, now=now + 50 + n)
            assert refused.value.reason is CredentialFailure.FEED_INVALID
        held = agent.wallet.held_feed(acme)
        assert held is not None
        assert (held.count, held.issued_at) == (1, now + 20)
        assert held.identity_revoked(revoked.digest)


def test_an_old_genuine_feed_page_replayed_is_refused(troth_home: Path) -> None:
    """Refuted 3."""
    now = int(time.time())
    clock = FixedClock(now)
    with acme_and_agent(None, now) as (authority, agent, _member, ticket):
        enroll_in_process(agent, "agent", authority, ticket, clock)
        acme = authority.identifier
        sync_from(agent, authority, now=now)
        empty = authority.feed(now=now + 1, since=0)  # genuine: "no entries", signed
        agent.wallet.update_feed(empty, authority=acme, now=now + 1)
        before_revocation = authority.feed(now=now + 2, since=0)
        authority.revoke_identity(Identifier(os.urandom(32)), now=now + 3)
        sync_from(agent, authority, now=now + 4)
        newest = agent.wallet.held_feed(acme)
        assert newest is not None
        assert newest.count == 1
        for old in (empty, before_revocation):
            with pytest.raises(CredentialError) as refused:
                agent.wallet.update_feed(old, authority=acme, now=now + 5)
            assert refused.value.reason is CredentialFailure.FEED_INVALID  # starts at 0, not 1
        up_to_date = authority.feed(now=now + 6, since=1)
        agent.wallet.update_feed(up_to_date, authority=acme, now=now + 6)
        with pytest.raises(CredentialError) as refused:  # an older "up to date" at the end
            agent.wallet.update_feed(
                authority.feed(now=now + 5, since=1), authority=acme, now=now + 7
            )
        assert refused.value.reason is CredentialFailure.FEED_ROLLBACK
        held = agent.wallet.held_feed(acme)
        assert held is not None
        assert (held.count, held.issued_at) == (1, now + 6)


def test_an_enrollment_replayed_after_its_credential_was_revoked_gets_it_back_revoked(
    troth_home: Path,
) -> None:
    """Refuted 4."""
    now = int(time.time())
    clock = FixedClock(now)
    with acme_and_agent(None, now) as (authority, agent, _member, ticket):
        sent: list[bytes] = []

        def send(request: bytes) -> bytes:
            sent.append(request)
            return authority.enroll(request, now=now).encode()

        enrolled = enrollment.enroll(
            agent.identities, agent.wallet, "agent", ticket, clock=clock, send=send
        )
        issued = CredentialChain.decode(enrolled.credential.chain)
        credential = issued.credentials[0].hash
        authority.revoke_credential(credential, now=now + 1)
        again = authority.enroll(sent[0], now=now + 2)  # the same request, replayed
        assert again.encode() == issued.encode()  # no fresh credential, no second use
        held = sync_from(agent, authority, now=now + 3)
        assert held.credential_revoked(credential)


def test_a_genuine_handshake_transcript_replayed_opens_nothing() -> None:
    """Refuted 5: every packet alice sent in a genuine session (her handshake messages, then
    data), recorded and replayed in order to a fresh responder of bob, opens no channel and
    delivers nothing; bob's packets replayed to a fresh initiator of alice neither (the Noise
    handshake binds each side's fresh ephemeral key)."""
    world = make_world()
    a = SecureChannel.initiate(
        me=world.alice.me((world.credential(world.alice),)), trust=world.trust()
    )
    b = world.responder()
    from_a: list[bytes] = []
    from_b: list[bytes] = []
    for _ in range(10):
        to_b, to_a = a.outgoing(), b.outgoing()
        if not to_b and not to_a:
            break
        from_a += [bytes(sent) for sent in to_b]  # a copy: a buffer may be reused
        from_b += [bytes(sent) for sent in to_a]
        for sent in to_b:
            b.receive(sent, T + 1)
        for sent in to_a:
            a.receive(sent, T + 1)
    assert a.state is b.state is ChannelState.OPEN
    a.send(b"genuine")
    from_a += [bytes(sent) for sent in a.outgoing()]
    assert b.receive(from_a[-1], T + 1) == [Received(b"genuine")]

    fresh_b = world.responder()
    seen_b = [event for sent in from_a for event in fresh_b.receive(sent, T + 2)]
    fresh_a = SecureChannel.initiate(
        me=world.alice.me((world.credential(world.alice),)), trust=world.trust()
    )
    fresh_a.outgoing()  # its own first message, with a new ephemeral key
    seen_a = [event for sent in from_b for event in fresh_a.receive(sent, T + 2)]
    for fresh, seen in ((fresh_b, seen_b), (fresh_a, seen_a)):
        assert fresh.state is not ChannelState.OPEN
        assert not [e for e in seen if isinstance(e, Established | Received)]
        assert DropReason.UNDECRYPTABLE in dropped(seen)  # the replayed handshake message


def test_a_restored_brokers_tokens_issued_after_its_copy_are_refused(tmp_path: Path) -> None:
    """Refuted 6: a broker's node.db restored from a copy: a token minted after the copy was
    taken (its lease unknown to the copy) is refused by the restored broker (an unknown `jti`
    is a revoked one), and one minted before it still validates."""
    world = lease_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"api": None}})
    path, copy = tmp_path / "node.db", tmp_path / "copy.db"
    db, broker = open_broker(path, now=NOW, policy=policy)
    broker.put_secret(
        "api", "token", {"scopes": ["read"], "ttl": 300, "audience": "x"}, b"", now=NOW
    )

    def token() -> str:
        issued = broker.issue(world.credential_a(), "api", now=NOW, scope=["read"])
        return str(issued.credential.reveal()["token"])

    before = token()
    broker.close()
    db.close()
    copy_db(path, copy)
    db, broker = open_broker(path, now=NOW, policy=policy)
    after = token()
    broker.validate_token(after, audience="x", now=NOW + 1)
    broker.close()
    db.close()
    restore_db(path, copy)
    db, broker = open_broker(path, now=NOW, policy=policy)
    try:
        broker.validate_token(before, audience="x", now=NOW + 1)
        with pytest.raises(SecretError) as refused:
            broker.validate_token(after, audience="x", now=NOW + 1)
        assert refused.value.reason is SecretFailure.REVOKED
    finally:
        broker.close()
        db.close()
