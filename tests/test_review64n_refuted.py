"""Review 64n: attacks on the Python API's promises that did not work, each kept as a test of
the defence that stopped it.

- a verified type by other doors than verifying: `dataclasses.replace` and a subclass's
  constructor (both refused; pickling and `__setstate__` were open: test_review64n_api, api 4);
- chains and presenter histories cut, flipped and spliced, at `Verifier.verify` and `Node.hold`:
  only `CredentialError` (never a decoder's, a KeyError, an assert), and never a verification;
- a hand-made `Credential` (fields are the chain's to prove): another authority's credential id
  put on one's own chain does not let `Node.revoke` revoke a stranger's credential, and
  attributes or a holder written on it decide nothing at `Policies.decide`;
- a CBOR document of thousands of nested arrays at the decoder's fast path: a DecodeError, not
  a crash of cbor2's C decoder (the encoder's was: api 3);
- a service handler's exception: the caller hears "internal error", not its text;
- a secret's value in the refusal of its configuration: never shown;
- `Traces.verify(checkpoint=LINK)`, a link to the node's database, vault key or configuration:
  none of them read as a checkpoint nor written; a link to a missing file is replaced, its
  target never created.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import troth
from tests.support.public_api import READ, acme_and_agents
from troth.credentials import VerifiedCredential
from troth.encoding import cbor
from troth.errors import DecodeError

SECRET = b"value-that-must-stay-hidden"


def test_a_verified_credential_is_not_made_by_replace_nor_by_a_subclass() -> None:
    with acme_and_agents() as world:
        verifier = troth.Verifier(trust=[world.acme.identifier], feeds=world.agents)
        verified = verifier.verify(world.member, presenter=world.support)
        more = troth.Attributes({"orders.access": ["read", "write"]})
        with pytest.raises(troth.ArgumentError) as replaced:
            dataclasses.replace(verified, attributes=more)
        assert replaced.value.parameter == "_token"

        class Mine(VerifiedCredential):
            __slots__ = ()

        fields: Any = [getattr(verified, f.name) for f in dataclasses.fields(verified)][:-1]
        with pytest.raises(troth.ArgumentError):
            Mine(*fields)


def test_mutated_chains_and_histories_are_only_credential_errors() -> None:
    with acme_and_agents() as world:
        agents, support, sub = world.agents, world.support, world.sub
        chain = agents.delegate(
            support, to=sub, ttl=600, purpose="p", attributes=READ, caveats=["true"]
        ).chain
        verifier = troth.Verifier(trust=[world.acme.identifier], feeds=agents)

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.data())
        def attack(data: st.DataObject) -> None:
            target = data.draw(st.sampled_from([chain, sub.history]))
            at = data.draw(st.integers(0, len(target)))
            cut = data.draw(st.integers(0, 8))
            spliced = data.draw(st.binary(max_size=8))
            mutated = target[:at] + spliced + target[at + cut :]
            if mutated == target:
                return
            if target is chain:
                with pytest.raises(troth.CredentialError):
                    verifier.verify(mutated, presenter=sub, context={})
                with pytest.raises(troth.CredentialError):
                    agents.hold(sub, mutated)
            else:
                shown = troth.Identity("sub", sub.identifier, 1, "ed25519", mutated)
                with pytest.raises(troth.CredentialError):
                    verifier.verify(chain, presenter=shown, context={})

        attack()


def test_a_hand_made_credential_revokes_no_strangers_credential() -> None:
    with acme_and_agents() as world, troth.Node.open("beta") as beta_hub:
        beta = beta_hub.create_authority()
        with troth.Node.open("other") as other:
            victim = other.identities.create("victim")
            stranger = other.enroll(beta.ticket(READ), identity=victim)
        world.agents.enroll(beta.ticket(READ), identity=world.support)
        own = world.agents.delegate(
            world.support, to=world.sub, ttl=600, purpose="p", attributes=READ
        )
        for made in (own, world.member):
            forged = dataclasses.replace(made, id=stranger.id, authority=beta.identifier)
            with pytest.raises(troth.AuthorityError) as refused:
                world.agents.revoke(forged, by=world.support)
            assert refused.value.reason is troth.AuthorityFailure.REQUEST_INVALID
        verifier = troth.Verifier(trust=[beta.identifier], feeds=beta)
        assert verifier.verify(stranger, presenter=victim).attributes == stranger.attributes


def test_a_hand_made_credentials_fields_decide_nothing() -> None:
    def refund(order_id: str, amount: int) -> str:
        """Refund part of an order."""
        return order_id

    writers = (
        '@id("w") permit(principal, action == Action::"invoke:refund", resource) when '
        '{ principal.hasTag("orders.access") && principal.getTag("orders.access")'
        '.contains("write") };'
    )
    with acme_and_agents() as world:
        bundle = world.hub.policies.sign(policies=writers, tools={"refund": refund}, revision=1)
        world.agents.policies.install(bundle)
        wider = troth.Attributes({"orders.access": ["read", "write"]})
        arguments = {"order_id": "1", "amount": 1}
        for forged in (
            dataclasses.replace(world.member, attributes=wider),
            dataclasses.replace(world.member, attributes=wider, holder=world.sub.identifier),
        ):
            decision = world.agents.policies.decide(forged, "refund", arguments)
            assert not decision.allowed, decision.reason
        assert world.agents.policies.decide(world.member, "refund", arguments).policies == ()


@pytest.mark.parametrize("levels", [100, 16_383])
def test_deeply_nested_cbor_at_the_fast_path_is_a_decode_error(levels: int) -> None:
    with pytest.raises(DecodeError, match="nested deeper than"):
        cbor.decode(b"\x81" * levels + b"\x00")


def test_a_handlers_exception_text_stays_on_its_node() -> None:
    hidden = troth.Service("hidden")

    @hidden.method("boom", allow=troth.AnyAuthenticated())
    async def boom(request: troth.Request) -> None:
        raise KeyError("db password is hunter2")

    async def call(world: Any) -> None:
        async with world.hub.serve(listen=("127.0.0.1", 0), services=[hidden]) as running:
            expect = running.identifier
            async with world.agents.connect(running.address, expect=expect) as channel:
                with pytest.raises(troth.RemoteError) as failed:
                    await channel.call("hidden", "boom", None)
        assert "hunter2" not in str(failed.value)
        assert "internal error" in str(failed.value)

    with acme_and_agents() as world:
        asyncio.run(call(world))


def test_a_refused_secret_configuration_never_shows_the_value() -> None:
    inject = {
        "upstream": "https://api.example/",
        "header": "X-Key",
        "rules": [{"methods": ["GET"], "path": "/a"}],
        "scopes": ["r"],
        "ttl": 60,
        "max_ttl": 60,
    }
    with acme_and_agents() as world:
        for config, value in (
            ({**inject, "unknown": 1}, SECRET),
            (inject, SECRET + b"\n"),
            (inject, b"\xff" + SECRET),
        ):
            with pytest.raises(troth.SecretError) as refused:
                world.hub.secrets.put("api", engine="http-inject", config=config, value=value)
            assert refused.value.reason is troth.SecretFailure.CONFIG_INVALID
            assert SECRET.decode() not in str(refused.value) + repr(refused.value)


def test_a_kept_checkpoint_linked_to_a_nodes_files_writes_none_of_them(
    tmp_path: Path, troth_home: Path
) -> None:
    with acme_and_agents() as world:
        agents = world.agents
        agents.delegate(world.support, to=world.sub, ttl=60, purpose="p", attributes=READ)
        agents.traces.checkpoint()
        node_dir = troth_home / "nodes" / "agents"
        for target in ("node.db", "vault.key", "node.json"):
            kept, before = tmp_path / f"to-{target}", (node_dir / target).read_bytes()
            kept.symlink_to(node_dir / target)
            with pytest.raises((troth.TraceError, OSError)):
                agents.traces.verify(checkpoint=kept)
            assert (node_dir / target).read_bytes() == before
        kept = tmp_path / "to-missing"
        kept.symlink_to(node_dir / "missing")
        assert agents.traces.verify(checkpoint=kept).kept_written
        assert not kept.is_symlink()
        assert not (node_dir / "missing").exists()
