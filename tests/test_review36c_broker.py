"""Review 36c, broker: the lease decision on a broker trusting two authorities (acme and
globex). The lease policy is the gates' decision point (docs/secrets.md, "Policy"): the bundle
in force for the credential's authority, with that chain's attributes; the served broker tries
the caller's current credentials in turn, each decided alone, and binds the lease to the chain
that was allowed (docs/secrets.md, "The served broker"). globex grants its members the very
attributes acme's lease permit tests. These tests pin behaviour that held when the review
began (no hole found here): each would fail if acme's permit ever decided for a globex chain,
or if the broker combined one chain's attributes with another's authority.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cotrust import CoTrust, make_cotrust, member_chain
from tests.support.gates import POLICIES, T
from tests.support.leases import open_broker
from troth.credentials import Attributes
from troth.crypto import sha256
from troth.errors import PolicyFailure, SecretError, SecretFailure
from troth.secrets import Broker, GatesLeasePolicy
from troth.secrets.endpoint import BrokerCaller, BrokerEndpoint
from troth.secrets.wire import IssueArgs, LeaseArgs, decode_issued, raise_refusal

LEASES = """\
@id("lease-refunds") permit(principal, action == Action::"lease", resource == Secret::"payments")
  when { principal.hasTag("orders.access") && principal.getTag("orders.access").contains("write")
         && ["refunds"].containsAll(context.scope) && context.ttl <= 300 };
"""
GLOBEX = (
    '@id("globex-lookup") permit(principal, action == Action::"invoke:lookup_order", resource);\n'
)
PAYMENTS = {"scopes": ["refunds", "charges"], "ttl": 120, "max_ttl": 600, "audience": "payments"}
WRITE = Attributes({"orders.access": frozenset({"read", "write"})})
READ = Attributes({"orders.access": "read"})


def broker_over(co: CoTrust, tmp_path: Path, *bundles: bytes) -> Broker:
    """A broker whose lease policy is a decision point over `bundles` and both feeds."""
    point = co.point(co.store(*bundles))
    tmp_path.mkdir(exist_ok=True)
    _db, broker = open_broker(tmp_path / "node.db", now=T, policy=GatesLeasePolicy(point))
    broker.put_secret("payments", "token", PAYMENTS, b"", now=T)
    return broker


def test_a_co_trusted_member_leases_nothing_under_anothers_permit(tmp_path: Path) -> None:
    """A globex member holding acme's permit-winning attribute (orders.access ∋ write) asks
    for acme's `payments` secret with the scope and ttl acme's permit allows: refused DENIED
    for having no bundle in force for globex; once globex's bundle is there, refused by it (it
    permits no lease). acme's own support agent, the control, is leased it under acme's."""
    co = make_cotrust()
    mallory = co.party()
    member = co.credential(member_chain(co.globex, mallory, WRITE), mallory)
    support = co.credential(co.acme.support_chain, co.acme.support)

    acme_only = broker_over(co, tmp_path / "a", co.acme.bundle(policies=POLICIES + LEASES))
    with pytest.raises(SecretError) as refused:
        acme_only.issue(member, "payments", scope=("refunds",), ttl=120, now=T + 10)
    assert refused.value.reason is SecretFailure.DENIED
    assert f"denied: {PolicyFailure.NO_BUNDLE.value}" in str(refused.value)
    issued = acme_only.issue(support, "payments", scope=("refunds",), ttl=120, now=T + 10)
    assert issued.lease.authority == co.acme.authority.identifier

    both = broker_over(
        co,
        tmp_path / "b",
        co.acme.bundle(policies=POLICIES + LEASES),
        co.globex_bundle(GLOBEX),
    )
    with pytest.raises(SecretError) as refused:
        both.issue(member, "payments", scope=("refunds",), ttl=120, now=T + 10)
    assert refused.value.reason is SecretFailure.DENIED
    assert "denied: no policy permits this request" in str(refused.value)
    assert both.leases(mallory.identifier) == []


def test_a_member_of_both_leases_under_the_chain_its_authority_allows(tmp_path: Path) -> None:
    """An identity enrolled with both presents its globex chain (write) and its acme chain.
    With acme granting it read only, no credential may lease: acme's permit sees read, globex's
    bundle permits nothing; the refusal names both. With acme granting write, the lease is
    issued and bound to the acme chain (its authority acme, its chain hash the acme chain's),
    whatever came first; a renewal presenting only the globex chain is refused as another
    credential's."""
    co = make_cotrust()
    dual = co.party()
    globex = co.credential(member_chain(co.globex, dual, WRITE), dual)
    acme_read = co.credential(member_chain(co.acme.authority, dual, READ), dual)
    acme_write = co.credential(member_chain(co.acme.authority, dual, WRITE), dual)
    broker = broker_over(
        co, tmp_path, co.acme.bundle(policies=POLICIES + LEASES), co.globex_bundle(GLOBEX)
    )
    endpoint = BrokerEndpoint(broker)
    ask = IssueArgs("payments", ("refunds",), 120).to_wire()

    caller = BrokerCaller(dual.identifier, (globex, acme_read))
    with pytest.raises(SecretError) as refused:
        raise_refusal(endpoint.handle("issue", ask, caller, T + 10))
    assert refused.value.reason is SecretFailure.DENIED
    detail = str(refused.value)
    assert "none of the caller's 2 credentials may lease it" in detail
    assert detail.count("no policy permits this request") == 2
    assert broker.leases(dual.identifier) == []

    caller = BrokerCaller(dual.identifier, (globex, acme_write))
    issued = decode_issued(raise_refusal(endpoint.handle("issue", ask, caller, T + 10)))
    (lease,) = broker.leases(dual.identifier)
    assert lease.handle == issued.lease.handle
    assert lease.authority == co.acme.authority.identifier
    assert lease.chain_hash == sha256(acme_write.chain)

    only_globex = BrokerCaller(dual.identifier, (globex,))
    renew = LeaseArgs(issued.lease_id).to_wire()
    with pytest.raises(SecretError) as renewal:
        raise_refusal(endpoint.handle("renew", renew, only_globex, T + 20))
    assert renewal.value.reason is SecretFailure.EXPIRED
    assert "issued under another credential" in str(renewal.value)
