"""Review 22j (gates) finding 5: Cedar's validator spends, for each validation error in each
request environment, time in proportion to the whole policy text. A bundle within every bound
of the cost model (troth.gates.policies) but invalid — a fragment of 64 x 64 entity types in
one action's `appliesTo` (4,096 environments), a 490 KB comment and 40 policies each naming
an attribute the context does not have — took compile_policies ~13.5 s of CPU before it was
refused as invalid (one 400 KB policy with 100 such terms: ~26 s), for `troth policy bundle
create` and every node verifying the bundle. No count of the text bounds it before Cedar runs
(the errors are known only after), so the test sets the CPU budget of the validation to one
second (MAX_CEDAR_VALIDATION_CPU_SECONDS) and asks for a refusal over that limit, not an
"invalid" after the whole run (no timing assertion).

1. The test asserts the correct behaviour and was a strict xfail until compile_policies
   validated a policy text whose worst case is over MAX_CEDAR_INPROCESS_WORK in a child process
   limited in CPU time and address space (troth.gates.validate_child).
"""

from __future__ import annotations

import pytest

from troth import limits
from troth.errors import PolicyError, PolicyFailure
from troth.gates import compile_policies


def _comment_and_failures(comment: int, failing: int) -> tuple[str, str]:
    """A fragment of 64 x 64 entity types in one action (4,096 request environments) and
    `failing` policies naming a context attribute it does not declare, after a comment of
    `comment` characters (review 22j, gates 5)."""
    types = ", ".join(f"P{i}" for i in range(64)), ", ".join(f"R{i}" for i in range(64))
    fragment = "".join(f"entity P{i}; entity R{i};" for i in range(64))
    fragment += f"action go appliesTo {{ principal: [{types[0]}], resource: [{types[1]}] }};"
    policies = "// " + "x" * comment + "\n"
    policies += "".join(
        f'@id("q{j}") permit(principal, action == Action::"go", resource) '
        f"when {{ context.n{j} == 1 }};\n"
        for j in range(failing)
    )
    return fragment, policies


@pytest.mark.xfail(
    strict=True,
    reason="review 22j, gates 5: an invalid 490 KB bundle is validated in-process, ~13.5 s",
)
def test_an_invalid_bundle_over_the_cpu_budget_is_refused_over_a_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 490 KB comment and 40 failing policies in 4,096 environments (within every bound of
    the cost model), with a CPU budget of one second: refused OVER_LIMIT, the message naming
    the limit, not POLICIES_INVALID after the whole run."""
    monkeypatch.setattr(limits, "MAX_CEDAR_VALIDATION_CPU_SECONDS", 1, raising=False)
    fragment, policies = _comment_and_failures(490_000, 40)
    with pytest.raises(PolicyError) as refused:
        compile_policies(policies, fragment, {})
    assert refused.value.reason is PolicyFailure.OVER_LIMIT
    assert "MAX_CEDAR_VALIDATION_CPU_SECONDS" in str(refused.value)
