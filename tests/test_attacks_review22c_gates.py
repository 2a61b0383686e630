"""Review 22c (gates): MAX_CEDAR_NESTING (troth.gates.nesting) counts brackets only, but
Cedar's parser (cedarpy 4.12) also recurses per operator of a chain written without any
bracket: `a || b || ...`, `if c then x else if ...`, `context.a.a.a...`. Policy text may be
up to MAX_POLICY_TEXT (512 Ki characters); a chain of 20,000 `||` terms (160 KiB), of 10,000
`else if`s (230 KiB) or of 20,000 attribute accesses (40 KiB) has depth 0 by the scan and
kills the process compiling it (SIGSEGV, no Python exception) on Linux's 8 MiB main stack:
`troth policy bundle create`, and every node verifying a bundle a policy-admin signed.

(A caveat is bounded by MAX_CAVEAT_TEXT: ~507 levels of `.a` are refused typed, found sound.)

2. a comment ends at a carriage return for Cedar (its lexer skips `//[^\\n\\r]*`), but
   `nesting_depth` reads it to the next `\\n`: `// x\\r` followed by 1,000 parentheses has depth
   0-1 by the scan and kills compile_policies (2 KiB of policy text) exactly as review 22b's
   finding 2 did; a caveat `// c\\r` + 507 parentheses (1,023 characters, under
   MAX_CAVEAT_TEXT: any delegator writes one, every gate deciding on its chain parses it)
   passes `check_caveat`'s scan and kills a 4 MiB thread, as review 22b's caveat did.

Each test asserts the correct behaviour; each was a strict xfail until its fix (1: operators per
statement and `<` in a schema counted, MAX_CEDAR_OPERATORS; 2: a comment ends at `\\r` too).
"""

from __future__ import annotations

import pytest

from tests.support.processes import survives

_CHAIN_POLICY = """\
import sys
from troth.errors import PolicyError
from troth.gates import compile_policies
kind = sys.argv[1]
fragment = ""
if kind == "set":  # a schema type Set<Set<...>> 12,000 deep: 60 KiB (MAX_POLICY_SCHEMA_TEXT)
    fragment = "type Deep = " + "Set<" * 12000 + "__cedar::Long" + ">" * 12000 + ";"
    condition = "true"
elif kind == "or":  # 20,000 terms: 160 KiB
    condition = " || ".join(["true"] * 20000)
elif kind == "if":  # 10,000 else-ifs: 230 KiB
    condition = "if true then true else " * 10000 + "true"
else:  # 20,000 attribute accesses: 40 KiB
    condition = "context" + ".a" * 20000 + " == 1"
policies = '@id("chain") permit(principal, action, resource) when { ' + condition + " };"
try:
    compile_policies(policies, fragment, {})
except PolicyError as exc:
    print("refused", exc.reason.value)
    sys.exit(0)
print("compiled")
"""


@pytest.mark.parametrize("kind", ["or", "if", "dot", "set"])
def test_a_long_operator_chain_is_refused_not_a_crash(kind: str) -> None:
    """Run in a child process: on this branch the child dies of SIGSEGV (exit -11)."""
    out = survives(_CHAIN_POLICY, kind, timeout=300)
    assert out.startswith(("refused", "compiled"))  # typed, or fine: never a crash


# -- 2. a comment ended by a carriage return ---------------------------------------------------

_CR_POLICY = """\
import sys
from troth.errors import PolicyError
from troth.gates import compile_policies
policies = '@id("deep") permit(principal, action, resource) when { // note\\r' \\
    + "(" * 1000 + "true" + ")" * 1000 + " };"
try:
    compile_policies(policies, "", {})
except PolicyError as exc:
    print("refused", exc.reason.value)
    sys.exit(0)
print("compiled")
"""

_CR_CAVEAT = """\
import threading
from troth.errors import PolicyError
from troth.gates import check_caveat
caveat = "// c\\r" + "(" * 507 + "true" + ")" * 507  # 1,023 characters: MAX_CAVEAT_TEXT
outcome = []
def run():
    try:
        check_caveat(caveat)
        outcome.append("parsed")
    except PolicyError as exc:
        outcome.append("refused " + exc.reason.value)
threading.stack_size(4 * 1024 * 1024)  # as review 22b's caveat test
thread = threading.Thread(target=run)
thread.start()
thread.join()
print(*outcome)
"""


@pytest.mark.parametrize("part", ["policy", "caveat"])
def test_a_comment_ended_by_a_carriage_return_hides_no_nesting(part: str) -> None:
    """Run in a child process: before the fix the child died of SIGSEGV (exit -11)."""
    script = _CR_POLICY if part == "policy" else _CR_CAVEAT
    out = survives(script, timeout=300)
    assert out.startswith(("refused", "compiled", "parsed"))  # never a crash
