"""The span attribute names of troth's OpenTelemetry both ways (`troth.trace.otel`): the GenAI
semantic conventions' (gen-ai-spans.md, development status; troth's own constants:
opentelemetry-semantic-conventions 0.66b2 marks its GenAI constants deprecated, moved to another
package, while the names stay the same) and troth's own `troth.*` namespace. Apart from
`troth.trace.otel` so that the export and the span processor (`troth.trace.otel_processor`)
share them.
"""

from __future__ import annotations

from typing import Final

# GenAI semantic conventions (gen-ai-spans.md, development status)
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_AGENT_ID: Final = "gen_ai.agent.id"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
EXECUTE_TOOL: Final = "execute_tool"
INVOKE_AGENT: Final = "invoke_agent"

# troth's own namespace (the conventions have nothing for signatures, delegation or policy)
TROTH_RECORD_ID: Final = "troth.record.id"
TROTH_RECORD_HASH: Final = "troth.record.hash"
TROTH_RECORD_INDEX: Final = "troth.record.index"
TROTH_RECORD_KIND: Final = "troth.record.kind"
TROTH_SIGNER: Final = "troth.signer"
TROTH_SIGNER_KEY: Final = "troth.signer.key"
TROTH_CHAIN_DIGEST: Final = "troth.chain.digest"
TROTH_DECISION: Final = "troth.decision"
TROTH_POLICY_IDS: Final = "troth.policy.ids"
TROTH_BUNDLE_REVISION: Final = "troth.bundle.revision"
TROTH_ESCALATION_TO: Final = "troth.escalation.to"
TROTH_TOOL_SERVER: Final = "troth.tool.server"
"""The MCP server whose tool it is (the conventions name no server of a tool: review 53l;
mcp.* attributes name none either, and `server.address` is a network peer, not the name
policies give a server). Written by the export, read by `SigningSpanProcessor` (review 53r,
otel 1: an app's execute_tool span names its tool's server by it)."""
TROTH_CLAIMED_SPAN_ID: Final = "troth.claimed.span_id"
TROTH_CLAIMED_PARENT_SPAN_ID: Final = "troth.claimed.parent_span_id"
TROTH_SPAN_RENAMED: Final = "troth.span.renamed"
"""The span ids a record claims (`links.span`, `links.parent_span`) as its signer's claim,
and the mark of a span renamed: the export's span ids are its own (review 53r, otel 2)."""

READ: Final = (
    GEN_AI_OPERATION_NAME,
    GEN_AI_TOOL_NAME,
    GEN_AI_TOOL_CALL_ID,
    GEN_AI_TOOL_CALL_ARGUMENTS,
    GEN_AI_TOOL_CALL_RESULT,
    GEN_AI_CONVERSATION_ID,
    GEN_AI_INPUT_MESSAGES,
    GEN_AI_OUTPUT_MESSAGES,
    TROTH_DECISION,
    TROTH_POLICY_IDS,
    TROTH_BUNDLE_REVISION,
    TROTH_TOOL_SERVER,
)
"""The span attributes `SigningSpanProcessor` reads (`span_content`)."""
