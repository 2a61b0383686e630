"""Review 54l (adversarial review of this session's 54a, 54c, 54e and 54g changes): attacks
that failed, the code was right.

- A redone resolution (54c, crash 1) answers only this resolver's own answer to this
  escalation: another resolver, or another escalation, is never answered with it.
- A log identity reservation (54c, crash 2) planted in trace.db naming an identity node.db
  does not hold (another node's: a trace.db copied over) is not bound: a new one is made.
- `LeaseStates` (54e, secrets 1) tells a relying party no more than a token already does (its
  lease's end, for a jti it names) and its `seen` cannot be moved through it.
- An answer whose BOM follows a byte (a space) is no UTF-16 to any reader that obeys BOMs
  (WHATWG decoders and `json.loads` look at the first bytes only).
- `data_version` kept inside a transaction (54a): a commit of another connection before the
  transaction began is seen in it, and one after it ended is seen after it.
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from tests.support.leases import make_world, open_broker
from tests.support.traces import NOW, Held, open_log, recorder
from troth.clock import FixedClock
from troth.errors import TraceError
from troth.node import init_node, open_node
from troth.secrets import AllowListPolicy, LeaseStates
from troth.secrets.engines.http_inject import _clean_response
from troth.storage import SqliteDatabase
from troth.trace import open_node_log
from troth.trace.store import open_trace_store


def test_a_redone_resolution_is_only_its_own_resolvers_answer(tmp_path: Path) -> None:
    """Another resolver answering the same escalation gets its own record, never the first
    resolver's receipt; the first resolver answering another escalation the same way gets a
    new record, not the first one's."""
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    agent, alice, bob = Held(), Held(), Held()
    asking = recorder(log, agent, clock)
    first = asking.escalate(alice.identifier, question="refund 5000?")
    second = asking.escalate(alice.identifier, question="refund 6000?")
    by_alice = recorder(log, alice, clock)
    answered = by_alice.resolve(
        first.record, of=agent.identifier, outcome="approved", considered="", reasoning="ok"
    )
    try:
        by_bob = recorder(log, bob, clock).resolve(
            first.record, of=agent.identifier, outcome="approved", considered="", reasoning="ok"
        )
    except TraceError:
        pass  # refused outright: not answered with alice's receipt either
    else:
        assert by_bob.hash != answered.hash
    other = by_alice.resolve(
        second.record, of=agent.identifier, outcome="approved", considered="", reasoning="ok"
    )
    assert other.record != answered.record
    assert other.hash != answered.hash
    log.close()


def test_a_planted_reservation_naming_no_identity_of_the_node_is_not_bound(
    troth_home: Path,
) -> None:
    """A reservation naming an identity of another node (planted in a trace.db this node made
    no log in yet) is replaced by a new identity of this node, which the log binds. (A log the
    node made whose binding is gone is damage, nothing bound: review 58c, trace 1.)"""
    init_node("a", home=troth_home)
    init_node("b", home=troth_home)
    clock = FixedClock(NOW)
    with open_node("a") as node_a, open_node_log(node_a, clock=clock) as log_a:
        foreign = log_a.log_identity
    with open_node("b") as node_b:
        planted = open_trace_store(node_b.path / "trace.db")
        planted.execute(
            "INSERT INTO meta (name, value) VALUES ('log_identity_pending', ?)", (foreign.digest,)
        )
        planted.close()
        with open_node_log(node_b, clock=clock) as again:
            bound = again.log_identity
        assert bound != foreign
        assert bound.digest in {each.identifier for each in node_b.identities.list_local()}


def test_lease_states_tell_no_more_than_the_token_and_cannot_be_moved(tmp_path: Path) -> None:
    """`not_after` answers a lease's end for a handle only (a token's jti carries it, and the
    token's `exp` is at most that end); a random handle, a lease id or garbage is None; the
    published object has no way to set the broker's clock."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    config = {"scopes": ["r"], "ttl": 120, "max_ttl": 600, "audience": "payments"}
    broker.put_secret("payments", "token", config, b"", now=NOW)
    issued = broker.issue(world.credential_a(), "payments", ttl=120, now=NOW)
    states = broker.revoked_leases()
    assert isinstance(states, LeaseStates)
    assert states.not_after(str(issued.lease.handle)) == issued.lease.expires_at
    assert states.not_after(issued.lease_id.text()) is None
    assert states.not_after("AAAAAAAAAAAAAAAAAAAAAA") is None
    assert states.not_after("not a handle") is None
    assert 12345 in states  # type: ignore[comparison-overlap]  # a non-string: revoked
    assert not hasattr(states, "advance")
    seen = states.seen()
    with pytest.raises(AttributeError):
        states.seen = lambda: 10**12  # type: ignore[method-assign]
    assert states.seen() == seen
    broker.close()


def test_a_bom_after_the_first_byte_is_no_wide_answer_to_its_readers() -> None:
    """A space before UTF-16's BOM: the check lets it pass, and no reader that obeys a BOM
    (only as the first bytes) reads UTF-16 there: `json.loads` of the bytes fails as UTF-8."""
    secret = b"Bearer s3cr3tTokenValue0123456789"
    body = (
        b" " + codecs.BOM_UTF16_LE + ('{"you sent": "' + secret.decode() + '"}').encode("utf-16-le")
    )
    cleaned = _clean_response(200, "OK", [("Content-Type", "application/json")], body, secret)
    with pytest.raises(UnicodeDecodeError):  # read as UTF-8: 0xff is no UTF-8
        json.loads(cleaned.body)
    assert secret not in cleaned.body.decode("utf-8", "replace").encode()
    assert secret not in cleaned.body.decode("latin-1").encode()


def test_the_kept_data_version_sees_commits_before_and_after_its_transaction(
    tmp_path: Path,
) -> None:
    db, other = SqliteDatabase(tmp_path / "x.db"), SqliteDatabase(tmp_path / "x.db")
    other.execute("CREATE TABLE t (v INTEGER)")
    outside = db.data_version()
    other.execute("INSERT INTO t VALUES (1)")
    with db.transaction():
        inside = db.data_version()
        assert inside != outside  # the commit before the transaction is seen
        db.execute("INSERT INTO t VALUES (2)")  # its own write moves nothing
        assert db.data_version() == inside
    other.execute("INSERT INTO t VALUES (3)")
    assert db.data_version() != inside
    db.close()
    other.close()
