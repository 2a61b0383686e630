"""What a node's policy bundles decide, and the bundles' inputs checked, as one library call
each (the Python API's `Node.policies` and `troth policy ...` both call these: review 61g,
one implementation).

`decide_on_node` decides one tool call by a local identity (its current credential, as the
local MCP gate decides: `LocalCredential`) or by a presented chain (as the node decides a
channel peer's: verified in full against the feeds the node holds), under the bundles the node
holds, deny by default: no bundle of the caller's authority, a stale feed, a tool the bundle
does not declare, arguments its schema refuses all deny."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from troth.clock import Clock
from troth.credentials import ChainVerifier, VerifiedCredential, chain_actor
from troth.errors import CredentialError, CredentialFailure, DecodeError, PolicyError, PolicyFailure
from troth.gates import DecisionPoint, FeedSource, Outcome, PolicyDecision, PresentedChain, ToolCall
from troth.gates.toolschema import check_name
from troth.identity import Identifier
from troth.node.node import Node
from troth.node.services.mcp import GrantedBundles, recorded_grantors
from troth.node.services.node_policies import LocalCredential, NodeFeeds, NodePolicies
from troth.node.trust import own_authorities

__all__ = ["check_server", "check_services", "decide_on_node", "presented_holder"]


def check_services(services: Mapping[str, Any]) -> dict[str, list[str]]:
    """A bundle's services (service name -> its method names) as a dict of lists; a value that
    is no list of method names is a DecodeError (`troth policy bundle create --services`)."""
    if not all(isinstance(methods, list | tuple) for methods in services.values()):
        raise DecodeError("services: each service maps to a list of method names")
    return {name: list(methods) for name, methods in services.items()}


def check_server(server: str | None) -> None:
    """PolicyError MALFORMED when `server` is not an MCP server's name."""
    if server is not None:
        check_name(server, "MCP server")


class _Presented:
    """A chain presented by `presenter`, taken as the node's gates take a peer's (a
    `CredentialSource`): not while the node's copy of its authority's feed is due a sync after
    a revocation made on this machine (`CredentialWallet.sync_due` syncs it first: the copy
    held may predate the revocation; `Standing.waiting`); else verified in full against the
    feed held now (`PresentedChain`; bytes that are no chain: MALFORMED, a denial). Review 61j,
    api 1: a chain its authority here had just revoked was decided against the feed the node
    held before, and allowed."""

    def __init__(
        self,
        node: Node,
        chain: bytes,
        presenter: Identifier,
        verifier: ChainVerifier,
        feeds: FeedSource,
    ) -> None:
        self.node = node
        self.chain = chain
        self.presenter = presenter
        self.verifier = verifier
        self.feeds = feeds

    def presenter_identifier(self) -> Identifier | None:
        """Who presents the chain (`troth.gates.Presenting`)."""
        return self.presenter

    def current(self, *, now: int) -> VerifiedCredential:
        """The chain verified now (CredentialError when it is refused)."""
        chain = PresentedChain(self.chain, self.presenter, self.verifier, self.feeds)
        if self.node.wallet.sync_due(chain.authority, now=now):
            raise CredentialError(
                CredentialFailure.STALE_FEED,
                "its authority's feed is due a sync after a revocation made on this machine",
            )
        return chain.current(now=now)


def presented_holder(chain: bytes, holder: Identifier | None) -> Identifier:
    """Who presents `chain`: `holder`, else the identity its last link was issued to."""
    return chain_actor(chain) if holder is None else holder


def decide_on_node(
    node: Node,
    call: ToolCall,
    *,
    identity: str | None = None,
    chain: tuple[bytes, Identifier] | None = None,
    clock: Clock,
) -> PolicyDecision:
    """Decide `call` under the bundles node `node` holds, by local identity `identity` (its
    current credential) or by `chain` (its bytes and who presents them), with the feeds the
    node holds now (a stale one denies). Nothing is recorded. Exactly one of `identity` and
    `chain`."""
    if (identity is None) == (chain is None):
        raise PolicyError(PolicyFailure.MALFORMED, "decide for one caller: an identity or a chain")
    check_server(call.server)
    feeds = NodeFeeds(node, clock)
    policies = NodePolicies(node, feeds)
    now = clock.now()
    policies.trust(feeds.anchors(), now=now)
    caller: LocalCredential | _Presented
    if chain is not None:
        store = policies.store
        if store is None:
            reason = f"denied: {PolicyFailure.NO_BUNDLE.value} (this node trusts no authority)"
            return PolicyDecision.deny(Outcome.NOT_IN_FORCE, reason)
        caller = _Presented(node, chain[0], chain[1], store.verifier, feeds)
        if call.server is not None:  # a published MCP server's tool (review 61j, api 5)
            return _granted_point(node, policies, call.server).decide(caller, call, now=now)
    else:
        caller = LocalCredential(node, str(identity), policies)
    return policies.point.decide(caller, call, now=now)


def _granted_point(node: Node, policies: NodePolicies, server: str) -> DecisionPoint:
    """The decision point of MCP server `server` published on `node`, as it decides a peer's
    calls: with the bundles of the authorities granting its tools only (`GrantedBundles`):
    those recorded at its publication, else the node's own (the one it hosts; on a node
    hosting none, the one it trusts when it trusts exactly one; else none: deny). Review 61j,
    api 5: a co-trusted authority's bundle decided its members' calls of the host's tools,
    which the published server denies (review 37c, mcp 1)."""
    recorded = recorded_grantors(node, server)
    if recorded is not None:
        grantors = frozenset(recorded)
    else:
        hosted = node.hosted_authority()
        grantors = own_authorities(None if hosted is None else hosted.identifier, policies.anchors)
    point = policies.point
    return DecisionPoint(
        GrantedBundles(policies, lambda: grantors),
        point.feeds,
        max_clock_skew=point.max_clock_skew,
    )
