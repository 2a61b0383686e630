"""The public face of a node's gates (`Node.policies`): sign a policy bundle as an authority (or
a policy-admin), install one the node receives, show the bundles the node holds, re-sign the
held one after a rotation, and decide one tool call under them.

The calls are the ones `troth policy bundle create`, `push`, `show`, `bundle resign` make
(`troth.node.services.policy`) and the local MCP gate decides with
(`troth.node.policy_api.decide_on_node`): the same answers, the same refusals
(docs/policy.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from troth import limits
from troth._api.arguments import check_flag, check_mapping, check_peer, check_text, check_whole
from troth._api.results import Credential, Identity
from troth.errors import ArgumentError, NotFound
from troth.gates import PolicyDecision, ToolCall, schema_from_function
from troth.identity import Identifier
from troth.kinds import check_kind, got
from troth.node.policy_api import check_server, check_services, decide_on_node, presented_holder

if TYPE_CHECKING:
    from troth._api.node import IdentityRef, Node, PeerRef

__all__ = ["Policies", "PolicyBundle"]

_DISTRIBUTING: set[asyncio.Task[Any]] = set()
"""The policy services' distributions `install` started (kept until done)."""

ToolSpec = Any
"""A tool's input: its JSON input schema (a mapping), or a Python function (its schema from
its signature and docstring, `troth.gates.schema_from_function`). `Any`: a dict of functions
of different signatures is typed `dict[str, function]`, which is no `Callable` to mypy."""


@dataclass(frozen=True, slots=True)
class PolicyBundle:
    """A policy bundle a node holds (`Policies.show`, `install`), as `troth policy show` shows
    it: whose (`authority`), signed by whom (`signer`: the authority or a policy-admin), its
    `revision`, times (Unix seconds), the tools, services and policy `@id`s it declares, its
    SHA-256 (`digest`, hex: what `resign` takes), and whether it decides now (`in_force`;
    else why not, `not_in_force`: expired, a stale feed, ...)."""

    authority: Identifier
    """The authority whose bundle it is (its policies decide its members' calls)."""
    signer: Identifier | None
    """Who signed it: the authority, or a member holding troth.role=policy-admin."""
    revision: int
    """Its revision: a node installs only a higher one than it holds."""
    issued_at: int
    """When it was signed (Unix seconds)."""
    expires_at: int
    """When it stops deciding (Unix seconds): past it, every call is denied."""
    tools: tuple[str, ...]
    """The tools it declares (sorted): a call of any other is denied."""
    services: Mapping[str, tuple[str, ...]]
    """The node services it declares, each with its methods."""
    policies: tuple[str, ...]
    """The `@id`s of its Cedar policies."""
    digest: str
    """Its SHA-256 (hex): two bundles of one revision differ by it; `resign` takes it."""
    in_force: bool
    """Whether it decides now (signed by a trusted authority, unexpired, its feed fresh)."""
    not_in_force: str | None
    """Why it does not decide now (a `PolicyFailure` value), or None."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PolicyBundle:
        """From a row of `troth.node.services.policy.stored_bundles` (ArgumentError for a
        mapping that is not one: review 62h, api 5; nor one whose fields are of other types,
        its bundle then saying what the row does not: review 62q, api 1)."""
        try:
            if not _is_row(row):
                raise TypeError("fields of other types than a row's")
            signer = row.get("signer")
            return cls(
                authority=Identifier.parse(row["authority"]),
                signer=None if signer is None else Identifier.parse(signer),
                revision=row["revision"],
                issued_at=row["issued_at"],
                expires_at=row["expires_at"],
                tools=tuple(row["tools"]),
                services={name: tuple(methods) for name, methods in row["services"].items()},
                policies=tuple(row["policies"]),
                digest=row["digest"],
                in_force=row["in_force"],
                not_in_force=row.get("not_in_force"),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            if isinstance(exc, ArgumentError):
                raise
            raise ArgumentError(
                "PolicyBundle.from_row", "row", "a row of stored_bundles", got(row)
            ) from None


def _is_row(row: Mapping[str, Any]) -> bool:
    """Whether `row`'s fields are of a `stored_bundles` row's types (its keys: KeyError)."""

    def texts(value: object) -> bool:
        return isinstance(value, list | tuple) and all(type(item) is str for item in value)

    services = row["services"]
    return (
        all(type(row[key]) is int for key in ("revision", "issued_at", "expires_at"))
        and texts(row["tools"])
        and texts(row["policies"])
        and isinstance(services, Mapping)
        and all(type(name) is str and texts(methods) for name, methods in services.items())
        and type(row["digest"]) is str
        and type(row["in_force"]) is bool
        and type(row.get("not_in_force")) in (type(None), str)
    )


class Policies:
    """The node's policy bundles (`Node.policies`): Cedar policies and tool schemas signed by
    an authority, which decide every tool call (deny by default: no bundle, an expired one, a
    stale feed, a tool it does not declare all deny; docs/policy.md)."""

    def __init__(self, node: Node) -> None:
        from troth._api.node import Node

        self._node = check_kind("Policies", "node", node, Node, "a Node (use node.policies)")

    def sign(
        self,
        *,
        policies: str,
        tools: Mapping[str, ToolSpec],
        revision: int,
        signer: IdentityRef | None = None,
        authority: PeerRef | None = None,
        schema: str = "",
        services: Mapping[str, Sequence[str]] | None = None,
        ttl: int | None = None,
        fleet_holds_none: bool = False,
    ) -> bytes:
        """A new signed bundle (bytes: install it here with `install`, or on the nodes it is
        for), as `troth policy bundle create` makes it: `policies`, Cedar text, each policy
        with a unique `@id`; `tools`, each tool's name to its JSON input schema or a Python
        function; `services`, service name to its methods; `schema`, a Cedar fragment added to
        troth's. Signed by `signer` (default: the authority the node hosts; else a local
        identity holding troth.role=policy-admin of `authority`), for `authority` (default:
        the hosted one). `revision` must exceed every revision the nodes hold; `ttl` seconds
        (default 7 days, or until the signer's key or chain expires; at most
        `limits.MAX_POLICY_BUNDLE_TTL`, 90 days, else an ArgumentError, and not past the
        signer's key or chain, else a PolicyError EXPIRED). Refused with a
        PolicyError whose `messages` are the validator's (an invalid policy, a revision the
        node already holds), or RESTORED after a restore of node.db (`fleet_holds_none`: your
        word that no node holds a bundle of `authority`, as `--fleet-holds-none`)."""
        call = "Policies.sign"
        check_text(call, "policies", policies)
        check_text(call, "schema", schema)
        check_whole(call, "revision", revision, low=1, high=limits.MAX_POLICY_REVISION)
        check_flag(call, "fleet_holds_none", fleet_holds_none)  # never by truthiness (66x, hold 2)
        if ttl is not None:  # a bundle's limit: past it, "the bundle expired" (63j, api 3)
            check_whole(
                call, "ttl", ttl, low=1, high=limits.MAX_POLICY_BUNDLE_TTL, unit=" of seconds"
            )
        compiled_tools = _tools(call, tools)
        methods = check_services(_services(call, services))
        node = self._node
        stored = node._stored
        owner = self._authority(call, authority)
        who = str(owner) if signer is None else self._signer(call, signer)
        from troth.node.services.policy import sign_bundle_as

        return sign_bundle_as(
            stored,
            who,
            authority=owner,
            policies=policies,
            schema=schema,
            tools=compiled_tools,
            services=methods,
            revision=revision,
            ttl=ttl,
            now=node._clock.now(),
            fleet_holds_none=fleet_holds_none,
        )

    def install(self, bundle: bytes) -> PolicyBundle:
        """Verify `bundle` and install it on this node, as `troth policy push` does: signed by
        an authority the node trusts (or its policy-admin), a revision higher than the one it
        holds, under a fresh feed; a daemon running the node takes it up at once and
        distributes it. Installing the bundle it holds again changes nothing. PolicyError
        when refused (tampered: BAD_SIGNATURE or MALFORMED; an older revision: ROLLBACK; an
        authority it does not trust: UNTRUSTED_AUTHORITY)."""
        if not isinstance(bundle, bytes):
            raise ArgumentError(
                "Policies.install", "bundle", "a signed bundle's bytes", got(bundle)
            )
        from troth.node.services.policy import install_bundle

        stored = self._node._stored
        summary = install_bundle(
            stored.path.parent.parent, stored.name, bundle, clock=self._node._clock
        )
        self._tell_runtimes_here()
        return self._shown(summary)

    def publish(
        self,
        *,
        policies: str,
        tools: Mapping[str, ToolSpec],
        revision: int,
        signer: IdentityRef | None = None,
        authority: PeerRef | None = None,
        schema: str = "",
        services: Mapping[str, Sequence[str]] | None = None,
        ttl: int | None = None,
    ) -> PolicyBundle:
        """`sign` a bundle (the same keyword arguments, typed as there: review 65n) and
        `install` it on this node: an authority's node publishes its policies (the nodes
        subscribed to it receive them while it runs)."""
        signed = self.sign(
            policies=policies,
            tools=tools,
            revision=revision,
            signer=signer,
            authority=authority,
            schema=schema,
            services=services,
            ttl=ttl,
        )
        return self.install(signed)

    def show(self) -> list[PolicyBundle]:
        """The bundles this node holds, as `troth policy show` lists them."""
        from troth.node.services.policy import stored_bundles

        stored = self._node._stored
        rows = stored_bundles(stored.path.parent.parent, stored.name, clock=self._node._clock)
        return [PolicyBundle.from_row(row) for row in rows]

    def resign(self, digest: str) -> PolicyBundle:
        """Sign the hosted authority's bundle this node holds again under its current key (one
        revision up, same policies and lifetime from now) and install it, as `troth policy
        bundle resign`: after the authority rotated. Only the bundle whose SHA-256 is `digest`
        (hex, `PolicyBundle.digest`); PolicyError when it differs or there is none."""
        check_text("Policies.resign", "digest", digest)
        from troth.node.services.policy import resign_held_bundle

        stored = self._node._stored
        summary = resign_held_bundle(
            stored.path.parent.parent, stored.name, digest=digest, clock=self._node._clock
        )
        self._tell_runtimes_here()
        return self._shown(summary)

    def _shown(self, summary: Mapping[str, Any]) -> PolicyBundle:
        """The bundle `summary` installed, as `show` lists it (held no more, a bundle of a
        higher revision installed meanwhile: its summary, not in force)."""
        for held in self.show():
            if held.digest == summary["digest"]:
                return held
        return PolicyBundle.from_row({**summary, "in_force": False, "not_in_force": "replaced"})

    def decide(
        self,
        who: IdentityRef | Credential,
        tool: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        server: str | None = None,
    ) -> PolicyDecision:
        """Decide one call of `tool` with `arguments` (a JSON object) under the bundles this
        node holds, as its gates decide it: by a local identity `who` (its name, identifier
        text or `Identity`: its current credential, as the local MCP gate decides), or by a
        `Credential` presented by its holder, as the node's gates decide a peer's call
        (verified in full against the feeds the node holds; not while its authority's feed is
        due a sync after a revocation made on this machine). `server`: the MCP server whose
        tool it is; for a `Credential`, as that server published on this node decides, by the
        bundles of the authorities granting its tools only (recorded at its publication, else
        the node's own). The `PolicyDecision` says `allowed`, the `outcome`, the `reason` in
        words, the deciding policy `@id`s (`policies`) and the bundle's `revision`; anything
        but a permit with no error denies (an unknown tool: `Outcome.UNKNOWN_REQUEST`; no
        bundle or a stale feed: `NOT_IN_FORCE`; a refused credential: `CREDENTIAL`). Nothing
        is recorded in the trace log (the gates record what they decide)."""
        call = "Policies.decide"
        check_text(call, "tool", tool)
        if server is not None:
            check_text(call, "server", server)
            check_server(server)
        request = ToolCall(tool, _arguments(call, arguments), server=server)
        node = self._node
        if isinstance(who, Credential):
            chain = (who.chain, presented_holder(who.chain, who.holder))
            return decide_on_node(node._stored, request, chain=chain, clock=node._clock)
        if not isinstance(who, str | Identity):
            raise ArgumentError(
                call, "who", "an identity's name, an Identity or a Credential", got(who)
            )
        from troth._api.node import _ref

        name = _ref(who, node._stored, call, "who")
        return decide_on_node(node._stored, request, identity=name, clock=node._clock)

    def _tell_runtimes_here(self) -> None:
        """The nodes `serve` runs in this process over this node's directory activate what
        was installed now, as a daemon does when `troth policy push` tells it (review 61g,
        api 3: they decided by the older bundle until their next maintenance round); on this
        thread's event loop, their policy service distributes it too."""
        from troth._api.network import runtimes_here
        from troth.node.services.policy import PolicyService

        for runtime in runtimes_here(self._node):
            runtime.policies.reload(now=runtime.clock.now())
            service = runtime.host.services.get("policy")
            if isinstance(service, PolicyService):
                with contextlib.suppress(RuntimeError):  # no loop in this thread: at its round
                    task = asyncio.get_running_loop().create_task(service.installed())
                    _DISTRIBUTING.add(task)
                    task.add_done_callback(_DISTRIBUTING.discard)

    def _authority(self, call: str, authority: PeerRef | None) -> Identifier:
        """The authority a bundle is for: `authority`, else the one this node hosts."""
        if authority is not None:  # of another kind: not looked up (review 61j, api 3)
            return self._node._identifier_of(check_peer(call, "authority", authority))
        hosted = self._node._stored.hosted_authority()
        if hosted is None:
            raise NotFound(f"node {self._node.name!r} hosts no authority: say which (authority=)")
        return hosted.identifier

    def _signer(self, call: str, signer: IdentityRef) -> str:
        from troth._api.node import _ref

        return _ref(signer, self._node._stored, call, "signer")


def _tools(call: str, tools: Mapping[str, ToolSpec]) -> dict[str, Any]:
    """Each tool's JSON input schema (a function's from its signature)."""
    check_mapping(call, "tools", tools)
    out: dict[str, Any] = {}
    for name, spec in tools.items():
        check_text(call, "tools", name)
        if inspect.isfunction(spec) or inspect.ismethod(spec):
            out[name] = schema_from_function(spec)
        elif isinstance(spec, Mapping):
            out[name] = dict(spec)
        else:
            raise ArgumentError(call, "tools", "tool names to JSON schemas or functions", got(spec))
    return out


def _services(call: str, services: Mapping[str, Sequence[str]] | None) -> dict[str, list[str]]:
    """A bundle's services: each service's name to a sequence of its method names (not one
    str: review 61j, api 2, the CLI's DecodeError of a services file)."""
    check_mapping(call, "services", services or {})
    for methods in (services or {}).values():
        if (
            isinstance(methods, str | bytes)
            or not isinstance(methods, Sequence)
            or not all(isinstance(method, str) for method in methods)
        ):
            raise ArgumentError(
                call, "services", "service names to sequences of method names", got(methods)
            )
    return {name: list(methods) for name, methods in (services or {}).items()}


def _arguments(call: str, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
    """A tool call's arguments: a JSON object within `limits.MAX_TOOL_ARGUMENTS_BYTES`."""
    if arguments is None:
        return {}
    if not isinstance(arguments, Mapping):
        raise ArgumentError(call, "arguments", "a mapping (a JSON object)", got(arguments))
    try:
        text = json.dumps(dict(arguments), allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        raise ArgumentError(call, "arguments", "a JSON object", "values JSON cannot hold") from None
    if len(text.encode()) > limits.MAX_TOOL_ARGUMENTS_BYTES:
        raise ArgumentError(
            call, "arguments", f"at most {limits.MAX_TOOL_ARGUMENTS_BYTES} bytes of JSON", "more"
        )
    loaded: dict[str, Any] = json.loads(text)
    return loaded
