"""Review 22h (gates): `cedar_refusal` bounds a schema fragment's nesting, operators, hierarchy
(MAX_CEDAR_ANCESTORS) and request environments (MAX_CEDAR_ENVIRONMENTS), but not what its
common types make: Cedar expands every `type` where it is used, and cedarpy's Schema.from_str
walks each expansion. A chain `type T1 = {a: T0, b: T0}; type T2 = {a: T1, b: T1}; ...` of n
declarations, each one bracket deep and one operator long, expands to 2^n: 30 of them (812
bytes) take compile_policies ~8 s, and each one more doubles it (40: hours) — `troth policy
bundle create`, and every node verifying a bundle its policy-admin signed, each revision
again. The types need not be used; written across
namespaces (`N1::T`), as empty records, in `Set<...>`, in an entity's attributes, `tags` or an
action's `context`, they cost the same.

Each test asserts the correct behaviour and was a strict xfail until the scan also bounded the
type nodes a fragment's types make with its common types expanded (MAX_CEDAR_TYPE_NODES).

2. the hierarchy count itself (`_ancestors`, review 22f) never ends on a cycle: a parent still
   being counted is pushed again, forever — `entity Group in [Group];` (groups of groups, a
   schema Cedar takes; any cycle of entity types or actions) makes `cedar_refusal` allocate
   ~200 MB a second until the process is out of memory: `troth policy bundle create`, and a
   node verifying any bundle with such a schema (compile_policies runs before the signer is
   checked against `known`).

The test asserts the correct behaviour and was a strict xfail until the count walked each
declaration's ancestors on its own (a cycle's members each get all of the cycle's).

3. an action's parent is resolved as an entity type's is: `Action::"a"` or `"a"` inside
   `namespace N` names N's action when N declares one, else the empty namespace's. The scan
   kept `Action::"a"` in the empty namespace and `"a"` in N, so a chain written
   `action "b" in [Action::"a"];` inside a namespace (or across one) was counted as links of
   one: a 64 KiB fragment of 2,040 such actions passed and took cedarpy 1.25 GB.

The test asserts the correct behaviour and was a strict xfail until the scan resolved an
action's parent as Cedar does.

4. Cedar's strings know `\\x` escapes of an ASCII character (`\\x6a` is `j`) besides
   `\\u{...}` (review 22f): the scan read `\\x6a` as `x6a`, so a chain whose parents are
   written so was counted as links of one.

The test asserts the correct behaviour and was a strict xfail until the scan read them.

5. what the validator pays per comparison grows with the record compared: `context ==
   context` walks every attribute of the context's type (~120 ns each), so a wide record in the
   schema times many comparisons in the policies is quadratic in the bundle — a 64 KiB context
   of 8,000 attributes and 141 KiB of such policies took ~6.6 s, 512 KiB of them ~25 s, for
   each bundle, each revision, on every node verifying it. The scan bounds the schema's nodes
   (MAX_CEDAR_TYPE_NODES: a flat schema is within it) but not their product with the policies'
   comparisons.

The test asserts the correct behaviour and was a strict xfail until compile_policies bounded
the product of the composed schema's environments, its largest record type (nodes, nested
records and common types expanded) and the policies' comparisons of two non-literal values
(MAX_CEDAR_COMPARED_NODES). A bound on a record's width alone is none: records nest (64
records of 250 are 16,128 nodes), and each environment walks again (4,096 environments of
such a context: ~5 s for one `context == context`).

6. MAX_CEDAR_ENVIRONMENTS bounds the request environments, but a policy that constrains
   `action in Action::"g"` costs each of them the group's size: 4,000 actions in one group,
   each with one environment (27 KB), took the validator ~0.1 s a policy (~7 min for 4,096);
   a group without environments of its own counts too, and `action in [g, g, ...]` multiplies
   it by the entries.

The test asserts the correct behaviour and was a strict xfail until compile_policies bounded,
over the policies' `in`s naming action groups (scope and conditions, from their JSON form),
the sum of request environments x (1 + the descendants of each group named)
(MAX_CEDAR_ACTION_PAIRS, 2^26). 6b: the scan did not count the environments of an action
written `in [g] appliesTo` (a parent list) at all.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.support.processes import cedar_child, survives
from troth.errors import PolicyError, PolicyFailure
from troth.gates import compile_policies
from troth.gates.nesting import cedar_refusal

_DOUBLING = cedar_child(
    """\
n = int(sys.argv[1])
fragment = "type T0 = {a: __cedar::Long};" + "".join(
    f"type T{i} = {{a: T{i - 1}, b: T{i - 1}}};" for i in range(1, n)
)
policies = '@id("x") permit(principal, action, resource);'
"""
)


def test_a_chain_of_doubling_common_types_is_refused_before_cedar_expands_it() -> None:
    """28 common types, each a record of two of the one before (764 bytes): compile_policies
    takes ~3 s (30: ~8 s; each one more doubles it). Refused typed (OVER_LIMIT) instead, in a
    child process (what it costs stays out of the test's process)."""
    out = survives(_DOUBLING, "28", timeout=300)
    assert out.startswith("refused over a limit"), out


def _chain(n: int, body: str, first: str = "type T0 = {};") -> str:
    return first + "".join(body.format(i=i, p=i - 1) for i in range(1, n))


def test_common_types_are_counted_as_cedar_expands_them() -> None:
    """The doubling chain however it is written (each form measured: from_str takes as long
    as the plain chain) is counted as Cedar expands it, and so is a large type used many
    times (64 uses of 2^17 nodes in an action's context, 1.1 KB: one `context == context` in
    a policy takes the validator ~0.7 s, and a bundle holds 512 KiB of policies); a schema
    that reuses a common type as schemas do (an address type in 200 entity types) is not
    refused."""
    n = 40
    doubling = "type T{i} = {{a: T{p}, b: T{p}}};"
    fields = "{" + ", ".join(f"x{j}: T16" for j in range(64)) + "}"
    used = _chain(17, doubling)  # 2^17 type nodes, used 64 times in each of the last three
    fragments = [
        _chain(n, doubling, "type T0 = {a: __cedar::Long};"),
        _chain(n, doubling),  # of empty records
        _chain(n, "type T{i} = {{a: Set<T{p}>, b: Set<T{p}>}};"),
        _chain(n, '@doc("x") type T{i} = {{@doc("y") "a": T{p}, b?: T{p}}};'),
        "namespace N0 { type T = {}; }"
        + "".join(
            f"namespace N{i} {{ type T = {{a: N{i - 1}::T, b: N{i - 1}::T}}; }}"
            for i in range(1, n)
        ),
        _chain(n, doubling) + f"namespace N {{ type U = {{a: T{n - 1}, b: T{n - 1}}}; }}",
        used + f"entity E = {fields};",
        used + f"entity E; action go appliesTo {{ principal: E, resource: E, context: {fields} }};",
        used + f"entity E tags {fields};",
    ]
    for fragment in fragments:
        assert cedar_refusal(fragment, schema=True) is not None, fragment[-80:]
    address = "type Address = {street: String, city: String, zip: String, country: String};"
    reuse = address + "".join(
        f"entity E{j} {{ home: Address, work?: Address, past: Set<Address> }};" for j in range(200)
    )
    assert cedar_refusal(reuse, schema=True) is None


_CYCLE = """\
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1024 * 2**20, 1024 * 2**20))
from troth.errors import PolicyError
from troth.gates import compile_policies
try:
    compile_policies('@id("x") permit(principal, action, resource);', sys.argv[1], {})
    print("compiled")
except PolicyError as exc:
    print("refused", exc.reason.value)
"""


@pytest.mark.parametrize(
    ("fragment", "outcome"),
    [
        ("entity Group in [Group];", "compiled"),  # groups of groups: Cedar takes the cycle
        ("entity a in [b]; entity b in [a];", "compiled"),
        ('action "a" in ["b"]; action b in a;', "refused schema invalid or unsupported"),
    ],
)
def test_a_cycle_in_the_hierarchy_is_counted_and_ends(fragment: str, outcome: str) -> None:
    """A schema fragment whose hierarchy has a cycle: the scan ends, and cedarpy takes it (a
    cycle of entity types) or refuses it (of actions, SCHEMA_INVALID), in a child process
    limited to 1 GiB and 60 s (before the fix the scan ran out of memory in ~4 s)."""
    try:
        out = survives(_CYCLE, fragment, timeout=60)
    except (AssertionError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"the scan did not end: {str(exc)[-200:]}")
    assert out == outcome + "\n", out


def _action_chains(n: int) -> dict[str, str]:
    """Chains of n actions whose parents name them as Cedar resolves them, but the scan did not:
    `Action::"a"` inside a namespace names that namespace's action when it declares one, and an
    unqualified `"a"` the empty namespace's when the namespace does not."""
    local = 'namespace N { action "a0";' + "".join(
        f'action "a{i}" in [Action::"a{i - 1}"];' for i in range(1, n)
    )
    across = "namespace N {" + "".join(f'action "b{i}" in ["t{i}"];' for i in range(n // 2)) + "}"
    across += 'action "t0";' + "".join(
        f'action "t{i}" in [N::Action::"b{i - 1}"];' for i in range(1, n // 2)
    )
    named = 'namespace Action { action "a0";' + "".join(  # a namespace named Action
        f'action "a{i}" in [Action::Action::"a{i - 1}"];' for i in range(1, n)
    )
    return {"local": local + "}", "across": across, "named Action": named + "}"}


@pytest.mark.parametrize("form", ["local", "across", "named Action"])
def test_a_chain_of_actions_inside_a_namespace_is_counted(form: str) -> None:
    """A chain of 600 actions written so (180,000 ancestor pairs; ~150 MiB in cedarpy, and a
    64 KiB fragment of 2,040 of them took 1.25 GB and ~5 s) is refused over a limit."""
    fragment = _action_chains(600)[form]
    assert cedar_refusal(fragment, schema=True) is not None
    with pytest.raises(PolicyError) as refused:
        compile_policies('@id("x") permit(principal, action, resource);', fragment, {})
    assert refused.value.reason is PolicyFailure.OVER_LIMIT


def test_a_chain_of_actions_named_with_hex_escapes_is_counted() -> None:
    """Cedar reads `\\x6a` (`\\x00` to `\\x7f`, either hex case) in a string as `j`: a chain
    of 600 actions whose parents are written so (180,000 ancestor pairs; ~150 MiB in cedarpy,
    and a 64 KiB chain of actions took 2.2 GB) is refused over a limit."""
    fragment = 'action "j0";' + "".join(
        f'action "j{i}" in ["\\x6{"aA"[i % 2]}{i - 1}"];' for i in range(1, 600)
    )
    assert cedar_refusal(fragment, schema=True) is not None
    with pytest.raises(PolicyError) as refused:
        compile_policies('@id("x") permit(principal, action, resource);', fragment, {})
    assert refused.value.reason is PolicyFailure.OVER_LIMIT


_WIDE = cedar_child(
    """\
fragment = "entity A; action go appliesTo { principal: [A], resource: [A], context: {"
fragment += ",".join(f"a{j}:A" for j in range(int(sys.argv[1]))) + "}};"
terms = " && ".join(["context == context"] * 400)
policies = "".join(
    f'@id("p{k}") permit(principal, action, resource) when {{ {terms} }};'
    for k in range(int(sys.argv[2]))
)
"""
)


def test_a_wide_context_compared_in_every_policy_is_refused_before_validation() -> None:
    """A context of 8,000 attributes (64 KiB) and 16 policies of 400 `context == context`
    (140 KiB): Cedar's validator walks every attribute for each comparison (~120 ns each),
    ~6 s; the full 512 KiB of such policies ~25 s for one bundle (each revision, on every node
    verifying it). Refused typed (OVER_LIMIT) instead, in a child process."""
    out = survives(_WIDE, "8000", "16", timeout=300)
    assert out.startswith("refused over a limit"), out


_GROUP = cedar_child(
    """\
members, count = int(sys.argv[1]), int(sys.argv[2])
fragment = "entity E; action g; action " + ", ".join(f"a{i}" for i in range(members))
fragment += " in [g] appliesTo { principal: E, resource: E };"
scope = 'permit(principal, action in Action::"g", resource)'
policies = "".join(f'@id("p{k}") {scope} when {{ principal == resource }};' for k in range(count))
"""
)


def test_a_large_action_group_named_in_many_policies_is_refused_before_validation() -> None:
    """2,000 actions in one group, each applying to one (principal, resource) pair (2,000
    request environments, within MAX_CEDAR_ENVIRONMENTS; a 13 KB fragment), and 100 policies
    `action in Action::"g"`: the validator checks, in each environment, the action against the
    group's members one by one (~6 ns a pair) — ~2.7 s (4,000 members: ~0.1 s a policy, 4,096
    policies ~7 min; listing the group k times in `action in [...]` multiplies it). Refused
    typed (OVER_LIMIT) instead, in a child process."""
    out = survives(_GROUP, "2000", "100", timeout=300)
    assert out.startswith("refused over a limit"), out


def test_the_environments_of_actions_with_a_parent_list_are_counted() -> None:
    """`action a0, ..., a4999 in [g] appliesTo {...}`: the scan stopped at the `]` of the parent
    list and missed the `appliesTo` after it, so 5,000 environments (past
    MAX_CEDAR_ENVIRONMENTS) passed as none; written `in g appliesTo` they were counted."""
    names = ", ".join(f"a{i}" for i in range(5000))
    for parents in ("[g]", "g", '[g, Action::"g"]'):
        fragment = f"entity E; action g; action {names} in {parents} appliesTo "
        fragment += "{ principal: E, resource: E };"
        assert cedar_refusal(fragment, schema=True) is not None, parents


_PAIRS = cedar_child(
    """\
count, scope, when = int(sys.argv[1]), sys.argv[2], sys.argv[3]
policies = "".join(
    f'@id("p{k}") permit(principal, {scope}, resource) when {{ {when} }};' for k in range(count)
)
fragment = "entity E; action g; action " + ", ".join(f"a{i}" for i in range(1000))
fragment += " in [g] appliesTo { principal: E, resource: E };"
"""
)


def _scoped(count: int, scope: str, when: str = "true") -> str:
    return "".join(
        f'@id("p{k}") permit(principal, {scope}, resource) when {{ {when} }};' for k in range(count)
    )


@pytest.mark.parametrize(
    ("count", "scope", "when", "outcome"),
    [
        # 1,001 environments (1,000 members and `lease`) x (1 + 1,000) a policy: 66 are
        # 66.1 M pairs, within MAX_CEDAR_ACTION_PAIRS (2^26 = 67.1 M); 67 are past it
        (66, 'action in Action::"g"', "true", "compiled"),
        (67, 'action in Action::"g"', "true", "refused over a limit"),
        (1, "action in [" + ", ".join(['Action::"g"'] * 68) + "]", "true", "refused over a limit"),
        (68, "action", 'action in Action::"g"', "refused over a limit"),
        (68, "action", 'action is Action in Action::"g"', "refused over a limit"),
        (68, "action", 'Action::"a1" in [Action::"g"]', "refused over a limit"),
        (512, 'action == Action::"a1"', "true", "compiled"),  # no group: 0.5 M
    ],
)
def test_the_validation_cost_of_action_groups_is_bounded(
    count: int, scope: str, when: str, outcome: str
) -> None:
    """Policies naming a group of 1,000 actions (each with its environment) are bounded by the
    (environment, member) pairs the validator walks: just under MAX_CEDAR_ACTION_PAIRS they
    compile; past it, however the group is named (scope, a list, conditions), refused typed.
    In a child process limited to 1 GiB."""
    assert survives(_PAIRS, str(count), scope, when, timeout=300) == outcome + "\n"


def test_the_invoke_group_holds_every_tool() -> None:
    """troth's `invoke` group holds each tool's action: 512 tools (513 environments with
    `lease`) make `action in Action::"invoke"` cost 513 x 513 pairs a policy, so 256 such
    policies (67.4 M) are refused before validation."""
    tools = {f"t{i}": {"type": "object"} for i in range(512)}
    with pytest.raises(PolicyError) as refused:
        compile_policies(_scoped(256, 'action in Action::"invoke"'), "", tools)
    assert refused.value.reason is PolicyFailure.OVER_LIMIT
    assert "MAX_CEDAR_ACTION_PAIRS" in refused.value.detail


_COMPARED = cedar_child(
    """\
comparisons, side = int(sys.argv[1]), int(sys.argv[2])
fragment = "type R = {" + ",".join(f"a{j}:__cedar::Long" for j in range(int(sys.argv[3]))) + "};"
fragment += "".join(f"entity P{i}; entity Q{i};" for i in range(side))
fragment += "action go appliesTo { principal: [" + ",".join(f"P{i}" for i in range(side))
fragment += "], resource: [" + ",".join(f"Q{i}" for i in range(side)) + "], context: {"
fragment += ",".join(f"r{k}: R" for k in range(int(sys.argv[4]))) + "}};"
terms = ["context == context"] * comparisons + ["context.r0.a0 == 1"] * 300
policies = "".join(
    f'@id("p{k}") permit(principal, action == Action::"go", resource) '
    f'when {{ {" && ".join(terms[k:k + 300])} }};'
    for k in range(0, len(terms), 300)
)
"""
)


@pytest.mark.parametrize(
    ("comparisons", "side", "attributes", "records", "outcome"),
    [
        # a context of 1,002 nodes (a record of 1,000 attributes in one, each record one
        # more; 1 + 1 for `lease` environments): 8,371 comparisons are 16,775,484 nodes, within
        # MAX_CEDAR_COMPARED_NODES (2^24); 8,372 past it; comparisons with a literal are free
        (8371, 1, 1000, 1, "compiled"),
        (8372, 1, 1000, 1, "refused over a limit"),
        # 64 records of 250 (16,128 nodes, no record wider than 250) in 4,096 environments: one
        # comparison took the validator ~5 s
        (1, 64, 250, 64, "refused over a limit"),
    ],
)
def test_comparisons_of_records_are_bounded(
    comparisons: int, side: int, attributes: int, records: int, outcome: str
) -> None:
    """The validator walks a record type for each comparison of two non-literal values, in each
    environment: bounded by MAX_CEDAR_COMPARED_NODES (environments x the largest record x such
    comparisons), however the record is built (wide, or nested records each narrow). In a
    child process limited to 1 GiB."""
    args = (str(comparisons), str(side), str(attributes), str(records))
    assert survives(_COMPARED, *args, timeout=300) == outcome + "\n"
