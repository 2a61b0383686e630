"""The policy engine: one compiled bundle, deciding requests of verified callers on Cedar
(docs/policy.md, "Decisions").

Rules (issue 11; research §1.6): a request is allowed only when Cedar answers Allow with zero
errors; anything else (Deny, NoDecision, an Allow beside an erroring forbid) is a denial. A
decision names the deciding policies by their `@id`s, sorted, and gives a reason a model can
read that never echoes argument values (Cedar's request errors do: they are mapped to fixed
texts). Per verified chain (keyed by the hash of its last credential body, which commits to
every body above it) the engine builds the chain's entities and the bundle's policy set plus
the chain's caveats once, and reuses them; the caches are bounded (those of chains with
caveats, each a copy of the policy set with the caveats added, by the length of that text too:
review 41d, caveats 1; review 43b, caveats 1; all by the entities they hold, each chain's the
schema's every action: review 53p, memory 1).
"""

from __future__ import annotations

import enum
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import cedarpy

from troth import limits
from troth.credentials import VerifiedCredential
from troth.errors import PolicyError
from troth.gates.caveats import caveat_fragment
from troth.gates.cedar_call import EVALUATION_ERROR, Fields, answer_fields, partial_shows
from troth.gates.entities import agent_uid, credential_entities
from troth.gates.policies import CompiledPolicies, tool_action
from troth.gates.preview_budget import PreviewBudgets
from troth.gates.preview_sets import arguments_named, preview_context
from troth.gates.toolschema import NAME, ToolSchema, within_value_limit

__all__ = [
    "LeaseRequest",
    "Outcome",
    "PolicyDecision",
    "PolicyEngine",
    "Request",
    "ServiceCall",
    "ToolCall",
]

CACHE_ENTRIES: Final = 4096
"""Chains an engine keeps entities, merged policy sets and visible tools for."""
DECISIONS_PER_CHAIN: Final = 64
SERVED_ENTRIES: Final = 256
"""(chain, server, tool) an engine keeps the chain's entities with that tool in that server for
(each a copy of the chain's entities, which hold the schema's actions: ~130 KiB at MAX_TOOLS;
past it a decision builds its own, ~10 us; review 53j, gates 2)."""
"""Mapped error-free decisions an engine keeps per chain (they repeat call after call)."""
_ENCODER: Final = json.JSONEncoder(allow_nan=False, separators=(",", ":"))
_C_MAKE_ENCODER: Callable[..., Callable[[Any, int], list[str]]] | None = getattr(
    json.encoder, "c_make_encoder", None
)  # CPython's C encoder (typeshed does not declare it)
_ARGS_ENCODER: Final = (
    None
    if _C_MAKE_ENCODER is None
    else _C_MAKE_ENCODER(
        None,
        _ENCODER.default,
        json.encoder.encode_basestring_ascii,
        None,
        ":",
        ",",
        False,
        False,
        False,
    )
)
"""`_ENCODER`'s C encoder, made once (`JSONEncoder.encode` builds one per call, in two Python
frames), without markers: the same text, for a `_flat` object only (`_json_text`)."""
_NUL: Final = re.compile(r"(?:^|[^\\])(?:\\\\)*\\u0000")
"""A NUL in the arguments' JSON text as `_ENCODER` writes it (`\\u0000` after an even run of
backslashes: `\\\\u0000` is a backslash, then text)."""
_TOO_MANY: Final = (
    f"denied: the arguments hold more than {limits.MAX_TOOL_ARGUMENT_VALUES} values "
    "(MAX_TOOL_ARGUMENT_VALUES)"
)
"""A call's denial for its values' count (review 69n, gates 2), not a schema's mismatch."""
_PLACEHOLDER: Final = "invoke:*"
"""The Cedar action id of the placeholder tool a call denied before Cedar is evaluated as
(`PolicyEngine._placeholder`): `*` is no tool name's character (toolschema.NAME)."""
_PLACEHOLDER_ACTION: Final = {"type": "Action", "id": _PLACEHOLDER}
_PLACEHOLDER_RESOURCE: Final = {"type": "Tool", "id": "*"}
_LEASE: Final = {"type": "Action", "id": "lease"}
_PLACEHOLDER_SCHEMA: Final = (
    f'\naction "{_PLACEHOLDER}" in [Action::"invoke"] appliesTo {{\n'
    "  principal: [Agent], resource: [Tool],\n"
    "  context: { args: {}, now: __cedar::Long }\n};\n"
)
Uid = dict[str, str]
"""An entity uid as cedarpy takes it besides Cedar text: `{"type": T, "id": I}`, the uid
`T::"I"` with no text parsed (Cedar's grammar, at every call: ~290 k of the ~540 k
instructions of a decision's native call; review 61o, gates 1). Every id the engine writes is
one Cedar text could quote (`_plain`, NAME), so both forms name the same entity. Built once
where it can be and never changed: the same dict is handed to every call."""
_K = TypeVar("_K")
_V = TypeVar("_V")


class Outcome(enum.Enum):
    """What a decision came to (its `reason` says it in words)."""

    ALLOWED = "allowed"
    FORBIDDEN = "forbidden"
    NO_PERMIT = "no-permit"
    ARGUMENTS = "arguments"
    EVALUATION_ERROR = "evaluation-error"
    UNKNOWN_REQUEST = "unknown-request"
    SCHEMA_MISMATCH = "schema-mismatch"
    CAVEAT_INVALID = "caveat-invalid"
    CREDENTIAL = "credential"
    NOT_IN_FORCE = "not-in-force"
    LEASE_DENIED = "lease-denied"
    UNANSWERED = "unanswered"  # allowed, then cancelled or failed before its result (47m)
    PREVIEW_BUDGET = "preview-budget"  # told only: the member's previews refused (55n)


_TEXT: Final = {
    Outcome.FORBIDDEN: "denied by policy {ids}",
    Outcome.NO_PERMIT: "denied: no policy permits this request",
    Outcome.ARGUMENTS: "denied: the arguments do not match the tool's input schema",
    Outcome.EVALUATION_ERROR: "denied: policy {ids} could not be evaluated for this request",
    Outcome.UNKNOWN_REQUEST: "denied: the policy bundle declares no such {what}",
    Outcome.SCHEMA_MISMATCH: "denied: the tool's input schema differs from the policy bundle's",
    Outcome.CAVEAT_INVALID: "denied: a caveat of the caller's credential is not a Cedar condition",
    Outcome.PREVIEW_BUDGET: (
        "denied: this member's delegates have used their budget of tool previews; try again later"
    ),
}


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """A decision: allowed or not, why (fit for a model to read), the deciding `@id`s (sorted)
    and the policy errors (fixed texts), under bundle `revision`, whose SHA-256 is `digest`
    (hex: two bundles of one revision differ by it; docs/policy.md, "Bundles on a node")."""

    allowed: bool
    outcome: Outcome
    reason: str
    policies: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    revision: int | None = None
    digest: str | None = None

    @classmethod
    def deny(
        cls,
        outcome: Outcome,
        reason: str | None = None,
        *,
        revision: int | None = None,
        digest: str | None = None,
        **fmt: str,
    ) -> PolicyDecision:
        """A denial with `outcome`'s fixed reason (or `reason`)."""
        text = reason or _TEXT[outcome].format(**fmt)
        return cls(False, outcome, text, revision=revision, digest=digest)

    def to_json(self) -> dict[str, Any]:
        """The decision as a JSON object (what `--json` prints: outcome by its value)."""
        return {
            "allowed": self.allowed,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "policies": list(self.policies),
            "errors": list(self.errors),
            "revision": self.revision,
            "digest": self.digest,
        }


@dataclass(frozen=True, slots=True)
class ToolCall:
    """Invoke `tool` with `arguments` (a JSON object). `schema` is the shape
    (`schema_shape`) of the input schema the enforcing gate declares for the tool: a call is
    denied when it differs from the bundle's ("" = the gate declares no such tool; None = not
    compared). `server` is the MCP server whose tool it is (the gate's configuration: a
    published server's name, `troth mcp gate --server`), the Cedar resource then
    `Tool::"<tool>"` in `Server::"<server>"`; None: a tool of no server, in none (review 53c,
    gates 1; docs/policy.md, "Entities")."""

    tool: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    schema: str | None = None
    server: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceCall:
    """Call `method` of node service `service` (agent to agent)."""

    service: str
    method: str


@dataclass(frozen=True, slots=True)
class LeaseRequest:
    """Lease secret `secret` with `scope` for `ttl` seconds (issue 12; Cedar: `context.scope`,
    `context.ttl`)."""

    secret: str
    scope: tuple[str, ...] = ()
    ttl: int = 0


Request = ToolCall | ServiceCall | LeaseRequest


@dataclass(frozen=True, slots=True, eq=False)
class _Principal:
    """What the engine keeps per chain: its entities, the policy set with its caveats, the
    Cedar ids of those caveats, or the denial every request of the chain gets; and the
    decisions Cedar's error-free answers map to (by decision and reasons, at most
    DECISIONS_PER_CHAIN). `uid` is the chain's actor as Cedar text (partial evaluation takes
    no other form), `ref` the same uid as a decision hands it (`Uid`)."""

    uid: str
    ref: Uid
    entities: cedarpy.Entities | None
    policy_set: cedarpy.PolicySet
    names: Mapping[str, str]  # Cedar ids -> @ids (the bundle's and the caveats')
    refused: PolicyDecision | None
    decided: dict[tuple[bool, tuple[str, ...]], PolicyDecision] = field(default_factory=dict)


class _Bounded(dict[_K, _V]):
    """A dict of at most `size` entries weighing at most `budget` together (each its weight
    when put, none by default): the oldest dropped to make room, an entry heavier than
    `budget` alone not kept (inserts under a lock; reads free)."""

    def __init__(self, size: int, budget: int = 0) -> None:
        super().__init__()
        self._size = size
        self._budget = budget
        self._weights: dict[_K, int] = {}
        self._total = 0
        self._lock = threading.Lock()

    def put(self, key: _K, value: _V, weight: int = 0) -> _V:
        if weight > self._budget:
            return value
        with self._lock:
            if key in self:
                self._total -= self._weights.pop(key)
                del self[key]
            while self and (len(self) >= self._size or self._total + weight > self._budget):
                oldest = next(iter(self))
                self._total -= self._weights.pop(oldest)
                del self[oldest]
            self[key] = value
            self._weights[key] = weight
            self._total += weight
        return value


class PolicyEngine:
    """Decides requests against one compiled bundle (immutable; safe to share between
    threads). `revision`, and the bundle's SHA-256 `digest` when given, are reported in every
    decision."""

    def __init__(
        self,
        compiled: CompiledPolicies,
        *,
        revision: int = 0,
        digest: bytes | None = None,
        cache_size: int = CACHE_ENTRIES,
    ) -> None:
        self.compiled = compiled
        self.revision = revision
        self.digest = None if digest is None else digest.hex()
        # each tool's action and resource, as Cedar text (previews) and as uids (decisions)
        self._tools = {
            name: (spec, f'Action::"{tool_action(name)}"', f'Tool::"{name}"')
            for name, spec in compiled.tools.items()
        }
        # each tool's preview context: its arguments unknown, not the whole context (None)
        self._contexts = {
            name: preview_context(spec.canonical) for name, spec in compiled.tools.items()
        }
        self._uids: dict[str, tuple[Uid, Uid]] = {
            name: ({"type": "Action", "id": tool_action(name)}, {"type": "Tool", "id": name})
            for name in compiled.tools
        }
        # each chain's entities hold the schema's every action (~130 KiB at MAX_TOOLS), and a
        # member's delegates are chains minted for free: bounded by the entities they hold too
        # (review 53p, memory 1); an evicted chain's are built again at its next call
        self._principals: _Bounded[bytes, _Principal] = _Bounded(
            cache_size, limits.MAX_CACHED_CHAIN_ENTITIES
        )
        # the chains with caveats: each keeps a copy of the policy set with its caveats added
        # (the text of both), so they are bounded by that text's length (review 41d, caveats
        # 1), the caveats' counted too (review 43b, caveats 1: under a small bundle 4,096
        # chains of big caveats held hundreds of MB)
        self._caveated: _Bounded[bytes, _Principal] = _Bounded(
            cache_size, limits.MAX_CAVEATED_POLICY_TEXT
        )
        # each a set of up to MAX_TOOLS names (~34 KB), one per chain and server: bounded by
        # the names they hold too (review 69n, gates 1)
        self._visible: _Bounded[bytes, frozenset[str]] = _Bounded(
            cache_size, limits.MAX_CACHED_VISIBLE_NAMES
        )
        # per (chain, server, tool) decided: the chain's entities with that one tool in that
        # server (never the bundle's every tool: review 53j, gates 2)
        self._served: _Bounded[bytes, cedarpy.Entities | None] = _Bounded(
            min(cache_size, SERVED_ENTRIES)
        )
        self._with_placeholder: cedarpy.Schema | None = None  # _placeholder_schema
        self._budgets = PreviewBudgets()  # uncached previews, by member (review 55n, preview 1)

    @property
    def tools(self) -> Mapping[str, ToolSchema]:
        return self.compiled.tools

    # -- per chain ------------------------------------------------------------------------

    def _principal(self, credential: VerifiedCredential) -> _Principal:
        key = credential.links[-1].hash
        found = self._principals.get(key) or self._caveated.get(key)
        if found is not None:
            return found
        uid = agent_uid(credential.actor)
        ref = {"type": "Agent", "id": str(credential.actor)}
        base = self.compiled.policy_set
        try:
            fragment, ids = caveat_fragment(
                [(link.index, link.caveats) for link in credential.links]
            )
            merged = base.with_added_str(fragment) if ids else base
        except (PolicyError, ValueError):
            refused = self._deny(Outcome.CAVEAT_INVALID)
            return self._principals.put(key, _Principal(uid, ref, None, base, {}, refused), 1)
        try:
            entities = cedarpy.Entities.from_json_str(
                credential_entities(credential), self.compiled.schema
            )
        except ValueError:  # troth builds them to the fixed schema: not expected
            refused = self._deny(Outcome.CREDENTIAL, "denied: the credential has no Cedar form")
            return self._principals.put(key, _Principal(uid, ref, None, base, {}, refused), 1)
        names = dict(self.compiled.names)
        names.update(zip(fragment_ids(len(names), len(ids)), ids, strict=True))
        principal = _Principal(uid, ref, entities, merged, names, None)
        if ids:
            held = len(entities) * limits.CEDAR_ENTITY_BYTES  # review 53p, memory 1
            return self._caveated.put(
                key, principal, self.compiled.text_size + len(fragment) + held
            )
        return self._principals.put(key, principal, len(entities))

    # -- deciding ---------------------------------------------------------------------------

    def _deny(self, outcome: Outcome, reason: str | None = None, **fmt: str) -> PolicyDecision:
        return PolicyDecision.deny(
            outcome, reason, revision=self.revision, digest=self.digest, **fmt
        )

    def decide(
        self, credential: VerifiedCredential, request: Request, *, now: int
    ) -> PolicyDecision:
        """Decide `request` by the (current, verified) `credential`'s actor at `now`."""
        if not _plain(request):
            return self._deny(Outcome.UNKNOWN_REQUEST, what=_WHAT.get(type(request), "request"))
        if isinstance(request, ToolCall):
            built = self._tool_request(request, now)
            if isinstance(built, PolicyDecision):  # denied before Cedar: the same work anyway
                return self._placeholder(credential, built, now)
            action, resource, context = built
        elif isinstance(request, ServiceCall):
            methods = self.compiled.services.get(request.service)
            if methods is None or request.method not in methods:
                return self._deny(Outcome.UNKNOWN_REQUEST, what="service method")
            action = {"type": "Action", "id": request.method}
            resource = {"type": "Service", "id": request.service}
            context = f'{{"now":{int(now)}}}'
        else:
            if not NAME.fullmatch(request.secret):
                return self._deny(Outcome.UNKNOWN_REQUEST, what="secret")
            action, resource = _LEASE, {"type": "Secret", "id": request.secret}
            scope = _ENCODER.encode(list(request.scope))  # scope tokens: JSON strings
            context = f'{{"now":{int(now)},"scope":{scope},"ttl":{int(request.ttl)}}}'
        principal = self._principal(credential)
        if principal.refused is not None:
            return principal.refused
        entities = principal.entities
        if isinstance(request, ToolCall) and request.server is not None:
            # the hash is 32 bytes, and `/` is in no name: one key per (chain, server, tool)
            served = b"%s%s/%s" % (
                credential.links[-1].hash,
                request.server.encode(),
                request.tool.encode(),
            )
            entities = self._served.get(served)
            if entities is None:
                entities = self._served.put(
                    served, _with_tool(principal, request.tool, request.server)
                )
        # the uids as `Uid`s (review 61o, gates 1): cedarpy takes text or these
        cedar: dict[str, Any] = {
            "principal": principal.ref,
            "action": action,
            "resource": resource,
            "context": context,
        }
        answer = answer_fields(
            cedar,
            principal.policy_set,
            entities,  # type: ignore[arg-type]  # set whenever refused is None
            self.compiled.schema,
        )
        decision, reasons, errors, annotations = answer
        if errors:
            return self._failed(answer, principal.names)
        key = (decision == "Allow", reasons)
        found = principal.decided.get(key)
        if found is None:
            found = self._error_free(key[0], reasons, annotations)
            if len(principal.decided) < DECISIONS_PER_CHAIN:
                principal.decided[key] = found
        return found

    def _tool_request(self, request: ToolCall, now: int) -> tuple[Uid, Uid, str] | PolicyDecision:
        """The Cedar action, resource and context of tool call `request`, or its denial before
        Cedar (a tool the bundle or the gate does not declare, a schema that differs, arguments
        that do not fit)."""
        entry = self._tools.get(request.tool)
        if entry is None:
            return self._deny(Outcome.UNKNOWN_REQUEST, what="tool")
        spec = entry[0]
        action, resource = self._uids[request.tool]
        if request.schema is not None and request.schema != spec.shape:
            if not request.schema:
                return self._deny(Outcome.UNKNOWN_REQUEST, what="tool")
            return self._deny(Outcome.SCHEMA_MISMATCH)
        args = request.arguments
        if type(args) is not dict:  # (a dict first: an ABC check costs at every call)
            if not isinstance(args, Mapping):
                return self._deny(Outcome.ARGUMENTS)
            args = dict(args)
        if spec.fill is not None:  # judged with what the tool runs with (toolschema)
            if not within_value_limit(args):  # counted before the filler walks them too
                return self._deny(Outcome.ARGUMENTS, _TOO_MANY)
            try:
                args = spec.fill(args)
            except PolicyError:  # its defaults would take it past the limit (49d, gates 1)
                return self._deny(Outcome.ARGUMENTS)
        flat = _flat(args)  # then its values are its names: counted first (69n, gates 2)
        if len(args) > limits.MAX_TOOL_ARGUMENT_VALUES or not (flat or within_value_limit(args)):
            return self._deny(Outcome.ARGUMENTS, _TOO_MANY)
        if spec.check is not None and not spec.check(args):
            return self._deny(Outcome.ARGUMENTS)
        try:  # `_json_text(args, flat)` in line (a frame less at every call: review 64g)
            if flat and _ARGS_ENCODER is not None:
                encoded = "".join(_ARGS_ENCODER(args, 0))
            else:
                encoded = _ENCODER.encode(args)
        except (TypeError, ValueError, RecursionError):  # nested past the encoder: review 23c
            return self._deny(Outcome.ARGUMENTS)
        if len(encoded) > limits.MAX_TOOL_ARGUMENTS_BYTES or not (flat or _str_keys(args)):
            return self._deny(Outcome.ARGUMENTS)
        # a repeated array item is one a Cedar Set keeps once: the tool would act on more than
        # Cedar judged (review 51f, gates 1; docs/policy.md, "Tool arguments")
        if spec.distinct is not None and not spec.distinct(args):
            return self._deny(Outcome.ARGUMENTS)
        # a NUL ends the string a tool hands on as a C string (a path, a command): Cedar would
        # judge more than it acts on (review 47g, gates 1; docs/policy.md, "Tool arguments")
        if "\\u0000" in encoded and _NUL.search(encoded):
            return self._deny(Outcome.ARGUMENTS)
        return action, resource, f'{{"args":{encoded},"now":{int(now)}}}'

    def _placeholder(
        self, credential: VerifiedCredential, denial: PolicyDecision, now: int
    ) -> PolicyDecision:
        """`denial`, a tool call's denied before Cedar (a made-up name included), after the work
        of a call Cedar decides: the caller's chain looked up and one Cedar evaluation, of a
        placeholder tool no bundle can declare (its answer unused), so a name the bundle does
        not declare costs what a tool hidden from the caller does (review 48t, gates 1;
        docs/policy.md, "The tool gate"). Only on denials: an allowed call costs nothing more."""
        principal = self._principal(credential)
        if principal.refused is None:
            cedar: dict[str, Any] = {  # as a decision hands it (`Uid`s: review 61o, gates 1)
                "principal": principal.ref,
                "action": _PLACEHOLDER_ACTION,
                "resource": _PLACEHOLDER_RESOURCE,
                "context": f'{{"args":{{}},"now":{int(now)}}}',
            }
            answer_fields(
                cedar,
                principal.policy_set,
                principal.entities,  # type: ignore[arg-type]  # set whenever refused is None
                self._placeholder_schema(),
            )
        return denial

    def _placeholder_schema(self) -> cedarpy.Schema:
        """The bundle's schema with the placeholder tool declared (parsed once; the bundle's
        own where the two cannot be composed: the placeholder request is then refused by
        Cedar, still one evaluation call)."""
        schema = self._with_placeholder
        if schema is None:
            try:
                schema = cedarpy.Schema.from_str(self.compiled.schema_text + _PLACEHOLDER_SCHEMA)
            except ValueError:
                schema = self.compiled.schema
            self._with_placeholder = schema
        return schema

    def _error_free(
        self, allow: bool, reasons: tuple[str, ...], names: Mapping[str, str]
    ) -> PolicyDecision:
        """Cedar's answer without errors: the satisfied permits of an Allow, the satisfied
        forbids of a Deny (none: no permit applied)."""
        policies = tuple(sorted(names.get(p, p) for p in reasons))
        if allow:
            reason = "allowed by policy " + ", ".join(policies)
            return PolicyDecision(
                True, Outcome.ALLOWED, reason, policies, (), self.revision, self.digest
            )
        if policies:
            reason = _TEXT[Outcome.FORBIDDEN].format(ids=", ".join(policies))
            return PolicyDecision(
                False, Outcome.FORBIDDEN, reason, policies, (), self.revision, self.digest
            )
        return self._deny(Outcome.NO_PERMIT)

    def _failed(self, answer: Fields, cedar_ids: Mapping[str, str]) -> PolicyDecision:
        """Cedar's answer with errors: always a denial (research §1.6), in fixed texts."""
        decision, reasons, raw_errors, names = answer
        policies = tuple(sorted(names.get(p, p) for p in reasons))
        failing: list[str] = []
        errors: list[str] = []
        for text in raw_errors:  # fixed texts only: Cedar's messages may echo argument values
            match = EVALUATION_ERROR.match(text)
            if match is None:
                if text.startswith("failed to build request"):
                    return self._deny(Outcome.ARGUMENTS)
                errors.append("the policy engine could not decide")
                continue
            failing.append(cedar_ids.get(match[1], match[1]))
            errors.append(f"policy {failing[-1]} could not be evaluated")
        if decision == "Deny" and policies:
            reason = _TEXT[Outcome.FORBIDDEN].format(ids=", ".join(policies))
            return PolicyDecision(
                False,
                Outcome.FORBIDDEN,
                reason,
                policies,
                tuple(errors),
                self.revision,
                self.digest,
            )
        ids = ", ".join(sorted(failing)) or "(unknown)"
        return PolicyDecision(
            False,
            Outcome.EVALUATION_ERROR,
            _TEXT[Outcome.EVALUATION_ERROR].format(ids=ids),
            policies,
            tuple(errors),
            self.revision,
            self.digest,
        )

    # -- previews (gate 1) ------------------------------------------------------------------

    def told(
        self,
        credential: VerifiedCredential,
        request: ToolCall,
        decision: PolicyDecision,
        *,
        now: int | None = None,
    ) -> PolicyDecision:
        """What the caller of `request`, denied with `decision` by this engine, is told: that
        decision when gate 1 shows it the tool (its reason names why these arguments are
        denied), else, for a tool hidden from it (no permit could allow it; or the schema the
        gate declares for it is not the bundle's), exactly the denial of a tool the bundle does
        not declare, so a caller cannot learn by calling names which tools and schemas the
        bundle holds that it may never use (review 47h, gates 1; docs/policy.md, "The tool
        gate"). A caller whose credential this engine refuses (a caveat that is not a Cedar
        condition) is told that refusal for every name, made up or not (review 47n, gates 3).
        The record keeps `decision`. Only for denials: an allowed tool is shown. With `now`, a
        lookup not cached is charged as `visible_tools` charges it: past the member's budget
        every denied name is told so (`preview-budget`; review 55n, preview 1)."""
        if decision.allowed:
            return decision
        refused = self._principal(credential).refused
        if refused is not None:
            return refused
        # looked up for every denied name, a made-up one included: the same cached lookup, or
        # the same partial evaluations the first time for a chain (review 48t, gates 1)
        visible = self._preview(credential, request.server, now)
        if visible is None:
            return self._deny(Outcome.PREVIEW_BUDGET)
        if decision.outcome is Outcome.UNKNOWN_REQUEST:
            return decision
        entry = self._tools.get(request.tool)
        if (
            entry is not None
            and (request.schema is None or request.schema == entry[0].shape)
            and request.tool in visible
        ):
            return decision
        return self._deny(Outcome.UNKNOWN_REQUEST, what="tool")

    def visible_tools(
        self, credential: VerifiedCredential, *, server: str | None = None, now: int | None = None
    ) -> frozenset[str]:
        """The bundle's tools the actor could be permitted to call (as tools of MCP server
        `server`, None: of none): partial evaluation with the context unknown (or its arguments'
        values only: `preview_sets.preview_context`) hides a tool iff the answer is Deny or has
        errors (sound, not complete: an unsatisfiable condition still
        shows a tool; every call is decided anyway). A `server` that is no valid server name
        shows none. With `now` (a decision point's), a preview not cached is charged to the
        chain's member (`PreviewBudgets`): past its budget it shows none, and is not cached
        (review 55n, preview 1)."""
        return self._preview(credential, server, now) or frozenset()

    def _preview(
        self, credential: VerifiedCredential, server: str | None, now: int | None
    ) -> frozenset[str] | None:
        """`visible_tools`' answer; None: refused, past the member's budget."""
        key = credential.links[-1].hash
        if server is not None:
            if type(server) is not str or not NAME.fullmatch(server):
                return frozenset()
            key += server.encode()  # the hash: always 32 bytes
        found = self._visible.get(key)
        if found is not None:
            return found
        principal = self._principal(credential)
        visible: set[str] = set()
        if principal.refused is None:
            # a chain without caveats: each tool against the policies that can apply to it
            # only (exact; review 55n, preview 2); with caveats, against all and the caveats
            compiled = self.compiled
            plain = principal.policy_set is compiled.policy_set
            sets = compiled.tool_sets if plain else {}
            work = compiled.preview_work if plain else 0
            work = work or len(self._tools) * max(1, len(principal.names))
            if now is not None and not self._budgets.charge(credential, work, now=now):
                return None
            # policies or caveats reading the arguments whole: the context unknown whole, not
            # each use written out with every property's unknown (review 65m, gates 1)
            named = compiled.arguments_named and (plain or _named(credential))
            contexts = self._contexts if named else {}
            for name, (_, action, resource) in self._tools.items():
                policies = sets.get(name)
                if partial_shows(
                    {"principal": principal.uid, "action": action, "resource": resource},
                    principal.policy_set if policies is None else policies[0],
                    _with_tool(principal, name, server),  # type: ignore[arg-type]
                    compiled.schema,
                    contexts.get(name),
                ):
                    visible.add(name)
        return self._visible.put(key, frozenset(visible), len(visible))


_WHAT: Final[dict[type, str]] = {
    ToolCall: "tool",
    ServiceCall: "service method",
    LeaseRequest: "secret",
}


def _named(credential: VerifiedCredential) -> bool:
    """Whether `credential`'s caveats (valid: its principal is not refused) read the context
    only by name (`preview_sets.arguments_named`); one Cedar cannot write as JSON counts as not
    (its preview then takes the context unknown whole: it only shows more)."""
    try:
        fragment, _ = caveat_fragment([(link.index, link.caveats) for link in credential.links])
        est = json.loads(cedarpy.policies_to_json_str(fragment))
    except (PolicyError, ValueError, RecursionError):
        return False
    return type(est) is dict and arguments_named(est)


def _with_tool(principal: _Principal, tool: str, server: str | None) -> cedarpy.Entities | None:
    """The chain's entities with the one tool `tool`, `Tool::"<tool>"` in `Server::"<server>"`
    (in none for None; `server` a valid name: `_plain`, `visible_tools`): a tool an MCP gate
    serves is its server's (review 53c, gates 1; docs/policy.md, "Entities"). Cedar decides a
    tool absent from the entities as one in no server, but a partial evaluation leaves
    `resource in Server::"s"` unknown for it (a tool of no server would be shown), so previews
    use these too. Only the tool decided (a decision keeps it per chain, server and tool): per
    chain and server the bundle's every tool was kept (up to MAX_TOOLS, ~0.7 MB an entry), and
    a member's delegates, free to mint, each added one (review 53j, gates 2). None: the chain
    has no entities (its requests refused)."""
    if principal.entities is None:
        return None
    parent = [] if server is None else [{"type": "Server", "id": server}]
    tool_entity = [{"uid": {"type": "Tool", "id": tool}, "attrs": {}, "parents": parent}]
    return principal.entities.with_added_json_str(_ENCODER.encode(tool_entity))


def _plain(request: Request) -> bool:
    """Whether the names of `request` are exactly `str` (a lease's scope tokens too, its ttl
    exactly an `int`): a `str` subclass is checked by its text and written into the Cedar
    request by its `__format__`, which may say another name (review 50d, gates 2: a
    ServiceCall of `cancel` formatting as `status` was decided as `status`)."""
    if isinstance(request, ToolCall):  # a server named as the gates name one (review 53c)
        server = request.server
        return type(request.tool) is str and (
            server is None or (type(server) is str and NAME.fullmatch(server) is not None)
        )
    if isinstance(request, ServiceCall):
        return type(request.service) is str and type(request.method) is str
    return (
        isinstance(request, LeaseRequest)
        and type(request.secret) is str
        and type(request.ttl) is int
        and all(type(token) is str for token in request.scope)
    )


def _json_text(value: dict[str, Any], flat: bool | None = None) -> str:
    """`_ENCODER.encode(value)`, by the encoder made once when the C one is there and `value`
    is `flat` (`_flat(value)`, asked when None): that one keeps no markers (they would be
    shared by threads), so it would follow a circular value until RecursionError, past the C
    stack under a raised recursion limit (review 60l, gates 2: SIGSEGV where the stdlib's
    check refuses at once)."""
    if flat is None:
        flat = _flat(value)
    if _ARGS_ENCODER is None or not flat:
        return _ENCODER.encode(value)
    return "".join(_ARGS_ENCODER(value, 0))


_STR: Final = frozenset({str})
_SCALARS: Final = frozenset({str, int, bool, float, type(None)})


def _flat(args: dict[str, Any]) -> bool:
    """Whether `args` is a dict (no subclass, whose own iteration could differ from what the
    encoder reads) of exact `str` keys and exact scalar values: nothing to follow, nothing
    circular; the types gathered in C (review 60c, perf 1)."""
    return (  # issuperset takes each type in turn: no set is built (review 64g)
        type(args) is dict
        and _STR.issuperset(map(type, args))
        and _SCALARS.issuperset(map(type, args.values()))
    )


def _str_keys(args: dict[str, Any]) -> bool:
    """Whether every object key in `args` (encoded: no deeper than the encoder went, no larger
    than MAX_TOOL_ARGUMENTS_BYTES) is exactly a `str`. JSON writes `True`, `1` or a `str`
    subclass as text the schema's checks, which look a property up by its `str` name, never
    judged (review 50d, gates 2; docs/policy.md, "Tool arguments"): a direct caller's only.
    A `_flat` object's are (the decision asks it first)."""
    pending: list[Any] = [args]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            if not all(type(key) is str for key in value):
                return False
            pending.extend(v for v in value.values() if isinstance(v, dict | list | tuple))
        else:
            pending.extend(v for v in value if isinstance(v, dict | list | tuple))
    return True


def fragment_ids(base: int, added: int) -> list[str]:
    """The Cedar ids `PolicySet.with_added_str` gives the `added` policies of a fragment on a set
    of `base` positionally numbered policies (cedarpy 4.12; pinned by
    tests/test_gates_engine.py): the fragment's own positional id `policy<k>` is kept unless the
    base has it (k < base), which becomes `policy<max(base, added) + k>`."""
    top = max(base, added)
    return [f"policy{top + k}" if k < base else f"policy{k}" for k in range(added)]
