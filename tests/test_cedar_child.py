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

The other tests: a big valid text compiles through the child, a big invalid one under the
budget is refused with the messages of the in-process path, over the address space or the
wall-clock wait it is refused over those limits, and a text within MAX_CEDAR_INPROCESS_WORK
starts no process.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.gates import POLICIES, make_world
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


def test_an_invalid_bundle_over_the_cpu_budget_is_refused_over_a_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 490 KB comment and 40 failing policies in 4,096 environments (within every bound of
    the cost model), with a CPU budget of one second: refused OVER_LIMIT, the message naming
    the limit, not POLICIES_INVALID after the whole run."""
    monkeypatch.setattr(limits, "MAX_CEDAR_VALIDATION_CPU_SECONDS", 1)
    fragment, policies = _comment_and_failures(490_000, 40)
    with pytest.raises(PolicyError) as refused:
        compile_policies(policies, fragment, {})
    assert refused.value.reason is PolicyFailure.OVER_LIMIT
    assert "MAX_CEDAR_VALIDATION_CPU_SECONDS" in str(refused.value)


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The command lines subprocess.Popen is given (each started as it would be)."""
    calls: list[list[str]] = []
    popen = subprocess.Popen

    def counted(args: list[str], **kwargs: Any) -> Any:
        calls.append(args)
        return popen(args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", counted)
    return calls


def _lease_policies(comment: int, failing: int, passing: int = 2) -> str:
    """Policies on `lease` (the composed schema's one request environment, no fragment or
    tools): `passing` valid ones and `failing` ones naming context attributes `lease` does not
    have, after a comment of `comment` characters."""
    text = "// " + "x" * comment + "\n"
    text += "".join(
        f'@id("ok{j}") permit(principal, action == Action::"lease", resource) '
        f"when {{ context.ttl <= {j} }};\n"
        for j in range(passing)
    )
    return text + "".join(
        f'@id("bad{j}") forbid(principal, action, resource) when {{ context.n{j} == 1 }};\n'
        for j in range(failing)
    )


def test_a_valid_big_bundle_compiles_in_the_child(spawned: list[list[str]]) -> None:
    """64 KB of valid policies in one environment (64 K² over MAX_CEDAR_INPROCESS_WORK):
    validated in one child process, then compiled (its policy set parsed here)."""
    compiled = compile_policies(_lease_policies(64_000, 0, passing=20), "", {})
    assert compiled.policy_ids == tuple(f"ok{j}" for j in range(20))
    assert len(spawned) == 1
    assert spawned[0][-3:] == [
        str(limits.MAX_CEDAR_VALIDATION_CPU_SECONDS),
        str(limits.MAX_CEDAR_VALIDATION_BYTES),
        str(limits.MAX_CEDAR_VALIDATION_OUTPUT + 1),  # its output's file size (review 25)
    ]


def _refusal(compile: Callable[[], Any]) -> PolicyError:
    with pytest.raises(PolicyError) as refused:
        compile()
    return refused.value


def test_an_invalid_big_bundle_is_refused_with_the_messages_of_the_in_process_path(
    spawned: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """40 KB and 30 failing policies, validated in the child (under its budget), then in this
    process (MAX_CEDAR_INPROCESS_WORK raised): the same POLICIES_INVALID refusal, its messages
    naming the authors' @ids."""
    policies = _lease_policies(40_000, 30)
    child = _refusal(lambda: compile_policies(policies, "", {}))
    assert len(spawned) == 1
    monkeypatch.setattr(limits, "MAX_CEDAR_INPROCESS_WORK", 1 << 62)
    here = _refusal(lambda: compile_policies(policies, "", {}))
    assert len(spawned) == 1
    assert child.reason is here.reason is PolicyFailure.POLICIES_INVALID
    assert (str(child), child.messages) == (str(here), here.messages)
    assert len(here.messages) == 30
    assert here.messages[0].startswith("[bad0] for policy `bad0`, attribute `n0` in context")


def test_a_text_within_the_in_process_bound_starts_no_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One environment and 32 KiB of policies (32 K² = MAX_CEDAR_INPROCESS_WORK), valid or
    not: validated in this process (subprocess.Popen fails the test); one character more is
    not."""

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a child process was started")

    monkeypatch.setattr(subprocess, "Popen", refused)
    valid, invalid = _lease_policies(0, 0), _lease_policies(0, 1)
    at_bound = 32 * 1024
    assert at_bound**2 == limits.MAX_CEDAR_INPROCESS_WORK
    valid += " " * (at_bound - len(valid))
    assert compile_policies(valid, "", {}).policy_ids == ("ok0", "ok1")
    invalid += " " * (at_bound - len(invalid))
    assert _refusal(lambda: compile_policies(invalid, "", {})).reason is (
        PolicyFailure.POLICIES_INVALID
    )
    with pytest.raises(AssertionError, match="a child process was started"):
        compile_policies(valid + " ", "", {})


def test_validation_over_the_address_space_is_refused_over_a_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """4,000 failing policies (~300 KB) with an address space of 48 MiB (Python and cedarpy
    take ~30 MB; validating these ~60-80 MB): refused OVER_LIMIT, naming the limit."""
    monkeypatch.setattr(limits, "MAX_CEDAR_VALIDATION_BYTES", 48 << 20)
    refusal = _refusal(lambda: compile_policies(_lease_policies(0, 4000), "", {}))
    assert refusal.reason is PolicyFailure.OVER_LIMIT
    assert "MAX_CEDAR_VALIDATION_BYTES" in str(refusal)


def test_a_child_over_the_wall_clock_wait_is_refused_over_a_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A wait of 1 ms for the child (which starts an interpreter): killed, refused
    OVER_LIMIT naming CEDAR_VALIDATION_TIMEOUT_SECONDS."""
    monkeypatch.setattr(limits, "CEDAR_VALIDATION_TIMEOUT_SECONDS", 0.001)
    refusal = _refusal(lambda: compile_policies(_lease_policies(40_000, 0), "", {}))
    assert refusal.reason is PolicyFailure.OVER_LIMIT
    assert "CEDAR_VALIDATION_TIMEOUT_SECONDS" in str(refusal)


def test_a_big_bundle_is_validated_in_the_child_when_created_and_when_verified(
    spawned: list[list[str]],
) -> None:
    """The support-desk policies after a 40 KB comment (3 tools: 4 environments, over
    MAX_CEDAR_INPROCESS_WORK from 16 KiB): `create_bundle` and a store verifying the signed
    bundle (as a node does, on its storage thread) each validate it in a child process; the
    active bundle holds the same policies as the small one."""
    world = make_world()
    small = world.store(world.bundle()).active(world.authority.identifier)
    assert spawned == []
    data = world.bundle(policies="// " + "x" * 40_000 + "\n" + POLICIES)
    assert len(spawned) == 1
    big = world.store(data).active(world.authority.identifier)
    assert len(spawned) == 2
    assert small is not None
    assert big is not None
    assert big.bundle.compiled.policy_ids == small.bundle.compiled.policy_ids


@pytest.mark.parametrize(
    "output",
    [
        b"",
        b"not json",
        b'{"passed": true}',  # no error list
        b'{"passed": "yes", "errors": []}',
        b'{"passed": false, "errors": [["p0"]]}',
        b"[true, []]",
    ],
)
def test_a_child_output_that_is_not_its_outcome_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, output: bytes
) -> None:
    """Whatever the child writes that is not its outcome is a refusal (fail closed), never
    "passed": the big valid bundle, its child a shell script (for the interpreter the parent
    starts, `sys.executable`) that writes `output` and exits 0."""
    (tmp_path / "output").write_bytes(output)
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\ncat {tmp_path / 'output'}\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    refused = _refusal(lambda: compile_policies(_lease_policies(64_000, 0, passing=20), "", {}))
    assert refused.reason is PolicyFailure.OVER_LIMIT
    assert "the policy validator process failed (exit status 0)" in str(refused)
