"""Identities in an ephemeral vault, signers, logs and records for the trace tests."""

from __future__ import annotations

import dataclasses
import io
import json
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from tests.support.parties import make_party
from troth.clock import FixedClock, SystemClock
from troth.credentials import ChainVerifier
from troth.crypto import KeyType
from troth.errors import TraceError, TraceFailure, Unreachable
from troth.identity import (
    HeldIdentity,
    Identifier,
    IdentityService,
    Signer,
    VerifiedIdentity,
    attest_purpose_key,
    new_identity,
    rotate_identity,
)
from troth.node import open_node
from troth.node.services.trace import TraceClient
from troth.storage import SqliteDatabase
from troth.trace import (
    Authority,
    Decision,
    Kind,
    Links,
    Receipt,
    RecordContent,
    ToolCall,
    TraceLog,
    TraceRecorder,
    open_node_log,
)
from troth.trace.checkpoint import sign_checkpoint
from troth.trace.collect import TraceCollector
from troth.trace.export import (
    ExportReport,
    bundle_text,
    export_jsonl,
    verify_bundle,
    verify_export,
)
from troth.trace.merkle import MemoryTree, leaf_hash
from troth.trace.outbox import TraceOutbox
from troth.trace.signing import resolve_key
from troth.trace.submit import Status, Submission, SubmitResult
from troth.trace.verify import verify_log
from troth.vault import KeyPurpose, SoftwareVault

if TYPE_CHECKING:
    from tests.support.gates import GatesWorld


class Signing(Protocol):
    """A party that signs (tests/support/parties.Party)."""

    @property
    def identifier(self) -> Identifier: ...

    @property
    def signer(self) -> Signer: ...


NOW = 1_790_000_000
DAY = 86_400


class Held:
    """An identity whose keys an ephemeral software vault holds; signs as it, rotates it."""

    def __init__(self, vault: SoftwareVault | None = None, *, now: int = NOW) -> None:
        self.vault = vault or SoftwareVault()
        self.held: HeldIdentity = new_identity(
            self.vault, KeyType.ED25519, now=now, valid_for=3650 * DAY
        )
        self._signer: Signer | None = None

    @property
    def identity(self) -> VerifiedIdentity:
        return self.held.identity

    @property
    def identifier(self) -> Identifier:
        return self.held.identity.identifier

    def signer(self, now: int = NOW) -> Signer:
        """A signing key attested under the current change (made once per change)."""
        signer = self._signer
        if signer is None or signer.identity is not self.identity:
            handle = self.vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
            attestation = attest_purpose_key(
                self.vault,
                self.held.primary,
                self.identity,
                KeyPurpose.SIGNING,
                self.vault.public_key(handle),
                now=now,
                expires_at=now + 30 * DAY,
            )
            signer = self._signer = Signer(
                self.identity, self.vault, handle, attestation, now + 30 * DAY
            )
        return signer

    def rotate(self, now: int, next_type: KeyType | None = None) -> None:
        self.held = rotate_identity(
            self.vault,
            self.held.identity,
            self.held.primary,
            self.held.next_key,
            now=now,
            valid_for=3650 * DAY,
            next_type=next_type,
        )

    def rotate_twice(self, wanted: KeyType, times: tuple[int, int]) -> HeldIdentity:
        """Two changes, dated `times`, as troth.identity's `rotate --key-type` (or
        `--compromised`) appends them: the first reveals the committed key while committing to
        one of type `wanted`, the second reveals that one. The identity and keys as they were
        after the first (its primary key, the committed one, a copy of the vault holds)."""
        self.rotate(times[0], wanted)
        first = self.held
        self.rotate(times[1], wanted)
        return first


def open_log(path: Path, clock: FixedClock, owner: Held | None = None) -> TraceLog:
    """A log at `path` whose checkpoints `owner` (a fresh identity by default) signs."""
    owner = owner or Held()
    return TraceLog.open(path, clock=clock, signer=lambda now: owner.signer(now))


def recorder(log: TraceLog, who: Held, clock: FixedClock) -> TraceRecorder:
    return TraceRecorder(log, lambda now: who.signer(now), clock=clock)


def log_of(path: Path, records: int) -> TraceLog:
    """A log at `path` holding `records` tool calls of one agent, at NOW."""
    clock = FixedClock(NOW)
    log = open_log(path, clock)
    agent = recorder(log, Held(), clock)
    for _ in range(records):
        agent.record(tool_call())
    return log


def tool_call(name: str = "refund", **values: Any) -> RecordContent:
    """A tool invocation allowed by policy `name`, with `values` as its redactable fields."""
    return RecordContent(
        Kind.TOOL_INVOCATION,
        tool=ToolCall(name, "call_1"),
        values=values or {"args": {"order": "o1", "amount": 20}, "result": "ok"},
        decision=Decision("allow", "7", (name,)),
        links=Links(conversation="conv-1"),
    )


def record_on_node(home: Path, count: int, name: str = "support") -> None:
    """`count` tool-call records signed by the identity `name` of the node "default" under
    `home`, appended to its trace log (the CLI's `troth trace` tests' set-up)."""
    clock = SystemClock()
    with open_node("default", home=home) as node, open_node_log(node, clock=clock) as log:
        agent = TraceRecorder(log, lambda now: node.identities.signer(name, now=now), clock=clock)
        for _ in range(count):
            agent.record(tool_call())


def node_trace_db(home: Path) -> Path:
    """The trace log's database of the node "default" under `home`."""
    return home / "nodes" / "default" / "trace.db"


def db(log: TraceLog) -> sqlite3.Connection:
    """A raw connection to the log's file: how an attacker (or a disk) edits it."""
    return sqlite3.connect(log.store.path, isolation_level=None)


def as_schema_3(raw: sqlite3.Connection) -> None:
    """The log behind `raw` as before ids were per agent (schema 3: `leaves.record_id` unique
    in the log, no agent column): what the schema 4 migration finds (review 36a)."""
    raw.executescript(
        "BEGIN; CREATE TABLE old (idx INTEGER PRIMARY KEY, record_id TEXT NOT NULL UNIQUE, "
        "leaf BLOB NOT NULL, envelope BLOB NOT NULL, disclosures BLOB); "
        "INSERT INTO old SELECT idx, record_id, leaf, envelope, disclosures FROM leaves; "
        "DROP TABLE leaves; ALTER TABLE old RENAME TO leaves; PRAGMA user_version = 3; COMMIT;"
    )


def verify_export_on(identities: IdentityService, export: str) -> ExportReport:
    """A JSONL export verified as `troth trace verify --file` does on a node: with the node's
    stored histories (forks refused, checkpoints attested, its own rows for retirements)."""
    return verify_export(
        export.encode().splitlines(),
        known=identities.check_no_fork,
        checkpoints=identities.attested_by_store,
        rows=identities.window_around,
    )


def export_lines(log: TraceLog) -> list[dict[str, Any]]:
    """The lines of `log`'s JSONL export, parsed."""
    out = io.StringIO()
    export_jsonl(log, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def one_line_export(path: Path, **values: Any) -> str:
    """The one line (its JSON text) of the export of a log at `path` holding one tool call
    disclosing `values`."""
    clock = FixedClock(NOW)
    log = open_log(path, clock)
    recorder(log, Held(), clock).record(tool_call(**values))
    log.checkpoint()
    (line,) = export_lines(log)
    log.close()
    return json.dumps(line)


def re_signed(lines: list[dict[str, Any]], owner: Held, time: int) -> list[bytes]:
    """`lines` (an export's, parsed) as the lines of a log holding their envelopes in this
    order, its checkpoint signed at `time` by the log's key (`owner`: a collector that signs
    whatever order it likes): each line's index, proof and checkpoint made anew."""
    tree = MemoryTree([leaf_hash(line["envelope"].encode()) for line in lines])
    signer = owner.signer(time)
    epoch = resolve_key(owner.identity, signer.attestation)
    note = sign_checkpoint(signer, epoch, len(lines), tree.root(), time).note.decode()
    return [
        json.dumps(
            {**line, "index": i, "checkpoint": note, "proof": tree.inclusion_proof(i)},
            default=bytes.hex,
        ).encode()
        for i, line in enumerate(lines)
    ]


def hub_log_exports_verified(hub: Any) -> bool:
    """Whether the JSONL export of a running node's trace log verifies on that node, every
    line (`verify_export_on`); run it on the node's storage thread."""
    out = io.StringIO()
    export_jsonl(hub.traces.log(), out)
    text = out.getvalue()
    return verify_export_on(hub.node.identities, text).records == len(text.splitlines())


def unreachable_outbox(
    db: SqliteDatabase, node: Signing, *, max_records: int, now: int
) -> TraceClient:
    """A trace client over a node's durable outbox in `db` (`max_records` at most), signing as
    `node`, whose trace service is out of reach: nothing drains."""

    async def unreachable(method: str, arguments: Any) -> Any:
        raise Unreachable("the trace service is out of reach")

    outbox = TraceOutbox(db, node.identifier, lambda now: node.signer, max_records=max_records)
    return TraceClient(unreachable, outbox, clock=FixedClock(now))


def one_record_then_rotated(
    log: TraceLog, agent: Held, clock: FixedClock
) -> tuple[Signer, bytes, VerifiedIdentity, bytes]:
    """`agent`'s seq 0 in `log` at NOW by its first key, then a rotation at NOW + 100; the log
    closed. The first key's signer, the agent's history before the rotation, its identity
    after it, and the hash of its seq 0 (the head)."""
    old = agent.signer(NOW)
    before = old.identity.history
    recorder(log, agent, clock).record(tool_call())
    agent.rotate(NOW + 100)
    after = agent.identity
    head = log.head(agent.identifier)
    assert head is not None
    log.close()
    return old, before, after, head[1]


def set_newest_history(log: TraceLog, agent: Held, identity: VerifiedIdentity) -> None:
    """Make `identity`'s history the log's newest of `agent`, in its file (as its operator
    could)."""
    raw = db(log)
    raw.execute(
        "UPDATE histories SET history = ?, changes = ?, current = ? WHERE identifier = ?",
        (
            identity.history,
            identity.change_count,
            identity.current_change_hash,
            agent.identifier.digest,
        ),
    )
    raw.close()


def bare_collector(log: TraceLog, verifier: Any) -> TraceCollector:
    """A collector into `log` whose chains `verifier` judges (None: it trusts no authority
    yet), with no feeds, no observer and nothing vouched."""
    return TraceCollector(
        log,
        verifier=lambda: verifier,
        feeds=dict,
        observe=lambda identity: None,
        vouched=lambda identifier: frozenset(),
    )


def agent_log(tmp_path: Path, world: GatesWorld, now: int) -> tuple[TraceLog, TraceRecorder]:
    """A log of its own (owned by a new party) and the support agent of `world` recording in
    it, at `now` (review 56f, 56k: chains)."""
    owner = make_party(world.vault, now=now - 10)
    clock = FixedClock(now)
    log = TraceLog.open(tmp_path / "trace.db", clock=clock, signer=lambda at: owner.signer)
    return log, TraceRecorder(log, lambda at: world.support.signer, clock=clock)


def under_chain(chain: bytes) -> RecordContent:
    """A tool call made under `chain`, kept at the log."""
    return RecordContent(
        Kind.TOOL_INVOCATION, tool=ToolCall("refund"), authority=Authority.from_chain(chain)
    )


def counted_chain_checks(monkeypatch: Any) -> list[bytes]:
    """The chains `ChainVerifier.verify_structure` is asked to check from now on, in order
    (review 56k, 56q: how often a trace log and its verifications check a chain)."""
    structure = ChainVerifier.verify_structure
    calls: list[bytes] = []

    def counted(self: ChainVerifier, data: bytes, **kwargs: Any) -> Any:
        calls.append(data)
        return structure(self, data, **kwargs)

    monkeypatch.setattr(ChainVerifier, "verify_structure", counted)
    return calls


def record_unchecked(
    monkeypatch: pytest.MonkeyPatch, recorder: TraceRecorder, chain: bytes
) -> Receipt:
    """A record under `chain` appended as a log without its chain check appends it (an older
    troth's log, a crafted file: reviews 56f, 56k, 56q, 56y)."""
    with monkeypatch.context() as patched:
        patched.setattr("troth.trace.log.check_appended", lambda *a, **k: None)
        return recorder.record(under_chain(chain), chain=chain)


def offline_refusals(log: TraceLog) -> tuple[TraceError, TraceError, TraceError]:
    """What `verify_log` of `log`, and `verify_export` and `verify_bundle` of its one record's
    export line against its latest checkpoint, raise (each must refuse)."""
    refusals: list[TraceError] = []
    with pytest.raises(TraceError) as logged:
        verify_log(log)
    refusals.append(logged.value)
    out = io.StringIO()
    export_jsonl(log, out)
    (line,) = out.getvalue().encode().splitlines()
    anchor = log.latest_checkpoint().note
    with pytest.raises(TraceError) as exported:
        verify_export([line], anchor=anchor)
    refusals.append(exported.value)
    with pytest.raises(TraceError) as bundled:
        verify_bundle(line, anchor=anchor)
    refusals.append(bundled.value)
    return refusals[0], refusals[1], refusals[2]


def older_service(
    collector: TraceCollector,
    agent: Identifier,
    now: int,
    asked: list[str],
    proved: Callable[[str], str] | None = None,
) -> Callable[[str, Any], Awaitable[Any]]:
    """A `send` to a trace service of before review 70o over `collector`: a record signed
    again of one in its log is answered REPLAYED, not ALREADY; `prove` answers the bundle of
    the log's record under the id asked (appended to `asked`), or `proved(id)` when given
    (review 71g, outbox2 2)."""

    async def send(method: str, arguments: Any) -> Any:
        if method == "prove":
            asked.append(arguments[0])
            if proved is not None:
                return proved(arguments[0])
            return bundle_text(collector.prove(arguments[0], requester=agent, now=now), lines=True)
        submission = Submission.from_cbor(arguments)
        receipts = collector.submit(submission, submitter=agent, now=now)
        replayed = SubmitResult(Status.REFUSED, reason=TraceFailure.REPLAYED, detail="in the log")
        results = tuple(replayed if r.status is Status.ALREADY else r for r in receipts.results)
        return dataclasses.replace(receipts, results=results).to_cbor()

    return send
