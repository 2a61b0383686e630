"""Review 22j (gates): MAX_CEDAR_CHECKED_NODES (review 22i) prices a policy at its nodes in each
request environment, as if each node cost the validator the same. But Cedar's typechecker
carries the capabilities a `has` (or `.hasTag`) proves (`context has a && context.a > 1`)
into what it checks after it: the right of each `&&` and the `then` of each `if` are checked
with every capability proven to their left, and the set is copied at each node. A condition
of n distinct `has` guards joined by `&&` (or nested `if ... then`) costs n²/2 capability
copies in each environment (~70 ns each), not 3n nodes: a fragment of 64 x 64 entity types in
one action's `appliesTo` (4,096 environments, 6 KB with a context of 300 optional
attributes) and one 6 KB policy of 300 `context has a<j>` terms (3.7 M of the 16.8 M pairs)
took compile_policies ~38 s CPU; 300 `.hasTag` terms ~36 s; an `if` chain ~49 s; 300
`when { context has a<j> }` clauses of one policy (Cedar joins them with `&&`) ~65 s — for
`troth policy bundle create`, and every node verifying the bundle, each revision.

1. The test asserts the correct behaviour and was a strict xfail until MAX_CEDAR_CHECKED_NODES
   also charged each node the capabilities proven to its left (the `has`/`.hasTag` nodes left
   of each `&&`, in the condition of each `if` above it, and in the policy's other clauses).

2. MAX_CEDAR_CHECKED_NODES charges a policy naming its action (`action == A`) that action's
   environments only (review 22i, gates 3), but one naming its actions with `in`
   (`action in Action::"invoke:a"`, `action in [Action::"invoke:a", Action::"invoke:b"]`)
   every environment, though Cedar checks it in those actions' (and their members') only: a
   one-policy 3,000-element set literal with 300 tools validates in ~6 ms for `==`, `in A`
   or `in [A, B]`, ~78 ms for `in Action::"invoke"`. 300 tools and 2,000 ordinary tool
   policies each naming two tools (~1.2 s to validate; ~0.7 s named with `==`) were refused.
   The test was a strict xfail until an `in` scope was charged its actions' environments.

3. Cedar's validator parses the string literal given to an extension function (`decimal`,
   `ip`, `datetime`, `duration`) in each environment it checks the policy in (~6.6 ns a
   character), but MAX_CEDAR_CHECKED_NODES counts it as one node: 4,096 environments and one
   policy `decimal("1.000...")` of 400 KB took ~10.9 s (refused as invalid only afterwards),
   `ip`, `datetime`, `duration` ~7-8 s. The test was a strict xfail until such a string was
   counted a node per 8 characters.

4. Cedar's validator walks every request environment for every policy, to find those it
   applies to (~1.1 µs each), also for a policy naming its action, which MAX_CEDAR_CHECKED_NODES
   charges only that action's (review 22i, gates 3): 4,096 policies `forbid(principal, action
   == Action::"lease", resource);` (277 KB) and a fragment of 4,096 environments (one action
   for 64 x 64 types, 2 KB) took compile_policies ~18 s; 512 tools and the same policies ~3 s.
   The test was a strict xfail until each environment a policy is not checked in was counted
   10 nodes.
"""

from __future__ import annotations

import pytest

from tests.support.processes import cedar_child, survives
from troth.gates import compile_policies

_GUARDED = cedar_child(
    """\
kind, n = sys.argv[1], int(sys.argv[2])
types = ", ".join(f"P{i}" for i in range(64)), ", ".join(f"R{i}" for i in range(64))
fragment = "".join(f"entity P{i} tags Long; entity R{i};" for i in range(64))
context = "{" + ",".join(f"a{j}?: Long" for j in range(n if kind != "call" else 1)) + "}"
fragment += (
    f"action go appliesTo {{ principal: [{types[0]}], resource: [{types[1]}], "
    f"context: {context} }};"
)
if kind == "has":
    condition = " && ".join(f"context has a{j}" for j in range(n))
elif kind == "when":
    condition = " } when { ".join(f"context has a{j}" for j in range(n))
elif kind == "tag":
    condition = " && ".join(f'principal.hasTag("t{j}")' for j in range(n))
elif kind == "if":
    condition = "".join(f"if context has a{j} then " for j in range(n)) + "true"
    condition += " else false" * n
else:
    function = sys.argv[3]
    condition = f'{function}("1.{"0" * n}") == {function}("1.0")'
policies = f'@id("p") permit(principal, action, resource) when {{ {condition} }};'
"""
)


@pytest.mark.parametrize(
    ("kind", "n"),
    [
        ("has", 300),  # 6 KB policy, 4,096 environments: ~38 s
        ("tag", 300),  # ~36 s
        ("if", 200),  # an `if` chain of 300: ~49 s
        ("when", 300),  # 300 `when { context has a<j> }` clauses: ~65 s (a loaded machine)
    ],
)
def test_a_chain_of_guards_in_many_environments_is_refused(kind: str, n: int) -> None:
    """4,096 request environments and one policy of n distinct `has` (or `.hasTag`) guards
    joined by `&&` or nested `if ... then` (within every bound of review 22i): refused typed
    (OVER_LIMIT) before validation. In a child process limited to 1 GiB."""
    assert survives(_GUARDED, kind, str(n), timeout=300) == "refused over a limit\n"


@pytest.mark.parametrize("pair", [True, False])
def test_policies_naming_their_actions_with_in_are_charged_their_environments(pair: bool) -> None:
    """300 tools and 2,000 policies of the docs' kind, each naming one or two tools' actions with
    `in` (which Cedar checks in those actions' environments only): compiles."""
    tools = {
        f"t{i}": {"type": "object", "properties": {"fmt": {"type": "string"}}} for i in range(300)
    }
    named = [f'Action::"invoke:t{k % 300}"' for k in range(2000)]
    if pair:
        named = [
            f'[{action}, Action::"invoke:t{(k * 7 + 1) % 300}"]' for k, action in enumerate(named)
        ]
    policies = "".join(
        f'@id("q{k}") forbid(principal, action in {action}, resource) when {{ '
        f'principal.purpose like "/etc/*" || context.args has fmt && context.args.fmt == "csv" }};'
        for k, action in enumerate(named)
    )
    assert len(compile_policies(policies, "", tools).policy_ids) == 2000


@pytest.mark.parametrize("function", ["decimal", "ip"])
def test_a_long_extension_literal_in_many_environments_is_refused(function: str) -> None:
    """4,096 request environments and one policy `decimal("1.000...")` (or `ip(...)`) of 200 KB
    (~5 s, its string parsed in each environment): refused typed (OVER_LIMIT) before
    validation. In a child process limited to 1 GiB."""
    assert survives(_GUARDED, "call", "200000", function, timeout=300) == "refused over a limit\n"


_SCANNED = cedar_child(
    """\
types = ", ".join(f"P{i}" for i in range(64)), ", ".join(f"R{i}" for i in range(64))
fragment = "".join(f"entity P{i}; entity R{i};" for i in range(64))
fragment += f"action go appliesTo {{ principal: [{types[0]}], resource: [{types[1]}] }};"
policies = "".join(
    f'@id("q{k}") forbid(principal, action == Action::"lease", resource);' for k in range(4096)
)
"""
)


def test_many_policies_naming_their_action_in_many_environments_are_refused() -> None:
    """4,096 policies naming `lease` and 4,096 request environments (~18 s, each policy
    walking every environment): refused typed (OVER_LIMIT). In a child process limited to
    1 GiB."""
    assert survives(_SCANNED, timeout=300) == "refused over a limit\n"
