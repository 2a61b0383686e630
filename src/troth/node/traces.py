"""The records a node's identities make outside the gates and the broker (docs/traces.md,
"Wiring"): a delegation (signed by the delegator), a revocation (signed by the revoker), and a
human's resolution of an escalation (signed by the human). The CLI and the Python API call
these, one library place each; the records go to the node's own log (`<node>/trace.db`), and
each call returns once its record is durable.

A delegation is recorded before the new chain is handed out: if the record cannot be made,
the chain is not returned (no record, no delegation). A revocation takes effect at the
authority first (a record of one that was refused would be false), then is recorded with its
feed entry; if the record then fails, the error says the revocation stands. A link's
revocation is synced into the node's own copy of the authority's feed (verified, then stored)
before it is recorded (a record here means the node enforces it, after a crash too: review
48c, revcrash 1), so the node that revoked refuses the link at once (review 47k, revsync 1), and a
daemon running the node is told to re-read it (`tell_running`: review 47s, revdaemon 1), and the
daemons running the other nodes here to sync the authority's feed (`tell_local_nodes`: review
48c, revocation 2). The node's copy is marked due a sync before the authority is asked
(troth.node.syncdue): a process killed after the authority's commit leaves the mark, and the
node syncs the feed before it hands out a chain of that authority again (review 48m, revcrash
2).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from troth.authority import Authority
from troth.authority.client import revoke_request
from troth.clock import Clock
from troth.credentials import Attributes, CredentialChain, VerifiedFeed
from troth.crypto import sha256
from troth.errors import AuthorityError, StorageError, TraceError, TraceFailure, TrothError
from troth.identity import Identifier
from troth.limits import MAX_NODES_TOLD_AT_ONCE
from troth.node.authorities import home_of, is_local, sync_from
from troth.node.localdue import local_nodes_due
from troth.node.node import Node, list_nodes
from troth.node.syncdue import sync_due_while
from troth.trace.adapters import delegation_content, revocation_content
from troth.trace.log import Receipt, TraceLog, open_node_log
from troth.trace.record import Kind
from troth.trace.recorder import TraceRecorder
from troth.trace.signing import RecordContent, open_envelope

__all__ = [
    "delegate_recorded",
    "escalating_agent",
    "hold_revocation",
    "record_revocation",
    "remove_member_as_authority",
    "resolve_escalation",
    "revoke_as_authority",
    "revoke_link_at",
    "revoke_link_recorded",
    "tell_hosting_node",
    "tell_local_nodes",
    "tell_nodes_here",
    "tell_running",
    "traced_as",
    "unsynced",
]

log = logging.getLogger("troth.node")


_RECORDING: dict[Path, threading.RLock] = {}
"""One lock per node directory: the records `traced_as` blocks of a node make in this process
are made one at a time (review 49a, threads 1)."""
_RECORDING_LOCK = threading.Lock()


@contextmanager
def traced_as(node: Node, ref: str, *, clock: Clock) -> Iterator[TraceRecorder]:
    """A recorder signing as local identity `ref` into the node's log (closed after). Blocks of
    one node in this process run one at a time: each reads its agent's last record, signs the
    next and appends it, and another thread's record of the same agent appended in between
    had it refused (CHAIN_BROKEN), three times over for a `Node.delegate` beside others, which
    then failed for a delegation it made (review 49a, threads 1). Another process's record in
    between is retried (`TraceRecorder.record`)."""
    identities = node.identities
    key = node.path.resolve()
    with _RECORDING_LOCK:
        recording = _RECORDING.setdefault(key, threading.RLock())
    with recording, open_node_log(node, clock=clock) as log:
        yield TraceRecorder(log, lambda now: identities.signer(ref, now=now), clock=clock)


def delegate_recorded(
    node: Node,
    ref: str,
    *,
    to: Identifier,
    attributes: Attributes,
    ttl: int,
    purpose: str,
    clock: Clock,
    caveats: Sequence[str] = (),
    depth: int | None = None,
) -> bytes:
    """Delegate part of what local `ref` holds to `to` (`CredentialWallet.delegate`, from the
    chain `parent_for` picks) and record it, signed by `ref` under that chain; the new chain."""
    now = clock.now()
    wallet = node.wallet
    parent = wallet.parent_for(ref, attributes, now=now)
    chain = wallet.delegate(
        ref,
        to=to,
        attributes=attributes,
        now=now,
        ttl=ttl,
        purpose=purpose,
        caveats=caveats,
        depth=depth,
        credential_hash=CredentialChain.decode(parent).credentials[-1].hash,
    )
    content, kept = delegation_content(parent, chain)
    with traced_as(node, ref, clock=clock) as recorder:
        recorder.record(content, chain=kept)
    return chain


def record_revocation(
    node: Node,
    ref: str,
    what: str,
    target: str,
    *,
    authority: Identifier,
    reason: str,
    seq: int | None,
    clock: Clock,
    chain: bytes | None = None,
) -> Receipt:
    """Record that local `ref` revoked `target` (`what`: link, credential or identity) with
    `authority`, which took it as feed entry `seq`. Once per feed entry: its record id comes
    from the entry (`revocation_record_id`), so a redo (the same command after a crash that
    followed the record's commit) finds `ref`'s record of it and answers its receipt, where it
    recorded it again before review 46c."""
    content = revocation_content(
        what, target, authority=authority, reason=reason, seq=seq, chain=chain
    )
    try:
        with traced_as(node, ref, clock=clock) as recorder:
            record_id = content.id
            if record_id is None:  # (no feed entry: nothing to find it by)
                return recorder.record(content)
            if (held := _recorded(recorder, content, record_id)) is not None:
                return held
            try:
                return recorder.record(content)
            except TraceError as exc:  # recorded meanwhile by another process's redo
                if exc.reason is not TraceFailure.REPLAYED:
                    raise
                if (held := _recorded(recorder, content, record_id)) is None:
                    raise
                return held
    except TrothError as exc:
        raise StorageError(
            f"the {what} is revoked (feed entry {seq}), but the revocation could not be "
            f"recorded in the trace: {exc}"
        ) from exc


def _recorded(recorder: TraceRecorder, content: RecordContent, record_id: str) -> Receipt | None:
    """The receipt of the record the recorder's agent holds under `content.id`, if it is the
    revocation `content` describes (kind and tool: its values may have been redacted); None
    when it holds none. TraceError when the id holds another record (a clash of 128 bits).
    `record_id` is `content.id`."""
    agent = recorder.agent
    if agent not in recorder.log.agents_of(record_id):
        return None
    stored = recorder.log.find(record_id, agent)
    record, payload, _, _ = open_envelope(stored.envelope)
    if record.kind is not content.kind or record.tool != content.tool:
        raise TraceError(
            TraceFailure.REPLAYED,
            f"record {record_id} of {agent} is not this revocation",
            record=record_id,
        )
    return Receipt(stored.index, record_id, sha256(payload), stored.leaf)


def revoke_as_authority(
    node: Node,
    authority: Authority,
    target: bytes | Identifier,
    *,
    reason: str,
    clock: Clock,
    told: Callable[[Authority], None] | None = None,
) -> int:
    """The authority `node` hosts revokes a credential (`target`: its hash) or an identity, and
    records it, signed by the authority; the feed entry's seq. The other nodes here that
    trust it are marked due a sync of its feed before it commits (`local_nodes_due`: a
    process killed before `tell_local_nodes` leaves the marks, and they sync it soon:
    review 50b, revdue 1). Once it committed, `told` (the nodes served in this process:
    `sync_runtimes_here`) before the daemons here (`_told_then_daemons`)."""
    now = clock.now()
    me = authority.identifier
    with local_nodes_due(node, me, now=now) as due:  # before the commit (review 50b, revdue 1)
        try:
            if isinstance(target, Identifier):
                seq = authority.revoke_identity(target, now=now, reason=reason)
                what, text = "identity", str(target)
            else:
                seq = authority.revoke_credential(target, now=now, reason=reason)
                what, text = "credential", target.hex()
        except AuthorityError:  # refused: the authority took nothing
            due.clear()
            raise
    try:
        record_revocation(
            node, str(me), what, text, authority=me, reason=reason, seq=seq, clock=clock
        )
    finally:  # recorded or not, the revocation stands: the nodes running here learn it
        _told_then_daemons(node, authority, told, hosting=True)  # (63u, revocation 1)
    return seq


def _told_then_daemons(
    node: Node, authority: Authority, told: Callable[[Authority], None] | None, *, hosting: bool
) -> None:
    """`told(authority)` (the nodes served in this process, at hand), then the daemons running
    here (`tell_hosting_node` when `hosting`, `tell_local_nodes`), whatever `told` raised: the
    daemons first, each silent one held the nodes served here its 30 s control timeout, their
    marks read and every member of the authority refused until their own sync (review 70d,
    telling 4)."""
    try:
        if told is not None:
            told(authority)
    finally:
        if hosting:
            tell_hosting_node(node, authority.identifier)
        tell_local_nodes(node, authority.identifier)


def remove_member_as_authority(
    node: Node, authority: Authority, member: Identifier, *, reason: str, clock: Clock
) -> list[bytes]:
    """The authority `node` hosts removes `member` (`Authority.remove_member`: its credentials
    revoked), the other nodes here that trust it marked due a sync of its feed before it
    commits (`local_nodes_due`: review 50b, revdue 1), then the daemons running them told
    (`tell_local_nodes`); the credentials' ids."""
    me = authority.identifier
    now = clock.now()
    with local_nodes_due(node, me, now=now) as due:
        try:
            revoked = authority.remove_member(member, now=now, reason=reason)
        except AuthorityError:  # not a member: the authority took nothing
            due.clear()
            raise
    tell_hosting_node(node, me)  # the nodes running here refuse them
    tell_local_nodes(node, me)
    return revoked


def revoke_link_at(
    node: Node,
    ref: str,
    authority: Authority,
    credential_hash: bytes,
    *,
    chain: bytes,
    reason: str,
    now: int,
) -> int:
    """Local identity `ref` revokes link `credential_hash` of `chain` (a link it, or an
    identity upstream of it, issued) with `authority`, hosted on this machine: its signed
    request (`revoke_request`), which the authority takes as a feed entry; the entry's seq.
    Not recorded: `revoke_link_recorded` (the CLI), `Node.revoke` (the API) record it."""
    request = revoke_request(
        node.identities,
        ref,
        authority.identifier,
        credential_hash=credential_hash,
        chain=chain,
        reason=reason,
        now=now,
    )
    return authority.revoke_link(request, now=now)


def revoke_link_recorded(
    node: Node,
    ref: str,
    authority: Authority,
    credential_hash: bytes,
    *,
    chain: bytes,
    reason: str,
    clock: Clock,
    told: Callable[[Authority], None] | None = None,
) -> int:
    """`revoke_link_at`, then the feed `node` holds of `authority` synced from it
    (`hold_revocation`), then recorded, signed by `ref` (`record_revocation`: the link's
    revocation stands if the record fails), then a daemon running `node` told
    (`tell_running`) and those running the other nodes here (`tell_local_nodes`): when this
    returns, `node`, and the daemons, refuse every chain holding the link. The one call of the
    CLI (`troth revoke link`) and the API (`Node.revoke`, an authority on this machine); the
    feed entry's seq. The sync comes before the record: a process killed between them left a
    revocation recorded here that the node, restarted, did not enforce (review 48c, revcrash
    1); a sync that fails is recorded all the same, then raised (it says the link is
    revoked). The node's copy of the feed is marked due before the authority is asked, and
    the mark cleared once it holds the entry (troth.node.syncdue): a process killed between
    the authority's commit and the sync leaves the mark, and the node syncs that feed before
    it hands out a chain of that authority again (review 48m, revcrash 2); the other nodes
    here that trust it are marked as well (`local_nodes_due`: review 50b, revdue 1). `told`
    (the nodes served in this process) before the other nodes' daemons (`_told_then_daemons`)."""
    identifier = authority.identifier
    address = node.wallet.trusted().get(identifier) or ""
    here = address if is_local(address) else ""  # (on this machine: its node is found)
    with sync_due_while(node, identifier, address=here, now=clock.now()) as due:
        with local_nodes_due(node, identifier, now=clock.now()) as others:
            try:
                seq = revoke_link_at(
                    node,
                    ref,
                    authority,
                    credential_hash,
                    chain=chain,
                    reason=reason,
                    now=clock.now(),
                )
            except AuthorityError:  # refused: the authority took nothing
                others.clear()
                due.clear()
                raise
        try:
            not_held: StorageError | None = None
            try:
                hold_revocation(node, authority, seq, clock=clock)
            except StorageError as exc:
                not_held = exc
            else:
                with suppress(TrothError):  # (a mark left is settled by the next sync)
                    due.clear()
            try:
                record_revocation(
                    node,
                    ref,
                    "link",
                    credential_hash.hex(),
                    authority=identifier,
                    reason=reason,
                    seq=seq,
                    clock=clock,
                    chain=chain,
                )
            except StorageError:  # the revocation stands: a daemon learns it all the same
                if not_held is None:
                    with suppress(TrothError):
                        tell_running(node, seq)
                raise
            if not_held is not None:
                raise not_held
            tell_running(node, seq)
        finally:
            _told_then_daemons(node, authority, told, hosting=False)
    return seq


def tell_running(node: Node, seq: int) -> None:
    """Ask a daemon running `node` (`troth node start`) to re-read the feeds its store holds
    (control op `trust.reload`, `NodeTrust.learn_held`), now that the store holds entry `seq`:
    its decisions are made from the feeds in its memory, which took the revocation only at
    its next maintenance round (review 47s, revdaemon 1: `Node.revoke` from a script beside
    the daemon left it accepting the revoked link; the CLI alone told it). Nothing when no
    daemon runs `node` (a runtime inside this process, `Node.serve`, is told by its caller).
    StorageError, saying the link is revoked and stored, when the daemon cannot be told."""
    from troth.node.daemon import node_status

    home = home_of(node)
    status = node_status(home, node.name)
    if not status["running"]:
        return
    try:
        _control(home, node.name, status, "trust.reload", {})
    except (TrothError, OSError) as exc:  # its socket gone, too (review 49i, lifecycle 5)
        from troth.node.upkeep import MAINTENANCE_SECONDS

        raise StorageError(
            f"the link is revoked (feed entry {seq}) and this node's store holds it, but the "
            f"running node {node.name!r} could not be told: {exc} (it learns it at its next "
            f"feed refresh, within {MAINTENANCE_SECONDS} s)"
        ) from exc


def tell_local_nodes(node: Node, authority: Identifier) -> None:
    """Ask the daemons running the other nodes of `node`'s home to sync the feed of
    `authority` now (control op `feed.sync`; one that does not trust it does nothing), now
    that it took a revocation: they held their copies as they were until their next
    maintenance round, admitting what was revoked meanwhile (review 48c, revocation 2). The
    hosting node's own daemon is told by `tell_hosting_node`. One that cannot be told
    (its control socket fails, or its sync) is logged, not raised, and learns it at its next
    round: the revocation stands, and where it was made holds it (review 49i, lifecycle 4)."""
    tell_nodes_here(node, [authority])


def tell_nodes_here(
    node: Node, authorities: Sequence[Identifier], *, hosting: bool = False
) -> None:
    """`tell_local_nodes` of each of `authorities` (`tell_hosting_node` too when `hosting`),
    the daemons asked at once (`MAX_NODES_TOLD_AT_ONCE` at a time), and returning once each
    answered or timed out: asked one after the other, each daemon that does not answer (stopped
    by Ctrl-Z, hung) held the caller its control timeout (30 s) in turn, ten of them five
    minutes, and the daemons after it were told that much later (review 69d, notify 2). A
    node whose configuration cannot be read is logged, the others told. Nothing to tell (no
    authority here took a rotation): no node is read (review 70d, telling 3: every rotation
    of an identity enrolled nowhere logged each damaged node here as not told)."""
    if not authorities:
        return
    home = home_of(node)
    unreadable: dict[str, str] = {}
    try:  # (one node's damaged configuration told none of them: review 69d, notify 4)
        configs = list_nodes(home, unreadable=unreadable)
    except TrothError as exc:  # (the home itself) fails no revocation
        log.warning("the nodes running here were not told of the revocation: %s", exc)
        configs = []
    for name, why in unreadable.items():
        log.warning("node %r was not told of the revocation: %s", name, why)
    names = [config.name for config in configs if config.name != node.name]
    if hosting:
        names.append(node.name)
    _tell_all(home, [(name, authority) for authority in authorities for name in names])


def _tell_all(home: Path, asked: Sequence[tuple[str, Identifier]]) -> None:
    """`_tell_feed_sync` of each of `asked` (node name, authority), `MAX_NODES_TOLD_AT_ONCE` at
    a time: the calling thread and daemon threads take them in turn, and it returns once all
    were told. Daemon threads: a pool's workers are joined when the interpreter exits, and a
    background telling (`troth-tell-local-nodes`, daemon threads so that a stopping node waits
    for none) held the exiting process until each silent daemon's control request timed out
    (review 69k, wave1 1). One telling failing in any way is logged, the others told."""
    pending = iter(asked)
    taking = threading.Lock()

    def work() -> None:
        while True:
            with taking:
                each = next(pending, None)
            if each is None:
                return
            try:
                _tell_feed_sync(home, *each)
            except Exception:  # (logged: the daemons after it are told all the same)
                log.exception("node %r was not told of the revocation", each[0])

    helpers: list[threading.Thread] = []
    for _ in range(min(len(asked), MAX_NODES_TOLD_AT_ONCE) - 1):
        helper = threading.Thread(target=work, name="troth-tell-node", daemon=True)
        try:
            helper.start()
        except RuntimeError:  # (no new thread at the interpreter's exit: this one tells)
            break
        helpers.append(helper)
    work()
    for helper in helpers:
        helper.join()


def tell_hosting_node(node: Node, authority: Identifier) -> None:
    """Ask the daemon running `node`, which hosts `authority` (this process is not that
    daemon: a revocation through `troth revoke ...`, `troth authority members remove` or
    `Authority.revoke`), to re-read its store now (`feed.sync` of the hosted authority): it
    did only at its next poll of it (`HOSTED_FEED_POLL`), its broker renewing the revoked
    member's leases and its channels answering it meanwhile (review 63u, revocation 1).
    Logged, not raised, when it cannot be told, as `tell_local_nodes`."""
    _tell_feed_sync(home_of(node), node.name, authority)


def _tell_feed_sync(home: Path, name: str, authority: Identifier) -> None:
    """Control op `feed.sync` of `authority` on the daemon running node `name`, if one runs.
    A node removed meanwhile (NotFound), or whose control socket fails (an OSError: a daemon
    stopping or killed since its status was read) is logged: the others are told all the same,
    and the revocation's caller goes on (review 49i, lifecycle 4: it failed a committed
    revocation, and `Node.revoke` then never told the daemon running its node)."""
    from troth.node.daemon import node_status

    try:
        status = node_status(home, name)
        if status["running"]:
            _control(home, name, status, "feed.sync", {"authority": str(authority)})
    except (TrothError, OSError) as exc:
        log.warning("node %r was not told of the revocation: %s", name, exc)


def _control(
    home: Path, name: str, status: dict[str, Any], op: str, arguments: dict[str, Any]
) -> None:
    """Control op `op` on the daemon running node `name` (its `status`), from a coroutine too
    (the control client runs a loop of its own, off the caller's)."""
    import asyncio  # the control client: on use only
    from concurrent.futures import ThreadPoolExecutor

    from troth.node.daemon import control

    def send() -> None:
        control(home, name, op, arguments, status=status)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        send()
    else:
        with ThreadPoolExecutor(1) as pool:
            pool.submit(send).result()


def hold_revocation(
    node: Node, authority: Authority, seq: int, *, clock: Clock
) -> VerifiedFeed | None:
    """Sync the feed `node` holds of `authority` (on this machine) up to the entry `seq` it
    just took, each page verified before it is stored (`sync_from`; review 47k, revsync 1:
    `troth revoke link` left it as it was, and the node accepted the revoked link until its
    next feed refresh). None when `node` neither trusts `authority` nor holds a feed of it
    (a node hosting it reads the authority's store). StorageError, saying the revocation
    stands, when the sync fails. A process killed after the authority's commit and before
    this store leaves the mark `revoke_link_recorded` made: the node syncs the feed before it
    hands out a chain of that authority again (troth.node.syncdue; review 48m, revcrash 2;
    docs/credentials.md, "Revocation is real")."""
    identifier = authority.identifier
    wallet = node.wallet
    if identifier not in wallet.trusted() and wallet.store.feed_state(identifier.digest) is None:
        return None
    try:
        feed = sync_from(node, authority, now=clock)
    except TrothError as exc:
        raise unsynced(seq, exc) from exc
    if feed.count <= seq:  # (the authority's own feed answers every entry it took)
        raise StorageError(
            f"the link is revoked (feed entry {seq}), but the authority's feed held here ends "
            f"before it (at {feed.count} entries; the node's next feed refresh brings it)"
        )
    return feed


def unsynced(seq: int, error: TrothError) -> StorageError:
    """The error of a link revocation the authority took as entry `seq` that the node's copy
    of its feed could not be synced with (`error`): it says the revocation stands."""
    return StorageError(
        f"the link is revoked (feed entry {seq}), but this node's copy of the authority's "
        f"feed could not be updated: {error} (the node's next feed refresh brings it)"
    )


def resolve_escalation(
    node: Node,
    ref: str,
    escalation: str,
    *,
    outcome: str,
    considered: Any,
    reasoning: Any,
    clock: Clock,
    agent: Identifier | None = None,
) -> Receipt:
    """Record, as local identity `ref` (the human asked), the decision on escalation record
    `escalation` of `agent` in the node's log: the outcome, what was considered and why.
    Without `agent`, of the one agent whose record under that id is an escalation asking
    `ref` (record ids are unique per agent: TraceError LINK_INVALID when no agent's, or
    several agents', are)."""
    with traced_as(node, ref, clock=clock) as recorder:
        if agent is None:
            agent = escalating_agent(recorder.log, escalation, recorder.agent)
        return recorder.resolve(
            escalation, of=agent, outcome=outcome, considered=considered, reasoning=reasoning
        )


def escalating_agent(log: TraceLog, escalation: str, asked: Identifier) -> Identifier:
    """The one agent whose record `escalation` is an escalation asking `asked` (record ids are
    unique per agent only); TraceError LINK_INVALID when no agent's, or several agents', is."""
    found = []
    for agent in log.agents_of(escalation):
        record = open_envelope(log.find(escalation, agent).envelope)[0]
        if record.kind is Kind.ESCALATION and record.escalation_to in (None, asked):
            found.append(agent)
    if not found:
        raise TraceError(
            TraceFailure.LINK_INVALID,
            f"{escalation} is not an escalation asking {asked} in the log",
            record=escalation,
        )
    if len(found) > 1:
        raise TraceError(
            TraceFailure.LINK_INVALID,
            f"several agents' records {escalation} are escalations asking {asked}: name the agent",
            record=escalation,
        )
    return found[0]
