"""Review 22c (traces): the per-member share of the trace outbox (TRACE_OUTBOX_SOURCE_PERCENT,
af507bd) counts a gate decision under `record.credential.actor` — the last subject of the
chain presented. A member may delegate (`delegate`, no authority involved) to as many fresh
identities as it likes; each is another "member" with a share of its own. With the trace
service out of reach, one member and four delegates of its own each filling 25% fill the
whole outbox with allowed decisions, and every other member's call is refused again: the
finding the share was made for (one member's allowed operations leave every other member's
audited operation refused), back by delegation.

2. `troth trace prove` writes its bundle indented (d12e749, `bundle_text(indent=2)`), and a
   disclosure is embedded as its JSON value, not its text: every element of an array goes on
   a line of its own, indented. A tool call whose arguments and result are each an array of
   numbers at MAX_TRACE_DISCLOSURE_BYTES (131,071 zeros: a data series) makes an export line of
   0.5 MiB, which verifies, and a proof bundle of 2.8 MiB, over MAX_TRACE_LINE_BYTES, which
   `verify_bundle` (and `troth trace verify --file`, reading it whole under that bound) refuse:
   the record's offline proof never verifies (review 22b's finding 1, back through `indent`).

Each test asserts the correct behaviour; each was a strict xfail until its fix (1. count a record
under the chain's first subject — the member the authority credentialed — not the actor:
troth/trace/adapters.py TraceDecisionRecorder.record, and the broker's audit
`event.identity`, TraceAuditSink.append; 2. troth/cli/trace_cmds.py prove_cmd writes the
bundle compact, or the bound a verifier reads a bundle file under allows for the
indentation; 3. troth/secrets/book.py expire: one transaction per lease, or a record that
fails for its member's share leaves that lease for the next sweep and ends the others).

3. the share also bounds the records the node makes for a member without the member acting:
   a lease's `expire` record counts under its holder. `LeaseBook.expire` ends every due lease
   in ONE transaction, each writing its record (fail closed): when one holder's share is full
   (its own allowed leases, while the trace service is out of reach), the expire record of
   its lease fails, the transaction rolls back, and no member's expired lease is ended or
   revoked upstream (a postgres role, its sessions) while that member's share stays full.
   The same bound refuses the records of an operator's `revoke_identity` of that member (and
   a feed's revocation, one transaction for every identity it revokes): a compromised agent
   that fills its share keeps its leases live against the operator.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

from tests.conftest import NOW as LEASE_NOW
from tests.support.brokers import PAYMENTS
from tests.support.gates import T, make_world
from tests.support.leases import KEK
from tests.support.leases import make_world as lease_world
from tests.support.parties import make_party
from tests.support.traces import NOW as TRACE_NOW
from tests.support.traces import Held, open_log, recorder, tool_call, unreachable_outbox
from tests.test_trace_wiring import NOW, gate_for
from troth import limits
from troth.clock import FixedClock
from troth.credentials import Attributes, CredentialChain, delegate
from troth.errors import SecretError, TraceError, Unreachable
from troth.node.services.trace import TraceClient
from troth.secrets import AllowListPolicy, Broker, LeaseState
from troth.storage import SqliteDatabase, SqliteKeyStore
from troth.trace.adapters import TraceAuditSink, TraceDecisionRecorder
from troth.trace.export import bundle_text, export_jsonl, prove, verify_bundle, verify_export
from troth.trace.outbox import TraceOutbox
from troth.trace.record import disclosure_value
from troth.vault import SoftwareVault


def test_a_members_delegates_cannot_fill_the_outbox_for_it(tmp_path: Path) -> None:
    """The node's gate records every decision in its outbox (20 records; share: 5); the trace
    service is out of reach. Member `support` delegates read access to four fresh keys and
    each (and support itself) makes allowed calls until refused. Another member, credentialed
    by the same authority, must still have its allowed call recorded and allowed."""
    world = make_world()
    node = make_party(world.vault, now=T)
    db = SqliteDatabase(tmp_path / "node.db")
    client = unreachable_outbox(db, node, max_records=20, now=NOW)
    gate = gate_for(world, TraceDecisionRecorder(client))
    support = world.credential(world.support_chain, world.support)
    callers = [support]
    for _ in range(4):
        fresh = make_party(world.vault, now=T)
        chain = delegate(
            world.support.signer,
            CredentialChain.decode(world.support_chain),
            subject=fresh.identifier,
            attributes=Attributes({"orders.access": "read"}),
            now=T,
            ttl=86_400,
            purpose="look up orders",
        )
        callers.append(world.credential(chain.encode(), fresh))
    allowed = 0
    for caller in callers:
        for _ in range(5):
            try:
                allowed += gate.invoke(caller, "lookup_order", {"order_id": "o1"}).allowed
            except TraceError:
                break
    assert allowed == 5  # the member and its delegates share one share (25% of 20)
    other, credential = world.new_member()
    member = world.member_credential(other, credential)
    try:
        assert gate.invoke(member, "lookup_order", {"order_id": "o2"}).allowed
    finally:
        db.close()


# -- 2. a proof bundle written indented -------------------------------------------------------


def test_the_proof_bundle_trace_prove_writes_verifies(tmp_path: Path) -> None:
    """A tool call whose arguments and result are each an array of numbers at the disclosure
    limit: its export line verifies, and so must its bundle as `troth trace prove` writes it."""
    series = [0] * ((limits.MAX_TRACE_DISCLOSURE_BYTES - 1) // 2)
    assert len(disclosure_value(series)) <= limits.MAX_TRACE_DISCLOSURE_BYTES  # the log takes it
    clock = FixedClock(TRACE_NOW)
    log = open_log(tmp_path / "trace.db", clock)
    receipt = recorder(log, Held(), clock).record(tool_call(args=series, result=series))
    out = io.StringIO()
    export_jsonl(log, out)
    assert verify_export(out.getvalue().encode().splitlines()).records == 1
    bundle = bundle_text(prove(log, receipt.record), lines=True).encode()  # as `trace prove` writes
    assert verify_bundle(bundle).index == receipt.index


# -- 3. a member's full share stops every member's lease expiry --------------------------------


def _full_share(tmp_path: Path) -> tuple[Any, Broker, SqliteDatabase, Any]:
    """A broker auditing to the node's outbox (20 records; a member's share: 5), the trace
    service out of reach; agent B has filled its share with its own allowed leases and agent
    A holds one lease (returned)."""
    world = lease_world(LEASE_NOW)
    db = SqliteDatabase(tmp_path / "node.db")
    vault = SoftwareVault(SqliteKeyStore(db), KEK)
    node = world.orchestrator
    outbox = TraceOutbox(db, node.identifier, lambda now: node.signer, max_records=20)

    async def unreachable(method: str, arguments: Any) -> Any:
        raise Unreachable("the trace service is out of reach")

    client = TraceClient(unreachable, outbox, clock=FixedClock(LEASE_NOW))
    allowed = {"payments": None}
    policy = AllowListPolicy({world.agent_a.identifier: allowed, world.agent_b.identifier: allowed})
    broker = Broker(db, vault, now=LEASE_NOW, policy=policy, audit=TraceAuditSink(client))
    broker.put_secret("payments", "token", PAYMENTS, b"", now=LEASE_NOW)
    for _ in range(5):  # B's share: 5 records, each an allowed issue
        broker.issue(world.credential_b(), "payments", scope=["refunds"], now=LEASE_NOW)
    mine = broker.issue(world.credential_a(), "payments", scope=["refunds"], now=LEASE_NOW)
    return world, broker, db, mine


def test_a_members_full_share_holds_back_no_other_members_lease_expiry(tmp_path: Path) -> None:
    """Agent B filled its share; agent A holds a lease. Both expire; the sweep must end A's
    lease (its expire record fits A's share), whatever B's share holds."""
    world, broker, db, mine = _full_share(tmp_path)
    try:
        with contextlib.suppress(SecretError):
            broker.sweep(mine.lease.expires_at + 1)
        (lease,) = broker.leases(world.agent_a.identifier, include_ended=True)
        assert lease.state is not LeaseState.ACTIVE  # A's lease expired
    finally:
        broker.close()
        db.close()


def test_an_operator_revokes_the_leases_of_a_member_whose_share_is_full(tmp_path: Path) -> None:
    """Agent B filled its share with its own allowed leases (as a compromised agent would,
    while the trace service is out of reach). The operator revokes every lease of B: they end,
    whatever B's share holds (the node's own act, not B's)."""
    world, broker, db, _mine = _full_share(tmp_path)
    try:
        with contextlib.suppress(SecretError):
            broker.revoke_identity(world.agent_b.identifier, now=LEASE_NOW + 1)
        leases = broker.leases(world.agent_b.identifier, include_ended=True)
        assert [lease.state for lease in leases if lease.state is LeaseState.ACTIVE] == []
    finally:
        broker.close()
        db.close()
