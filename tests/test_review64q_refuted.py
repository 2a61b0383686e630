"""Review 64q: attacks on review 64i's (OTel export), 64g's (the bundle store's fast path) and
64k's (PKCS#11 twins) fixes that the code refused. Each test is an attack and passes because
it fails."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.gates import GatesWorld, T, make_world
from tests.support.hsm import NOW, agent_node_fixture
from tests.support.traces import log_of
from tests.test_review64k_pkcs11 import _objects_under
from tests.test_review64q_pkcs11 import _destroy_under
from troth import limits
from troth.cli.trace_cmds import _endpoint_shown
from troth.credentials import ChainVerifier, RevocationKind
from troth.errors import PolicyError, PolicyFailure, Unreachable
from troth.node import Node
from troth.trace.otel import export_otel
from troth.trace.otel_ids import EmittedIds, SpanIds
from troth.vault import KeyHandle
from troth.vault.pkcs11 import Pkcs11Vault

_P = PolicyFailure
__all__ = ["agent_node_fixture"]

# -- 64i: the OTel export ---------------------------------------------------------------------


class _Held(SpanExporter):
    """An exporter whose first batch hangs until `release` is set (then fails), the rest sent."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.sent: list[ReadableSpan] = []
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        if self.calls == 1:
            self.release.wait(5)
            return SpanExportResult.FAILURE
        self.sent.extend(spans)
        return SpanExportResult.SUCCESS


def test_a_batch_abandoned_at_its_deadline_is_sent_again_whole_by_a_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export keeps no mark of what it sent: a batch abandoned (Unreachable) is neither
    counted nor lost, a rerun sends every span again under the same ids, and the thread left
    behind, answering late, changes nothing."""
    monkeypatch.setattr(limits, "OTEL_EXPORT_BATCH_SECONDS", 0.2)
    log = log_of(tmp_path / "trace.db", 5)
    held = _Held()
    with pytest.raises(Unreachable, match="did not answer"):
        export_otel(log, held, batch=2)
    held.release.set()
    assert held.sent == []  # nothing past the abandoned batch
    assert export_otel(log, held, batch=2) == 5
    first = InMemorySpanExporter()
    export_otel(log, first)
    ids = [s.context.span_id for s in held.sent if s.context]
    assert ids == [s.context.span_id for s in first.get_finished_spans() if s.context]
    log.close()


@pytest.mark.parametrize(
    ("endpoint", "shown"),
    [
        ("http://u:p%40ss%3AKEY@[::1]:4318/v1/traces?k=KEY#KEY", "http://[::1]:4318/v1/traces"),
        ("https://u:p@ss@KEY@collector:443/v1/traces", "https://collector:443/v1/traces"),
        ("http://collector:4318/v1/traces#@KEY", "http://collector:4318/v1/traces"),
        ("http://collector:4318?x=a@KEY", "http://collector:4318"),
        ("HTTP://KEY@Collector:4318/v1/traces", "http://Collector:4318/v1/traces"),
    ],
)
def test_the_endpoint_shown_never_says_user_information_query_or_fragment(
    endpoint: str, shown: str
) -> None:
    said = _endpoint_shown(endpoint)
    assert "KEY" not in said
    assert said == shown


@pytest.mark.parametrize("taken", [EmittedIds, SpanIds])
def test_a_cycle_through_three_spans_in_any_order_is_cut_once(taken: type) -> None:
    """Three spans each under the next, the last under the first, noted in every order of
    emission: exactly the one that closes the cycle is a root, the others keep their parent."""
    for order in ((1, 2, 3), (3, 2, 1), (2, 1, 3), (2, 3, 1)):
        ids = taken()
        parent = {1: 2, 2: 3, 3: 1}
        roots = []
        for span in order:
            ids.add(span)
            if ids.reaches(parent[span], span):
                roots.append(span)
            else:
                ids.add(span, parent[span])
        assert roots == [order[-1]]
        if isinstance(ids, SpanIds):
            ids.close()


def test_the_cycle_bound_holds_on_pointers_that_loop(tmp_path: Path) -> None:
    """Pointers that loop (none are noted: a cycle is never emitted) end the walk at its
    bound, read as reaching the span: a root, not a hang."""
    ids = EmittedIds()
    ids.add(1, 2)
    ids.add(2, 1)
    assert ids.reaches(1, 99)


# -- 64g: the bundle store's fast path --------------------------------------------------------


@pytest.fixture
def world() -> GatesWorld:
    return make_world()


def test_the_fast_path_still_ages_the_same_feed(world: GatesWorld) -> None:
    store = world.store(world.bundle())
    authority = world.authority.identifier
    staleness = world.verifier.policy.max_feed_staleness
    store.engine(authority, feed=world.feed, now=T + 10)
    store.engine(authority, feed=world.feed, now=T + 11)  # (the fast path)
    with pytest.raises(PolicyError) as out:
        store.engine(authority, feed=world.feed, now=world.feed.issued_at + staleness + 1)
    assert out.value.reason is _P.STALE_FEED


def test_a_limit_lowered_between_decisions_is_applied(world: GatesWorld) -> None:
    store = world.store(world.bundle())
    authority = world.authority.identifier
    store.engine(authority, feed=world.feed, now=T + 100)
    store.engine(authority, feed=world.feed, now=T + 100)
    policy = dataclasses.replace(world.verifier.policy, max_feed_staleness=10)
    store.verifier = ChainVerifier(policy)
    with pytest.raises(PolicyError) as out:
        store.engine(authority, feed=world.feed, now=T + 100)
    assert out.value.reason is _P.STALE_FEED


def test_a_feed_replaced_at_the_same_second_revoking_the_signer_is_read(
    world: GatesWorld,
) -> None:
    """A new feed object issued at the same second as the one the fast path holds, revoking
    the bundle's signer (its admin): the signer is checked again, the bundle out of force."""
    store = world.store(world.bundle(by_admin=True))
    authority = world.authority.identifier
    issued = world.feed.issued_at
    store.engine(authority, feed=world.feed, now=issued + 1)
    store.engine(authority, feed=world.feed, now=issued + 1)
    world.revoke(RevocationKind.IDENTITY, world.admin.identifier.digest, now=issued)
    with pytest.raises(PolicyError) as out:
        store.engine(authority, feed=world.feed, now=issued + 1)
    assert out.value.reason is _P.SIGNER_REVOKED


def test_a_fast_path_held_bundle_expires(world: GatesWorld) -> None:
    store = world.store(world.bundle(ttl=60))
    authority = world.authority.identifier
    store.engine(authority, feed=world.feed, now=T + 10)
    store.engine(authority, feed=world.feed, now=T + 10)
    with pytest.raises(PolicyError) as out:
        store.engine(authority, feed=world.feed, now=T + 60)
    assert out.value.reason is _P.EXPIRED


def test_another_authoritys_feed_never_rides_the_fast_path(world: GatesWorld) -> None:
    other = make_world()
    store = world.store(world.bundle())
    authority = world.authority.identifier
    store.engine(authority, feed=world.feed, now=T + 10)
    with pytest.raises(PolicyError) as out:
        store.engine(authority, feed=other.feed, now=T + 10)
    assert out.value.reason is _P.STALE_FEED


# -- 64k: the PKCS#11 twins ---------------------------------------------------------------------


def test_a_key_of_another_type_under_the_id_is_not_destroyed_with_the_key(node: Node) -> None:
    """A P-256 pair a session with the PIN made under an Ed25519 identity key's CKA_ID (and its
    label): `rotate --compromised` destroys the identity key and nothing of the other type,
    which is no twin of it (review 62d: a handle's objects are of its key type)."""
    from pkcs11 import Attribute, Mechanism
    from pkcs11 import KeyType as P11KeyType
    from pkcs11.util.ec import encode_named_curve_parameters

    vault: Pkcs11Vault = node.vault._primary  # type: ignore[attr-defined]
    old = KeyHandle.parse(str(node.identities.find("agent").primary_key))
    same: dict[Any, Any] = {Attribute.ID: bytes.fromhex(old.key_id), Attribute.TOKEN: True}
    same |= {Attribute.LABEL: f"troth:primary:{old.key_id}", Attribute.PRIVATE: True}
    try:
        with vault._lock:
            _, other = vault._session.generate_keypair(
                P11KeyType.EC,
                mechanism=Mechanism.EC_KEY_PAIR_GEN,
                public_template={
                    **same,
                    Attribute.EC_PARAMS: encode_named_curve_parameters("1.2.840.10045.3.1.7"),
                },
                private_template={**same, Attribute.SIGN: True},
                store=True,
            )
        node.identities.rotate("agent", now=NOW + 10, compromised=True)
        assert _objects_under(vault, old) == 1  # the P-256 key alone
        with vault._lock:
            assert other[Attribute.KEY_TYPE] == P11KeyType.EC
    finally:
        _destroy_under(vault, old)
