"""troth: cryptographic identities, credentials and secure channels for AI agents.

A node keeps identities' keys in its vault; an authority enrolls them with one-time tickets
and issues credentials; a holder delegates part of what it holds (only ever narrowing); a
verifier decides, with the authorities it trusts and their revocation feeds, what a
presented chain allows; nodes talk over mutually authenticated secure channels, through
relays, and serve methods guarded by one access decision point.

    import troth

    with troth.Node.open("acme") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        agents.identities.create("customer")
        sub = agents.identities.create("sub-agent")
        agents.enroll(acme.ticket({"orders.access": ["read", "write"]}), identity="customer")
        chain = agents.delegate("customer", to=sub, attributes={"orders.access": "read"},
                                ttl=600, purpose="look up order history")
        verified = troth.Verifier(trust=[acme.identifier], feeds=acme).verify(
            chain, presenter=sub)

Networking is async (`async with node.serve(...)`, `async with node.connect(route,
expect=...) as channel: await channel.call(service, method, arguments)`); `Node.call` is
its synchronous form. Every error is a `TrothError`; verification raises one typed error per
layer with a `reason` (`CredentialError.reason is CredentialFailure.REVOKED`). The guide is
docs/python.md; runnable examples are in examples/.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
"""The version of troth."""

# The public names and the private modules they live in. They are imported on first use,
# so that `import troth.cli.main` or `python -m troth.node` does not pay for the whole API.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "troth._api.authority": ("Authority",),
    "troth._api.network": ("Channel", "Request", "RunningNode", "Service"),
    "troth._api.node": ("Identities", "Node"),
    "troth._api.policies": ("Policies", "PolicyBundle"),
    "troth._api.results": ("Credential", "Identity"),
    "troth._api.secrets": ("Secrets", "StoredSecret", "TokenKeys"),
    "troth._api.traces": ("Traces",),
    "troth._api.verifier": ("Verifier",),
    "troth.credentials": ("Attributes", "VerifiedCredential", "VerifiedLink"),
    "troth.errors": (
        "ArgumentError",
        "AuthorityError",
        "AuthorityFailure",
        "ChannelError",
        "ChannelFailure",
        "ConfigError",
        "ConflictError",
        "CredentialError",
        "CredentialFailure",
        "CryptoError",
        "DecodeError",
        "DecodeProblem",
        "Denied",
        "IdentityError",
        "IdentityFailure",
        "InvalidKey",
        "InvalidSignature",
        "KeyNotFound",
        "MalformedText",
        "NotFound",
        "PolicyError",
        "PolicyFailure",
        "RemoteError",
        "RoutingError",
        "SecretError",
        "SecretFailure",
        "StorageError",
        "TraceError",
        "TraceFailure",
        "TrothError",
        "UnsupportedKeyType",
        "VaultError",
    ),
    "troth.gates": ("Outcome", "PolicyDecision"),
    "troth.identity": ("Identifier",),
    "troth.node.access": ("AnyAuthenticated", "MembersOnly", "RequireAttributes"),
    "troth.node.trace_checks": ("TraceVerdict",),
    "troth.secrets": ("IssuedLease", "Lease", "LeaseCredential"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [  # noqa: RUF022 - in the order a newcomer reads them (help(troth), docs/api)
    "__version__",
    # nodes and their identities
    "Node",
    "Identities",
    "Identity",
    "Identifier",
    # authorities, credentials, verification
    "Authority",
    "Attributes",
    "Credential",
    "Verifier",
    "VerifiedCredential",
    "VerifiedLink",
    # the network: running nodes, channels, services
    "RunningNode",
    "Channel",
    "Service",
    "Request",
    "MembersOnly",
    "RequireAttributes",
    "AnyAuthenticated",
    # traces: what agents did, signed, in a tamper-evident log
    "Traces",
    "TraceVerdict",
    # gates: signed policy bundles decide every tool call
    "Policies",
    "PolicyBundle",
    "PolicyDecision",
    "Outcome",
    # leased secrets: short-lived, scoped, revocable
    "Secrets",
    "StoredSecret",
    "TokenKeys",
    "IssuedLease",
    "Lease",
    "LeaseCredential",
    # errors (the tree of troth.errors)
    "TrothError",
    "DecodeError",
    "DecodeProblem",
    "CryptoError",
    "InvalidSignature",
    "InvalidKey",
    "VaultError",
    "KeyNotFound",
    "MalformedText",
    "UnsupportedKeyType",
    "StorageError",
    "ConflictError",
    "ConfigError",
    "NotFound",
    "ArgumentError",
    "IdentityError",
    "IdentityFailure",
    "CredentialError",
    "CredentialFailure",
    "AuthorityError",
    "AuthorityFailure",
    "ChannelError",
    "ChannelFailure",
    "RoutingError",
    "Denied",
    "PolicyError",
    "PolicyFailure",
    "SecretError",
    "SecretFailure",
    "TraceError",
    "TraceFailure",
    "RemoteError",
]

if TYPE_CHECKING:
    from troth._api.authority import Authority
    from troth._api.network import Channel, Request, RunningNode, Service
    from troth._api.node import Identities, Node
    from troth._api.policies import Policies, PolicyBundle
    from troth._api.results import Credential, Identity
    from troth._api.secrets import Secrets, StoredSecret, TokenKeys
    from troth._api.traces import Traces
    from troth._api.verifier import Verifier
    from troth.credentials import Attributes, VerifiedCredential, VerifiedLink
    from troth.errors import (
        ArgumentError,
        AuthorityError,
        AuthorityFailure,
        ChannelError,
        ChannelFailure,
        ConfigError,
        ConflictError,
        CredentialError,
        CredentialFailure,
        CryptoError,
        DecodeError,
        DecodeProblem,
        Denied,
        IdentityError,
        IdentityFailure,
        InvalidKey,
        InvalidSignature,
        KeyNotFound,
        MalformedText,
        NotFound,
        PolicyError,
        PolicyFailure,
        RemoteError,
        RoutingError,
        SecretError,
        SecretFailure,
        StorageError,
        TraceError,
        TraceFailure,
        TrothError,
        UnsupportedKeyType,
        VaultError,
    )
    from troth.gates import Outcome, PolicyDecision
    from troth.identity import Identifier
    from troth.node.access import AnyAuthenticated, MembersOnly, RequireAttributes
    from troth.node.trace_checks import TraceVerdict
    from troth.secrets import IssuedLease, Lease, LeaseCredential
else:

    def __getattr__(name: str) -> Any:
        """A public name, imported from its module on first use."""
        module = _MODULE_OF.get(name)
        if module is None:
            raise AttributeError(f"module 'troth' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
