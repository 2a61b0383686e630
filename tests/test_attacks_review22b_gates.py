"""Review 22b (gates): what a file or a command line hands the policy code — Cedar policy text
(`troth policy bundle create --policies FILE`, a bundle pushed or pulled), a delegation's
caveats (`troth credential delegate --caveat`, a chain a caller presents) — against the limits
troth keeps (troth.limits). Review 22b's findings 2-4 and 8 (finding 1: the traces file).

1. nesting: Cedar's parser (cedarpy 4.12) recurses once per parenthesis and overflows its
   native stack at a few hundred levels — the process dies of SIGSEGV, no Python exception.
   `compile_policies` hands it any text up to MAX_POLICY_TEXT (512 Ki characters): a policy
   of 1,000 nested parentheses (2 KiB), or a schema fragment of a record type 5,000 deep
   (25 KiB, under MAX_POLICY_SCHEMA_TEXT), kills whatever compiles it — the CLI creating a
   bundle from a file it was handed, and every node verifying a bundle a policy-admin signed
   by hand (`verify_bundle` compiles once the signature holds; a pull on every maintenance
   round dies again). A caveat is bounded by MAX_CAVEAT_TEXT (1,024 characters: 510 levels),
   which needs over 6 MiB of stack: it passes on Linux's usual 8 MiB thread stacks, and kills a
   thread of 4 MiB (any delegator writes caveats; a gate parses those of every chain).
2. a caveat of nested sets (`[[[...]]] == []`, within MAX_CAVEAT_TEXT) parses in Cedar, but
   its JSON form is deeper than Python's recursion limit: `check_caveat` raises
   RecursionError, not PolicyError(CAVEAT_INVALID). The engine catches only PolicyError and
   ValueError, so a caller presenting a chain with that caveat makes every decision raise (the
   node answers "internal error" and logs a traceback; no denial is recorded), and
   `troth credential delegate --caveat` prints a traceback (the CLI catches TrothError,
   ValueError, OSError).
3. size: `create_bundle` checks each part against its own limit (policy text, schema, 512 tools
   of up to 16 KiB each) but never the whole against MAX_POLICY_BUNDLE_BYTES, which every
   reader (`decode_bundle`, `verify_bundle`, `troth policy push`) enforces first: a bundle of
   100 tools with 8 KiB schemas is signed (and `troth policy bundle create` writes it) but no
   store accepts it.
4. a long disjunction (finding 8): `compile_policies` rebuilds the policy set from Cedar's JSON
   form (`PolicySet.from_json_str`, to key it by the `@id`s), which serde_json refuses past
   128 levels: a policy of ~60 `||`-joined comparisons (2 KiB) fails with an untyped
   ValueError, and past ~500 terms `json.loads` of the same form raises RecursionError.

Each test asserts the correct behaviour and was a strict xfail until its fix.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.gates import TOOLS, make_world
from tests.support.processes import survives
from tests.test_gates_engine import NOW, call, engine, support
from troth import limits
from troth.errors import PolicyError, PolicyFailure
from troth.gates import Outcome, check_caveat

# -- 1. nesting ------------------------------------------------------------------------------

_NESTED_POLICY = """\
import sys
from troth.errors import PolicyError
from troth.gates import compile_policies
policies, fragment = '@id("x") permit(principal, action, resource);', ""
if sys.argv[1] == "policy":  # 1,000 parentheses: 2 KiB of policy text
    policies = '@id("deep") permit(principal, action, resource) when { ' + "(" * 1000 \\
        + "true" + ")" * 1000 + " };"
else:  # a record type 5,000 deep: 25 KiB of schema fragment (MAX_POLICY_SCHEMA_TEXT: 64 Ki)
    fragment = "type Deep = " + "{a: " * 5000 + "__cedar::Long" + "}" * 5000 + ";"
try:
    compile_policies(policies, fragment, {})
except PolicyError as exc:
    print("refused", exc.reason.value)
    sys.exit(0)
print("compiled")
"""


@pytest.mark.parametrize("part", ["policy", "schema"])
def test_a_deeply_nested_policy_is_refused_not_a_crash(part: str) -> None:
    """Run in a child process: on main the child dies of SIGSEGV (exit -11)."""
    out = survives(_NESTED_POLICY, part, timeout=120)
    assert out.startswith(("refused", "compiled"))  # typed, or fine: never a crash


_NESTED_CAVEAT = """\
import sys, threading
from troth.errors import PolicyError
from troth.gates import check_caveat
depth = 510  # 1,024 characters: MAX_CAVEAT_TEXT
outcome = []
def run():
    try:
        check_caveat("(" * depth + "true" + ")" * depth)
        outcome.append("parsed")
    except PolicyError as exc:
        outcome.append("refused " + exc.reason.value)
threading.stack_size(4 * 1024 * 1024)  # a node's thread where stacks are smaller than 8 MiB
thread = threading.Thread(target=run)
thread.start()
thread.join()
print(*outcome)
"""


def test_a_nested_caveat_at_the_text_limit_is_no_crash_on_a_smaller_stack() -> None:
    """Any delegator writes caveats; a gate parses them for every chain it decides on. With
    Linux's usual 8 MiB thread stacks this depth passes (barely: 6 MiB crashes)."""
    out = survives(_NESTED_CAVEAT, timeout=120)
    assert out.strip() in ("parsed", f"refused {PolicyFailure.CAVEAT_INVALID.value}")


# -- 2. a caveat of nested sets --------------------------------------------------------------


def _nested_sets() -> str:
    depth = (limits.MAX_CAVEAT_TEXT - 4) // 2
    caveat = "[" * depth + "]" * depth + "==[]"
    if len(caveat) > limits.MAX_CAVEAT_TEXT:
        raise AssertionError("the caveat is over MAX_CAVEAT_TEXT")
    return caveat


def test_a_caveat_of_nested_sets_is_refused_typed() -> None:
    with pytest.raises(PolicyError) as caught:
        check_caveat(_nested_sets())
    assert caught.value.reason is PolicyFailure.CAVEAT_INVALID


def test_a_chain_with_a_caveat_of_nested_sets_is_denied() -> None:
    """A member delegates (with its own code) under that caveat; its delegate calls a gate."""
    _, sub = support((_nested_sets(),))
    gate = engine('@id("all") permit(principal, action in Action::"invoke", resource);')
    decision = gate.decide(sub, call("refund", order_id="o", amount=1), now=NOW)
    assert decision.outcome is Outcome.CAVEAT_INVALID


# -- 3. a bundle over MAX_POLICY_BUNDLE_BYTES ------------------------------------------------


def test_a_bundle_create_bundle_signs_is_within_what_a_store_reads() -> None:
    world = make_world()
    tools: dict[str, Any] = dict(TOOLS)
    for n in range(100):  # 100 tools, each schema ~8 KiB (MAX_TOOL_SCHEMA_BYTES is 16 KiB)
        tools[f"tool_{n}"] = {
            "type": "object",
            "description": "d" * 8000,
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        }
    refused: PolicyError | None = None
    try:
        data = world.bundle(tools=tools)
    except PolicyError as exc:  # refused when it is made: fine too
        refused = exc
    if refused is not None:
        assert refused.reason is PolicyFailure.OVER_LIMIT
    else:
        world.store(data)  # what was signed is read back


# -- 4. a policy with a long disjunction (review 22b finding 8) ------------------------------


def _disjunction(terms: int) -> str:
    listed = " || ".join(f'context.args.order_id == "o{n}"' for n in range(terms))
    return (
        '@id("listed") permit(principal, action == Action::"invoke:refund", resource) '
        f"when {{ {listed} }};"
    )


@pytest.mark.parametrize("terms", [100, 300])
def test_a_policy_with_a_long_disjunction_compiles(terms: int) -> None:
    """An allow-list written out as `==` comparisons joined by `||` (3.5 KiB for 100 order
    ids, far under MAX_POLICY_TEXT): Cedar parses and validates it; troth refused it with an
    untyped ValueError (`troth policy bundle create`: "error serializing/deserializing policy
    set to/from JSON") from 60 terms on. It compiles and decides."""
    member, _ = support()
    gate = engine(_disjunction(terms))
    assert gate.decide(member, call("refund", order_id=f"o{terms - 1}", amount=1), now=NOW).allowed
    assert not gate.decide(member, call("refund", order_id="x", amount=1), now=NOW).allowed


def test_a_disjunction_past_the_operator_limit_is_refused_typed() -> None:
    """600 terms are past MAX_CEDAR_OPERATORS (a few thousand would kill cedarpy's parser;
    past ~500 Cedar's JSON form is deeper than Python reads): refused, typed (OVER_LIMIT,
    saying to write a set), not a RecursionError."""
    with pytest.raises(PolicyError) as refused:
        engine(_disjunction(600))
    assert refused.value.reason is PolicyFailure.OVER_LIMIT
    assert ".contains()" in str(refused.value)
