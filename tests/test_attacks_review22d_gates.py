"""Review 22d (gates): `cedar_refusal` (troth.gates.nesting) bounds bracket depth and counts
operator characters per statement, but Cedar's index access `e["a"]` is a postfix operator
written with brackets: each `[...]` opens and closes at once, so a chain
`context[""][""][""]...` has depth 1 and no operator by the scan, while Cedar's parser (cedarpy
4.12) recurses once per link exactly as for the `.a` chain review 22c found. 20,000 links are
80 KiB of policy text (MAX_POLICY_TEXT is 512 Ki characters): compile_policies dies of SIGSEGV
(no Python exception) on Linux's 8 MiB main stack — `troth policy bundle create`, and every
node verifying a bundle a policy-admin signed.

(A caveat is bounded by MAX_CAVEAT_TEXT, 1,024 characters: ~250 links, found sound.)

2. (a false refusal) the operator count restarts only at a `;` outside brackets, and in a
   schema every declaration of a `namespace N { ... }` is inside its braces: the `in` of
   `entity Team in [Group];` (and each `=` of `type T = ...;`) adds up over the whole
   namespace. A namespaced fragment of 2,100 entity types (62 KB, under
   MAX_POLICY_SCHEMA_TEXT) is refused as "more than 2048 operators in one statement" — the same
   declarations outside a namespace pass.

Each test asserts the correct behaviour and was a strict xfail until its fix (1: the scan counts
an index access, `[` after an expression, as an operator of its statement; 2: in a schema a
`;` ends a statement at any depth).
"""

from __future__ import annotations

from tests.support.processes import survives

_INDEX_CHAIN = """\
import sys
from troth.errors import PolicyError
from troth.gates import compile_policies
from troth.gates.nesting import cedar_refusal
condition = "context" + '[""]' * 20000 + " == 1"  # 80 KiB
policies = '@id("chain") permit(principal, action, resource) when { ' + condition + " };"
print("scan", cedar_refusal(policies), flush=True)
try:
    compile_policies(policies, "", {})
except PolicyError as exc:
    print("refused", exc.reason.value)
    sys.exit(0)
print("compiled")
"""


def test_an_index_access_chain_is_refused_not_a_crash() -> None:
    """Run in a child process: on this branch the child dies of SIGSEGV (exit -11)."""
    out = survives(_INDEX_CHAIN, timeout=300)
    assert "refused" in out or "compiled" in out  # typed or fine, no crash


def test_a_namespaced_schema_of_many_declarations_is_not_one_statement() -> None:
    """2,100 `entity TeamN in [Group];` in `namespace App { ... }` (62 KB): each declaration
    has one operator; the fragment compiles, as the same declarations outside a namespace do."""
    from troth.gates import compile_policies  # (in-process: nothing here recurses deeply)

    teams = "".join(f"  entity Team{i} in [Group];\n" for i in range(2100))
    fragment = "namespace App {\n  entity Group;\n" + teams + "}\n"
    compiled = compile_policies('@id("x") permit(principal, action, resource);', fragment, {})
    assert "Team2099" in compiled.schema_text
