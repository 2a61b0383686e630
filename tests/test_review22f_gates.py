"""Review 22f (gates): `cedar_refusal` bounds what makes cedarpy's parser recurse (brackets,
operator chains), but not what its schema makes of a hierarchy: Cedar computes, for every
entity type and every action, all its ancestors (the transitive closure of `in`), so a chain
`entity b in [a]; entity c in [b]; ...` of n declarations holds n²/2 pairs. A schema fragment
within MAX_POLICY_SCHEMA_TEXT (64 KiB) holds a chain of ~3,300 entity types (or ~2,700 actions
`action "b" in ["a"]; ...`): compile_policies then takes seconds and ~1.1 GB (~2.2 GB for the
actions) — `troth policy bundle create`, and every node verifying a bundle its policy-admin
signed, each revision again: a node with less memory is killed (OOM), one with enough stalls.
Each declaration has one operator and no nesting: the scan passes it.

The first test asserts the correct behaviour and was a strict xfail until the scan also
bounded a schema's hierarchy: declarations whose ancestors through `in` (names resolved as
Cedar resolves them, across namespaces) add up to more than MAX_CEDAR_ANCESTORS pairs are
refused before cedarpy reads them; the second pins that reading.

2. the same fragment size buys validation time: Cedar's validator checks a policy that does
   not name its action once for every (principal type, resource type) an action applies to.
   One action for 1,000 x 1,000 types (24 KiB) makes compile_policies take ~6 s for 4 policies
   (~1.2 s each; a bundle holds up to 4,096); 2,500 x 2,500 (64 KiB) ~9 s and 1.6 GB for one.
   The third test asserts the correct behaviour and was a strict xfail until the scan bounded
   the request environments a fragment's actions make (MAX_CEDAR_ENVIRONMENTS).
"""

from __future__ import annotations

import pytest

from tests.support.processes import survives
from troth.gates.nesting import cedar_refusal

_HIERARCHY = """\
import resource, string, sys
from troth.errors import PolicyError
from troth.gates import compile_policies
kind = sys.argv[1]

def name(i):  # aaa, aab, ...: three letters, no keyword
    letters = string.ascii_lowercase
    return "".join(letters[i // 676 % 26] + letters[i // 26 % 26] + letters[i % 26])

if kind == "entities":
    fragment = "entity " + name(0) + ";"
    piece = lambda i: f"entity {name(i)} in [{name(i - 1)}];"
else:
    fragment = 'entity Who; action "' + name(0) + '";'
    piece = lambda i: f'action "{name(i)}" in ["{name(i - 1)}"];'
i = 1
while len(fragment) + len(piece(i)) <= 64 * 1024:
    fragment += piece(i)
    i += 1
try:
    compile_policies('@id("x") permit(principal, action, resource);', fragment, {})
    outcome = "compiled"
except PolicyError as exc:
    outcome = f"refused {exc.reason.value}"
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(i, outcome, peak, "MiB")
"""


@pytest.mark.parametrize("kind", ["entities", "actions"])
def test_a_schema_chain_of_parents_is_refused_before_cedar_builds_its_closure(kind: str) -> None:
    """A 64 KiB schema fragment of one chain of parents (entity types, or actions): refused
    typed (OVER_LIMIT), without cedarpy's gigabyte."""
    out = survives(_HIERARCHY, kind, timeout=300)
    assert " refused over a limit " in out, out


def test_a_chain_across_namespaces_is_counted_as_cedar_resolves_it() -> None:
    """The same chain written across namespaces (qualified parents, an unqualified one
    resolved in its own namespace or else the empty one) is counted as one chain; 2,100 types
    in one group, in a namespace, are not a hierarchy to refuse."""
    entities = "namespace N0 { entity E; }" + "".join(
        f"namespace N{i} {{ entity E in [N{i - 1}::E]; }}" for i in range(1, 600)
    )
    actions = 'namespace N0 { action "a"; }' + "".join(
        f'namespace N{i} {{ action "a" in [N{i - 1}::Action::"a"]; }}' for i in range(1, 600)
    )
    local = (
        "namespace App { entity G;"
        + "".join(f"entity T{i} in [{'G' if i == 0 else f'T{i - 1}'}];" for i in range(600))
        + "}"
    )
    escaped = 'action "a0";' + "".join(  # each parent written with an escape (\u{61}: a)
        f'action "a{i}" in ["\\u{{61}}{i - 1}"];' for i in range(1, 600)
    )
    annotated = "entity a0;" + "".join(f"@x entity a{i} in [a{i - 1}];" for i in range(1, 600))
    for chain in (entities, actions, local, escaped, annotated):
        assert cedar_refusal(chain, schema=True) is not None, chain[:60]
    teams = "namespace App { entity Group;" + "".join(
        f"entity T{i} in [Group];" for i in range(2100)
    )
    assert cedar_refusal(teams + "}", schema=True) is None


_ENVIRONMENTS = """\
import resource, sys, time
from troth.errors import PolicyError
from troth.gates import compile_policies
types = int(sys.argv[1])
principals = ", ".join(f"P{i}" for i in range(types))
resources = ", ".join(f"R{i}" for i in range(types))
fragment = (
    f"entity {principals}; entity {resources};\\n"
    f'action "go" appliesTo {{ principal: [{principals}], resource: [{resources}] }};'
)
policies = "".join(
    f'@id("p{n}") permit(principal, action, resource) when {{ principal == resource }};'
    for n in range(4)
)
began = time.process_time()
try:
    compile_policies(policies, fragment, {})
    outcome = "compiled"
except PolicyError as exc:
    outcome = f"refused {exc.reason.value}"
took = time.process_time() - began
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(len(fragment), outcome, f"{took:.1f} s", peak, "MiB")
"""


def test_an_action_for_a_thousand_by_a_thousand_types_is_refused_before_validation() -> None:
    """One action that applies to 1,000 principal types and 1,000 resource types (a 24 KiB
    fragment): Cedar's validator checks every policy that does not name its action once per
    (principal type, resource type) pair, a million times — ~1.2 s a policy (MAX_POLICIES is
    4,096: over an hour a bundle), and 2,500 by 2,500 in a 64 KiB fragment takes ~9 s and
    1.6 GB for one policy. Refused typed (OVER_LIMIT) instead."""
    out = survives(_ENVIRONMENTS, "1000", timeout=300)
    assert " refused over a limit " in out, out
