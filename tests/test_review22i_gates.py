"""Review 22i (gates): the bounds of review 22h price each policy at the request environments
it is checked in (MAX_CEDAR_ACTION_PAIRS) and at the record types its comparisons walk
(MAX_CEDAR_COMPARED_NODES), but not at its own size: Cedar's validator typechecks every policy
in each request environment it applies to, each node of its condition each time. A fragment of
64 x 64 entity types in one action's `appliesTo` (4,096 environments, 2 KB: within
MAX_CEDAR_ENVIRONMENTS) and one policy whose condition is a set literal of 40,000 `1`s (80 KB:
one bracket, no operators) took compile_policies ~13 s; 512 KiB of it ~80 s; 2,000 small
policies (177 KB) ~15 s; a record literal of 5,000 attributes (39 KB) ~5.7 s — for
`troth policy bundle create`, and every node verifying the bundle, each revision.

1. The test asserts the correct behaviour and was a strict xfail until compile_policies bounded
   the request environments times each policy's nodes (MAX_CEDAR_CHECKED_NODES, 2^24).

2. MAX_CEDAR_COMPARED_NODES counts a comparison of two non-literal values as one walk of the
   largest record type, but a record literal of 1,000 attributes each `context` is a type of
   1,000 contexts: `{k0: context, ..., k999: context} == {...}` (22 KB) with a context of
   3,000 attributes walks ~3 M nodes (~0.36 s), counted 6,000; 5 such policies took ~1.9 s, and
   501 KB of them (18, a context of 5,000) ~10.5 s. The test asserts the correct behaviour and was a
   strict xfail until each side of a comparison is counted as the values in its record and set
   literals.

3. MAX_CEDAR_CHECKED_NODES (1) charged every policy all of the schema's environments, but Cedar
   checks a policy naming its action (`action == Action::"a"`) in that action's only: 512 tools
   and 1,600 small policies each naming its tool were falsely refused. The test was a strict
   xfail until such a policy was charged its action's environments.
"""

from __future__ import annotations

import pytest

from tests.support.processes import cedar_child, survives
from troth.gates import compile_policies
from troth.gates.policies import CHILD_MALLOC, _child_environment

_SIZED = cedar_child(
    """\
kind, n = sys.argv[1], int(sys.argv[2])
types = ", ".join(f"P{i}" for i in range(64)), ", ".join(f"R{i}" for i in range(64))
fragment = "".join(f"entity P{i}; entity R{i};" for i in range(64))
fragment += f"action go appliesTo {{ principal: [{types[0]}], resource: [{types[1]}] }};"
if kind == "set":
    conditions = ["[" + ",".join(["1"] * n) + "].contains(1)"]
elif kind == "record":
    conditions = ["{" + ",".join(f"a{j}: 1" for j in range(n)) + "} has a0"]
else:
    conditions = ["[1, 2, 3, 4, 5, 6, 7, 8].contains(1)"] * n
policies = "".join(
    f'@id("p{k}") permit(principal, action, resource) when {{ {c} }};'
    for k, c in enumerate(conditions)
)
"""
)


@pytest.mark.parametrize(
    ("kind", "n", "outcome"),
    [
        # 4,097 environments (4,096 and `lease`) x (4,089 elements + 6 nodes) = 16,777,215,
        # within MAX_CEDAR_CHECKED_NODES (2^24); one element more is past it
        ("set", 4_089, "compiled"),
        ("set", 4_090, "refused over a limit"),
        ("set", 20_000, "refused over a limit"),  # 40 KB: ~6.5 s (40,000: ~13 s)
        ("record", 5_000, "refused over a limit"),  # 39 KB: ~5.7 s
        ("policies", 2_000, "refused over a limit"),  # 177 KB: ~15 s
    ],
)
def test_a_large_policy_in_many_environments_is_refused(kind: str, n: int, outcome: str) -> None:
    """4,096 request environments (within MAX_CEDAR_ENVIRONMENTS) and policies whose nodes the
    validator typechecks in each: within MAX_CEDAR_CHECKED_NODES they compile; past it refused
    typed (OVER_LIMIT) before validation. In a child process limited to 1 GiB."""
    assert survives(_SIZED, kind, str(n), timeout=300) == outcome + "\n"


_RECORDS = cedar_child(
    """\
width, attributes, count = (int(a) for a in sys.argv[1:4])
fragment = "type R = {" + ",".join(f"a{j}: Long" for j in range(attributes)) + "};"
fragment += "entity E; action go appliesTo { principal: E, resource: E, context: R };"
record = "{" + ",".join(f"k{j}: context" for j in range(width)) + "}"
policies = "".join(
    f'@id("p{k}") permit(principal, action == Action::"go", resource) '
    f"when {{ {record} == {record} }};"
    for k in range(count)
)
"""
)


def test_comparisons_of_record_literals_are_counted_by_their_values() -> None:
    """5 policies each comparing two record literals of 1,000 contexts (a context of 3,000
    attributes; ~1.9 s, 512 KiB of them far more): refused typed (OVER_LIMIT) by
    MAX_CEDAR_COMPARED_NODES. In a child process limited to 1 GiB."""
    assert survives(_RECORDS, "1000", "3000", "5", timeout=300) == "refused over a limit\n"


def test_a_tool_server_bundle_compiles() -> None:
    """200 tools (each with an argument record) and a dozen policies, some naming `invoke`, one
    a list of 50 names: not refused by any cost bound."""
    tools = {
        f"tool_{i}": {
            "type": "object",
            "properties": {"path": {"type": "string"}, "limit": {"type": "integer"}},
            "required": ["path"],
        }
        for i in range(200)
    }
    names = ", ".join(f'"n{j}"' for j in range(50))
    policies = "".join(
        f'@id("p{k}") permit(principal, action in Action::"invoke", resource) when {{ '
        f'principal.depth <= {k} && principal.purpose like "ops*" && [{names}].contains('
        "principal.authority) };"
        for k in range(6)
    ) + "".join(
        f'@id("q{k}") forbid(principal, action == Action::"invoke:tool_{k}", resource) when {{ '
        f'context.args.path like "/etc/*" || context.args has limit && context.args.limit > 9 }};'
        for k in range(6)
    )
    compiled = compile_policies(policies, "", tools)
    assert len(compiled.policy_ids) == 12


def test_policies_naming_their_action_are_charged_its_environments() -> None:
    """512 tools (513 environments) and 1,600 policies of 25 nodes each naming its tool's action
    (`action == Action::"invoke:t<k>"`, which Cedar checks in that action's one environment
    only): compiles (charged every environment, 20.5 M pairs were refused)."""
    tools = {f"t{i}": {"type": "object"} for i in range(512)}
    policies = "".join(
        f'@id("q{k}") forbid(principal, action == Action::"invoke:t{k % 512}", resource) when '
        '{ principal.purpose like "/etc/*" || principal has delegator && principal.depth > 9 };'
        for k in range(1600)
    )
    assert len(compile_policies(policies, "", tools).policy_ids) == 1600


def test_the_validating_child_runs_with_the_heap_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The child validating a big text gets glibc's allocator settings (`CHILD_MALLOC`) added to
    the node's own GLIBC_TUNABLES: without them the policy at MAX_CEDAR_CHECKED_NODES above
    took 7.1 s of CPU time on a virtual machine (4.2 s of page faults), against the 8 s of
    MAX_CEDAR_VALIDATION_CPU_SECONDS; 2.6 s with them."""
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    assert _child_environment()["GLIBC_TUNABLES"] == CHILD_MALLOC
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.pthread.rseq=0")
    assert _child_environment()["GLIBC_TUNABLES"] == f"glibc.pthread.rseq=0:{CHILD_MALLOC}"
