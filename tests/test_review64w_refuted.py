"""Review 64w: attacks on review 64r's (the postgres admin's SCRAM, put_secret's retries) and
64q's (the OTel export's span ids, the PKCS#11 retirement of twins) fixes that the code refused.
Each test is an attack and passes because it fails."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run
from tests.support.hsm import NOW as HSM_NOW
from tests.support.hsm import agent_node_fixture
from tests.support.leases import LeaseWorld, make_world, open_broker
from tests.support.pg_fake import MODES, FakePostgres
from tests.support.postgres import ADMIN_PASSWORD
from tests.test_review57h_cli import _hostile_record
from tests.test_review64k_pkcs11 import _objects_under
from tests.test_review64q_pkcs11 import _destroy_under
from tests.test_review64w_postgres import PASSWORD, fake_config, issue_through, world
from tests.test_secrets_postgres import SECRET, OrdersDb, login, now, orders
from troth.errors import SecretFailure
from troth.node import Node
from troth.secrets import AllowListPolicy, LeaseState
from troth.trace.otel_ids import EmittedIds, SpanIds, TakenIds, _walk
from troth.vault import KeyHandle
from troth.vault.pkcs11 import Pkcs11Vault

__all__ = ["agent_node_fixture", "orders", "world"]

# -- 64r: the postgres admin authenticates with SCRAM alone --------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_server_that_skips_or_fakes_scram_gets_no_password_and_no_query(
    tmp_path: Path, world: LeaseWorld, mode: str
) -> None:
    """Whoever answers at the host and port offers md5, password, GSS, no authentication at all
    (trust: nothing proves it knows the password), or SCRAM cut short or with a forged server
    signature: libpq's require_auth refuses each (a server that "completes" SCRAM without its
    signature too), the issue fails ENGINE_FAILED, no password in clear, no statement sent."""
    fake = FakePostgres(mode)
    try:
        failed = issue_through(tmp_path, world, fake_config("127.0.0.1", fake.port))
    finally:
        fake.close()
    assert failed.reason is SecretFailure.ENGINE_FAILED
    assert PASSWORD not in fake.received
    assert fake.queries == 0


def test_the_users_libpq_environment_does_not_lift_the_scram_requirement(
    tmp_path: Path, world: LeaseWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PGREQUIREAUTH (and PGSSLMODE) in the node's environment asking for `password`: the
    engine's own keyword wins, the password is not sent in clear."""
    monkeypatch.setenv("PGREQUIREAUTH", "password,none")
    monkeypatch.setenv("PGSSLMODE", "verify-full")
    fake = FakePostgres("password")
    try:
        failed = issue_through(tmp_path, world, fake_config("127.0.0.1", fake.port))
    finally:
        fake.close()
    assert failed.reason is SecretFailure.ENGINE_FAILED
    assert PASSWORD not in fake.received


def test_put_secret_at_the_same_server_revokes_no_live_lease(
    tmp_path: Path, orders: OrdersDb
) -> None:
    """64r's put_secret tries the secret's REVOKING leases at once: storing the value again
    (1,000 operators' calls would do the same) revokes none of the leases still in use."""
    world = make_world(now())  # (PostgreSQL's clock checks VALID UNTIL)
    policy = AllowListPolicy({world.agent_a.identifier: {SECRET: None}})
    db, broker = open_broker(tmp_path / "node.db", now=now(), policy=policy)
    try:
        broker.put_secret(SECRET, "postgres", orders.config(), ADMIN_PASSWORD.encode(), now=now())
        issued = broker.issue(world.credential_a(), SECRET, scope=["orders:read"], now=now())
        for _ in range(3):
            broker.put_secret(
                SECRET, "postgres", orders.config(), ADMIN_PASSWORD.encode(), now=now()
            )
        lease = broker.book.lease(issued.lease_id.handle)
        assert lease is not None
        assert lease.state is LeaseState.ACTIVE
        login(orders, issued.credential.reveal()).close()
        broker.revoke_lease(issued.lease_id.handle, now=now())
    finally:
        broker.close()
        db.close()


# -- 64q: the OTel export's span ids (`reaches`, path compression) -----------------------------


def _export_like(taken: TakenIds, edges: list[tuple[int, int | None]]) -> dict[int, int]:
    """What `record_span` does for each (span, claimed parent): the span noted, then its parent
    kept unless the parent's parents reach it; the parent links emitted."""
    kept: dict[int, int] = {}
    for span, parent in edges:
        taken.add(span)
        if parent is not None and parent != span and not taken.reaches(parent, span):
            taken.add(span, parent)
            kept[span] = parent
    return kept


def _closes(kept: dict[int, int], span: int, parent: int) -> bool:
    """Naively: whether `parent`'s emitted parents reach `span`."""
    at: int | None = parent
    while at is not None:
        if at == span:
            return True
        at = kept.get(at)
    return False


@pytest.mark.parametrize("make", [EmittedIds, SpanIds])
def test_compressed_parents_cut_exactly_the_links_that_close_a_cycle(
    make: Callable[[], Any],
) -> None:
    """Random forests and cycles, spans emitted in random orders, parents claimed at random
    (many not emitted yet, many closing cycles): each link the compressed store cuts closes a
    cycle among the links kept before it, each one it keeps closes none (a naive walk)."""
    rng = random.Random(64)
    for _ in range(20):
        n = rng.randrange(2, 60)
        edges: list[tuple[int, int | None]] = [
            (span, rng.choice([None, rng.randrange(1, n + 5)])) for span in range(1, n + 1)
        ]
        rng.shuffle(edges)
        taken = make()
        try:
            kept = _export_like(taken, edges)
        finally:
            if isinstance(taken, SpanIds):
                taken.close()
        naive: dict[int, int] = {}
        for span, parent in edges:
            if parent is not None and parent != span and not _closes(naive, span, parent):
                naive[span] = parent
        assert kept == naive


def test_reaches_costs_a_few_lookups_a_span_on_adversarial_orders() -> None:
    """A chain emitted leaf first (each span's parent not emitted yet), then a span hung under
    each of its levels from the bottom up, and a chain built top down whose every new span is
    checked from the bottom: a walk without its pointers is quadratic (8M steps for 4,096);
    the look-ups stay within a few a span."""
    n = 4096
    parents: dict[int, int | None] = {}
    steps = [0]

    def up(span: int) -> int | None:
        steps[0] += 1
        return parents.get(span)

    def reaches(span: int, target: int) -> bool:
        return _walk(span, target, up, parents.__setitem__, len(parents))

    for level in range(n):  # leaf first: span level under level + 1
        parents.setdefault(level, None)
        if not reaches(level + 1, level):
            parents[level] = level + 1
    for level in range(n):  # a span under each level, bottom up
        leaf = 10 * n + level
        parents[leaf] = None
        if not reaches(level, leaf):
            parents[leaf] = level
    for level in range(1, n):  # top down, each level's parent checked from the first level's
        span = 20 * n + level
        parents[span] = None
        if not reaches(20 * n + level - 1, span):
            parents[span] = 20 * n + level - 1
        reaches(20 * n + 1, -1)  # a query from the bottom
    assert steps[0] < 16 * 3 * n


def test_a_crafted_loop_in_the_span_store_ends_the_walk() -> None:
    """Parents that loop (itself, two spans each other's; none the export makes) or point at
    spans never noted: `reaches` ends (its bound: the spans noted) and reads a loop as reaching
    (a root, in doubt), an unknown parent as a top."""
    with SpanIds() as taken:
        taken.add(1, 1)
        taken.add(2, 3)
        taken.add(3, 2)
        taken.add(4, 99)
        assert taken.reaches(1, 7)
        assert taken.reaches(2, 7)
        assert not taken.reaches(4, 7)
        assert taken.reaches(4, 99)
        assert 99 not in taken


# -- 64q: PKCS#11, a twin under a key's id is retired with it -----------------------------------


def test_a_twin_naming_another_keys_id_destroys_only_what_is_under_its_own(node: Node) -> None:
    """A session with the PIN plants under identity `agent`'s key id a pair labelled as
    identity `other`'s key (`troth:primary:<other's id>`): `rotate --compromised` of agent
    destroys both objects under agent's id, and other's key stays in the token, signing (what
    is destroyed is chosen by CKA_ID, never by what a label says)."""
    from tests.test_review64k_pkcs11 import _pair

    vault: Pkcs11Vault = node.vault._primary  # type: ignore[attr-defined]
    node.identities.create(now=HSM_NOW, name="other")
    old = KeyHandle.parse(str(node.identities.find("agent").primary_key))
    other = KeyHandle.parse(str(node.identities.find("other").primary_key))
    try:
        assert _pair(vault, old.key_id, f"troth:primary:{other.key_id}") is not None
        assert _objects_under(vault, old) == 2
        node.identities.rotate("agent", now=HSM_NOW + 10, compromised=True)
        assert _objects_under(vault, old) == 0
        assert _objects_under(vault, other) == 1
        assert vault.sign(other, b"still here")
    finally:
        _destroy_under(vault, old)


# -- 64q: the OTLP endpoint's error wording -----------------------------------------------------


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://agent:S3CRET@[zz]/v1/traces?key=S3CRET",  # no address in the brackets
        "http://agent:S3CRET@[1.2.3.4]/v1/traces",  # an IPv4 address in them
        "http://agent:S3CRET@[::1/v1/traces",  # unclosed
        "http://agent:S3CRET@host:99999/v1/traces?key=S3CRET",  # the port out of range
        "ftp://agent:S3CRET@host/v1/traces",  # no http(s)
    ],
)
def test_an_endpoint_the_parser_refuses_otherwise_never_says_its_key(
    troth_home: Path, endpoint: str
) -> None:
    """The URL parser's other refusals (a bracketed host that is no IPv6 address, unclosed
    brackets, a port past 65535) and a scheme that is not http(s): exit 3, the key in the user
    information or the query never said (the parser's address message quotes the bracketed
    host alone)."""
    _hostile_record(troth_home)
    said = run("trace", "export", "--format", "otel", "--endpoint", endpoint, code=3)
    assert "S3CRET" not in said.stderr + said.stdout
    assert "OTLP endpoint" in said.stderr
