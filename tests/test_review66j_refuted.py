"""Review 66j (Python API, its docs, OTel export): attacks that did not work.

1. The guide's refusals: every `try` docs/python.md shows must refuse (tests/test_examples.py
   now ends the guide at a `try` whose body completes; it ran before, but a refusal that
   stopped happening went unnoticed, the intern's `Denied` included). All of them refuse.
2. Type confusion at runtime: a `VerifiedCredential` where a `Credential` is taken, text or
   foreign bytes where a chain, a bundle or a ticket is taken, a wrong presenter: each is an
   `ArgumentError` (a TypeError) or the layer's typed error, never a KeyError or a CBOR
   decoder's own exception.
3. A node used after `close()` (its identities, credentials, traces, policies, an `Authority`
   of a closed hub, a `Verifier` fed by a closed node): a `StorageError` saying it is closed,
   never a `sqlite3.ProgrammingError`; `close()` twice is harmless.
4. OTel export attributes: a record's tool arguments and results never reach an exported span
   (only ids, names, digests and the decision), so no argument, secret or unbounded value does.
5. A `Credential` made by hand from a real chain and another member's credential id, given to
   `Node.revoke` by the chain's holder: the authority refuses it (the id is not in the chain),
   and the other member's credential still verifies.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import troth
from tests.support.traces import NOW, Held, open_log, recorder
from troth.clock import FixedClock
from troth.errors import StorageError
from troth.trace.otel import SigningSampler, SigningSpanProcessor, export_otel


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("TROTH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TROTH_VAULT_KEY", raising=False)
    monkeypatch.delenv("TROTH_NODE", raising=False)
    hub = troth.Node.open("acme")
    acme = hub.create_authority()
    agents = troth.Node.open("agents")
    clerk = agents.identities.create("clerk")
    member = agents.enroll(acme.ticket({"orders.access": "read"}), identity=clerk)
    verifier = troth.Verifier(trust=[acme.identifier], feeds=acme)
    made = {"hub": hub, "acme": acme, "agents": agents, "clerk": clerk, "member": member}
    yield {**made, "verifier": verifier, "verified": verifier.verify(member, presenter=clerk)}
    agents.close()
    hub.close()


CONFUSED: dict[str, tuple[Callable[[dict[str, Any]], object], type[Exception]]] = {
    "verified for a chain": (
        lambda w: w["verifier"].verify(w["verified"], presenter=w["clerk"]),
        troth.ArgumentError,
    ),
    "text for a chain": (
        lambda w: w["verifier"].verify("chain", presenter=w["clerk"]),
        troth.ArgumentError,
    ),
    "a CBOR map for a chain": (
        lambda w: w["verifier"].verify(b"\xa1\x01\x02", presenter=w["clerk"]),
        troth.CredentialError,
    ),
    "no presenter": (
        lambda w: w["verifier"].verify(w["member"], presenter=None),
        troth.ArgumentError,
    ),
    "verified held": (lambda w: w["agents"].hold(w["clerk"], w["verified"]), troth.ArgumentError),
    "junk held": (lambda w: w["agents"].hold(w["clerk"], b"junk"), troth.CredentialError),
    "junk bundle": (lambda w: w["agents"].policies.install(b"\xff\x00"), troth.PolicyError),
    "bytes for a ticket": (lambda w: w["agents"].enroll(b"\x00"), troth.ArgumentError),
    "bytes for a record id": (lambda w: w["agents"].traces.prove(b"id"), troth.ArgumentError),
    "bytes for a caller": (
        lambda w: w["agents"].policies.decide(b"x", "t", {}),
        troth.ArgumentError,
    ),
}


@pytest.mark.parametrize("what", sorted(CONFUSED))
def test_refuted2_a_confused_argument_is_a_typed_error(world: dict[str, Any], what: str) -> None:
    call, error = CONFUSED[what]
    with pytest.raises(error):
        call(world)


def test_refuted3_a_closed_node_says_it_is_closed(world: dict[str, Any]) -> None:
    agents, hub, clerk = world["agents"], world["hub"], world["clerk"]
    agents.close()
    uses: list[Callable[[], object]] = [
        lambda: agents.identities.create("late"),
        lambda: agents.credentials(clerk),
        lambda: agents.traces.verify(),
        lambda: agents.policies.show(),
        lambda: agents.identity,
        lambda: troth.Verifier(trust=[world["acme"].identifier], feeds=agents).verify(
            world["member"], presenter=clerk
        ),
    ]
    hub.close()
    uses += [
        lambda: world["acme"].ticket({"orders.access": "read"}),
        lambda: world["verifier"].verify(world["member"], presenter=clerk),
    ]
    for use in uses:
        with pytest.raises(StorageError, match="closed"):
            use()
    agents.close()  # again: harmless


def test_refuted4_no_argument_or_result_reaches_an_exported_span(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    provider = TracerProvider(sampler=SigningSampler())
    provider.add_span_processor(SigningSpanProcessor(recorder(log, Held(), clock)))
    secret = "sk-live-0123456789\nX-Injected: 1\x1b[2J"
    attributes = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "refund",
        "gen_ai.tool.call.arguments": json.dumps({"card": secret, "pad": "x" * 100_000}),
        "gen_ai.tool.call.result": secret,
        "troth.decision": "allowed",
    }
    with provider.get_tracer("agent").start_as_current_span(
        "execute_tool refund", attributes=attributes
    ):
        pass
    sent = InMemorySpanExporter()
    assert export_otel(log, sent) == 1
    (span,) = sent.get_finished_spans()
    values = [str(v) for v in (span.attributes or {}).values()]
    assert span.attributes is not None
    assert span.attributes["gen_ai.tool.name"] == "refund"
    assert [v for v in values if "sk-live" in v or "\n" in v or "\x1b" in v] == []
    assert max(len(v) for v in values) <= 256  # ids, names and digests: nothing unbounded


def test_refuted5_a_credential_with_another_members_id_revokes_nothing(
    world: dict[str, Any],
) -> None:
    agents, clerk, acme = world["agents"], world["clerk"], world["acme"]
    victim = agents.identities.create("victim")
    theirs = agents.enroll(acme.ticket({"orders.access": "read"}), identity=victim)
    forged = dataclasses.replace(world["member"], id=theirs.id)
    with pytest.raises(troth.AuthorityError, match="not in the chain"):
        agents.revoke(forged, by=clerk, reason="not mine to revoke")
    assert world["verifier"].verify(theirs, presenter=victim).actor == victim.identifier
