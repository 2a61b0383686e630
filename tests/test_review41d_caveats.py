"""Review 41d, caveats: what a member's caveated delegations cost a node (docs/policy.md,
"Caveats" and "Speed").

caveats 1: the engine keeps, per verified chain with caveats, the bundle's policy set with the
chain's caveats added (`PolicySet.with_added_str`: the base is copied, its policy text with
it), up to CACHE_ENTRIES (4,096) chains, whatever the bundle's size. A member mints caveated
delegations for free (fresh identities, a `true` caveat) and has each of them make one call:
under a bundle of 400 KB of policy text every chain kept ~0.4 MB, and 4,096 of them ~1.7 GB
per engine (2 GB near MAX_POLICY_TEXT), until the node ran out of memory. A chain without
caveats shares the bundle's set and costs nothing of the kind.
"""

from __future__ import annotations

from tests.support.gates import POLICIES, GatesWorld, T, make_world
from tests.support.parties import make_party
from troth.credentials import Attributes, CredentialChain, VerifiedCredential, delegate
from troth.gates import ToolCall

LOOKUP = ToolCall("lookup_order", {"order_id": "4471"})
CHAINS = 200
BIG_TEXT = 400_000


def _resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 1e6


def caveated_callers(
    world: GatesWorld, count: int, caveats: tuple[str, ...]
) -> list[VerifiedCredential]:
    """`count` fresh delegates of the support agent, each delegation carrying `caveats`."""
    support = CredentialChain.decode(world.support_chain)
    callers = []
    for _ in range(count):
        party = make_party(world.vault, now=T)
        chain = delegate(
            world.support.signer,
            support,
            subject=party.identifier,
            attributes=Attributes({"orders.access": "read"}),
            now=T,
            ttl=86_400,
            purpose="lookups",
            caveats=caveats,
        )
        callers.append(world.credential(chain.encode(), party))
    return callers


def test_caveated_chains_keep_a_bounded_copy_of_a_big_bundle() -> None:
    """caveats 1: 200 caveated delegates of one member, one call each, under a bundle of
    400 KB of policy text: every call is decided (allowed, the caveat holds), and the engine
    keeps less than 40 MB for them (80 MB before: a copy of the text per chain). Was a strict
    xfail until `PolicyEngine` kept at most MAX_CAVEATED_POLICY_TEXT / the text's length
    caveated chains' policy sets (the others are built again at each call)."""
    world = make_world()
    big = (
        POLICIES
        + '@id("big") forbid(principal, action == Action::"invoke:lookup_order", resource) '
        + f'when {{ context.args.order_id == "{"x" * BIG_TEXT}" }};\n'
    )
    point = world.point(world.store(world.bundle(policies=big)))
    callers = caveated_callers(world, CHAINS, ("true",))
    before = _resident_mb()
    decisions = [point.decide(caller, LOOKUP, now=T + 10) for caller in callers]
    grown = _resident_mb() - before
    assert all(d.allowed and d.policies == ("lookup",) for d in decisions)
    assert grown < 40, f"{grown:.0f} MB for {CHAINS} caveated chains"
