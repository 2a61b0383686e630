"""Review 48f, attacks on the secrets broker the code withstood (pinned as passing tests).

- A broker killed (SIGKILL) between minting a token and committing its lease hands out
  nothing and records nothing; killed right after the commit, the lease is recorded: no token
  is ever out without its lease. Killed while a remote engine creates the upstream object
  (after the PENDING row's commit), the restarted broker's `recover` revokes that object by
  the ref the row recorded.
- Two brokers over one database (the daemon and another process) share one quota per account.
- A token replayed to another audience is refused, also after its secret was moved to that
  audience; a token re-signed as HS256 with the broker's public key as the HMAC key, or as
  `none`, is refused by both validators; a token of a lease whose member's credential the feed
  revoked is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import NOW
from tests.support.leases import RemoteStub, make_world, open_broker
from tests.test_secrets_tokens import AUDIENCE, CONFIG, b64d, b64e, rejects
from troth.errors import SecretFailure
from troth.secrets import AllowListPolicy, Broker, LeaseState, validate_token
from troth.storage import SqliteDatabase

F = SecretFailure
_ROOT = Path(__file__).resolve().parent.parent

_SCRIPT = """
import os, signal, sys
from pathlib import Path
from tests.conftest import NOW
from tests.support.leases import RemoteStub, make_world, open_broker
from tests.test_secrets_tokens import CONFIG
from troth.secrets import AllowListPolicy

where, mode = Path(sys.argv[1]), sys.argv[2]
world = make_world(NOW)
policy = AllowListPolicy({world.agent_a.identifier: {"payments": None, "db": None}})
_db, broker = open_broker(where, now=NOW, policy=policy)
remote = RemoteStub()
broker.engines[remote.kind] = remote
broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
broker.put_secret("db", remote.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)


def kill():
    os.kill(os.getpid(), signal.SIGKILL)


token = broker.engines["token"]
real_issue = token.issue


def minted_then_killed(grant, upstream):  # inside the lease's transaction, before its commit
    real_issue(grant, upstream)
    kill()


if mode == "token-before-commit":
    token.issue = minted_then_killed
if mode == "remote-at-engine":
    remote.during_issue = kill
issued = broker.issue(world.credential_a(), "db" if mode.startswith("remote") else "payments",
                      now=NOW)
if mode == "token-after-commit":
    kill()
print(issued.to_json()["credential"])
"""


def _killed(where: Path, mode: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_ROOT / "src"), str(_ROOT)])}
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(where), mode],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=_ROOT,
    )
    assert result.returncode == -signal.SIGKILL, (result.returncode, result.stderr)
    assert result.stdout == ""  # nothing handed out by the process itself
    return result


def _leases(where: Path) -> list[tuple[int, str]]:
    db, broker = open_broker(where, now=NOW)
    try:
        rows = db.fetch_all("SELECT state, engine FROM secret_leases")
        return [(int(r[0]), str(r[1])) for r in rows]
    finally:
        broker.close()


def test_a_broker_killed_before_the_token_lease_commits_records_and_hands_out_nothing(
    tmp_path: Path,
) -> None:
    where = tmp_path / "node.db"
    _killed(where, "token-before-commit")
    assert _leases(where) == []
    db, broker = open_broker(where, now=NOW)
    assert db.fetch_all("SELECT kind FROM secret_audit WHERE kind = 'issue'") == []
    broker.close()


def test_a_broker_killed_after_the_token_lease_commits_has_it_recorded(tmp_path: Path) -> None:
    where = tmp_path / "node.db"
    _killed(where, "token-after-commit")
    assert _leases(where) == [(int(LeaseState.ACTIVE), "token")]


def test_a_broker_killed_while_its_engine_issues_revokes_the_object_at_recover(
    tmp_path: Path,
) -> None:
    where = tmp_path / "node.db"
    _killed(where, "remote-at-engine")
    assert _leases(where) == [(int(LeaseState.PENDING), RemoteStub.kind)]
    _db, broker = open_broker(where, now=NOW + 1)
    engine = RemoteStub()
    broker.engines[engine.kind] = engine
    report = broker.recover(NOW + 1)
    (handle,) = [str(lease.handle) for lease in broker.store.leases_in([LeaseState.REVOKED])]
    assert engine.revoked == [f"role_{handle}"]
    assert report.revoked == 1
    broker.close()


def test_two_brokers_over_one_database_share_one_quota(tmp_path: Path) -> None:
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    _db, first = open_broker(tmp_path / "node.db", now=NOW, policy=policy, quota=2)
    first.put_secret("payments", "token", CONFIG, b"", now=NOW)
    _db2, second = open_broker(tmp_path / "node.db", now=NOW, policy=policy, quota=2)
    first.issue(world.credential_a(), "payments", now=NOW)
    second.issue(world.credential_a(), "payments", now=NOW)
    for broker in (first, second):
        rejects(
            lambda b=broker: b.issue(world.credential_a(), "payments", now=NOW),
            F.QUOTA_EXCEEDED,
        )


def _issued_token(tmp_path: Path) -> tuple[SqliteDatabase, Broker, str]:
    """A broker over `tmp_path`/node.db holding secret `payments` (a token), and the token it
    issued to agent A (the database is returned to be held while the broker is used)."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
    token = str(
        broker.issue(world.credential_a(), "payments", now=NOW).credential.reveal()["token"]
    )
    return db, broker, token


def test_a_token_is_refused_at_another_audience_also_after_its_secret_moved(
    tmp_path: Path,
) -> None:
    _db, broker, token = _issued_token(tmp_path)
    rejects(
        lambda: broker.validate_token(token, audience="ledger", now=NOW + 1),
        F.JWT_WRONG_AUDIENCE,
    )
    broker.put_secret("payments", "token", {**CONFIG, "audience": "ledger"}, b"", now=NOW + 2)
    for audience, reason in ((AUDIENCE, F.JWT_NOT_OF_LEASE), ("ledger", F.JWT_WRONG_AUDIENCE)):
        rejects(
            lambda a=audience: broker.validate_token(token, audience=a, now=NOW + 3),
            reason,
        )


def test_hs256_keyed_with_the_public_key_and_none_are_refused(tmp_path: Path) -> None:
    _db, broker, token = _issued_token(tmp_path)
    head, body, _ = token.split(".")
    kid = json.loads(b64d(head))["kid"]
    published = broker.jwks(NOW).to_json()
    (jwk,) = published["keys"]
    for secret in (b64d(jwk["x"]), json.dumps(jwk).encode(), jwk["x"].encode()):
        forged_head = b64e(json.dumps({"alg": "HS256", "kid": kid, "typ": "JWT"}).encode())
        signing_input = f"{forged_head}.{body}".encode()
        mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
        forged = f"{forged_head}.{body}.{b64e(mac)}"
        for check in (
            lambda t=forged: validate_token(t, published, audience=AUDIENCE, now=NOW + 1),
            lambda t=forged: broker.validate_token(t, audience=AUDIENCE, now=NOW + 1),
        ):
            rejects(check, F.JWT_UNKNOWN_KEY)
    unsigned = b64e(json.dumps({"alg": "none", "kid": kid, "typ": "JWT"}).encode())
    for tail in ("", base64.urlsafe_b64encode(b"x").decode().rstrip("=")):
        rejects(
            lambda t=f"{unsigned}.{body}.{tail}": broker.validate_token(
                t, audience=AUDIENCE, now=NOW + 1
            ),
            F.JWT_UNKNOWN_KEY,
        )


def test_a_token_of_a_lease_whose_member_was_revoked_is_refused(tmp_path: Path) -> None:
    """agent A's lease under the orchestrator's delegation: the feed revokes the orchestrator's
    credential (the chain's first link): A's token is refused at once."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    broker.put_secret("payments", "token", CONFIG, b"", now=NOW)
    credential = world.credential_a()
    token = str(broker.issue(credential, "payments", now=NOW).credential.reveal()["token"])
    assert broker.validate_token(token, audience=AUDIENCE, now=NOW + 1).subject
    first = credential.links[0]
    feed = world.feed_revoking([(1, first.hash)], NOW + 2)
    assert broker.revoke_for_feed(feed, now=NOW + 2)
    rejects(lambda: broker.validate_token(token, audience=AUDIENCE, now=NOW + 3), F.REVOKED)
    jwks, revoked = broker.jwks(NOW + 3), broker.revoked_leases()
    rejects(
        lambda: validate_token(token, jwks, audience=AUDIENCE, now=NOW + 3, revoked=revoked),
        F.REVOKED,
    )
