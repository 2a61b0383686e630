"""Gates: Cedar policies in signed bundles, decided at one decision point on every call
(docs/policy.md). Gate 1 lists only the tools a caller could be permitted to call; gate 2
decides every call with its arguments; gate 3 (issue 12) attaches a leased secret."""

from troth.gates.bundles import (
    POLICY_ADMIN,
    BundleBody,
    VerifiedBundle,
    create_bundle,
    decode_bundle,
    load_stored_bundle,
    resign_bundle,
    verify_bundle,
)
from troth.gates.caveats import check_caveat
from troth.gates.engine import (
    LeaseRequest,
    Outcome,
    PolicyDecision,
    PolicyEngine,
    Request,
    ServiceCall,
    ToolCall,
)
from troth.gates.point import (
    Caller,
    CredentialSource,
    DecisionPoint,
    DecisionRecord,
    DecisionRecorder,
    FeedSource,
    LeaseDenied,
    LeaseProvider,
    ListRecorder,
    NoLeases,
    PolicySource,
    PresentedChain,
    Presenting,
    ToolPreview,
)
from troth.gates.policies import FIXED_SCHEMA, CompiledPolicies, compile_policies
from troth.gates.store import (
    ActiveBundle,
    BundleConflict,
    BundleStore,
    BundleTable,
    MemoryBundleTable,
    SqliteBundleTable,
)
from troth.gates.tools import Tool, ToolGate, ToolResult
from troth.gates.toolschema import ToolSchema, compile_tool_schema, schema_from_function

__all__ = [
    "FIXED_SCHEMA",
    "POLICY_ADMIN",
    "ActiveBundle",
    "BundleBody",
    "BundleConflict",
    "BundleStore",
    "BundleTable",
    "Caller",
    "CompiledPolicies",
    "CredentialSource",
    "DecisionPoint",
    "DecisionRecord",
    "DecisionRecorder",
    "FeedSource",
    "LeaseDenied",
    "LeaseProvider",
    "LeaseRequest",
    "ListRecorder",
    "MemoryBundleTable",
    "NoLeases",
    "Outcome",
    "PolicyDecision",
    "PolicyEngine",
    "PolicySource",
    "PresentedChain",
    "Presenting",
    "Request",
    "ServiceCall",
    "SqliteBundleTable",
    "Tool",
    "ToolCall",
    "ToolGate",
    "ToolPreview",
    "ToolResult",
    "ToolSchema",
    "VerifiedBundle",
    "check_caveat",
    "compile_policies",
    "compile_tool_schema",
    "create_bundle",
    "decode_bundle",
    "load_stored_bundle",
    "resign_bundle",
    "schema_from_function",
    "verify_bundle",
]
