"""Review 42b, bundles: two different bundles of one authority at one revision (docs/policy.md,
"Bundles on a node"; docs/formats.md, "Policy bundles"). Of valid bundles of one revision the
one of the lower SHA-256 digest wins on every node: a node holding the lower refuses the higher
(SAME_REVISION, not a rollback), a node holding the higher takes the lower, by a push or a
pull (`get [authority, revision, digest]` answers the lower one), and the conflict is kept
where an operator sees it. Review 41d's bundles 2 (tests/test_review41d_bundles.py) was the
finding.

bundles 1: what the lower digest may replace is only a valid bundle of the held one's
authority: one of another authority, with a bad signature or expired is refused for what it
is, whatever its digest.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run, run_json
from tests.support.gates import POLICIES, TOOLS, GatesWorld, T, make_world
from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_gates_distribution import bundle, install_on_hub
from troth.crypto import sha256
from troth.encoding import cbor
from troth.errors import DecodeError, PolicyError, PolicyFailure, RemoteError
from troth.gates import BundleBody, BundleConflict, ToolCall
from troth.node.access import AnyAuthenticated
from troth.node.services import Method, RequestContext, call
from troth.node.services.policy import POLICY, PolicyService

REFUND = ToolCall("refund", {"order_id": "4471", "amount": 20})
TIGHTER = """\
@id("lookup") permit(principal, action == Action::"invoke:lookup_order", resource)
  when { principal.hasTag("orders.access") };
"""


def pair(world: GatesWorld) -> tuple[bytes, bytes]:
    """Two revision-6 bundles of the world's authority (the authority's, the admin's), sorted
    by digest: the lower, then the higher."""
    mine = world.bundle(revision=6, now=T)
    admins = world.bundle(revision=6, now=T + 1, by_admin=True, policies=TIGHTER)
    low, high = sorted((mine, admins), key=sha256)
    return low, high


def held_high(world: GatesWorld) -> bytes:
    """A revision-6 bundle of the authority, the highest digest of 8 (so that a variant of
    lower digest is found among a few: `below`)."""
    return max((world.bundle(revision=6, now=T, ttl=86_400 - i) for i in range(8)), key=sha256)


def below(held: bytes, make: Callable[[int], bytes]) -> bytes:
    """The first of `make(0)`, `make(1)`, ... whose digest is lower than `held`'s."""
    for i in range(256):
        data = make(i)
        if sha256(data) < sha256(held):
            return data
    raise AssertionError("no variant below")


def test_a_higher_digest_of_the_held_revision_is_refused_and_recorded() -> None:
    """The node holding the lower digest refuses the higher with its own reason (not
    ROLLBACK), naming both digests, keeps deciding with the lower, and records the conflict
    (`BundleStore.conflicts`)."""
    world = make_world()
    low, high = pair(world)
    store = world.store(low)
    with pytest.raises(PolicyError) as refused:
        store.accept(high, feeds=world.feeds(), now=T + 5)
    assert refused.value.reason is PolicyFailure.SAME_REVISION
    assert str(refused.value).startswith("same revision, lower digest held")
    assert sha256(low).hex() in refused.value.detail
    assert sha256(high).hex() in refused.value.detail
    held = store.active(world.authority.identifier)
    assert held is not None
    assert held.bundle.data == low
    conflict = BundleConflict(world.authority.identifier, 6, sha256(low), sha256(high))
    assert store.conflicts() == [conflict]
    taken = world.store(high)
    assert taken.accept(low, feeds=world.feeds(), now=T + 5).data == low
    assert taken.conflicts() == [conflict]
    with pytest.raises(PolicyError) as older:  # a lower revision is still a rollback
        store.accept(world.bundle(revision=5, now=T), feeds=world.feeds(), now=T + 5)
    assert older.value.reason is PolicyFailure.ROLLBACK


def test_a_lower_digest_bundle_of_another_signer_without_standing_is_refused() -> None:
    """bundles 1: another authority's key signs a revision-6 body naming this authority (no
    chain from it), its digest lower than the held one's: refused NOT_POLICY_ADMIN."""
    world, other = make_world(), make_world()
    kept = held_high(world)
    store = world.store(kept)
    mine = cbor.decode(other.bundle(revision=6, now=T))

    def forged(i: int) -> bytes:
        body = BundleBody.decode(mine[2])
        body = dataclasses.replace(body, authority=world.authority.identifier, issued_at=T + i)
        encoded = body.encode()
        return cbor.encode(
            [mine[0], mine[1], encoded, other.authority.signer.sign(encoded), *mine[4:]]
        )

    with pytest.raises(PolicyError) as refused:
        store.accept(below(kept, forged), feeds=world.feeds(), now=T + 5)
    assert refused.value.reason is PolicyFailure.NOT_POLICY_ADMIN
    held = store.active(world.authority.identifier)
    assert held is not None
    assert held.bundle.data == kept
    assert store.conflicts() == []


def signature_altered(data: bytes) -> Callable[[int], bytes]:
    """Signed bundle `data` with its signature altered, a different way for each `i`."""
    fields = cbor.decode(data)

    def altered(i: int) -> bytes:
        signature = bytearray(fields[3])
        signature[i % 64] ^= 1 + i // 64
        return cbor.encode([*fields[:3], bytes(signature), *fields[4:]])

    return altered


def test_a_lower_digest_bundle_with_a_bad_signature_is_refused() -> None:
    """bundles 1: the held revision-6 bundle's bytes with its signature altered, the digest
    lower: refused BAD_SIGNATURE (the lower digest is no standing)."""
    world = make_world()
    kept = held_high(world)
    store = world.store(kept)
    with pytest.raises(PolicyError) as refused:
        store.accept(below(kept, signature_altered(kept)), feeds=world.feeds(), now=T + 5)
    assert refused.value.reason is PolicyFailure.BAD_SIGNATURE
    held = store.active(world.authority.identifier)
    assert held is not None
    assert held.bundle.data == kept


def test_an_expired_lower_digest_bundle_is_refused() -> None:
    """bundles 1: a genuine revision-6 bundle of the authority, expired, its digest lower
    than the held one's (still in force): refused EXPIRED."""
    world = make_world()
    held_data = held_high(world)
    expired = below(held_data, lambda i: world.bundle(revision=6, now=T, ttl=60 + i))
    store = world.store(held_data)
    with pytest.raises(PolicyError) as refused:
        store.accept(expired, feeds=world.feeds(), now=T + 400)
    assert refused.value.reason is PolicyFailure.EXPIRED
    held = store.active(world.authority.identifier)
    assert held is not None
    assert held.bundle.data == held_data


def test_a_pull_converges_a_node_holding_the_higher_digest(tmp_path: Path) -> None:
    """The hub holds revision 2 of the lower digest, member b the higher (each took its own
    first): the hub answers b's `get [authority, 2, b's digest]` with its bundle, not one
    asking with the lower digest, and b's next round takes it and says the conflict in its
    status."""

    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        b = await net.member("agent-b")
        low, high = sorted((bundle(net, 2), bundle(net, 2, policies=TIGHTER)), key=sha256)
        b.policies.accept(high, now=net.clock.now())
        await install_on_hub(net, low)
        end = await b.channel_to(route(HUB))
        asked = [authority.digest, 2, sha256(high)]
        assert await call(b.router, (end.enc, POLICY), "get", asked) == low
        same = [authority.digest, 2, sha256(low)]
        assert await call(b.router, (end.enc, POLICY), "get", same) is None
        await b.maintain()
        held = b.policies.held(authority)
        assert held is not None
        assert held.bundle.data == low
        status = b.host.services["policy"].status()
        assert status["conflicts"] == [
            {
                "authority": str(authority),
                "revision": 2,
                "kept": sha256(low).hex(),
                "other": sha256(high).hex(),
            }
        ]

    run_memnet(test, tmp_path)


def test_the_signing_command_refuses_a_revision_its_node_holds(
    tmp_path: Path, troth_home: Path
) -> None:
    """`troth policy bundle create` on a node holding revision 1 of the authority refuses to
    sign another revision 1 (it would be a second bundle of that revision), and signs 2."""
    run("authority", "create", "acme")
    (tmp_path / "policies").write_text(POLICIES)
    (tmp_path / "tools").write_text(json.dumps(TOOLS))

    def create(revision: int, out: str, code: int = 0) -> object:
        return run_json(
            "policy", "bundle", "create", "--policies", str(tmp_path / "policies"), "--tools",
            str(tmp_path / "tools"), "--authority", "acme", "--as", "acme", "--revision",
            str(revision), "--out", str(tmp_path / out), "--node", "acme", code=code,
        )  # fmt: skip

    create(1, "r1")
    run_json("policy", "push", str(tmp_path / "r1"), "--node", "acme")
    refused = create(1, "again", code=1)
    assert isinstance(refused, dict)
    assert refused["reason"] == PolicyFailure.ROLLBACK.value
    assert "already holds revision 1" in refused["detail"]
    assert not (tmp_path / "again").exists()
    made = create(2, "r2")
    assert isinstance(made, dict)
    assert made["revision"] == 2


class BeforeDigests:
    """A policy service from before review 42b at `/service/policy`: `get [authority,
    revision]` only (three arguments refused as that version did), answering `data`."""

    name = "policy"
    oneway: Method | None = None

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.asked: list[int] = []
        self.methods: Mapping[str, Method] = {"get": Method(self.get, AnyAuthenticated())}

    async def get(self, arguments: Any, context: RequestContext) -> bytes:
        self.asked.append(len(arguments))
        try:
            cbor.expect_array(arguments, "get arguments", 2)
        except DecodeError as exc:
            raise RemoteError(str(exc)) from None
        return self.data

    async def maintain(self, now: int) -> None:
        """Nothing."""

    def status(self) -> dict[str, Any]:
        return {}


def test_a_pull_from_a_node_that_takes_no_digest_asks_again_without(tmp_path: Path) -> None:
    """Member b holds revision 1; the authority's node runs a policy service from before the
    digest (it refuses `get` with three arguments): b's pull asks again with two and takes
    revision 2 (a fleet upgraded in any order keeps pulling)."""

    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        b = await net.member("agent-b")
        b.policies.accept(bundle(net, 1), now=net.clock.now())
        hub = net.hub
        assert hub is not None
        hub.router.unregister(POLICY)
        old = BeforeDigests(bundle(net, 2))
        hub.add_service(old)
        service = b.host.services["policy"]
        assert isinstance(service, PolicyService)
        assert [v.body.revision for v in await service.pull()] == [2]
        assert old.asked == [3, 2]
        held = b.policies.held(authority)
        assert held is not None
        assert held.bundle.body.revision == 2

    run_memnet(test, tmp_path)
