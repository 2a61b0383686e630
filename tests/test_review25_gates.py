"""Review 25 (gates): `troth.gates.validate_child` and MAX_CEDAR_INPROCESS_WORK (review 22j,
gates 5) bound the validator's time by environments x policy text length², which prices each
validation error at the policy text. But the text of an error is not the policy text's: an
operand of the wrong type is named by its whole type, with common types expanded
(`unexpected type: expected Long but saw {b0: {aaaa...: Long}, b1: {aaaa...: Long}, ...}`).
A schema fragment within MAX_POLICY_SCHEMA_TEXT (33 KB: a common type `T` of one 10,000-
character attribute name, a context of 3,000 attributes of type `T`, 9,000 type nodes, within
MAX_CEDAR_TYPE_NODES) makes that message 30 MB, and every `context + 1` in the policies is
another: what the attacker controls is a bundle (a policy admin's signature, or any text given
to `troth policy bundle create` / `compile_policies`).

1. In process: a policy text of 282 characters (20 such terms, `context+1`; a few environments
   x 282² is far within MAX_CEDAR_INPROCESS_WORK, no child is started) took compile_policies
   ~5 s of CPU and 1.28 GB of memory (600 MB of messages, held by cedarpy and again in
   Python), 40 terms over 1 GiB: each term is 10 characters, 30 MB and 0.25 s more, with no
   bound in the calling process (a node verifying a signed bundle, `troth policy bundle
   create`). The test compiles 40 terms in a child process limited to 1 GiB and asks for a
   typed refusal whose messages are bounded (1 MiB); it was killed by SIGABRT (cedarpy's
   allocation failed: Rust aborts the process, no MemoryError to catch), as a node process
   verifying such a bundle with too little memory would be. (Review 24b's note "cedarpy's
   validation messages are short and name the policy, not its text" holds for the text, not
   for the types a message names.) Cedar reports an error once, not once per environment.
2. Through the child: the same terms after a 40 KB comment (over MAX_CEDAR_INPROCESS_WORK) are
   validated in troth.gates.validate_child, limited to 1 GiB, but its output is read whole
   (`subprocess.run(capture_output=True)`), decoded and every message rewritten
   (`_POSITIONAL_QUOTED.sub`): 8 terms (240 MB of messages) took the calling process to
   779 MB; its own memory has no bound but the child's. The test asks for the same bound on
   the refusal's messages.
3. `BundleStore.reload` marks a stored bundle that fails to load "unloadable" for good (until
   its stamp changes), whatever made it fail: a child that did not start (EAGAIN from fork
   under a process limit, ENOMEM) or missed CEDAR_VALIDATION_TIMEOUT_SECONDS on a loaded
   machine (two cores, every gate process reloading at once after an install) is not a verdict
   on the bundle, yet that process never tries the bundle again: the authority's bundle stays
   out of force there (every call denied) until a new revision is installed or the process
   restarts. The test fails the child's start once and asks that the next reload loads it.

Suggested fixes: 1-2, count the text an error can carry before Cedar runs (the largest type's
rendering, names and common types expanded, times the operand sites), or validate in the child
whenever the schema's largest type renders long, and read at most a bounded prefix of the
child's output (refusing OVER_LIMIT past it), truncating each message kept; 3, keep
`_unloadable` for refusals about the bundle (POLICIES_INVALID, SCHEMA_INVALID, a signature),
not for the child failing to start or to finish in time.
"""

# Held (tried, no test kept; "ran" = exercised here, "read" = from the code only), review 25:
# - ran: Turns: a process holding `trace.db.writer` and SIGSTOPped keeps others out only up to
#   their timeout (StorageError, as SQLite's busy timeout); SIGKILLed, the next turn is taken at
#   once (the kernel drops the flock); the file is created 0600. read: the turn is taken before
#   BEGIN IMMEDIATE and released after COMMIT (synchronous FULL), and append() returns only
#   after the commit, so a SIGKILL between turn and commit loses only unacknowledged records;
#   no peer or member reaches the lock (a local file of the node's user); one Turns per
#   TraceLog, used by its single leader; the worst wait is the turn's timeout plus SQLite's.
# - read: the refresh bound's revocations go through `_charge` per entry (no member flood past
#   its quota: review 23a's test); `live_issued` is filtered by the requester's own digest and
#   holds only credentials the authority issued, so a refresh revokes no other member's nor a
#   delegated credential; one issued before a rotation is left out of the count and still
#   revoked at removal (up to 16 more per rotation: the authority's doing). `refresh` is not
#   run through AuthorityService._changing, so the hosting node's held feed shows the bound's
#   revocation only at its next refresh (the credential is the refreshing member's own: no
#   gain). `refresh` keeps no replay cache (revoke and rotated do): replaying its signed bytes
#   within the clock skew at the bound revoked the credential just issued (since review 25
#   authority, `_issue_bounded`, it is answered again, nothing revoked), but the bytes only
#   travel inside the member's end-to-end channel to the authority.
# - read: validate_child's argv are the parent's integers; `-P` drops the script's directory;
#   the environment is the node's own (the parent imports cedarpy from the same sys.path);
#   subprocess.run closes fds and reaps the child (killed at the wall timeout); a bundle is
#   compiled only after its signer chain is checked (`_signer_chain` before compile_policies),
#   so only a policy admin's bundle starts a child: one at a time per storage worker, one per
#   gate process at reload. A child's stdout that is not its JSON outcome is OVER_LIMIT.
# - read: `binds` with `check_current`: a history presented from change k binds a chain only
#   when the root authority's newest supersession names a change >= k and the history holds it
#   with that hash; a made-up suffix would have to contain that real change, and any change
#   after it needs the owner's keys (check_follows). feed_checkpoints accepting any trusted
#   feed widens only which histories verify, not which chains they bind; ChainVerifier's cache
#   (by bytes) re-runs `_check_current` against the passed feeds at every verify.
# - read: KnownHistories._extends re-reads the store only for a history starting right after
#   the cached copy; for other starting points a cached copy up to KNOWN_CACHE_SECONDS old may
#   accept a suffix that forks from a copy another process stored meanwhile (documented in
#   troth.identity.known; the store-or-extend write, one transaction, refuses it).
# - read: the relay re-check decides `create NAME` each round from the channel's current
#   caller; a refused name is held for its owner from its first refusal (the grace does not
#   restart while refused), allowed again within it forwards again.

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import cedarpy
import pytest

from tests.support.gates import POLICIES, T, make_world
from tests.support.processes import survives
from troth import limits
from troth.errors import PolicyError, PolicyFailure
from troth.gates import BundleStore, compile_policies
from troth.gates.nesting import largest_type_text
from troth.gates.policies import _check_validation_cost, compose_schema

_BIG_TYPE = """\
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1024 * 2**20, 1024 * 2**20))
from troth.errors import PolicyError
from troth.gates import compile_policies
padding, terms = int(sys.argv[1]), int(sys.argv[2])
attributes = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
context = ", ".join(f"b{j}: T" for j in range(attributes))
fragment = (
    "type T = {" + "a" * 10_000 + ": Long}; entity P; entity R; "
    "action go appliesTo { principal: [P], resource: [R], context: {" + context + "} };"
)
policies = ("// " + "x" * padding + "\\n") if padding else ""
policies += (
    '@id("q") permit(principal, action == Action::"go", resource) when { ['
    + ", ".join(["context + 1"] * terms)
    + "].isEmpty() };"
)
try:
    compile_policies(policies, fragment, {})
    print("compiled")
except PolicyError as exc:
    print("refused", exc.reason.name, len(str(exc)) + sum(len(m) for m in exc.messages))
"""

_MESSAGES_BOUND = 1 << 20


def _refused_within_bound(output: str) -> None:
    verdict, reason, size = output.split()
    assert (verdict, reason) in {("refused", "OVER_LIMIT"), ("refused", "POLICIES_INVALID")}
    assert int(size) <= _MESSAGES_BOUND


def test_error_messages_naming_a_huge_type_are_bounded_in_process() -> None:
    """40 `context + 1` terms (601 characters, within MAX_CEDAR_INPROCESS_WORK) against a
    context of 3,000 attributes of a common type with a 10,000-character attribute name: a
    typed refusal whose messages are bounded, in a process limited to 1 GiB."""
    _refused_within_bound(survives(_BIG_TYPE, "0", "40", timeout=300))


def test_error_messages_naming_a_huge_type_are_bounded_through_the_child() -> None:
    """8 such terms after a 40 KB comment (over MAX_CEDAR_INPROCESS_WORK: validated in
    troth.gates.validate_child): a typed refusal whose messages are bounded, in a process
    limited to 1 GiB (its child, too)."""
    _refused_within_bound(survives(_BIG_TYPE, "40000", "8", timeout=300))


@pytest.mark.parametrize(
    ("padding", "terms"),
    [("0", "2"), ("0", "40"), ("40000", "8")],
    ids=["in-process", "sent-to-the-child", "through-the-child"],
)
def test_error_messages_naming_a_type_within_its_limit_are_bounded(
    padding: str, terms: str
) -> None:
    """A context of 20 attributes of that type (~200 KB printed, within MAX_CEDAR_TYPE_TEXT:
    the fragment is not refused as the one of 3,000 is): 2 terms are validated in process
    (their messages cut), 40 in the child (their types may name more than
    MAX_CEDAR_INPROCESS_MESSAGES: its 8 MB of output is past MAX_CEDAR_VALIDATION_OUTPUT), as
    8 after a 40 KB comment (1.6 MB read, each message cut). Each a typed refusal whose
    messages are bounded (review 25, gates 1-2: the fragment of the tests above is refused
    before Cedar runs, MAX_CEDAR_TYPE_TEXT)."""
    _refused_within_bound(survives(_BIG_TYPE, padding, terms, "20", timeout=300))


def test_a_bundle_whose_child_did_not_start_loads_once_its_backoff_is_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A big bundle (validated in a child) stored by one process; another's first reload finds
    no process can be started (EAGAIN); once the backoff is over (review 26c, gates 2) one
    can: the bundle is in force there."""
    world = make_world()
    data = world.bundle(policies="// " + "x" * 40_000 + "\n" + POLICIES)
    stored = world.store(data)
    other = BundleStore(world.verifier, stored.table)
    popen = subprocess.Popen  # the seam: troth.gates.policies starts the child with it

    def no_process(*args: Any, **kwargs: Any) -> Any:
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    assert other.reload(now=T + 6) == []
    assert other.active(world.authority.identifier) is None
    monkeypatch.setattr(subprocess, "Popen", popen)
    assert other.reload(now=T + 7) == []  # within the backoff: not tried
    assert len(other.reload(now=T + 6 + limits.CEDAR_RETRY_FIRST_SECONDS)) == 1
    assert other.active(world.authority.identifier) is not None


_PRINTED = (
    "namespace Very::Long::Name { entity P; entity R;\n"
    'type T = {"a b\\u{1}": Long, ' + "n" * 400 + ": Long, c?: Set<String>, e: P, n: "
    "{m: Set<Set<U>>}};\n"
    "type U = {" + "n" * 400 + ": ipaddr, y: __cedar::decimal, z: Set<P>};\n"
    "action go appliesTo { principal: [P], resource: [R], context: {x: T, y: T, z: Set<T>} };\n}"
)


@pytest.mark.parametrize(
    "term",
    [
        "context + 1",
        "principal + 1",
        "context.x.n.m + 1",
        "context.z.contains(1)",
        "{a: context, b: [context.x]} + 1",
        '[context, 1, "s"].isEmpty()',
        "[[context, 1], [context.y]].isEmpty()",
        "[context.x, context.y, context].isEmpty()",
        "(if true then context else context.x) == 1",
        "(if true then {a: context} else {b: context}) == context",
        "{a: {b: {c: context}}} == {a: 1}",
    ],
)
def test_the_types_counted_before_cedar_runs_bound_its_messages(term: str) -> None:
    """What `_quoted_text` counts (in each environment the policy is checked in) bounds the
    messages cedarpy writes (their own words aside, 128 characters each) for operands of the
    wrong type: the schema's types, namespaced, common types expanded, in records, sets and
    `if`s (review 25, gates 1)."""
    schema_text = compose_schema(_PRINTED, {}, {})
    policy = f'@id("q") permit(principal, action, resource) when {{ {term} }};'
    est = json.loads(cedarpy.policies_to_json_str(policy))
    _, quoted = _check_validation_cost(est, schema_text)
    result = cedarpy.validate_policies(policy, cedarpy.Schema.from_str(schema_text))
    messages = [e.error for e in result.errors]
    assert messages  # each term is refused, naming a type
    assert sum(len(m) - 128 for m in messages) <= quoted


def test_an_entity_types_name_is_counted_at_its_printed_length() -> None:
    """A type's printed form is at least the qualified name of an entity type named only in
    an `appliesTo` (`principal + 1` names it): counted, with its namespace."""
    name = "E" * 5000
    fragment = (
        f"namespace N {{ entity {name}; entity R; "
        f"action go appliesTo {{ principal: [{name}], resource: [R] }}; }}"
    )
    policy = (
        '@id("q") permit(principal, action == N::Action::"go", resource) '
        "when { principal + 1 == 2 };"
    )
    schema = cedarpy.Schema.from_str(compose_schema(fragment, {}, {}))
    (message,) = [e.error for e in cedarpy.validate_policies(policy, schema).errors]
    assert f"N::{name}" in message
    assert largest_type_text(fragment) >= len(f"N::{name}")


@pytest.mark.parametrize("status", [0, 73])
def test_a_child_output_over_its_limit_is_refused_unread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, status: int
) -> None:
    """A child (a shell script for the interpreter the parent starts) that writes more than
    MAX_CEDAR_VALIDATION_OUTPUT of well-formed outcome and exits 0, or that exits EXIT_OUTPUT
    (the real child, past its RLIMIT_FSIZE): refused OVER_LIMIT naming that limit."""
    monkeypatch.setattr(limits, "MAX_CEDAR_VALIDATION_OUTPUT", 64)
    errors = ", ".join(['["policy0", "for policy `policy0`, unexpected type"]'] * 8)
    (tmp_path / "output").write_text(f'{{"passed": false, "errors": [{errors}]}}')
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\ncat {tmp_path / 'output'}\nexit {status}\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    policies = "// " + "x" * 40_000 + '\n@id("a") permit(principal, action, resource);'
    with pytest.raises(PolicyError) as caught:
        compile_policies(policies, "", {})
    assert caught.value.reason is PolicyFailure.OVER_LIMIT
    assert "MAX_CEDAR_VALIDATION_OUTPUT" in str(caught.value)
    assert caught.value.messages == ()
