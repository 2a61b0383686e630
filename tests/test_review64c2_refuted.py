"""Review 64c2: attacks on the Python API (docs/python.md: `Node.policies`, `Node.secrets`,
`Node.traces`, the async `RunningNode` API) that did not work; each test fails if the defence
it names breaks."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

import troth
from tests.support.public_api import READ, acme_and_agents
from troth.clock import FixedClock

SHOP = '@id("r") permit(principal, action == Action::"invoke:refund", resource);\n'
TOOLS = {"refund": {"type": "object"}}


def test_a_bundle_of_an_untrusted_signer_an_expired_one_and_a_mangled_one_are_refused() -> None:
    """Policies.install: another authority's bundle (the node never enrolled with it), one past
    its ttl at the node's clock, and one cut short or of other bytes, each a PolicyError with
    its reason, never a bare decode error; nothing is installed."""
    with acme_and_agents() as world, troth.Node.open("other") as other:
        other.create_authority()
        foreign = other.policies.sign(policies=SHOP, tools=TOOLS, revision=1)
        with pytest.raises(troth.PolicyError) as caught:
            world.agents.policies.install(foreign)
        assert caught.value.reason is troth.PolicyFailure.UNTRUSTED_AUTHORITY
        bundle = world.hub.policies.sign(policies=SHOP, tools=TOOLS, revision=1, ttl=60)
        later = troth.Node.open("agents", clock=FixedClock(int(time.time()) + 3600))
        with later, pytest.raises(troth.PolicyError) as caught:
            later.policies.install(bundle)
        assert "expired" in str(caught.value)
        for mangled in (bundle[: len(bundle) // 2], b"", b'{"policies": "permit"}'):
            with pytest.raises(troth.PolicyError):
                world.agents.policies.install(mangled)
        assert world.agents.policies.show() == []


def test_a_checkpoint_of_another_log_never_anchors_this_one(tmp_path: Path) -> None:
    """Traces.verify: the node's log judged against another node's kept checkpoint is a
    TraceError; a proof of this log with that file kept is judged against the node's own
    accepted checkpoint, if any, never reported as anchored ("kept", "valid") by the other
    log's note; a
    tampered kept note is a TraceError; an export mixing two logs' lines is a TraceError."""
    with acme_and_agents() as world, troth.Node.open("other") as other:
        agents = world.agents
        agents.delegate(world.support, to=world.sub, ttl=600, purpose="p", attributes=READ)
        agents.traces.checkpoint()
        other.traces.checkpoint()
        theirs = tmp_path / "other.checkpoint"
        other.traces.verify(checkpoint=theirs)  # kept there
        with pytest.raises(troth.TraceError):
            agents.traces.verify(checkpoint=theirs)
        record = agents.traces.show()[0]["id"]
        proof = tmp_path / "proof.json"
        proof.write_bytes(agents.traces.prove(record))
        verdict = agents.traces.verify(file=proof, checkpoint=theirs)
        assert verdict.anchor_source != "kept"
        assert verdict.status != "valid"
        assert verdict.anchor is None or verdict.anchor.origin != _origin(theirs)
        ours = tmp_path / "ours.checkpoint"
        agents.traces.verify(checkpoint=ours)
        note = ours.read_bytes()
        lines = note.split(b"\n")
        lines[2] = lines[2][::-1]  # the root hash reversed: the signature no longer covers it
        ours.write_bytes(b"\n".join(lines))
        with pytest.raises(troth.TraceError):
            agents.traces.verify(checkpoint=ours)
        export = tmp_path / "agents.jsonl"
        with open(export, "w") as out:
            agents.traces.export_jsonl(out)
        mixed = tmp_path / "mixed.jsonl"
        line = export.read_text().splitlines()[0]
        foreign = json.loads(line)
        foreign["checkpoint"] = _origin(theirs)  # another log's origin where this one's was
        mixed.write_text(line + "\n" + json.dumps(foreign) + "\n")
        with pytest.raises(troth.TraceError):
            agents.traces.verify(file=mixed)


def _origin(kept: Path) -> str:
    """The origin line of a kept checkpoint (a C2SP signed note)."""
    return kept.read_text().split("\n")[0]


def test_a_secret_stored_with_another_engines_settings_is_refused() -> None:
    """Secrets.put: an engine that is none of the three is an ArgumentError before anything
    is stored; a token secret given a postgres configuration, or a scope list of other kinds,
    a SecretError CONFIG_INVALID; nothing is stored (the node is no broker of it)."""
    with acme_and_agents() as world:
        hub = world.hub
        with pytest.raises(troth.ArgumentError):
            hub.secrets.put("s", engine="vault", config={"scopes": ["a"]})
        for config in (
            {"scopes": ["a"], "dsn": "postgresql://db/x", "templates": {"a": "r"}},
            {"scopes": "a", "audience": "x"},
            {"scopes": [["a"]], "audience": "x"},
            {"scopes": ["a"], "audience": "x", "ttl": True},
        ):
            with pytest.raises(troth.SecretError) as caught:
                hub.secrets.put("s", engine="token", config=config)
            assert caught.value.reason is troth.SecretFailure.CONFIG_INVALID


svc = troth.Service("probe")


@svc.method("broken", allow=troth.MembersOnly())
async def broken(request: troth.Request) -> object:
    """A handler that fails with a bare KeyError."""
    raise KeyError("missing")


@svc.method("slow", allow=troth.MembersOnly())
async def slow(request: troth.Request) -> int:
    """A handler that takes its time."""
    await asyncio.sleep(5)
    return 0


@svc.method("echo", allow=troth.MembersOnly())
async def echo(request: troth.Request) -> object:
    """Its answer is the arguments."""
    return request.arguments


def test_a_failing_handler_and_a_cancelled_call_leave_the_channel_serving() -> None:
    """A handler's bare KeyError reaches the caller as a RemoteError (never the KeyError,
    never the handler's text), a call cancelled while its handler runs leaves the channel
    usable, an answer the encoder cannot hold is a typed error, and a RunningNode kept past
    its serve block is a ConfigError."""
    with acme_and_agents() as world:
        world.agents.enroll(world.acme.ticket(READ))
        kept: list[troth.RunningNode] = []

        async def main() -> None:
            async with world.hub.serve(listen=("127.0.0.1", 0), services=[svc]) as running:
                kept.append(running)
                at, expect = running.address, running.identifier
                async with world.agents.connect(at, expect=expect) as channel:
                    with pytest.raises(troth.RemoteError) as caught:
                        await channel.call("probe", "broken")
                    assert "missing" not in str(caught.value)
                    task = asyncio.create_task(channel.call("probe", "slow"))
                    await asyncio.sleep(0.2)
                    task.cancel()
                    with pytest.raises(asyncio.CancelledError):
                        await task
                    assert await channel.call("probe", "echo", {"n": [1]}) == {"n": [1]}
                    with pytest.raises(troth.DecodeError):
                        await channel.call("probe", "echo", object())
            with pytest.raises(troth.ConfigError):
                await kept[0].enroll(world.acme.ticket(READ))

        asyncio.run(main())
