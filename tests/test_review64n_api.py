"""Review 64n: the Python API as a new user meets it (README, docs/python.md, examples/), and
the promises of its types and errors attacked.

api 1: `Node.credentials()`, documented "default: the node's own", looked the node's own
identity up by the node's name without making it, when the node's own identity is "created on
first use" (`Node.identity`): on a node that had not used it yet, the first call a newcomer
makes to see what the node holds was a `NotFound` "no local identity 'agents'", a refusal of a
name the caller never gave. Fixed: the default is `Node.identity`, as `Node.enroll`'s is.
api 2: `Secrets.put(config=...)` with a mapping nested past what `json.dumps` walks raised a
bare `RecursionError` (the guide: "a secret's configuration that JSON cannot hold" is an
ArgumentError); `Policies.decide` and `Verifier.verify` already map it. Fixed: refused as any
other configuration JSON cannot hold.
api 3: `Channel.call` promises arguments "nested deeper than `limits.MAX_CBOR_DEPTH`" are a
`DecodeError` raised before anything is sent; nested some 20,000 deep they crashed the whole
process instead (a segfault: `troth.encoding.cbor.encode` handed a value its own walk found
too deep to cbor2's C encoder, which recurses on the C stack with no limit), as did a value of
list or dict subclasses at that depth (never walked at all), a service handler's answer (the
serving node died) and anything else encoded through `encode`. Fixed: the encoder walks such a
value with a stack of its own and refuses one nested past `limits.MAX_CBOR_ENCODE_DEPTH`
(deeper than any decoder reads) with a `DecodeError`, before cbor2 sees it.
api 4: a verified type is "made by verifying" (its constructor refuses a caller, review 54n,
api 8; `dataclasses.replace` too), but the `__setstate__` the dataclass writes for a frozen,
slotted class made one of any fields: `VerifiedCredential.__new__(VerifiedCredential)` and
`__setstate__` with the attributes of one's choosing gave a `VerifiedCredential` granting what
no chain granted (as it did a `VerifiedFeed` revoking nothing, a `VerifiedIdentity`, a
`VerifiedBundle`, a `VerifiedRecord`); and pickling one kept it verified forever, across
processes and past its revocation (a cache, a "safe" unpickler taking only troth's classes:
the same forgery). Fixed (`troth.sealed`): each refuses to be pickled or to have its state set;
a copy is the object itself (it is immutable).
api 5: a long-lived `Node` handle kept one more SQLite connection (two descriptors, node.db and
its -wal) for every run of its runtime, `serve`, `connect`, `Node.call` or a lease outside
`serve` (each runs a storage thread of its own), and for every short-lived thread of the caller
that used it: `SqliteDatabase` kept each thread's connection until the handle closed, so a
script calling `Node.call` in a loop ran out of descriptors after some 500 calls. Fixed: a new
connection closes those of the threads that ended (open connections: one per live thread).
api 6: each run of a long-lived handle's runtime (`serve`, and `connect`, `Node.call`, a lease
outside it) left its `NodeTrust` (its chain verifiers, caches, vouchers) alive for good: the
trust hooked itself on the node, which the handle keeps (`refuted_hooks`, the wallet's
`feed_binds`, judging feed pages outside a running node by the last stopped runtime's), and
nothing took it off, so a script's memory grew with every call. Fixed: the runtime's stop
detaches its trust (`NodeTrust.detach`).
api 7: a `Node.call` (or a `connect` block, a lease) from a thread while another thread's ran
the same handle outside `serve` was refused with a ConfigError saying the node "is served on
another event loop: use it from inside its serve block's loop", of a serve block there was not
(a script's thread pool making calls meets it first). Fixed: the refusal says what runs the
handle and what to do (another handle per thread, or wait).
api 8: `Node.enroll(..., authority_pin=...)` (and `RunningNode.enroll`) took any text as the
pin; one not of its form (`IDENTIFIER:KEY`, hex) was refused by the authority client beneath,
once the ticket was read, as a ConfigError (the command line's "configuration" exit code), not
the ArgumentError (a ValueError, naming the parameter) the guide promises for text not of its
form. Fixed: checked first (`troth.authority.client.parse_authority_pin`, the client's own
parse), an ArgumentError; a pin of the form that the ticket's authority does not match is an
IdentityError, as before.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import troth
from tests.support.brokers import PAYMENTS
from tests.support.public_api import READ, acme_and_agents
from troth.credentials import VerifiedCredential
from troth.credentials.revocation_held import VerifiedFeed
from troth.gates.bundles import VerifiedBundle
from troth.identity import VerifiedIdentity
from troth.node.trust import NodeTrust
from troth.trace.signing import VerifiedRecord

SRC = Path(__file__).resolve().parent.parent / "src"


def _nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


def test_api1_the_nodes_own_credentials_are_listed_before_it_used_its_identity() -> None:
    with troth.Node.open("fresh") as fresh:
        assert fresh.credentials() == []  # NotFound "no local identity 'fresh'" before
        with troth.Node.open("acme") as hub:
            acme = hub.create_authority()
            held = fresh.enroll(acme.ticket(READ))
        assert [c.id for c in fresh.credentials()] == [held.id]
        assert fresh.credentials() == fresh.credentials(fresh.identity)


def test_api2_a_secret_configuration_nested_past_json_is_an_argument_error() -> None:
    with acme_and_agents() as world:
        config = {**PAYMENTS, "extra": _nested(sys.getrecursionlimit() * 2)}
        with pytest.raises(troth.ArgumentError) as refused:
            world.hub.secrets.put("payments", engine="token", config=config)
        assert refused.value.parameter == "config"
        assert isinstance(refused.value, ValueError)


_DEEP_ENCODINGS = """
import sys
from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError


class Items(list):
    pass


def nested(levels, kind):
    value = kind()
    for _ in range(levels):
        value = kind([value])
    return value


refused = []
for value in (nested(30_000, list), nested(30_000, Items), nested(30_000, tuple)):
    for encoder in (cbor.encode, cbor.encode_counted):
        try:
            encoder(value)
        except DecodeError as exc:
            refused.append("nested deeper than" in str(exc))
assert cbor.encode(nested(limits.MAX_CBOR_ENCODE_DEPTH - 1, Items))  # as deep as it goes
print(refused)
"""


def test_api3_a_value_nested_tens_of_thousands_deep_is_a_decode_error_not_a_crash() -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", _DEEP_ENCODINGS],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])  # -11: a segfault
    assert done.stdout.split() == ["[True,", "True,", "True,", "True,", "True,", "True]"]


@pytest.mark.parametrize(
    "kind", [VerifiedCredential, VerifiedFeed, VerifiedIdentity, VerifiedBundle, VerifiedRecord]
)
def test_api4_no_verified_type_has_its_state_set_by_a_caller(kind: Any) -> None:
    bare: Any = kind.__new__(kind)
    with pytest.raises(TypeError, match="verif"):
        bare.__setstate__([None] * 16)
    with pytest.raises(TypeError, match="pickle"):
        pickle.dumps(bare)


def test_api4_a_verified_credential_is_neither_forged_nor_pickled() -> None:
    with acme_and_agents() as world:
        verifier = troth.Verifier(trust=[world.acme.identifier], feeds=world.agents)
        verified = verifier.verify(world.member, presenter=world.support)
        feed = world.agents.feed(world.acme.identifier)
        assert feed is not None
        granted = troth.Attributes({"orders.access": ["read", "write", "admin"]})
        forged: Any = VerifiedCredential.__new__(VerifiedCredential)
        state: Any = verified.__getstate__()
        with pytest.raises(TypeError, match="verif"):  # made one granting "admin" before
            forged.__setstate__([*state[:3], granted, *state[4:]])
        for made in (verified, feed, verified.issuers[0]):
            with pytest.raises(TypeError, match="pickle"):
                pickle.dumps(made)
            assert copy.copy(made) is made
            assert copy.deepcopy(made) is made


def _open_files(path: Path) -> int:
    """How many of this process's descriptors are open on `path`."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:  # closed meanwhile (the listing's own)
            continue
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")
def test_api5_a_long_lived_node_handle_keeps_no_connection_per_run_or_thread(
    troth_home: Path,
) -> None:
    database = troth_home / "nodes" / "agents" / "node.db"

    async def serve_briefly(node: troth.Node) -> None:
        async with node.serve():
            pass

    with acme_and_agents() as world:
        agents = world.agents
        for _ in range(2):
            asyncio.run(serve_briefly(agents))
        before = _open_files(database)
        for _ in range(8):  # each a storage thread of its own, as Node.call, connect, lease
            asyncio.run(serve_briefly(agents))
        for _ in range(8):  # a caller's short-lived threads (a thread per request)
            thread = threading.Thread(target=agents.credentials, args=(world.support,))
            thread.start()
            thread.join()
        assert _open_files(database) <= before + 1  # 16 more before: one per run, per thread
    assert _open_files(database) == 0


def _alive(kind: type) -> int:
    gc.collect()
    return sum(type(each) is kind for each in gc.get_objects())


def test_api6_a_runs_trust_does_not_outlive_it() -> None:
    async def serve_briefly(node: troth.Node) -> None:
        async with node.serve():
            pass

    with acme_and_agents() as world:
        asyncio.run(serve_briefly(world.agents))
        before = _alive(NodeTrust)
        for _ in range(6):
            asyncio.run(serve_briefly(world.agents))
        assert _alive(NodeTrust) <= before  # one more kept per run before


def test_api7_another_threads_call_is_refused_saying_what_runs_the_handle() -> None:
    holding, release = threading.Event(), threading.Event()

    async def hold_a_channel(world: Any) -> None:
        async with world.hub.serve(listen=("127.0.0.1", 0)) as running:
            expect = running.identifier
            async with world.agents.connect(running.address, expect=expect):
                holding.set()
                await asyncio.to_thread(release.wait, 30)

    with acme_and_agents() as world:
        thread = threading.Thread(target=asyncio.run, args=(hold_a_channel(world),))
        thread.start()
        try:
            assert holding.wait(30)
            with pytest.raises(troth.ConfigError) as refused:
                world.agents.call("/tcp/127.0.0.1:1", "greet", "hi", expect=None)
        finally:
            release.set()
            thread.join()
        assert "serve block" not in str(refused.value)  # there was none
        assert "Node.open" in str(refused.value)


def test_api8_an_authority_pin_not_of_its_form_is_an_argument_error() -> None:
    with acme_and_agents() as world:
        ticket = world.acme.ticket(READ)
        for pin in ("", "x:y", f"{world.acme.identifier}:zz", str(world.acme.identifier)):
            with pytest.raises(troth.ArgumentError) as refused:
                world.agents.enroll(ticket, identity=world.sub, authority_pin=pin)
            assert refused.value.parameter == "authority_pin"
            assert isinstance(refused.value, ValueError)
        wrong_key = f"{world.acme.identifier}:{'00' * 32}"
        with pytest.raises(troth.IdentityError):  # of the form: the ticket's authority judged
            world.agents.enroll(ticket, identity=world.sub, authority_pin=wrong_key)
        assert world.agents.enroll(ticket, identity=world.sub).holder == world.sub.identifier
