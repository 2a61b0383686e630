"""Review 56c: the public Python API as a security engineer who uses it reads and runs it
(troth.__all__, docs/python.md, README.md).

- api 1: a number out of its range given to `Authority.ticket` (`uses`, `ttl`),
  `Node.create_authority` (`credential_ttl`, `delegation_depth`) or `Node.delegate` (`depth`)
  was an `AuthorityError` REQUEST_INVALID from the authority beneath (or, for a negative
  `depth`, a `CredentialError` AMPLIFIED saying "depth -1 is not below 4"), where
  docs/python.md promises an `ArgumentError` for "a ttl, timeout or port out of range",
  refused before anything is done, naming the parameter.
- api 2: a `RunningNode` kept past its `serve` block: `enroll` failed with a bare
  RuntimeError ("cannot schedule new futures after shutdown") from the stopped storage
  worker, and `connect` still opened a secure channel and called a service as the node, on a
  runtime that no longer ran its maintenance (feeds, credentials); `identifier` still
  answered. Now each is a `ConfigError` saying the node no longer runs there.
- api 4: a `Channel` kept past its `connect` block went on calling the other node while
  another block of the running node to the same route and peer shared the channel (one alone
  failed with "no worker or transport for /worker/chan-..."). Now a RoutingError saying its
  block ended, whichever blocks share it.
- docs 2: `Verifier.verify(presenter=5)` said the presenter must be "an Identifier, an
  Identity, identifier text or a name"; a verifier has no node to look a name up in, and a
  name given is refused (MalformedText). The refusal now says what it takes.
- docs 1: docs/python.md, concatenated as the guide says (one program), failed
  `mypy --strict`: its dict of lambdas is a "call to untyped function". A user who types
  their script as the API is typed (py.typed) could not follow the guide.
"""

from __future__ import annotations

import asyncio
import functools
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import troth
from tests.support.public_api import Agents as Scene
from tests.support.public_api import acme_and_agents, greet, hi
from tests.support.readme import python_program
from troth import limits

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def scene() -> Iterator[Scene]:
    with acme_and_agents() as scene:
        yield scene


def _delegate(scene: Scene, depth: int) -> object:
    return scene.agents.delegate(
        scene.support,
        to=scene.sub,
        attributes={"orders.access": "read"},
        ttl=60,
        purpose="p",
        depth=depth,
    )


OUT_OF_RANGE: dict[str, tuple[str, Callable[[Scene], object]]] = {
    "ticket uses 0": ("uses", lambda s: s.acme.ticket({"orders.access": "read"}, uses=0)),
    "ticket uses past the limit": (
        "uses",
        lambda s: s.acme.ticket({"a.b": "x"}, uses=limits.MAX_TICKET_USES + 1),
    ),
    "ticket ttl 0": ("ttl", lambda s: s.acme.ticket({"orders.access": "read"}, ttl=0)),
    "ticket ttl -1": ("ttl", lambda s: s.acme.ticket({"orders.access": "read"}, ttl=-1)),
    "ticket ttl past MAX_TTL": (
        "ttl",
        lambda s: s.acme.ticket({"orders.access": "read"}, ttl=limits.MAX_TTL + 1),
    ),
    "credential_ttl 0": (
        "credential_ttl",
        lambda s: troth.Node.open("other").create_authority(credential_ttl=0),
    ),
    "delegation_depth -1": (
        "delegation_depth",
        lambda s: troth.Node.open("other").create_authority(delegation_depth=-1),
    ),
    "delegation_depth past the limit": (
        "delegation_depth",
        lambda s: troth.Node.open("other").create_authority(
            delegation_depth=limits.MAX_DELEGATION_LINKS + 1
        ),
    ),
    "delegate depth -1": ("depth", lambda s: _delegate(s, -1)),
}


@pytest.mark.parametrize("case", sorted(OUT_OF_RANGE))
def test_a_number_out_of_its_range_is_an_argument_error(scene: Scene, case: str) -> None:
    parameter, call = OUT_OF_RANGE[case]
    with pytest.raises(troth.ArgumentError) as raised:
        call(scene)
    assert raised.value.parameter == parameter
    assert isinstance(raised.value, ValueError)


def test_a_refused_authority_leaves_the_node_able_to_host_one() -> None:
    with troth.Node.open("other") as node:
        with pytest.raises(troth.ArgumentError):
            node.create_authority(credential_ttl=0)
        assert node.create_authority().name == "other"


# -- api 2: a RunningNode kept past its serve block --------------------------------------------


async def _kept_past_serve(
    scene: Scene, use: Callable[[troth.RunningNode, troth.RunningNode], Any]
) -> object:
    """What `use(stale, live)` gives: `stale` a RunningNode whose serve block ended, `live`
    another node serving `greet` on TCP."""
    with troth.Node.open("desk") as desk:
        desk.enroll(scene.acme.ticket({"orders.access": "read"}))  # agents' trust admits it
        async with desk.serve(listen=("127.0.0.1", 0), services=[greet]) as live:
            async with scene.agents.serve() as running:
                pass
            return await use(running, live)


async def _connect_and_call(stale: troth.RunningNode, live: troth.RunningNode) -> object:
    async with stale.connect(live.address, expect=live.identifier) as channel:
        return await channel.call("greet", "hi")


async def _read(value: Callable[[], object]) -> object:
    return value()


STALE: dict[str, Callable[[Scene, troth.RunningNode, troth.RunningNode], Any]] = {
    "enroll": lambda s, stale, live: stale.enroll(s.acme.ticket({"orders.access": "read"})),
    "connect": lambda s, stale, live: _connect_and_call(stale, live),
    "relay": lambda s, stale, live: stale.relay("agents", at=live.address),
    "identifier": lambda s, stale, live: _read(lambda: stale.identifier),
}


@pytest.mark.parametrize("use", sorted(STALE))
def test_a_running_node_past_its_serve_block_refuses_every_use(scene: Scene, use: str) -> None:
    with pytest.raises(troth.ConfigError, match="no longer runs"):
        asyncio.run(_kept_past_serve(scene, lambda stale, live: STALE[use](scene, stale, live)))


def test_a_running_node_past_its_serve_block_refuses_to_revoke(scene: Scene) -> None:
    chain = scene.agents.delegate(
        scene.support, to=scene.sub, attributes={"orders.access": "read"}, ttl=60, purpose="p"
    )

    async def revoke(stale: troth.RunningNode, live: troth.RunningNode) -> int:
        return await stale.revoke(chain, by=scene.support)

    with pytest.raises(troth.ConfigError, match="no longer runs"):
        asyncio.run(_kept_past_serve(scene, revoke))
    verifier = troth.Verifier(trust=[scene.acme.identifier], feeds=scene.acme)
    assert verifier.verify(chain, presenter=scene.sub).actor == scene.sub.identifier


# -- api 4: a Channel kept past its connect block ----------------------------------------------


def test_a_channel_kept_past_its_block_is_refused_while_another_block_shares_it(
    scene: Scene,
) -> None:
    async def kept() -> object:
        with troth.Node.open("desk") as desk:
            async with (
                desk.serve(listen=("127.0.0.1", 0), services=[greet]) as live,
                scene.agents.serve() as running,
                running.connect(live.address, expect=live.identifier) as outer,
            ):
                async with running.connect(live.address, expect=live.identifier) as inner:
                    assert await inner.call("greet", "hi") == "hi"
                with pytest.raises(troth.RoutingError, match="its connect block ended"):
                    await inner.call("greet", "hi")
                return await outer.call("greet", "hi")  # the other block's is still open

    assert asyncio.run(kept()) == "hi"


# -- api 3: what a handler is (a sync one is answered since review 56m, handlers 1) ----------------


class _AsyncCallable:
    async def __call__(self, request: troth.Request) -> str:
        return "an object with an async __call__"


def test_a_handler_that_is_not_callable_is_refused_when_declared() -> None:
    """A sync function is a handler since review 56m (handlers 1: its answer is the answer,
    `tests/test_review56m_handlers.py`); what is not callable is still refused."""
    method = troth.Service("desk").method("ask", allow=troth.AnyAuthenticated())
    with pytest.raises(troth.ArgumentError) as raised:
        method("never awaited")  # type: ignore[arg-type]  # what mypy would say, at run time
    assert raised.value.parameter == "handler"


def test_an_async_callable_or_a_partial_is_taken_as_a_handler() -> None:
    service = troth.Service("desk")
    service.method("call", allow=troth.AnyAuthenticated())(_AsyncCallable())
    service.method("partial", allow=troth.AnyAuthenticated())(functools.partial(hi))
    assert sorted(service.methods) == ["call", "partial"]


# -- docs 2: what Verifier.verify's presenter takes ----------------------------------------------


def test_a_presenter_of_another_type_is_refused_without_offering_a_name(scene: Scene) -> None:
    verifier = troth.Verifier(trust=[scene.acme.identifier], feeds=scene.acme)
    with pytest.raises(troth.MalformedText):  # a name is not taken: the verifier has no node
        verifier.verify(scene.member, presenter="support")
    with pytest.raises(troth.ArgumentError) as raised:
        verifier.verify(scene.member, presenter=5)  # type: ignore[arg-type]  # on purpose
    assert raised.value.expected == "an Identifier, an Identity or identifier text"


# -- docs 1: the documented programs under mypy --strict ---------------------------------------


def test_the_guide_and_the_readme_pass_mypy_strict(tmp_path: Path) -> None:
    scripts = []
    for name, path in (("guide", ROOT / "docs" / "python.md"), ("story", ROOT / "README.md")):
        script = tmp_path / f"{name}.py"
        script.write_text(python_program(path.read_text()))
        scripts.append(str(script))
    scripts += [str(p) for p in sorted((ROOT / "examples").glob("*.py"))]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(tmp_path / "cache"),
            *scripts,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,  # its pyproject.toml: mypy_path = "src"
        check=False,
    )
    assert done.returncode == 0, done.stdout
