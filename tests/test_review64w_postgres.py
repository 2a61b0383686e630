"""Review 64w of review 64r's postgres fixes (the fake server needs no PostgreSQL).

postgres 1 (medium: the admin password, the upstream secret, to a local squatter): review 64r
(postgres 2) made the admin authenticate with SCRAM alone unless sslmode is `verify-full`,
"the server proved its name". libpq ignores sslmode on a Unix-domain socket: with `host` a
socket directory (which the engine takes: a host, an address or a socket directory) and
sslmode `verify-full`, nothing was proved and nothing was required, and whoever listened at the
socket's path (one made in a shared directory such as /tmp while the server was down or
restarting) asked for the password in clear and was sent it. A socket directory now always gets
`require_auth=scram-sha-256`.

bench 2 (low: a benchmark that failed on every run): review 64r's SCRAM-only admin refuses a
server that asks for no password, and `troth bench`'s `secrets.postgres` case ran its
throwaway cluster with `trust` authentication (and a dummy password): the engine refused it
("postgres read templates: OperationalError") and the case failed. The cluster now uses SCRAM
with a random password (as the chapter 5 demo's does).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.leases import LeaseWorld, make_world, open_broker
from tests.support.pg_fake import FakePostgres
from troth.bench import secrets_bench
from troth.errors import SecretError, SecretFailure
from troth.secrets import AllowListPolicy

SECRET = "orders-db"
PASSWORD = b"the-admin-password"
NOW = 1_800_000_000


def fake_config(host: str, port: int, **changes: Any) -> dict[str, Any]:
    """A postgres secret's configuration naming the fake server."""
    return {
        "scopes": ["orders:read"],
        "ttl": 60,
        "host": host,
        "port": port,
        "dbname": "orders",
        "user": "admin",
        "templates": {"orders:read": "reader"},
        "connect_timeout": 2,
        **changes,
    }


def issue_through(tmp_path: Path, world: LeaseWorld, config: dict[str, Any]) -> SecretError:
    """A broker storing the secret `config` names and issuing a lease of it: the error."""
    policy = AllowListPolicy({world.agent_a.identifier: {SECRET: None}})
    db, broker = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    try:
        broker.put_secret(SECRET, "postgres", config, PASSWORD, now=NOW)
        with pytest.raises(SecretError) as failed:
            broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=NOW)
        return failed.value
    finally:
        broker.close()
        db.close()


@pytest.fixture
def world() -> LeaseWorld:
    return make_world(NOW)


@pytest.mark.parametrize("sslmode", ["verify-full", "verify-ca", "require", "prefer"])
def test_postgres1_no_password_in_clear_at_a_socket_whatever_sslmode_says(
    tmp_path: Path, world: LeaseWorld, sslmode: str
) -> None:
    """postgres 1: a squatter at the socket's path asks for the password in clear."""
    squatter = FakePostgres("password", socket_dir=str(tmp_path), port=5432)
    try:
        failed = issue_through(tmp_path, world, fake_config(str(tmp_path), 5432, sslmode=sslmode))
    finally:
        squatter.close()
    assert failed.reason is SecretFailure.ENGINE_FAILED
    assert PASSWORD not in squatter.received
    assert squatter.authenticated == 0


def test_bench2_the_postgres_case_runs_its_cluster_with_a_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """bench 2: the case's throwaway cluster is asked for SCRAM (a password), not trust."""
    asked: list[str | None] = []

    @contextmanager
    def cluster(password: str | None = None) -> Iterator[None]:
        asked.append(password)
        yield None  # (no cluster: the case measures nothing)

    monkeypatch.setattr(secrets_bench, "throwaway_postgres", cluster)
    assert secrets_bench._postgres(True) == []
    assert len(asked) == 1
    assert asked[0]
