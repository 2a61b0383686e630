"""Who may lease what: the broker asks a `LeasePolicy` before every issue and renewal.

The question is Cedar's shape (docs/secrets.md, "Policy"): principal = the verified caller,
action `Action::"lease"`, resource `Secret::"<name>"`, context = the scopes asked for and the
ttl. `GatesLeasePolicy` asks the gates' decision point (the node's active bundle, its feed and
the caller's credential, as for a tool call) — only for a credential of an authority the secret
may be granted by (docs/secrets.md, "Whose bundles grant a secret"); without a policy the broker
denies everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from troth.credentials import VerifiedCredential
from troth.dataclass_init import quick_init
from troth.errors import ArgumentError
from troth.gates import DecisionPoint, LeaseRequest
from troth.identity import Identifier

__all__ = [
    "LEASE_ACTION",
    "AllowListPolicy",
    "DenyAllPolicy",
    "GatesLeasePolicy",
    "LeaseDecision",
    "LeasePolicy",
    "LeaseQuestion",
    "not_grantable",
]

LEASE_ACTION: Final = "lease"


@quick_init  # the issue path makes one per lease
@dataclass(frozen=True, slots=True)
class LeaseQuestion:
    """May `credential.actor` hold a lease of secret `secret` (action `lease`)?"""

    credential: VerifiedCredential
    secret: str
    engine: str
    scope: tuple[str, ...]
    ttl: int
    renewal: bool
    now: int
    grantable_by: tuple[Identifier, ...] = ()
    """The authorities the secret names whose bundles may grant it (`SecretSpec.grantable_by`;
    empty: the policy's default)."""

    @property
    def action(self) -> str:
        return LEASE_ACTION

    @property
    def resource(self) -> str:
        """The Cedar resource: `Secret::"<name>"` (names are [a-z0-9._-], nothing to escape)."""
        return f'Secret::"{self.secret}"'


@dataclass(frozen=True, slots=True)
class LeaseDecision:
    """The policy's answer; `reason` is shown to the caller and audited."""

    allowed: bool
    reason: str = ""


_ALLOWED_BY_LIST: Final = LeaseDecision(True, "allow list")  # immutable: one for every answer
_CAVEATED: Final = LeaseDecision(
    False,
    "the credential carries caveats, which an allow list cannot evaluate: use the gates "
    "engine as the lease policy (GatesLeasePolicy)",
)


class LeasePolicy(Protocol):
    """Decides `lease` questions; must fail closed (deny on any error of its own)."""

    def decide(self, question: LeaseQuestion) -> LeaseDecision: ...


class DenyAllPolicy:
    """The default: no lease for anyone."""

    def decide(self, question: LeaseQuestion) -> LeaseDecision:
        return LeaseDecision(False, "no lease policy is configured (deny by default)")


class AllowListPolicy:
    """Allows exactly the listed (identity, secret) pairs, optionally limited to some scopes.

    A caveat is a Cedar condition on every request of the chain, leases included, which no
    list evaluates: a chain with caveats is refused (fail closed, as the node's access rules
    drop one; review 54q, delegation 1: a delegator's caveats were ignored, its delegate on
    the list leasing past them) unless `unevaluated_caveats=True`, for a caller that enforces
    them itself (as `troth.Verifier.verify` takes it)."""

    def __init__(
        self,
        entries: Mapping[Identifier, Mapping[str, Iterable[str] | None]],
        *,
        unevaluated_caveats: bool = False,
    ) -> None:
        if type(unevaluated_caveats) is not bool:
            got = type(unevaluated_caveats).__name__
            raise ArgumentError("AllowListPolicy", "unevaluated_caveats", "a bool", got)
        self._unevaluated_caveats = unevaluated_caveats
        self._entries = {
            identity: {
                name: None if scopes is None else frozenset(scopes)
                for name, scopes in secrets.items()
            }
            for identity, secrets in entries.items()
        }

    def decide(self, question: LeaseQuestion) -> LeaseDecision:
        if question.grantable_by and question.credential.authority not in question.grantable_by:
            return not_grantable(question)
        if question.credential.caveats and not self._unevaluated_caveats:
            return _CAVEATED
        secrets = self._entries.get(question.credential.actor)
        if secrets is None or question.secret not in secrets:
            return LeaseDecision(False, f"{question.resource} is not on the allow list")
        allowed = secrets[question.secret]
        if allowed is not None and not set(question.scope) <= allowed:
            return LeaseDecision(False, "a scope asked for is not on the allow list")
        return _ALLOWED_BY_LIST


def not_grantable(question: LeaseQuestion) -> LeaseDecision:
    """The refusal of a lease asked under the bundles of an authority that may not grant it."""
    return LeaseDecision(
        False,
        f"{question.resource} is not grantable under the bundles of "
        f"{question.credential.authority} (the broker's operator names the authorities that "
        "may grant it: troth secret put --grantable-by)",
    )


class GatesLeasePolicy:
    """The gates engine as the lease policy: Cedar action `lease` on `Secret::"<name>"` with
    `context.scope` and `context.ttl`, decided by `point` (the bundle in force for the
    credential's authority; no bundle, an expired one or a stale feed deny).

    Only the bundles of an authority that may grant the secret decide (docs/secrets.md, "Whose
    bundles grant a secret"): those the secret names (`LeaseQuestion.grantable_by`), else
    `grantors()` — the served broker's: the authority its node hosts — else (no `grantors`,
    a library broker whose point holds only bundles its user chose) any. A credential of
    another authority is denied before its bundle is asked."""

    def __init__(
        self,
        point: DecisionPoint,
        *,
        grantors: Callable[[], frozenset[Identifier]] | None = None,
    ) -> None:
        self.point = point
        self.grantors = grantors

    def may_grant(self, question: LeaseQuestion) -> bool:
        """Whether the bundles of the credential's authority may grant the secret."""
        authority = question.credential.authority
        if question.grantable_by:
            return authority in question.grantable_by
        return self.grantors is None or authority in self.grantors()

    def decide(self, question: LeaseQuestion) -> LeaseDecision:
        if not self.may_grant(question):
            return not_grantable(question)
        request = LeaseRequest(question.secret, question.scope, question.ttl)
        decision = self.point.decide(question.credential, request, now=question.now)
        return LeaseDecision(decision.allowed, decision.reason)
