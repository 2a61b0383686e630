"""Review 65m: attacks on 65g's tool listing and 65f's admin chain that did not work, each kept
as a test of the defence it names (it fails if that defence breaks).

- False hides by 65g's preview context (arguments' names known, values and `now` unknown,
  evaluated without the schema): a caveat calling an extension function on an argument
  (`ip(context.args.addr).isInRange(...)`), a set operation, `like`, a tag named by an argument
  (`principal.hasTag(context.args.key)`), arithmetic, record equality of `context.args`, a
  `has` test, and a permit on the action group (`action in Action::"invoke"`: the hierarchy is
  the entities', not the schema's) each stay a residual in the preview: the tool is shown, and
  a call meeting the condition is allowed.
- A property filled from its `default` counts as present in the preview as at every call: a
  caveat `context.args has fmt && context.args.fmt == "csv"` shows `export_customers`, whose
  call without `fmt` is allowed (judged with the default).
- False shows: a forbid that surely applies to every call (`context.args has order_id` on a tool
  requiring it) hides the tool, and the call is denied.
- 65f's `best(uncaveated=True)`: a caveat on a middle link (not the leaf) of a three-link
  policy-admin chain is seen; that chain is passed over for an uncaveated one expiring sooner.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.gates import T, export_customers, lookup_order, make_world
from tests.support.parties import make_party
from troth.authority.core import ROLE
from troth.clock import FixedClock
from troth.credentials import (
    Attributes,
    CredentialChain,
    VerifiedCredential,
    delegate,
    issue_credential,
)
from troth.gates import ListRecorder, Tool, ToolGate
from troth.gates.bundles import POLICY_ADMIN
from troth.node import init_node, open_node
from troth.node.services.policy import admin_chain
from troth.vault import SoftwareVault

NOW = T + 10
DAY = 86_400


def probe(addr: str, n: int, tags: list[str], key: str) -> str:
    """A tool with an argument of each kind, all required."""
    return "ran"


GOOD = {"addr": "10.1.2.3", "n": 5, "tags": ["a", "b"], "key": "orders.access"}


def _gate(caveat: str, tools: list[Tool], policies: str) -> tuple[ToolGate, VerifiedCredential]:
    world = make_world(sub_caveats=(caveat,))
    bundle = world.bundle(policies=policies, tools={t.name: t.input_schema for t in tools})
    gate = ToolGate(world.point(world.store(bundle), ListRecorder()), tools, clock=FixedClock(NOW))
    return gate, world.credential(world.sub_chain, world.sub)


@pytest.mark.parametrize(
    "caveat",
    [
        'ip(context.args.addr).isInRange(ip("10.0.0.0/8"))',
        'context.args.tags.containsAll(["a", "b"]) && context.args.addr like "10.*"',
        'principal.hasTag(context.args.key) && principal.getTag(context.args.key).contains("read")',
        "context.args.n * 2 + 1 > 10",
        'context.args == {"addr": "10.1.2.3", "n": 5, "tags": ["b", "a"], "key": "orders.access"}',
        "context.args has n && context.now > 0",
    ],
)
def test_a_condition_on_unknown_argument_values_still_shows_the_tool(caveat: str) -> None:
    policies = '@id("all") permit(principal, action in Action::"invoke", resource);\n'
    gate, sub = _gate(caveat, [Tool.from_function(probe)], policies)
    assert [t.name for t in gate.available_tools(sub)] == ["probe"]
    assert gate.invoke(sub, "probe", GOOD).allowed


def test_a_defaulted_argument_is_present_in_the_preview_as_at_every_call() -> None:
    policies = (
        '@id("e") permit(principal, action == Action::"invoke:export_customers", resource);\n'
    )
    caveat = 'context.args has fmt && context.args.fmt == "csv"'
    gate, sub = _gate(caveat, [Tool.from_function(export_customers)], policies)
    assert [t.name for t in gate.available_tools(sub)] == ["export_customers"]
    assert gate.invoke(sub, "export_customers", {}).allowed
    assert not gate.invoke(sub, "export_customers", {"fmt": "json"}).allowed


def test_a_forbid_applying_to_every_call_hides_the_tool() -> None:
    policies = (
        '@id("l") permit(principal, action == Action::"invoke:lookup_order", resource);\n'
        '@id("f") forbid(principal, action == Action::"invoke:lookup_order", resource)\n'
        "  when { context.args has order_id };\n"
    )
    gate, sub = _gate("true", [Tool.from_function(lookup_order)], policies)
    assert gate.available_tools(sub) == []
    assert not gate.invoke(sub, "lookup_order", {"order_id": "o1"}).allowed


def test_a_caveat_on_a_middle_link_is_not_an_uncaveated_admin_chain(tmp_path: Path) -> None:
    vault = SoftwareVault()
    acme, nora, bob = (make_party(vault, now=T) for _ in range(3))
    admin = Attributes({ROLE: POLICY_ADMIN})
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        me = node.identities.create(now=T, name="me")
        own = issue_credential(
            acme.signer, subject=me.identifier, attributes=admin, now=T, ttl=5 * DAY, depth=1
        )
        direct = CredentialChain((own,), (acme.identity.history,)).encode()
        to_nora = issue_credential(
            acme.signer, subject=nora.identifier, attributes=admin, now=T, ttl=20 * DAY, depth=3
        )
        to_bob = delegate(
            nora.signer,
            CredentialChain((to_nora,), (acme.identity.history,)),
            subject=bob.identifier,
            attributes=admin,
            now=T,
            ttl=18 * DAY,
            purpose="tool calls under 100",
            caveats=["context has args && context.args.amount <= 100"],
        )
        middle = delegate(
            bob.signer, to_bob, subject=me.identifier, attributes=admin, now=T, ttl=15 * DAY,
            purpose="pass it on",
        ).encode()  # fmt: skip
        node.wallet.hold("me", direct, now=T + 5)
        node.wallet.hold("me", middle, now=T + 5)  # expires last, its leaf uncaveated
        assert node.wallet.best("me", now=T + 10) == middle
        assert admin_chain(node, "me", acme.identifier, now=T + 10) == direct
