"""Signed traces: every step an agent takes, signed by the agent with its delegation chain, in
a tamper-evident log that verifies offline (docs/traces.md, docs/formats.md "Trace records",
"Trace log and checkpoints").

    record      what happened (troth.trace.record), signed in a DSSE envelope (dsse, signing)
    recorder    an agent's side: number, sign, append (TraceRecorder)
    log         the RFC 9162 Merkle log: durable appends, checkpoints, proofs (TraceLog)
    merkle      RFC 9162 hashing and proof verification (sans-IO)
    checkpoint  C2SP signed-note checkpoints and the verifier's anchor
    verify      whole-log verification (LogVerifier, verify_log)
    export      JSONL evaluation sets and offline proof bundles
    otel        OpenTelemetry spans out, and a span processor that signs spans (troth[otel])
"""

from troth.trace.checkpoint import AnchorStatus, Checkpoint, CheckpointAnchor
from troth.trace.log import Receipt, TraceLog, open_node_log
from troth.trace.merkle import verify_consistency, verify_inclusion
from troth.trace.record import (
    PAYLOAD_TYPE,
    Authority,
    Decision,
    Disclosure,
    Kind,
    Links,
    SpanTimes,
    ToolCall,
    TraceRecord,
)
from troth.trace.recorder import TraceRecorder
from troth.trace.signing import RecordContent, VerifiedRecord, sign_record, verify_envelope
from troth.trace.verify import LogMaterial, LogReport, LogVerifier, verify_log

__all__ = [
    "PAYLOAD_TYPE",
    "AnchorStatus",
    "Authority",
    "Checkpoint",
    "CheckpointAnchor",
    "Decision",
    "Disclosure",
    "Kind",
    "Links",
    "LogMaterial",
    "LogReport",
    "LogVerifier",
    "Receipt",
    "RecordContent",
    "SpanTimes",
    "ToolCall",
    "TraceLog",
    "TraceRecord",
    "TraceRecorder",
    "VerifiedRecord",
    "open_node_log",
    "sign_record",
    "verify_consistency",
    "verify_envelope",
    "verify_inclusion",
    "verify_log",
]
