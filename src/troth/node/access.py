"""The node's one access decision point (docs/protocols.md, "Access"): every request that
reaches a service, and every channel a peer opens, passes `AccessPolicy.decide` first.

    AccessRequest(caller, service, method, arguments, now) -> Decision(allowed, reasons, ...)

A caller is `LocalCaller` (the control socket, in-process code) or `PeerCaller` (a verified
peer on a secure channel). A peer's standing (its credentials re-verified against the feeds
held *now*, its identity not revoked nor superseded) is computed at every decision, so a
revocation takes effect on the next request of an open channel.

`RulesPolicy` is the first implementation: each service declares a `Rule` per method, as data
(`AnyAuthenticated`, `MembersOnly`, `RequireAttributes`, `AttributeCoversArgument`). A
credential that carries caveats never satisfies a rule on its own: caveats are Cedar
conditions, which built-in rules do not evaluate (fail closed).

`GatedPolicy` puts Cedar beside the rules (docs/policy.md, "Services"): infrastructure services
(INFRASTRUCTURE) keep their built-in rules only, so no policy bundle can lock a node out of
enrollment, feeds or policy distribution; a service an active policy bundle declares is
allowed only when Cedar allows (action `Action::"<method>"` on `Service::"<name>"`, the
credential's caveats enforced) AND the built-in rule is met by the same credential. With
`governs` (the runtime's), only for the chains the declaring bundles speak for: a bundle of
their own authority or of the authority the node hosts (review 36c, services 1); the other
chains meet the built-in rule alone. No bundle for the caller's authority, an expired bundle
or a stale feed is a denial. A caller `UNSERVED` refuses (every chain caveated) that Cedar
refuses is told `UNSERVED`'s refusal, as a made-up service name tells it (review 64m, access 1).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Protocol

from troth.channel import VerifiedPeer
from troth.credentials import Attributes, VerifiedCredential
from troth.dataclass_init import quick_init
from troth.errors import ChannelError, ChannelFailure, Denied, MalformedText, cut_text
from troth.gates import DecisionPoint, ServiceCall
from troth.identity import Identifier

__all__ = [
    "CHANNELS",
    "INFRASTRUCTURE",
    "UNSERVED",
    "AccessPolicy",
    "AccessRequest",
    "AnyAuthenticated",
    "AttributeCoversArgument",
    "Caller",
    "ChannelAdmission",
    "Decision",
    "GatedMembers",
    "GatedPolicy",
    "LocalCaller",
    "MembersOnly",
    "PeerCaller",
    "RequireAttributes",
    "Rule",
    "RulesPolicy",
    "Standing",
    "require",
]

CHANNELS: Final = ("channels", "open")
"""The (service, method) a channel admission is decided as."""
UNSERVED: Final = ("channels", "unserved")
"""The (service, method) a peer's request to a `/service/...` address the node does not serve
is decided as (its rule: members only): a caller it refuses is answered that denial, as a
members-only method of a service it serves would be, a caller it admits `no-route` (review
64b, access 1: `no-route` to a stranger told the node's services from made-up names)."""
INFRASTRUCTURE: Final = frozenset(
    {"authority", "broker", "channels", "echo", "policy", "relay", "sink", "trace"}
)
"""Services decided by their built-in rules only, even when a policy bundle declares them: the
node's own. Not `control`: the control socket's callers are local (decided as local whatever
the service), and no service of a node has that name, so only an operator's own
`troth.Service("control")` was ever asked for it by a peer, and a bundle declaring it was
ignored (review 58n, access 1)."""
MAX_ARGUMENT_SHOWN: Final = 64
"""Characters of a request's text argument a refusal's reasons quote: the caller chose it, up
to the whole request, and the decision quotes it before the service validated it (review 44a,
malformed 2: a 900 KB relay name was a 1.8 MB `denied` answer, over the service limit)."""


@dataclass(frozen=True, slots=True)
class LocalCaller:
    """A caller on this machine: the node's control socket (a 0600 socket in a 0700
    directory) or code running in the node's process."""

    via: str = "local"

    def __str__(self) -> str:
        return self.via


@dataclass(frozen=True, slots=True)
class PeerCaller:
    """A verified peer on a secure channel (`channel`: the channel's id)."""

    peer: VerifiedPeer
    channel: str

    @property
    def identifier(self) -> Identifier:
        """The peer's identifier."""
        return self.peer.identifier

    def __str__(self) -> str:
        return str(self.peer.identifier)


def member_accounts(peer: VerifiedPeer) -> frozenset[bytes]:
    """Whom a peer's holdings (sessions, relay names) count against: the member at the root of
    each of its chains, so delegate identities a member mints share its limits; the peer itself
    when it holds no chain."""
    roots = {credential.links[0].subject.digest for credential in peer.credentials}
    return frozenset(roots or {peer.identifier.digest})


Caller = LocalCaller | PeerCaller
"""Who makes a request."""


@quick_init  # one is made per request (benchmarks/README.md "Pass 51a")
@dataclass(frozen=True, slots=True)
class AccessRequest:
    """What is asked: who calls which method of which service with what, at `now`."""

    caller: Caller
    service: str
    method: str
    arguments: Any
    now: int


class Decision:
    """The answer of the decision point: `reasons` say who allowed or refused whom and why;
    `policies` name the rules that decided; `credential` is the one that satisfied them.

    `explain` (instead of `reasons`) builds the reasons when they are first read: a request
    that is allowed is dispatched without formatting why (the decision itself is the same)."""

    __slots__ = ("_explain", "_reasons", "allowed", "credential", "policies")

    def __init__(
        self,
        allowed: bool,
        reasons: tuple[str, ...] = (),
        policies: tuple[str, ...] = (),
        credential: VerifiedCredential | None = None,
        *,
        explain: Callable[[], tuple[str, ...]] | None = None,
    ) -> None:
        self.allowed = allowed
        self.policies = policies
        self.credential = credential
        self._reasons: tuple[str, ...] | None = None if explain is not None else reasons
        self._explain = explain

    @property
    def reasons(self) -> tuple[str, ...]:
        """Who allowed or refused whom, and why."""
        reasons = self._reasons
        if reasons is None:
            explain = self._explain
            reasons = self._reasons = explain() if explain is not None else ()
        return reasons

    def _key(self) -> tuple[object, ...]:
        return (self.allowed, self.reasons, self.policies, self.credential)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Decision) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        allowed, reasons, policies, credential = self._key()
        return f"Decision({allowed=}, {reasons=}, {policies=}, {credential=})"


def require(decision: Decision) -> Decision:
    """`decision` when it allows, else raise `Denied` with its reasons."""
    if not decision.allowed:
        raise Denied(decision.reasons)
    return decision


class AccessPolicy(Protocol):
    """Decides requests (the gates issue puts Cedar behind this same protocol)."""

    def decide(self, request: AccessRequest) -> Decision:
        """Allow or refuse `request`, with the reasons."""
        ...


@dataclass(frozen=True, slots=True)
class Standing:
    """A peer's standing at one instant: `problem` when its identity is revoked or superseded
    by an authority with standing over it (then nothing is allowed; docs/formats.md, "Whose
    word counts on an identity"), its credentials that verify against the feeds held now, and
    why each other presented credential does not (no longer verifies, or was dropped at the
    handshake: its root is not one of this node's trust anchors). `waiting`: the authorities
    whose chains it dropped because the node's copy of their feed is due a sync (a revocation
    made on this machine may be missing from it: docs/credentials.md, "Revocation is real"),
    which a credential source re-verifying the presented chains must drop too (review 55i,
    mcp 1)."""

    credentials: tuple[VerifiedCredential, ...]
    is_anchor: bool = False
    problem: str | None = None
    dropped: tuple[str, ...] = ()
    waiting: frozenset[Identifier] = frozenset()


# -- rules (data) ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnyAuthenticated:
    """Open to any authenticated identity: the service authorises each request itself (the
    authority checks every enroll, refresh, revoke, rotated request's signature and rights)."""

    name: str = "any authenticated identity"


@dataclass(frozen=True, slots=True, init=False)
class MembersOnly:
    """Open to holders of a verified credential from a trust anchor (without caveats), and to
    the trust anchors themselves; from `authority` and to it only, when given (a node trusts
    every authority it enrolls with: review 35d, access 2). `authority` may be given as its
    identifier's text."""

    name: str = "members only"
    authority: Identifier | None = field(default=None, kw_only=True)
    """The one authority whose members count (None: any the node trusts)."""

    def __init__(
        self, name: str = "members only", *, authority: Identifier | str | None = None
    ) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "authority", _authority(authority))


@dataclass(frozen=True, slots=True)
class GatedMembers:
    """Open to members as `MembersOnly` is, caveated credentials included: the service decides
    every request it serves with Cedar, the caveats enforced there (the MCP service: each
    tools/call)."""

    name: str = "members (each call gated)"


@dataclass(frozen=True, slots=True, init=False)
class RequireAttributes:
    """Open to holders of a credential (without caveats) whose attributes cover `attributes`,
    from `authority` when given. A node trusts every authority it enrolls with, and any of
    them can grant any attribute: name the authority whose attributes these are, so that
    another one granting the same does not pass (review 35d, access 1). `attributes` may be
    given as a mapping (as `Authority.ticket` takes them), `authority` as its identifier's
    text."""

    attributes: Attributes
    name: str = "attributes"
    authority: Identifier | None = field(default=None, kw_only=True)
    """The one authority whose credentials count (None: any the node trusts)."""

    def __init__(
        self,
        attributes: Attributes | Mapping[str, str | Iterable[str]],
        name: str = "attributes",
        *,
        authority: Identifier | str | None = None,
    ) -> None:
        object.__setattr__(self, "attributes", _attributes(attributes))
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "authority", _authority(authority))


def _authority(value: object) -> Any:
    """`value` as an `Identifier` when it is one's text (review 51e, rules 5: the type hints
    took an `Identifier` only, which the guide gives as text); anything else as given, for
    `Service.method` to refuse (troth._api.network: review 49a, rules 1)."""
    if isinstance(value, str):
        with contextlib.suppress(MalformedText):
            return Identifier.parse(value)
    return value


def _attributes(value: object) -> Any:
    """`value` as `Attributes` when it is a mapping that makes them (review 51e, rules 5);
    anything else as given, for `Service.method` to refuse (review 49a, rules 1)."""
    if isinstance(value, Mapping) and not isinstance(value, Attributes):
        with contextlib.suppress(ValueError, TypeError):
            return Attributes(value)
    return value


@dataclass(frozen=True, slots=True)
class AttributeCoversArgument:
    """Open to holders of a credential (without caveats) whose attribute `key` holds the
    request's text argument, or `wildcard` (relay.create(name) needs troth.relay ∋ name or *),
    from `authority` when given (any anchor can grant any attribute: review 38a, relay 1)."""

    key: str
    wildcard: str = "*"
    name: str = "attribute covers argument"
    authority: Identifier | None = field(default=None, kw_only=True)
    """The one authority whose credentials count (None: any the node trusts)."""


Rule = AnyAuthenticated | MembersOnly | GatedMembers | RequireAttributes | AttributeCoversArgument
"""One method's access rule."""
_MEMBERS: Final = (MembersOnly, GatedMembers)
_PINNABLE: Final = (MembersOnly, RequireAttributes, AttributeCoversArgument)
"""The rules that may name their authority. (Tuples, not `A | B`: a union is built anew at each
`isinstance` it is written in, and these are checked at every request's decision.)"""


@dataclass
class RulesPolicy:
    """Today's rules as data: `rules` maps (service, method) to a Rule; `standing` re-checks a
    peer against the current feeds; `me` names this node in reasons. Unknown methods and
    services without a rule are refused (default deny)."""

    me: str
    rules: Mapping[tuple[str, str], Rule]
    standing: Callable[[VerifiedPeer, int], Standing]
    also: frozenset[Identifier] = field(default_factory=frozenset)
    """Identities admitted to channels this policy decides as if they were anchors (the
    authority a ticket names, while enrolling with it)."""

    def decide(self, request: AccessRequest) -> Decision:
        """Allow or refuse `request` by its method's rule."""
        caller = request.caller
        service, method = request.service, request.method
        rule = self.rules.get((service, method))
        me = self.me
        if isinstance(caller, LocalCaller):
            return Decision(
                True,
                policies=("local",),
                explain=lambda: (f"{me} allowed {service}.{method} to the {caller} caller",),
            )
        if rule is None:
            return Decision(
                False, (f"{me} refused {caller}: {service}.{method} has no access rule",)
            )
        standing = self.standing(caller.peer, request.now)
        if standing.problem is not None:
            return Decision(False, (f"{me} refused {caller}: {standing.problem}",), (rule.name,))
        if isinstance(rule, AnyAuthenticated) or (
            isinstance(rule, _MEMBERS)
            and (standing.is_anchor or (self.also and caller.identifier in self.also))
            and _anchor_counts(rule, caller.identifier)
        ):
            why = "an authenticated identity" if isinstance(rule, AnyAuthenticated) else "anchor"
            return Decision(
                True,
                policies=(rule.name,),
                explain=lambda: (f"{me} allowed {caller} {service}.{method}: {why}",),
            )
        gated = isinstance(rule, GatedMembers)
        usable = [c for c in standing.credentials if gated or not c.caveats]
        for credential in usable:
            if _satisfies(rule, credential, request.arguments):
                authority = credential.authority
                return Decision(
                    True,
                    policies=(rule.name,),
                    credential=credential,
                    explain=lambda authority=authority: (  # type: ignore[misc]
                        f"{me} allowed {caller} {service}.{method}: credential from {authority}",
                    ),
                )
        why = _why(rule, standing, usable, me, request.arguments)
        return Decision(False, (f"{me} refused {caller}: {why}",))


def _anchor_counts(rule: MembersOnly | GatedMembers, caller: Identifier) -> bool:
    """Whether an anchor passes `rule` as itself: any, unless the rule names its authority."""
    pinned = rule.authority if isinstance(rule, MembersOnly) else None
    return pinned is None or caller == pinned


def _satisfies(rule: Rule, credential: VerifiedCredential, arguments: Any) -> bool:
    pinned = rule.authority if isinstance(rule, _PINNABLE) else None
    if pinned is not None and credential.authority != pinned:
        return False  # another authority's word (review 35d, access 1 and 2)
    if isinstance(rule, _MEMBERS):
        return True
    if isinstance(rule, RequireAttributes):
        return rule.attributes.first_excess_over(credential.attributes) is None
    if isinstance(rule, AttributeCoversArgument):
        values = credential.attributes.values_of(rule.key)
        return isinstance(arguments, str) and (arguments in values or rule.wildcard in values)
    return False


def _why(
    rule: Rule, standing: Standing, usable: list[VerifiedCredential], me: str, arguments: Any
) -> str:
    if not standing.credentials:
        dropped = f" ({'; '.join(standing.dropped)})" if standing.dropped else ""
        if (  # an anchor, not the one the rule names (a stranger is told the same whatever
            # the rule: its authority told a pinned service and method from made-up names;
            # review 64t, access 1, review 63l, access 1)
            standing.is_anchor
            and isinstance(rule, MembersOnly | RequireAttributes | AttributeCoversArgument)
            and rule.authority is not None
        ):
            return f"it holds no credential from {rule.authority}{dropped}"
        return f"it holds no credential from an authority {me} trusts{dropped}"
    if not usable:
        return (
            "its only credentials carry caveats, which only a Cedar policy bundle can satisfy "
            "(fail closed)"
        )
    if isinstance(rule, MembersOnly) and rule.authority is not None:
        others = ", ".join(sorted({str(c.authority) for c in usable}))
        return f"no credential from {rule.authority} (its credentials from {others} do not count)"
    if isinstance(rule, RequireAttributes):
        attributes = rule.attributes.to_json()
        if rule.authority is None:
            return f"no credential covers the attributes {attributes}"
        held = sorted({str(c.authority) for c in usable if c.authority != rule.authority})
        other = f" (its credentials from {', '.join(held)} do not count)" if held else ""
        return f"no credential from {rule.authority} covers the attributes {attributes}{other}"
    if isinstance(rule, AttributeCoversArgument):
        if isinstance(arguments, str):
            wanted = f"{rule.key}={cut_text(arguments, MAX_ARGUMENT_SHOWN)}"
        else:
            wanted = rule.key
        if rule.authority is not None:
            held = sorted({str(c.authority) for c in usable if c.authority != rule.authority})
            other = f" (its credentials from {', '.join(held)} do not count)" if held else ""
            return (
                f"no credential from {rule.authority} holds the {rule.key} attribute {wanted} "
                f"(or {rule.key}={rule.wildcard}){other}: {rule.authority} grants it with a "
                f"ticket's --attr {wanted}"
            )
        return (
            f"none of its credentials holds the {rule.key} attribute {wanted} (or "
            f"{rule.key}={rule.wildcard}): its authority grants it with a ticket's --attr {wanted}"
        )
    return "no credential satisfies the rule"


@dataclass
class GatedPolicy:
    """The built-in rules, and Cedar for the services an active bundle declares (module
    docstring). `point` decides with the node's bundles and feeds; `declared` says whether an
    active bundle (in force or not) declares a service; `governs`, when given, whether Cedar
    decides a service for the chains of an authority (a bundle speaks for its own authority's
    chains: docs/policy.md, "Services"). A credential Cedar does not decide the service for,
    or an anchor, meets the built-in rule alone (review 36c, services 1: without `governs`,
    any co-trusted authority's bundle declaring a service put every caller under Cedar, and a
    co-trusted authority locked the host's members out of the host's own services)."""

    rules: RulesPolicy
    point: DecisionPoint
    declared: Callable[[str], bool]
    infrastructure: frozenset[str] = INFRASTRUCTURE
    governs: Callable[[str, Identifier], bool] | None = None
    refusing: tuple[str, ...] = ()
    """When set, the reasons every request is refused for: the node's store was closed while
    it runs (troth._api: it can learn no revocation; review 62h api 7, 62l api 6: the services
    that took this `decide` at start, the relay's and the MCP gate's, refuse too)."""

    def decide(self, request: AccessRequest) -> Decision:
        """Allow or refuse `request`: by its rule, and by Cedar where a bundle declares it."""
        if self.refusing:
            return Decision(False, self.refusing)
        caller, service = request.caller, request.service
        if (
            isinstance(caller, LocalCaller)
            or service in self.infrastructure
            or not self.declared(service)
        ):
            return self.rules.decide(request)
        me, who = self.rules.me, str(caller.identifier)
        what = f"{service}.{request.method}"
        rule = self.rules.rules.get((service, request.method))
        if rule is None:
            return Decision(False, (f"{me} refused {who}: {what} has no access rule",))
        standing = self.rules.standing(caller.peer, request.now)
        if standing.problem is not None:
            return Decision(False, (f"{me} refused {who}: {standing.problem}",), (rule.name,))
        free, governed = self._split(service, caller, standing)
        refusals: list[str] = []
        if free is not None:  # the chains no bundle governs this service for: the rule alone
            alone = replace(self.rules, standing=lambda _peer, _now: free).decide(request)
            if alone.allowed:
                return alone
            refusals.extend(alone.reasons)
        if not governed:
            if refusals:
                return Decision(False, tuple(refusals))
            why = _why(rule, standing, [], me, request.arguments)
            return Decision(False, (f"{me} refused {who}: {why}",))
        call = ServiceCall(service, request.method)
        deciding: list[str] = []
        for credential in governed:  # caveats included: Cedar enforces them
            cedar = self.point.decide(credential, call, now=request.now)
            if not cedar.allowed:
                revision = "" if cedar.revision is None else f" (bundle revision {cedar.revision})"
                refusals.append(f"{me} refused {who} {what}: {cedar.reason}{revision}")
                deciding.extend(cedar.policies)
                continue
            if not _satisfies_gated(rule, credential, request.arguments):
                why = _why(rule, standing, [credential], me, request.arguments)
                refusals.append(f"{me} refused {who} {what}: Cedar allowed it, but {why}")
                continue
            reason = f"{me} allowed {who} {what}: {cedar.reason} and the rule {rule.name}"
            return Decision(True, (reason,), (*cedar.policies, rule.name), credential)
        return self._members_refusal(request, standing) or Decision(
            False, tuple(refusals), tuple(deciding)
        )

    def _members_refusal(self, request: AccessRequest, standing: Standing) -> Decision | None:
        """The refusal `UNSERVED` answers a caller Cedar refused a declared service, when
        `UNSERVED` refuses it too (a caller whose every chain carries caveats: a stranger or a
        revoked member never reaches Cedar), else None. Cedar's own reasons (the service and
        method, the caveat or policy, the bundle revision) told such a caller the declared
        services this node serves from made-up names, which `ServiceHost.unserved` answers
        `UNSERVED`'s refusal (review 64m, access 1). A `GatedMembers` method is open to such
        a caller, and decided by Cedar by design (its Cedar reasons stand); without an
        `UNSERVED` rule nothing is answered in its place."""
        rule = self.rules.rules.get((request.service, request.method))
        if isinstance(rule, GatedMembers) or UNSERVED not in self.rules.rules:
            return None
        held = replace(self.rules, standing=lambda _peer, _now: standing)
        members = held.decide(replace(request, service=UNSERVED[0], method=UNSERVED[1]))
        return None if members.allowed else members

    def admits(
        self,
        service: str,
        method: str,
        credential: VerifiedCredential,
        now: int,
        arguments: Any = None,
    ) -> bool:
        """Whether `credential` alone meets `service.method` as `decide` judges a chain (the
        peer's standing checked apart): Cedar and the rule met by it where a bundle governing
        its chain declares the service, else the rule alone (a caveated credential only under
        `GatedMembers`). A service that decides a peer's later requests with one of its chains
        (the MCP gate's tools/call) picks among the chains this admits only, so one chain's
        admission never lets another chain's Cedar answer in (docs/policy.md, "Services";
        review 37a, mcp 1)."""
        rule = self.rules.rules.get((service, method))
        if rule is None:
            return False
        governs = self.governs
        cedar = (
            service not in self.infrastructure
            and self.declared(service)
            and (governs is None or governs(service, credential.authority))
        )
        if not cedar:
            if credential.caveats and not isinstance(rule, GatedMembers):
                return False  # caveats are Cedar conditions no rule evaluates (fail closed)
            return isinstance(rule, AnyAuthenticated) or _satisfies(rule, credential, arguments)
        call = ServiceCall(service, method)
        if not self.point.decide(credential, call, now=now).allowed:
            return False
        return _satisfies_gated(rule, credential, arguments)

    def _split(
        self, service: str, caller: PeerCaller, standing: Standing
    ) -> tuple[Standing | None, tuple[VerifiedCredential, ...]]:
        """The standing the built-in rule alone decides (the credentials whose authority no
        bundle governs `service` for, and the anchor status of an anchor likewise; None when
        there is none) and the credentials Cedar decides. Without `governs`, Cedar decides
        them all."""
        governs = self.governs
        if governs is None:
            return None, standing.credentials
        governed = tuple(c for c in standing.credentials if governs(service, c.authority))
        if len(governed) == len(standing.credentials) and not (
            standing.is_anchor and not governs(service, caller.identifier)
        ):
            return None, governed
        free = tuple(c for c in standing.credentials if not governs(service, c.authority))
        anchor = standing.is_anchor and not governs(service, caller.identifier)
        return Standing(free, anchor, None, standing.dropped, standing.waiting), governed


def _satisfies_gated(rule: Rule, credential: VerifiedCredential, arguments: Any) -> bool:
    return isinstance(rule, AnyAuthenticated) or _satisfies(rule, credential, arguments)


@dataclass
class ChannelAdmission:
    """The channel layer's `PeerPolicy` as a thin adapter over the decision point: a peer is
    admitted when `policy` allows it (service "channels", method "open"). `expect` pins the
    identity a sender expects behind a route: anyone else is refused with both identifiers."""

    policy: AccessPolicy
    clock: Callable[[], int]
    channel: str = "handshake"
    expect: Identifier | None = None

    def admit(self, peer: VerifiedPeer) -> bool:
        """True when the decision point admits `peer` to a channel; otherwise ChannelError
        PEER_NOT_ALLOWED with the decision's reasons (naming both identities when another
        than `expect` answered)."""
        if self.expect is not None and peer.identifier != self.expect:
            raise ChannelError(
                ChannelFailure.PEER_NOT_ALLOWED,
                f"expected {self.expect}, but {peer.identifier} answered",
            )
        caller = PeerCaller(peer, self.channel)
        decision = self.policy.decide(AccessRequest(caller, *CHANNELS, None, self.clock()))
        if not decision.allowed:
            raise ChannelError(ChannelFailure.PEER_NOT_ALLOWED, "; ".join(decision.reasons))
        return True
