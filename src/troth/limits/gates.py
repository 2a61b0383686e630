"""The hard limits of the gates: policy bundles, Cedar and tool calls (troth.gates).

Part of `troth.limits`, which re-exports every one of them: the one place hard limits are named
(`troth.limits.X`; review 50f, limits 4: the module was at the 800-line cap).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CEDAR_ENTITY_BYTES",
    "CEDAR_RETRY_FIRST_SECONDS",
    "CEDAR_RETRY_MAX_SECONDS",
    "CEDAR_VALIDATION_TIMEOUT_SECONDS",
    "MAX_CACHED_CHAIN_ENTITIES",
    "MAX_CACHED_VISIBLE_NAMES",
    "MAX_CAVEATED_POLICY_TEXT",
    "MAX_CAVEAT_CONTEXT_BYTES",
    "MAX_CAVEAT_LIKE_WEIGHT",
    "MAX_CEDAR_ACTION_PAIRS",
    "MAX_CEDAR_ANCESTORS",
    "MAX_CEDAR_CHECKED_NODES",
    "MAX_CEDAR_COMPARED_NODES",
    "MAX_CEDAR_ENVIRONMENTS",
    "MAX_CEDAR_INPROCESS_MESSAGES",
    "MAX_CEDAR_INPROCESS_WORK",
    "MAX_CEDAR_NESTING",
    "MAX_CEDAR_OPERATORS",
    "MAX_CEDAR_TYPE_NODES",
    "MAX_CEDAR_TYPE_TEXT",
    "MAX_CEDAR_VALIDATION_BYTES",
    "MAX_CEDAR_VALIDATION_CPU_SECONDS",
    "MAX_CEDAR_VALIDATION_OUTPUT",
    "MAX_CHAIN_CAVEAT_TEXT",
    "MAX_MCP_LOGGED_TEXT",
    "MAX_MCP_NOTED_NAMES",
    "MAX_MCP_PINNED_TOOLS",
    "MAX_MCP_UPSTREAM_ERROR_TEXT",
    "MAX_MEMBER_POLICY_REVISION",
    "MAX_POLICIES",
    "MAX_POLICY_ASKS_BACK",
    "MAX_POLICY_BUNDLE_BYTES",
    "MAX_POLICY_BUNDLE_TTL",
    "MAX_POLICY_CONFLICTS_SEEN",
    "MAX_POLICY_ID_TEXT",
    "MAX_POLICY_MESSAGES",
    "MAX_POLICY_MESSAGE_TEXT",
    "MAX_POLICY_PUSHES",
    "MAX_POLICY_REVISION",
    "MAX_POLICY_SCHEMA_TEXT",
    "MAX_POLICY_SUBSCRIBERS",
    "MAX_POLICY_TEXT",
    "MAX_PREVIEW_SET_POLICIES",
    "MAX_PREVIEW_SOURCES",
    "MAX_SERVICES",
    "MAX_TOOLS",
    "MAX_TOOL_ARGUMENTS_BYTES",
    "MAX_TOOL_ARGUMENT_VALUES",
    "MAX_TOOL_NAME",
    "MAX_TOOL_PAGES",
    "MAX_TOOL_PROPERTIES",
    "MAX_TOOL_SCHEMA_BYTES",
    "MAX_TOOL_SCHEMA_DEPTH",
    "MAX_TRACE_POLICY_BYTES",
    "MAX_TRACE_POLICY_IDS",
    "MAX_UPSTREAM_LISTING_BYTES",
    "MAX_UPSTREAM_SCHEMA_DEPTH",
    "MAX_UPSTREAM_TOOLS",
    "MAX_UPSTREAM_TOOL_BYTES",
    "MCP_SDK_LOG_LINES_PER_MINUTE",
    "PREVIEW_WORK_BURST",
    "PREVIEW_WORK_RATE",
]

MAX_POLICY_BUNDLE_BYTES: Final = 768 * 1024
"""Largest signed policy bundle (with its signer's chain and history): it fits one service
message (MAX_SERVICE_MESSAGE) with room for the request around it."""
MAX_POLICY_TEXT: Final = 512 * 1024
"""Longest Cedar policy text in a bundle (characters); 1,000 typical policies take ~150 KB."""
MAX_CAVEATED_POLICY_TEXT: Final = 16 * 1024 * 1024
"""Policy text an engine keeps in its copies of the bundle's policy set with a chain's caveats
added (one per caveated chain, each a copy of the text with the chain's caveats): it keeps the
latest whose texts, the caveats' included, and their entities (CEDAR_ENTITY_BYTES each: review
53p, memory 1) add up to at most this (at most its cache's entries), and builds the others
again at each call (review 41d, caveats 1: 4,096 copies of a 400 KB text held 1.7 GB; review
43b, caveats 1: the caveats' text was not counted)."""
MAX_CACHED_CHAIN_ENTITIES: Final = 262_144
"""Cedar entities an engine keeps across the chains it has cached without caveats (a chain's:
its subjects and the schema's every action, so at least MAX_TOOLS with a full bundle; about
CEDAR_ENTITY_BYTES each: ~64 MiB, ~500 chains at MAX_TOOLS, CACHE_ENTRIES (4,096) chains under
a bundle of ~60 tools); past it the oldest are dropped and built again at their next call (a
cost, never a denial). Review 53p, memory 1: bounded by count only, 4,096 chains (a member's
delegates, free to mint) held ~130 KiB each at MAX_TOOLS, ~500 MB."""
MAX_CACHED_VISIBLE_NAMES: Final = 262_144
"""Tool names an engine keeps across the previews it has cached (each a chain's, per MCP server,
the tools gate 1 shows it: ~64 bytes a name, ~16 MiB; ~500 chains at MAX_TOOLS, all 4,096
under a bundle of 64 tools); past it the oldest are dropped and previewed again when next asked
(charged to their member's budget again). Review 69n, gates 1: bounded by count only, 4,096
chains (a member's delegates, free to mint) each held its own ~34 KB set at MAX_TOOLS, ~140 MB
beside the entities' bound."""
CEDAR_ENTITY_BYTES: Final = 256
"""What one Cedar entity of a cached chain is counted as against MAX_CAVEATED_POLICY_TEXT (the
caveated chains' cache; measured: ~250 bytes of native memory an action entity)."""
MAX_CEDAR_NESTING: Final = 64
"""Deepest bracket nesting of Cedar text (policies, a schema, a caveat) troth hands cedarpy:
its parser recurses per bracket and kills the process at a few hundred levels (troth.gates.
nesting); a caveat's parsed form stays well within Python's recursion limit at this depth."""
MAX_CEDAR_OPERATORS: Final = 2048
"""Most operators (`||`, `&&`, `.`, comparisons, arithmetic, `if`/`else`, `in`, `has`, ...,
each character of one counted) in one Cedar statement (a policy, a schema declaration): the
parser recurses once per link of an operator chain and kills the process at a few thousand
(troth.gates.nesting). A list of ~300 `||`-joined comparisons fits; a longer one is a set."""
MAX_CEDAR_ANCESTORS: Final = 65_536
"""Most (declaration, ancestor) pairs a schema fragment's hierarchy holds (each entity type and
action with all of its ancestors through `in`): Cedar builds every pair, a few hundred bytes
each, and a chain of n declarations has n²/2 of them — a 64 KiB chain took 1-2 GB (review
22f; troth.gates.nesting). 2,000 types in one group are 2,000; this bound is at most ~40 MB."""
MAX_CEDAR_ENVIRONMENTS: Final = 4096
"""Most request environments a schema fragment's actions make (for each action, its principal
types times its resource types, `appliesTo`): Cedar's validator checks every policy that does
not name its action once in each (~1.2 µs), so one action for 1,000 x 1,000 types made each
policy take ~1.2 s, and 2,500 x 2,500 ~9 s and 1.6 GB (review 22f; troth.gates.nesting). The
tools' and services' actions (MAX_TOOLS, MAX_SERVICES) make one each."""
MAX_CEDAR_TYPE_NODES: Final = 16_384
"""Most type nodes a schema fragment's types make with its common types expanded (each name in
a type position, plus what a common type it names expands to; troth.gates.nesting): Cedar
expands each `type` wherever it is used, and its schema parser and validator walk every
expansion — 30 common types each a record of two of the one before (812 bytes) took ~8 s to
parse, each one more doubling it, and a context of 64 uses of 2^17 nodes made one `==` in a
policy take ~0.7 s (review 22h). A 64 KiB schema written out flat has fewer."""
MAX_CEDAR_TYPE_TEXT: Final = 1 << 18
"""Longest printed form of one type a schema fragment declares, its common types expanded (an
upper bound read from the text: troth.gates.nesting, `largest_type_text`). A validation error
names an operand of the wrong type by its whole type, as Cedar prints it (`expected Long but
saw {b0: {aaaa...: Long}, ...}`): a 33 KB fragment (a common type of one 10,000-character
attribute, a context of 3,000 attributes of it, within MAX_CEDAR_TYPE_NODES) printed 30 MB in
each such message, and 40 of them took the process over 1 GiB, where cedarpy aborts (review 25,
gates 1). A fragment written out flat prints within ~2x its text; this bound is 4x
MAX_POLICY_SCHEMA_TEXT."""
MAX_CEDAR_ACTION_PAIRS: Final = 1 << 26
"""Most (request environment, action) pairs Cedar's validator walks for a bundle's policies:
the composed schema's environments times (1 + the descendants of each action group an `in`
names), ~6 ns a pair: ~0.4 s here (review 22h, gates 6; docs/policy.md, "Nesting and size").
100 tools in `invoke` allow MAX_POLICIES policies `action in Action::"invoke"` (512: ~250)."""
MAX_CEDAR_COMPARED_NODES: Final = 1 << 24
"""Most type nodes Cedar's validator may walk comparing two non-literal values in a bundle's
policies: environments x the largest record type (expanded) x such comparisons (`==`, `!=`,
`.contains*`, `if` branches, set elements), ~80-120 ns a node: ~1.5-2 s here (review 22h,
gates 5; docs/policy.md, "Nesting and size"). A comparison with a literal is not counted."""
MAX_CEDAR_CHECKED_NODES: Final = 1 << 24
"""Most (request environment, policy node) pairs Cedar's validator typechecks for a bundle
(~80-130 ns a node; a node counts once more for each `has`/`.hasTag` proven before it, a
function's string argument a node per 8 characters, an environment a policy is not checked
in 10 nodes): ~1.3-2.2 s here, where 4,096 environments and one 80 KB set literal took ~13 s
(reviews 22i, 22j; measurements in docs/policy.md, "Nesting and size")."""
MAX_CEDAR_INPROCESS_WORK: Final = 1 << 30
"""Most request environments x policy text length² (characters) whose Cedar validation runs
in the calling process; above it, in a child under MAX_CEDAR_VALIDATION_CPU_SECONDS and
MAX_CEDAR_VALIDATION_BYTES (troth.gates.validate_child). The validator's worst case is ~0.5 ns
x environments x text²/3 (an error per ~3 characters): ~0.18 s at this bound (review 22j,
gates 5); the child costs ~0.07 s to start, so a bundle of a few tools stays in-process up to
~16 KiB of policies (docs/policy.md, "Nesting and size")."""
MAX_CEDAR_INPROCESS_MESSAGES: Final = 1 << 24
"""Most text of the types a bundle's validation errors may name (an upper bound read before
Cedar runs: troth.gates.policies, `_quoted_text`) for its Cedar validation to run in the calling
process; above it, in the child process (MAX_CEDAR_VALIDATION_BYTES), as over
MAX_CEDAR_INPROCESS_WORK. cedarpy holds the messages, and Python a copy (a few times this
bound at most; review 25, gates 1)."""
MAX_CEDAR_VALIDATION_OUTPUT: Final = 1 << 22
"""Most bytes of the validating child's output the parent reads: past it the bundle is refused
(OVER_LIMIT) unread, not its messages decoded and kept (review 25, gates 2)."""
MAX_POLICY_MESSAGE_TEXT: Final = 2048
"""Longest validation message a PolicyError keeps (characters; a longer one is cut, saying how
much was left out): a message names whole types (MAX_CEDAR_TYPE_TEXT; review 25, gates 1-2)."""
MAX_POLICY_MESSAGES: Final = 256
"""Most validation messages a PolicyError keeps (the count of the others is the last one)."""
CEDAR_RETRY_FIRST_SECONDS: Final = 30
"""A stored bundle whose policies could not be checked (PolicyNotChecked: the validating child
did not start, missed its wall-clock wait, or was killed before its CPU limit) is tried again
no sooner than this after the first failure, then after twice as long each time up to
CEDAR_RETRY_MAX_SECONDS (`BundleStore.reload`): a bundle whose child the out-of-memory killer
ends every time does not cost a child at each reload (review 26c, gates 2)."""
CEDAR_RETRY_MAX_SECONDS: Final = 900
"""The longest wait between two tries of a bundle whose policies could not be checked."""
MAX_CEDAR_VALIDATION_CPU_SECONDS: Final = 8
"""CPU time (RLIMIT_CPU) of the child process validating a policy text over
MAX_CEDAR_INPROCESS_WORK: a bundle whose validation takes longer is refused (OVER_LIMIT).
Cedar spends time per validation error in proportion to the whole text, which no count bounds
before it runs: an invalid 400 KB policy of 100 failing terms in 4,096 environments took
~26 s, a 490 KB comment and 40 failing policies ~13.5 s (review 22j, gates 5). The cost
model's bounds keep a valid bundle's validation to ~0.4-2.2 s each (MAX_CEDAR_ACTION_PAIRS,
_COMPARED_NODES, _CHECKED_NODES; under ~5 s if one bundle reached all three), so a bundle
that passes them fits, with room for a slower machine."""
MAX_CEDAR_VALIDATION_BYTES: Final = 1 << 30
"""Address space (RLIMIT_AS) of the validating child process: Python and cedarpy take ~30 MB,
validating 4,000 failing policies (~300 KB) 60-80 MB; the attack tests of reviews 22f-22j run
their whole compile within 1 GiB."""
CEDAR_VALIDATION_TIMEOUT_SECONDS: Final = 30
"""Wall-clock time the parent waits for the validating child process (a second guard, for a
child that does not run: on a loaded machine CPU time accrues slower than wall time); the
child is then killed and the bundle refused (OVER_LIMIT)."""
MAX_POLICIES: Final = 4096
"""Most policies in a bundle."""
MAX_POLICY_SCHEMA_TEXT: Final = 64 * 1024
"""Longest Cedar schema fragment in a bundle (characters)."""
MAX_POLICY_ID_TEXT: Final = 128
"""Longest policy `@id`."""
MAX_TRACE_POLICY_IDS: Final = 64
"""Most deciding policy ids one trace record names."""
MAX_TRACE_POLICY_BYTES: Final = MAX_TRACE_POLICY_IDS * (MAX_POLICY_ID_TEXT + len('"",'))
"""Most bytes a trace record's deciding policy ids take (each `"id",` in its canonical JSON):
what MAX_TRACE_POLICY_IDS bundle `@id`s take, so a gate's decision from a bundle is recorded
with every id, within MAX_TRACE_PAYLOAD_BYTES whatever the record's other members; a record
keeps the first ids within it of a decision naming more (review 75n, payload 1)."""
MAX_TOOLS: Final = 512
"""Most tools a bundle declares."""
MAX_TOOL_NAME: Final = 128
"""Longest tool, service, method or secret name (MCP's tool-name limit, SEP-986)."""
MAX_TOOL_SCHEMA_BYTES: Final = 16 * 1024
"""Largest JSON input schema of one tool (canonical JSON bytes)."""
MAX_TOOL_SCHEMA_DEPTH: Final = 8
"""Deepest nesting of objects and arrays in a tool's input schema."""
MAX_UPSTREAM_SCHEMA_DEPTH: Final = 64  # JSON nesting of a schema an MCP gate reads (49o, mcp 1)
MAX_MCP_LOGGED_TEXT: Final = 200
"""Characters of an upstream's own error text an MCP gate logs (escaped: review 51f, mcp 3)."""
MAX_MCP_UPSTREAM_ERROR_TEXT: Final = 1024
"""Characters of an upstream's JSON-RPC error message an MCP gate passes to the agent as the
text of an allowed call's answer (review 54g, mcp 3 and 4): the rest is cut, saying how much."""
MAX_MCP_NOTED_NAMES: Final = 4096
"""Tool names an MCP gate remembers having logged, for each kind of warning it logs once (an
upstream listing a name twice, or with a schema it cannot read; a tool whose schema differs
from the bundle's, per revision): past it that memory starts over, so an upstream listing new
names at every listing cannot grow the gate without bound (review 51f, mcp 2)."""
MAX_MCP_PINNED_TOOLS: Final = 4096
"""Tools (name and input-schema shape) an MCP gate pins what it serves of, for the life of its
connection to the upstream (review 52b, mcp 2): past it, a tool not pinned yet is not offered."""
MAX_TOOL_PAGES: Final = 64
"""Pages of an upstream's tools/list an MCP gate reads in one listing: an upstream with more
(a `nextCursor` on the last) has its listing refused, as one it failed (review 54j, mcp 2: the
rest was not offered, and a name listed again past the cut was not seen twice)."""
MAX_UPSTREAM_TOOLS: Final = MAX_MCP_PINNED_TOOLS
"""Tools one listing of an upstream may hold, all its pages together (an MCP gate could pin no
more): an upstream listing more has its listing refused, as one it failed (review 54j, mcp 2:
a page held any number)."""
MAX_UPSTREAM_TOOL_BYTES: Final = 4 * MAX_TOOL_SCHEMA_BYTES
"""Largest upstream tool an MCP gate offers: the compact UTF-8 JSON of what it would serve of
it (name, title, description, input and output schemas; a bundle's input schema is at most
MAX_TOOL_SCHEMA_BYTES without its descriptions). A larger one is not offered, logged once
(review 54j, mcp 2: a description of any size was held and served)."""
MAX_UPSTREAM_LISTING_BYTES: Final = 8 << 20
"""Most bytes of the tools an MCP gate keeps of one listing (each counted as for
MAX_UPSTREAM_TOOL_BYTES): a listing over it is refused, as one the upstream failed. A gate
holds its last listing and at most MAX_MCP_LISTINGS being made (review 54j, mcp 2)."""
MCP_SDK_LOG_LINES_PER_MINUTE: Final = 10
"""Lines a minute the MCP SDK's loggers write at WARNING or above in a process running an MCP
gate (troth.integrations.mcp.quiet): what a peer sent that the SDK cannot read (an upstream's
line that is not JSON-RPC, a notification whose params do not validate), the rest counted and
summarised in the next line written (review 57l, mcp 2: one line and its traceback each)."""
MAX_TOOL_PROPERTIES: Final = 64
"""Most properties of one object in a tool's input schema."""
MAX_SERVICES: Final = 64
"""Most services a bundle declares, and most methods per service."""
MAX_TOOL_ARGUMENTS_BYTES: Final = 1 << 20
"""Largest tool-call arguments a gate decides on (their JSON; MCP messages are smaller)."""
MAX_TOOL_ARGUMENT_VALUES: Final = 16_384
"""Most values a tool call's arguments may hold (each item of an object or array, at any
depth). Cedar parses the context value by value against the schema (~3-7 us each, the GIL
held) and troth's checks walk each again: within MAX_TOOL_ARGUMENTS_BYTES, ~400,000 small
nested arrays took ~3.6 s of CPU a call and stopped every other thread for ~5 s (review 69n,
gates 2). At this bound a call costs ~0.06-0.26 s (the most: records nested five deep, review
70f, values 1), which an MCP member's budget charges for (MCP_VALUE_CHARGE)."""
MAX_CAVEAT_CONTEXT_BYTES: Final = MAX_TOOL_ARGUMENTS_BYTES
"""Largest context a chain's caveats are evaluated against outside a bundle (its compact UTF-8
JSON, without `now`): `troth.Verifier.verify(context=...)` and `troth credential verify
--context` alike (review 51e, verify 1: the API took one of any size)."""
MAX_CAVEAT_LIKE_WEIGHT: Final = 32
"""The `like` work a chain's caveats may hold, together: each pattern counts one and each
character after its first `*` one (troth.gates.caveats). Cedar tries a pattern's text after a
`*` again at every position of the string, holding the GIL: `like "*" + 1,000 characters`
took ~1.3-2.7 s against a 1 MiB argument, and a member writes its delegates' caveats for free
(review 55f, caveats 1). At this bound a chain's caveats cost at most ~0.1 s a call at
MAX_TOOL_ARGUMENTS_BYTES."""
MAX_CHAIN_CAVEAT_TEXT: Final = 4096
"""The caveats' text one chain may carry, together (characters; each caveat at most
MAX_CAVEAT_TEXT). Cedar evaluates every caveat at every request of the chain, and a preview
(gate 1) partially evaluates them for each of the bundle's tools, their residuals written out
each time: at MAX_TOOLS, the ~56 KB of caveats a chain of MAX_DELEGATION_LINKS links could
carry took ~16 s a preview (0.1 s without) and ~1 ms a call (0.05 ms), for a chain a member
mints for free (review 55f, caveats 2); at this bound ~1 s and ~0.15 ms."""
MAX_POLICY_BUNDLE_TTL: Final = 90 * 86_400
"""Longest a policy bundle may be valid (issued_at to expires_at)."""
MAX_POLICY_REVISION: Final = (1 << 53) - 1
"""Highest policy bundle revision (exact in JSON numbers and in SQLite's INTEGER)."""
MAX_MEMBER_POLICY_REVISION: Final = (1 << 52) - 1
"""Highest revision a policy-admin (a member) may sign: the authority can always sign a higher
one, so a revoked admin's bundle at the top of the member range never locks it out."""
MAX_POLICY_SUBSCRIBERS: Final = 1024
"""Peers one node pushes new bundle revisions to (one subscription per peer and authority;
past it, a peer still pulls on its maintenance rounds), unless the peer's authority holds less
than its share (troth.node.shares): at most twice this."""
MAX_POLICY_PUSHES: Final = 16
"""Bundle pushes one node has in flight at once (the others wait their turn)."""
MAX_POLICY_ASKS_BACK: Final = 16
"""A node's asks back (`get`s of a requester whose `get` named a bundle that would replace the
one held) in flight at once, apart from its pushes (the others wait their turn); one per member,
its delegates' included, and authority at a time (review 54o, policy 1: delegates' asks back
never answered held every push place)."""
MAX_POLICY_CONFLICTS_SEEN: Final = 16
"""Same-revision conflicts (revision, kept digest, other digest) one bundle store remembers per
authority, so a replay of a bundle it already refused for one costs its decoding and is not
logged again (review 43b, bundles 2); past it, the memory of that authority starts over."""
PREVIEW_WORK_BURST: Final = MAX_TOOLS * 512
"""Preview work one member may spend at once on chains an engine has not cached (its
delegates' included; one unit: one policy in one tool's partial evaluation): one preview of
MAX_TOOLS tools under 512 policies (~5 s of CPU, the GIL held). Past it the member's uncached
previews are refused until it refills (review 55n, preview 1); a bigger preview needs the
whole budget and leaves it below zero."""
PREVIEW_WORK_RATE: Final = 1024
"""Preview work a member's budget refills by each second (PREVIEW_WORK_BURST in ~4 minutes)."""
MAX_PREVIEW_SOURCES: Final = 4096
"""Members an engine keeps a preview budget for; when every one kept is in use, a new member's
uncached preview is refused (deny when in doubt)."""
MAX_PREVIEW_SET_POLICIES: Final = 2 * MAX_POLICIES
"""Policies a compiled bundle keeps in its per-tool sets for previews (each tool's, the
policies that can apply to it: troth.gates.preview_sets); the tools past it are previewed
against the whole set (review 55n, preview 2)."""
