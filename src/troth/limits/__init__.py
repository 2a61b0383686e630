"""Every hard limit troth's decoders and verifiers enforce, in one place.

Each bound is far above what an honest peer produces and low enough that a hostile input is
refused before it costs memory or time. Changing one is a format change: note it in
docs/formats.md.

The bounds hold end to end: what one side may send, the other accepts, wrapping included.
Where one thing travels inside another, its bound is derived from the outer one less what
wraps it: a handshake's chain (MAX_PRESENTED_CHAIN_BYTES, a Noise frame less the rest of the
auth payload), an MCP frame (MAX_MCP_FRAME, a service message less its `send` request), a
record's disclosed values (MAX_TRACE_RECORD_DISCLOSURE_BYTES, a service answer less
MAX_TRACE_PROOF_OVERHEAD: what a proof bundle holds beside them, every part at its limit), a
broker's lease list (MAX_LEASE_LIST_BYTES). Review 47b, limits 1-4.
"""

from __future__ import annotations

from typing import Final

# the gates' limits (troth.gates) are named in troth.limits.gates, routing's in
# troth.limits.routing, the handshakes a node takes up in troth.limits.handshakes, the trace
# readers' in troth.limits.traces, a hosted authority's in troth.limits.authority, the secrets
# broker's storage in troth.limits.leases, an MCP session's answers in
# troth.limits.mcp_sessions, the times the API's clock may read in troth.limits.api_clock, a
# restore's dating in troth.limits.restore, a VC proof's in troth.limits.vc, the
# upkeep's logging of lasting failures in troth.limits.upkeep, and
# troth.limits' as these (their `__all__`: review 50f, limits 4; tests/test_review50f_limits.py
# checks every one is)
from troth.limits.api_clock import *  # noqa: F403
from troth.limits.authority import *  # noqa: F403
from troth.limits.broker_clock import *  # noqa: F403
from troth.limits.closes import *  # noqa: F403
from troth.limits.control import *  # noqa: F403
from troth.limits.enrollment import *  # noqa: F403
from troth.limits.feeds import *  # noqa: F403
from troth.limits.gates import *  # noqa: F403
from troth.limits.handshakes import *  # noqa: F403
from troth.limits.leases import *  # noqa: F403
from troth.limits.mcp_sessions import *  # noqa: F403
from troth.limits.otel import *  # noqa: F403
from troth.limits.postgres import *  # noqa: F403
from troth.limits.postgres_leases import *  # noqa: F403
from troth.limits.postgres_waits import *  # noqa: F403
from troth.limits.restore import *  # noqa: F403
from troth.limits.rotation import *  # noqa: F403
from troth.limits.routing import *  # noqa: F403
from troth.limits.signatures import *  # noqa: F403
from troth.limits.traces import *  # noqa: F403
from troth.limits.upkeep import *  # noqa: F403
from troth.limits.vc import *  # noqa: F403

# -- generic CBOR decoding (troth.encoding.cbor) ---------------------------------------------
MAX_CBOR_BYTES: Final = 1 << 20
"""Largest CBOR document any decoder accepts (1 MiB)."""
MAX_CBOR_DEPTH: Final = 16
"""Deepest nesting of arrays/maps (troth's formats use at most 4)."""
MAX_CBOR_ITEMS: Final = 65_536
"""Most data items in one document (counting every array/map element and map key)."""
MAX_CBOR_ENCODE_DEPTH: Final = 1000
"""Deepest nesting `encode` hands to cbor2, whose C encoder recurses on the C stack unchecked
(~20,000 levels crashed the process): far past what any decoder reads (`MAX_CBOR_DEPTH`)."""

# -- identity (troth.identity) ---------------------------------------------------------------
MAX_IDENTITY_CHANGES: Final = 64
"""Most changes in one presented history (all of them, or a checkpointed suffix): a rotation a
month for five years fits without a checkpoint."""
MAX_IDENTITY_HISTORY_BYTES: Final = 32 * 1024
"""Largest encoded change history (as presented)."""
MAX_CHANGE_INDEX: Final = (1 << 32) - 1
"""Highest change index (an identity may rotate this often in its life; a checkpointed history
presents its newest changes). A rotation a minute lasts 8,000 years."""
MAX_CHANGE_BYTES: Final = 512
"""Largest encoded change body (a P-256 rotation's is 177 bytes, 190 at the latest times a key
window takes; 64 of them make a ~20.7 KB history: tests/test_review45g_artifacts.py)."""
MAX_ATTESTATION_BYTES: Final = 512
"""Largest encoded purpose-key attestation."""
MAX_CLOCK_SKEW_SECONDS: Final = 300
"""How far in the future a timestamp may lie before it counts as 'in the future'."""

# -- credentials (troth.credentials, troth.authority) ----------------------------------------
MAX_CREDENTIAL_BYTES: Final = 8 * 1024
"""Largest encoded credential body (what is signed: `CredentialBody.decode` reads it, `delegate`
and `issue_credential` refuse to sign more); its signature (64 bytes) and the issuer's key
attestation (MAX_ATTESTATION_BYTES) travel beside it, in the chain (MAX_CHAIN_BYTES)."""
MAX_ATTRIBUTES: Final = 64
"""Most attributes in one credential."""
MAX_ATTRIBUTE_VALUES: Final = 64
"""Most strings in one set-valued attribute."""
MAX_ATTRIBUTE_TEXT: Final = 256
"""Longest attribute key or value (characters)."""
MAX_CAVEATS: Final = 16
"""Most caveats one delegation link may add."""
MAX_CAVEAT_TEXT: Final = 1024
"""Longest caveat (a Cedar condition, characters)."""
MAX_PURPOSE_TEXT: Final = 256
"""Longest delegation purpose (characters)."""
MAX_DELEGATION_LINKS: Final = 8
"""Most delegation links below an authority-issued credential (global hard limit)."""
MAX_CHAIN_BYTES: Final = 128 * 1024
"""Largest credential chain bundle (credentials and the issuers' histories)."""
MAX_TICKET_BYTES: Final = 48 * 1024
"""Largest decoded enrollment ticket (it carries the authority's history). An authority
creates none larger (review 45e, tickets 1); with its address a route (at most
MAX_ROUTE_LENGTH hops of MAX_ADDRESS_TEXT) and its history at most MAX_IDENTITY_HISTORY_BYTES,
none reaches it (~37 KiB at most)."""
MAX_FEED_ENTRIES: Final = 1 << 22
"""Most entries in a revocation feed (4,194,304): an authority refuses the append past it, and
a holder's in-memory index of that many entries stays around half a GiB."""
FEED_AUTHORITY_RESERVE: Final = 1 << 16
"""The last entries of a revocation feed (65,536 of MAX_FEED_ENTRIES) kept for the authority's
own (revocations, member removals, its supersessions): what members cause is refused past
MAX_FEED_ENTRIES - FEED_AUTHORITY_RESERVE, so members together cannot leave the authority
unable to revoke (review 34c, feed 1)."""
MAX_FEED_PAGE_BYTES: Final = 512 * 1024
"""Largest page of a revocation feed (it always holds at least one entry): one page answers one
`feed` request and fits in one service message with room to spare."""
MAX_REVOCATION_ENTRY_BYTES: Final = 1536
"""Largest encoded revocation entry (a 256-character reason of 4-byte characters still fits)."""
MAX_REVOCATION_REASON: Final = 256
"""Longest revocation reason (characters)."""
DEFAULT_REVOCATION_QUOTA: Final = 100
"""Feed entries one member may cause per REVOCATION_QUOTA_WINDOW (link revocations, supersessions
of its history), unless the authority is configured otherwise. The authority's own revocations
are not limited."""
REVOCATION_QUOTA_WINDOW: Final = 3600
"""The window of the per-member quota (seconds)."""
MAX_REVOCATION_QUOTA: Final = 1_000_000
"""Highest per-member quota an authority may be configured with (entries per window)."""
MAX_TICKET_USES: Final = 1_000_000
"""Most redemptions one enrollment ticket may allow."""
MAX_TTL: Final = 1 << 62
"""Longest TTL an authority takes (a ticket's, a member credential's; seconds): any time before
2**62 plus it still fits the signed 64-bit integers times are stored and signed as. Larger
ended in SQLite's OverflowError, a traceback (review 44c, bounds 1)."""
MAX_LIVE_CREDENTIALS_PER_MEMBER: Final = 16
"""Unexpired credentials an authority keeps issued to one member under its current history: at
it, a `refresh` is answered the newest again (nothing issued, written or charged: review 25,
authority 2). Removing a member revokes each of its unexpired credentials (one feed entry
each, the authority's own, not quota-limited), so without a bound every refresh a member sends
would be a feed entry at its removal (review 23a, authority 2); a refusal at the bound locked
out a member whose refresh answers were lost, retried each round (review 24a, authority 1),
and revoking the newest there spent the member's quota and cut the links of one that holds it
(review 25). A node refreshes near expiry or after its authority rotates: two or three live."""
MAX_RECENT_CREDENTIALS_PER_MEMBER: Final = 2 * MAX_LIVE_CREDENTIALS_PER_MEMBER
"""Credentials a verifier may still accept (unexpired, or expired within MAX_CLOCK_SKEW_SECONDS:
what removing a member revokes) an authority keeps issued to one member (32): past it a
`refresh` is answered the newest unexpired again, or, with none, the oldest expired are
revoked (charged to the member's quota) before one is issued. MAX_LIVE_CREDENTIALS_PER_MEMBER
alone let a member refreshing in a loop get 16 more each time its 16 expired, so its removal
wrote 16 x (1 + 300 / TTL) entries (review 35a, remove 1); twice the live bound leaves a
burst's member issued a new one when the oldest expires, before the newest does (review 25)."""
DEFAULT_CREDENTIAL_SKEW_SECONDS: Final = 60
"""The clock skew a verifier allows at a credential's window edges unless told otherwise (at
most MAX_CLOCK_SKEW_SECONDS)."""
DEFAULT_FEED_STALENESS_SECONDS: Final = 300
"""How old a revocation feed may be before a verifier refuses it, unless told otherwise."""
MAX_FEED_STALENESS_SECONDS: Final = 30 * 86_400
"""The oldest a verifier may be told to accept a revocation feed (`max_feed_age`,
`--max-feed-age`, `TrustPolicy.max_feed_staleness`: 1 s to 30 days, else OutOfRange). A
verifier told any age accepted a stale copy's verdict on every chain revoked since, for good
(review 36b, verify 1): a month covers an offline verifier's archived feed file; past it, get
a fresh feed."""

# -- secure channels, routing, transport (troth.channel, troth.routing, troth.transport) ------
MAX_CHANNEL_FRAME: Final = 65535
"""A channel frame is one Noise message (Noise spec §3)."""
MAX_PRESENTED_CHAIN_BYTES: Final = (
    MAX_CHANNEL_FRAME - 96 - MAX_IDENTITY_HISTORY_BYTES - MAX_ATTESTATION_BYTES - 256
)
"""Largest chain `delegate` makes (31,903 bytes): what a handshake message carries beside its
holder's history and attestation at their limits (a Noise frame, MAX_CHANNEL_FRAME, less its
96 bytes of keys and tags, less 256 for the auth payload's CBOR headers, which take 31).
Readers still take chains up to MAX_CHAIN_BYTES. Review 45g, channel 2: a 75 KB chain was made,
held and then shown to no peer."""
MAX_CHANNEL_CREDENTIALS: Final = 8
"""Most credential chains one side presents in a handshake or refresh."""
MAX_CACHED_CLAIMS: Final = 1024
"""Most handshake claims (history and attestation bytes) a node keeps verified
(troth.channel.claims): beyond it the oldest go, and a claim not kept is verified again."""
MAX_CACHED_CLAIM_BYTES: Final = 8 * 1024 * 1024
"""What the kept claims may hold together: each is charged its bytes and 1,536 per decoded
change of its history (troth.channel.claims, CLAIM_CHANGE_BYTES)."""
CHANNEL_REFRESH_BURST: Final = 8
"""In-band credential refreshes (CREDENTIALS frames) a channel takes back to back; one more is
regained every CHANNEL_REFRESH_SECONDS. Each makes the receiver verify every chain presented
(signatures, feeds, admission): past the burst the channel closes (PROTOCOL), so an
authenticated peer cannot turn a stream of small frames into the node's CPU. A node presents
its credentials when it refreshed them (a maintenance round, at most every 30 s)."""
CHANNEL_REFRESH_SECONDS: Final = 1
"""Seconds in which a channel regains one in-band refresh (CHANNEL_REFRESH_BURST)."""
MAX_APPLICATION_MESSAGE: Final = 16 * 1024 * 1024
"""Largest application message a channel reassembles from fragments."""
MAX_REASSEMBLIES: Final = 16
"""Most fragmented messages a channel reassembles at once."""
MAX_REKEY_EPOCHS_AHEAD: Final = 4
"""Epochs past the newest one a channel frame authenticated in whose keys a receiver derives
(troth.channel.rekey): a peer that lost up to this many epochs of frames less one on the way
(196,608 at the default rekey interval) is still read; a frame naming an epoch further ahead
is dropped without deriving anything (review 53g, rekey 1)."""
MAX_TRANSPORT_FRAME: Final = 128 * 1024
"""Largest TCP frame (a routed message: routes + one channel frame)."""
MAX_CONTROL_REQUEST: Final = MAX_TRANSPORT_FRAME
"""Largest request on a node's control socket (docs/protocols.md, "Node control"): its
arguments are text a command line gives (a ticket is at most MAX_TICKET_TEXT)."""
MAX_CONTROL_ANSWER: Final = 16 * 1024 * 1024
"""Largest answer on a node's control socket. It is whole (a hub's channel list, an MCP
catalogue): a transport frame's 128 KiB, the limit before, dropped larger ones after the
operation was done (review 34d, control 2)."""
MAX_CONNECTION_QUEUE_BYTES: Final = 1 << 20
"""Bytes of frames a node holds for one TCP connection whose write buffer is full (a peer slow
to read), beyond that buffer (TcpSettings.max_queued_bytes): past it a sender waits while the
peer reads, and once the peer stalls (takes next to nothing in TcpSettings.stall_timeout) its
queue is dropped and so is every frame for it until it drains (docs/protocols.md, "TCP
transport").
At least MAX_TRANSPORT_FRAME plus its 5-byte header and the cost of holding a frame
(transport.settings.QUEUED_FRAME_COST, counted for each), so one frame always fits an empty
queue."""
MAX_WRITE_BUFFER_TOTAL: Final = 64 << 20
"""Bytes a node's TCP write buffers hold together (TcpSettings.write_buffer_total, 64 MiB;
review 48q: before, 1 MiB each, ~1 GiB at the connection cap, for peers that never read)."""
MAX_QUEUED_BYTES: Final = 64 * MAX_CONNECTION_QUEUE_BYTES
"""Bytes of frames a node holds queued for all its TCP connections together
(TcpSettings.max_queued_total; 64 MiB): one source addressing many stalled connections cannot
make it hold more. Past it a frame for a connection that is not writable waits until a queue
drains or a stalled one is dropped."""
MAX_QUEUED_BYTES_PER_SOURCE: Final = MAX_QUEUED_BYTES // 4
"""Bytes of queued frames held for the connections of one peer IP address together at the
default total (TcpSettings.queued_per_source: a quarter of max_queued_total, whatever it is set
to, review 27a queue 1): one address's slow readers, each reading just above the stall floor,
cannot hold the whole budget and leave every other connection without a queue (review 26a,
queue 2)."""
MAX_ROUTING_QUEUE_BYTES: Final = 64 << 20
"""Bytes of frames read from all a node's TCP connections together that wait to be routed
(TcpSettings.max_routing_total, 64 MiB; a quarter of it, 16 MiB, for the connections of one
peer IP address: TcpSettings.routing_per_source). Past either, the connection whose frames
passed it pauses reading until its own frames are routed (back-pressure, as past
TcpSettings.max_queued_frames: nothing is dropped; past its source's share, every connection of
that source: review 55a, budget 1), so a source's share is passed by one read (at most 512 KiB),
the total by READ_PAST_ROUTING_TOTAL and a frame per connection (review 53n, queues 1: before,
only each connection's 64 frames were bounded, ~8 MiB each, ~512 MiB for one address at the
per-source connection cap). One connection's full queue (64 frames of MAX_TRANSPORT_FRAME and
their QUEUED_FRAME_COST, ~8 MiB) fits a source's share twice: a sender alone reaches its frame
bound first. The node's own outgoing connections (its hub, its configured peers) are not counted
in it: they have a reserved quarter of their own (TcpSettings.routing_outgoing, 16 MiB; review
53o, queues 1: strangers over the total paused the node's uplink)."""
MAX_ROUTE_LENGTH: Final = 16
"""Most addresses in an onward or return route."""
MAX_ADDRESS_TEXT: Final = 256
"""Longest address value."""
MAX_ROUTE_HEADER_BYTES: Final = 8192
"""Largest routed message's route header (its CBOR [onward, return]; docs/formats.md, "Routed
message"), after its 2-byte length: a router refuses to write a larger one and a reader to read
one. A channel's packet leaves room for the largest (troth.channel.packets.PACKET_LIMIT), so a
full packet on any route a router writes stays within MAX_TRANSPORT_FRAME (review 47b, limits 4:
the packet left 4,096 bytes, and a 16-hop route of 256-character addresses takes 4,293)."""
MIN_BATCH_MESSAGE: Final = 31
"""Fewest bytes of a message in a channel's BATCH frame (docs/formats.md, "Secure channel"): a
member (its 2-byte length and its bytes) then costs the wire at least what the smallest DATA
frame does (33 bytes: frame length 2, type 1, nonce 8, tag 16, header 5, one byte), so a peer
gets no more messages, events and routings per byte received out of batches than out of DATA
frames (review 47e, batch 1: one-byte members, 3 bytes each, made 40,000 messages and 10 MB of
events out of one 124 KiB packet). A smaller message leaves in a DATA frame of its own."""

# -- services (troth.node.services) ----------------------------------------------------------
MAX_SERVICE_MESSAGE: Final = 1 << 20
"""Largest service request or response (1 MiB): `call` decodes answers with it, a service
refuses to send more. Everything the protocol sends fits: a feed page (512 KiB), a chain
(128 KiB), a signed request to an authority carrying a chain and a history (at most
166,528 bytes, ~163 KiB: troth.authority.requests.MAX_REQUEST_BYTES)."""
MAX_CALLS_IN_FLIGHT: Final = 1024
"""Most requests one node has in flight through one channel (or to one local service) at once:
more callers wait for a slot, so the answers a peer can be owed stay bounded."""
MAX_CHANNELS_PER_MEMBER: Final = 256
"""Open channels the peers of one member (the member and every delegate it minted: the members
at the roots of a peer's chains, `member_accounts`; a peer with no chain, its own) may hold to
a node, ones they opened (docs/protocols.md, "Load limits"): a member mints delegates for free,
so the per-identity limit (`ChannelLimits.max_channels_per_peer`, 64) and the per-source one
did not bound one member's delegates from many addresses (review 43a, channels 1). The default
of `ChannelLimits.max_channels_per_member`."""
MAX_OPEN_CHANNELS: Final = 4096
"""Open channels peers opened that a node holds, all peers together (~17 KB each: ~68 MiB;
docs/protocols.md, "Load limits"): the per-identity, per-member and per-source limits did not
bound many sources together (review 54k, channels 1). Strangers hold at most three quarters;
the rest is kept for the members of the node's authorities, local callers and the nodes at the
other end of the node's own connections; with no stranger's channel left, the cap is split
between authorities as the node's other pools are (review 54r, channels 1). The default of
`ChannelLimits.max_open_channels`."""
MAX_REQUESTS_PER_PEER: Final = 16
"""Requests of one member (its delegates' included: the members at the roots of the caller's
chains) a node runs at once, over all its channels (docs/protocols.md, "Concurrent requests"):
one more is answered "busy" at once, never queued."""
MAX_REQUESTS_PER_CONNECTION: Final = 64
"""Requests a node runs at once for the channels over one connection, or, through a relay the
node connected to, for the channels of one sender behind it (its host as the relay names it:
review 41b, relayed requests 1; before, every relayed channel shared the node's connection to
the relay, and four members filled it for all): one more is answered "busy" at once."""
MAX_REQUESTS_RUNNING: Final = 256
"""Requests a node runs at once, all peers together: one more is answered "busy" at once, unless
one of the authorities at the roots of its caller's chains holds less than its share (this bound
split evenly between the trusted authorities and the strangers: troth.node.shares), so at most
twice this run. Each holds at most one request's arguments (MAX_SERVICE_MESSAGE), so what they
hold stays bounded: 16 MiB per member, 64 MiB per connection, 512 MiB in all."""

# -- names -----------------------------------------------------------------------------------
MAX_NAME_LENGTH: Final = 64
"""Longest node or identity name."""

# -- input files and JSON documents (troth.cli.common.read_input, troth.encoding.ijson) -------
# A file is read up to its cap (one byte more tells it is larger) before anything parses it.
# Binary inputs reuse their format's limit: a history file MAX_IDENTITY_HISTORY_BYTES, a chain
# file MAX_CHAIN_BYTES; a feed file is read one page at a time (each at most
# MAX_FEED_PAGE_BYTES, its size known from its first bytes before it is read).
MAX_TICKET_TEXT: Final = 2 * MAX_TICKET_BYTES
"""Longest ticket text read from a file or stdin (its base64url is 4/3 of MAX_TICKET_BYTES)."""
MAX_VC_BYTES: Final = 96 * 1024
"""Largest W3C VC (JSON) a verifier reads. An export writes each byte of its attributes' CBOR
(within MAX_CREDENTIAL_BYTES) as at most 9 of indented JSON (a one-character set value, a
control character: 2 bytes, `\\u0001` quoted with its comma, newline and indent: 18), so
troth's largest VC is under 76 KB; 64 KiB was passed by 65,601 (review 63k, limits 1)."""
MAX_VC_PROOFS: Final = 8
"""Most proofs in a VC's proof set (Data Integrity §2.1.1)."""
MAX_ED25519_MULTIKEY_CHARS: Final = 48
"""Longest Ed25519 Multikey (`publicKeyMultibase`, a did:key): "z" and the base58 of its 34
bytes, at most 47 characters; longer is refused before base58 decoding, whose time grows with
the square of the length (review 34c, multikey 1)."""
MAX_NODE_FILE_BYTES: Final = 64 * 1024
"""Largest node.json or status.json (a few hundred bytes in practice)."""
MAX_JSON_DEPTH: Final = 32
"""Deepest nesting of JSON arrays and objects (a VC uses 5)."""
MAX_LOGGED_WARNINGS: Final = 32
"""Most log records a `--json` command keeps as its result's warnings (`mcp serve` runs for
days): past them one warning says the rest were dropped (troth.cli.output.logs_as_warnings)."""

# -- the rollback guard beside node.db (troth.storage.rollback) --------------------------------
MAX_ROLLBACK_GUARD_BYTES: Final = 256
"""The size of a rollback guard file (`node.db.guard`) of versions 1 to 3: two slots of 128 bytes
(docs/formats.md, "Rollback guard": a slot of the three scopes' largest counts takes 102); any
other but `MAX_ROLLBACK_GUARD_BOUND_BYTES` (version 4) is no guard."""
MAX_ROLLBACK_SCOPE_TEXT: Final = 16
"""Longest scope name a version 2 guard slot holds (one it does not know is kept: review 54p)."""
MAX_ROLLBACK_COUNTER: Final = (1 << 63) - 1
"""Highest count of irreversible writes, and record number, a guard holds (SQLite's largest
INTEGER)."""

# -- leased secrets (troth.secrets) ----------------------------------------------------------
MAX_SECRET_NAME: Final = 64
"""Longest secret name (a lowercase name, like node and identity names)."""
MAX_SECRET_VALUE_BYTES: Final = 16 * 1024
"""Largest upstream secret the broker seals (a password, an API key, a header value)."""
MAX_SECRET_CONFIG_BYTES: Final = 16 * 1024
"""Largest engine configuration of one secret (JSON)."""
MAX_SECRET_GRANTORS: Final = 16
"""Most authorities one secret may name as `grantable_by` (docs/secrets.md, "Whose bundles
grant a secret")."""
MAX_LEASE_TTL: Final = 30 * 86_400
"""Longest lease lifetime (max_ttl) a secret may be configured with (30 days)."""
MIN_LEASE_TTL: Final = 1
"""Shortest lease ttl (seconds)."""
DEFAULT_LEASE_QUOTA: Final = 100
"""Live leases one member (with every identity it delegated to) may hold at once, unless the
broker is configured otherwise (docs/secrets.md, "Issue")."""
LEASE_ISSUE_BURST: Final = 600
"""Leases one member (and its delegates) may be issued or renew in a burst, then
`LEASE_ISSUE_RATE` a second; more is SecretError BUSY, nothing written (review 48o: an
issue-revoke loop left a row kept 30 days and ~3 audit records a round; docs/secrets.md)."""
LEASE_ISSUE_RATE: Final = 1
"""Leases a second one member's issue budget refills with."""
LEASE_ISSUE_TOTAL_BURST: Final = 6000
"""Leases a broker issues in a burst, all members together, then `LEASE_ISSUE_TOTAL_RATE` a
second: what bounds the database's growth however many members the policy allows."""
LEASE_ISSUE_TOTAL_RATE: Final = 20
"""Leases a second the broker's total issue budget refills with."""
MAX_LEASE_ISSUE_ACCOUNTS: Final = 65_536
"""Members whose issue budgets a broker keeps (a refilled one is forgotten first); all in use:
a new member is refused BUSY."""
MAX_LEASE_SCOPES: Final = 16
"""Most scopes one lease may carry (each at most MAX_ATTRIBUTE_TEXT characters)."""
MAX_LEASE_LIST: Final = 1000
"""Most leases one `list` answer holds (newest first)."""
MAX_LEASE_LIST_BYTES: Final = MAX_SERVICE_MESSAGE - 4096
"""Most bytes of the leases one `list` answer holds (their CBOR; the answer's map and the
service response's frame take the rest of MAX_SERVICE_MESSAGE): the newest that fit. A lease
takes ~0.5 KB, up to ~4.6 KB with MAX_LEASE_SCOPES scopes of MAX_ATTRIBUTE_TEXT characters:
MAX_LEASE_LIST of them, bounded by count only, made an answer over the service limit, refused
each time (review 47b, limits 3)."""
MAX_LEASE_LIST_ENDED_SCAN: Final = 2 * MAX_LEASE_LIST
"""Ended leases of one account (a member and its delegates) a `list` with ended leases reads:
the latest-ending ones, of which it answers the caller's. Ended leases are kept (the audit names
them) and grow without bound over time; reading them all made each such `list` cost in
proportion on the broker's one thread (review 30b, store 2)."""
MAX_TOKEN_BYTES: Final = 16 * 1024
"""Longest JWT `validate_token` reads. The largest the broker mints (MAX_LEASE_SCOPES scopes of
MAX_ATTRIBUTE_TEXT characters, a 256-character audience of 4-byte characters, 8 delegators in
`act`, a P-256 key) is 8,265 bytes (tests/test_review45h_tokens.py)."""
MAX_JWKS_KEYS: Final = 64
"""Most keys in a JWKS document `validate_token` accepts."""
MAX_INJECT_REQUEST_BYTES: Final = 512 * 1024
"""Largest request body the http-inject engine forwards. A forward request (body, headers,
target) fits one service message (MAX_SERVICE_MESSAGE) with room to spare."""
MAX_INJECT_RESPONSE_BYTES: Final = 512 * 1024
"""Largest upstream response body the http-inject engine returns (larger: UPSTREAM_FAILED);
with its headers it fits one service answer."""
MAX_INJECT_HEADERS: Final = 64
"""Most headers in a forwarded request or a returned response."""
MAX_INJECT_HEADER_BYTES: Final = 8 * 1024
"""Longest header line (name and value) the http-inject engine forwards or returns."""
MAX_INJECT_HEADERS_TOTAL: Final = 64 * 1024
"""Most bytes of all header names and values of one forwarded request or returned response."""
MAX_INJECT_TARGET: Final = 2048
"""Longest request target (path and query) the http-inject engine forwards."""
MAX_INJECT_TIMEOUT: Final = 120
"""Longest `timeout` of an http-inject secret (seconds): the deadline of one whole forward
(connecting, sending, the answer's headers and body), not of each socket read."""
MAX_FORWARDS: Final = 16
"""Forwards (http-inject) a served broker runs at once: each holds a thread of its forward pool,
never the broker's own thread, until its upstream answered or its deadline passed; one more is
refused (SecretError BUSY), never queued (docs/secrets.md, "The served broker")."""
MAX_FORWARDS_PER_AGENT: Final = 4
"""Forwards one member may have running at once on a served broker (more: BUSY): its
delegates take its share (the members at the roots of the caller's chains), so one member's
slow upstream paths leave the pool to the others."""
POSTGRES_LOCK_TIMEOUT_MS: Final = 5000
"""Longest a postgres engine statement waits for a lock another session holds (`lock_timeout`):
past it the call fails (a revocation stays REVOKING, and the sweep retries it), so no session a
lease keeps open can hold the broker's thread."""
POSTGRES_STATEMENT_TIMEOUT_MS: Final = 30_000
"""Longest a postgres engine statement runs (`statement_timeout`), on top of the secret's
`terminate_wait_ms` (ending a role's sessions waits up to that)."""
POSTGRES_KEEPALIVE_SECONDS: Final = 10
"""TCP keepalive idle time and interval of the postgres engine's admin connections (3 probes):
a server that stops answering fails the call instead of holding it."""
MAX_INJECT_RULES: Final = 256
"""Most allow rules of one http-inject secret."""
MAX_JWKS_BYTES: Final = 64 * 1024
"""Largest JWKS document (JSON) `Jwks.parse` reads."""

# -- MCP over secure channels (troth.node.services.mcp) ---------------------------------------
MAX_MCP_FRAME: Final = MAX_SERVICE_MESSAGE - 2048
"""Largest MCP frame (one JSON-RPC message and its header) either side sends or accepts: a
client sends each as a service request `send [frame, reply address]`, whose envelope (~40
bytes), the frame's byte-string header (5) and a reply address (at most MAX_ADDRESS_TEXT
characters, 1,027 bytes with its header) it leaves room for within MAX_SERVICE_MESSAGE (review
47b, limits 2: a frame of MAX_SERVICE_MESSAGE was made and then refused as a request over the
service limit)."""
MAX_MCP_SESSIONS: Final = 256
"""MCP sessions one published MCP server holds at once, in total, unless the peer's authority
holds less than its share (troth.node.shares): at most twice this."""
MAX_MCP_SESSIONS_PER_PEER: Final = 8
"""MCP sessions one member may hold on one published MCP server, its delegates' included (they
count against the member at the root of their chains)."""
MAX_MCP_GRANTORS: Final = MAX_SECRET_GRANTORS
"""Most authorities one published MCP server may name as `grantable_by` (as a secret may; each
row of the `mcp_grantors` record holds at most these and a MAX_TOOL_NAME name; review 40c,
mcp 2)."""
MAX_MCP_GRANTOR_RECORDS: Final = 1024
"""Published MCP server names whose grantors a node records (the `mcp_grantors` table): past
it, publishing a new name is refused until the operator forgets one (`troth mcp forget`)."""
MAX_MCP_QUEUE: Final = 64
"""JSON-RPC messages queued for one MCP session either way; a session whose reader falls this
far behind is closed. Also the tools/call and tools/list one MCP session may have waiting in
the gate beyond its MAX_MCP_CALLS_PER_SESSION (review 55s, mcp 1)."""
MCP_BYTES_PER_SECOND: Final = 1 << 20
"""Bytes of MCP messages one member (its delegates' included) may send one published MCP server
per second, each message counted as at least MCP_MESSAGE_CHARGE: every tools/call is decided
and, on a recording node, signed into its trace log."""
MCP_BURST_BYTES: Final = 16 * (1 << 20)
"""The burst of that budget."""
MCP_MESSAGE_CHARGE: Final = 4096
"""The least one MCP message costs of that budget (about what its decision record stores), so
small messages are counted too: at most 256 a second, 4,096 in a burst, per member."""
MAX_MCP_RATE_SOURCES: Final = 4096
"""Members whose MCP budgets one published MCP server keeps (past it, an unknown member waits)."""
MAX_MCP_CALLS_PER_SESSION: Final = 8
"""tools/call requests one MCP session (one connection to an MCP gate) has decided and at the
upstream at once; past it they wait in the session, in turn (the MCP SDK's server starts every
request as it comes): one member's burst neither floods the shared upstream nor queues its
decisions ahead of every other session's for the worker threads (review 30c)."""
MAX_MCP_UPSTREAM_LINE: Final = 64 << 20
"""Longest line (one JSON-RPC message) an MCP gate reads of an upstream it spawned
(troth.integrations.mcp.upstream): a longer one is dropped as it comes, unanswered (review
54d, json 3)."""
MAX_MCP_LISTINGS: Final = 2
"""Listings of the upstream's tools one MCP gate makes at once for callers' tools/list (each
holds the upstream's whole list until answered): past it a tools/list waits, and answers with
a listing begun since it was asked if one ended meanwhile (troth.integrations.mcp.gate), so a
burst of tools/list costs a few listings, not one each (review 30c)."""
MCP_RELIST_SECONDS: Final = 10
"""Least time between two listings of the upstream's tools that an MCP gate makes for calls of
tool names its last listing does not know (troth.integrations.mcp.gate; every caller's calls
together, one listing at a time): within it such a call is judged as a tool the gate does not
declare (denied). A listing reads up to MAX_TOOL_PAGES pages of the upstream; calls of made-up
names listed it once each. A caller's own tools/list still lists it."""
MCP_RELISTEN_SECONDS: Final = 1
"""How long an MCP gate waits to listen again for the upstream's tool-list changes after the
listen stream was lost (troth.integrations.mcp.gate.UpstreamChanges; review 48e, gates 2)."""

# -- traces (troth.trace) ---------------------------------------------------------------------
MAX_TRACE_PAYLOAD_BYTES: Final = 16 * 1024
"""Largest trace record payload (canonical JSON): it holds digests, ids and short texts, never
the values behind them (those travel as disclosures)."""
MAX_TRACE_ENVELOPE_BYTES: Final = 24 * 1024
"""Largest DSSE envelope of a trace record (its payload in base64, one signature)."""
MAX_TRACE_TEXT: Final = 256
"""Longest text field of a trace record (tool name, ids, outcome, revision; characters)."""
MAX_TRACE_REFUSAL_DETAIL: Final = 4 * MAX_TRACE_TEXT
"""Longest detail of a trace service's refusal (characters): a collector cuts what it sends to
it, and a client (a node's trace outbox, which keeps it with the record set aside) cuts what it
is sent, so a service cannot grow the outbox past TRACE_OUTBOX_BYTES with long details."""
MAX_TRACE_DISCLOSURE_BYTES: Final = 256 * 1024
"""Largest disclosed value of one redactable field (its canonical JSON)."""
MAX_TRACE_DENIED_DISCLOSURE_BYTES: Final = 4096
"""Largest value a gate keeps in clear in the record of a DENIED call (the caller's arguments,
a made-up tool name): past it, its hash and size, so denied calls cannot fill the log. A
made-up tool name is kept in clear up to it in any record (a gate's, a span's), so a record's
values stay within MAX_TRACE_RECORD_DISCLOSURE_BYTES."""
MAX_TRACE_LINE_BYTES: Final = 2 * 1024 * 1024
"""Largest exported JSONL line or proof bundle a verifier reads (a record, its disclosures,
proof, checkpoint and the signers' histories)."""
MAX_TRACE_CHECKPOINT_BYTES: Final = 4096
"""Largest checkpoint note (C2SP signed note) a verifier reads."""
MAX_TRACE_PROOF_HASHES: Final = 64
"""Most hashes in an inclusion or consistency proof (a tree of 2^63 leaves needs 63)."""
MAX_TRACE_PROOF_WINDOWS: Final = 4
"""Most history windows a proof bundle carries to link its signer's history to the agent's
newest history its log holds and back towards change 0 (version 2; review 47o, bundles 1):
as many as a trace submission may carry (MAX_TRACE_SUBMIT_WINDOWS), each at most
MAX_IDENTITY_HISTORY_BYTES. A record that would need more forward is bundled with none
(version 1): it verifies only where the verifier's copy of the agent still holds its history;
of the windows back, those nearest the history are kept."""
MAX_TRACE_PROOF_OVERHEAD: Final = (
    MAX_TRACE_ENVELOPE_BYTES
    + 64  # "envelope": its exact (ASCII) text, 12 quotes escaped
    + MAX_TRACE_PAYLOAD_BYTES  # "record": the payload again (canonical: the same bytes)
    + 4 * 64  # "disclosures": each of the 4 redactable fields' name, salt hex and braces
    + MAX_TRACE_PROOF_HASHES * 67  # "proof": quoted hex hashes
    + 2 * MAX_TRACE_CHECKPOINT_BYTES  # "checkpoint": the note, a newline escaped in 2 bytes
    + 2 * 4 * -(-MAX_IDENTITY_HISTORY_BYTES // 3)  # "signer", "log": histories in base64
    + 2 * 4 * -(-MAX_ATTESTATION_BYTES // 3)  # and one attestation each (the log's: the key
    # that signed the checkpoint)
    + 4 * -(-MAX_CHAIN_BYTES // 3)  # "chain": the chain the record names, in base64
    + MAX_TRACE_PROOF_WINDOWS * (4 * -(-MAX_IDENTITY_HISTORY_BYTES // 3) + 3)  # "windows":
    # the signer's history windows in base64, quoted, comma-separated (review 47o, bundles 1)
    + 1024  # member names, index, line breaks, the service response's CBOR frame (~40)
)
"""The most a proof bundle (troth.trace.export, `bundle_text`) holds beside its record's
disclosed values (493,080 bytes): every other part at its limit. The disclosed values are
written as the canonical JSON committed to (`Disclosure.value`), so they take in a bundle the
bytes they take in a submission."""
MAX_TRACE_RECORD_DISCLOSURE_BYTES: Final = MAX_SERVICE_MESSAGE - MAX_TRACE_PROOF_OVERHEAD
"""Most bytes of one record's disclosed values together (their canonical JSON; 555,496, and
730,276 before bundles carried history windows, review 47o, bundles 1): its signer refuses a
record over it (`sign_record`), and so does a trace service's collector (`verify_envelope`),
so the proof bundle of every record a node accepts fits the answer to
`trace.prove` (MAX_SERVICE_MESSAGE; review 47b, limits 1: a record whose values filled a
1 MiB submission was appended and could never be proved). Each value is still at most
MAX_TRACE_DISCLOSURE_BYTES; what discloses whatever it is given (a gate's recorder, the span
processor) keeps at most two values of that size and a made-up tool name of at most
MAX_TRACE_DENIED_DISCLOSURE_BYTES in one record, well within it."""
MAX_TRACE_BATCH: Final = 1024
"""Most records one group commit writes (more wait for the next commit)."""
MAX_TRACE_SUBMIT_RECORDS: Final = 256
"""Most records one `trace.submit` request carries (the client batcher packs at most this many,
and fewer when their bytes would pass MAX_SERVICE_MESSAGE)."""
MAX_TRACE_SUBMIT_KEYS: Final = 4
"""Most signing-key attestations one `trace.submit` request carries (a batch spans a rotation)."""
MAX_TRACE_SUBMIT_CHAINS: Final = 8
"""Most delegation chains one `trace.submit` request carries."""
MAX_TRACE_SUBMIT_WINDOWS: Final = 4
"""Most history windows one `trace.submit` request carries (docs/formats.md, "Trace
submissions"): the changes of an agent that rotated past its last record in the log, each a
history of at most MAX_IDENTITY_CHANGES changes starting at a change the one before it holds
(review 47l, windows 1). Four bridge a gap of 252 changes (63 each); an agent silent for
longer at a log is refused there as before (deny when in doubt). Each window costs the
member's byte budget at least TRACE_SUBMIT_CHARGE (up to 64 signatures to verify)."""
MAX_TRACE_SUBMIT_WINDOW_BYTES: Final = MAX_TRACE_SUBMIT_WINDOWS * (MAX_IDENTITY_HISTORY_BYTES + 8)
"""Most bytes the windows add to a submission (131,104: each at MAX_IDENTITY_HISTORY_BYTES and
its CBOR head). A client keeps that much free in a batch that carries windows (its records
fill MAX_SERVICE_MESSAGE less the request frame less this), so the submission with its
maximal windows still fits MAX_SERVICE_MESSAGE."""
MAX_TRACE_SUBMITS_PER_CALLER: Final = 2
"""`trace.submit` requests one caller may have in progress at a node (more: refused, retry)."""
MAX_TRACE_SUBMITS: Final = 32
"""`trace.submit` requests a node works on at once, all callers together, unless the caller's
authority holds less than its share (troth.node.shares): at most twice this."""
TRACE_SUBMIT_BYTES_PER_SECOND: Final = 1 << 20
"""Bytes of `trace.submit` one member may send a node per second, sustained (refused above it,
"busy": its client sends again after a back-off); valid or not, every submission counts."""
TRACE_SUBMIT_BURST_BYTES: Final = 16 * MAX_SERVICE_MESSAGE
"""What one member may send at once before the rate applies (16 full submissions)."""
TRACE_SUBMIT_CHARGE: Final = 64 * 1024
"""The least one `trace.submit` costs of that budget, whatever its size: each costs the node a
durable commit of its log on the storage thread (a few ms), so one-record submissions of about
1 KB let through about 800 a second and 12,900 at once kept the storage thread busy for
seconds (review 46a, trace 2). At most 16 a second, 256 in a burst, per member: a client sends a
batch every TRACE_FLUSH_SECONDS at most, or when it is full."""
TRACE_QUERY_CHARGE: Final = 4 * 1024
"""What a `trace.head` or `trace.held` costs that budget, a read with no commit, and a `prove`
at least (its answer's bytes; review 48a, queries 1-2: uncharged, asked without end)."""
FEED_PAGE_SIGNS_PER_CALLER: Final = 2
"""Feed pages a hosted authority signs per second at one source's request: a member and its
delegates together, or one stranger (a page already signed is served again without); past its
burst the peer is answered "busy"."""
FEED_PAGE_SIGNS_PER_CALLER_BURST: Final = 8
"""Feed pages one source may have signed at once before its rate applies."""
FEED_SYNC_SECONDS: Final = 60
"""Longest a node syncs one authority's feed at a time (troth.node.feedsync): past it the sync
stops, what it verified kept, and goes on next time, so an authority's node that answers slowly
or whose feed never ends (it grows as fast as it is read) holds back neither the node's other
feeds nor the rest of its maintenance round (re-checks of peers, credential refresh). A new
node syncs a feed of 1,000,000 entries in about 16 s here (docs/credentials.md)."""
MARK_BUSY_SECONDS: Final = 2.0
"""How long (seconds) a revocation on this machine waits, in all, for each other node it marks
due a sync of its authority's feed (troth.node.localdue): for the node's `node.db.revoking`
(held alone while that node settles a sync) and for its store's write lock. Past it that node
is left unmarked (logged): a node held busy delays a revocation by at most this, never fails
it (review 50j, duewatch 2)."""
MAINTENANCE_SECONDS: Final = 30
"""How often (seconds) a running node's maintenance round runs (troth.node.upkeep): feeds
synced, credentials refreshed, rotations announced, peers re-checked."""
HOSTED_FEED_POLL: Final = 1.0
"""How often (seconds) a running node checks its hosted authority's store for entries another
process appended (troth.node.upkeep): a `troth revoke` on this machine takes effect within this."""
DUE_POLL: Final = 1.0
"""How often (seconds) a running node reads its marks due a sync (troth.node.duewatch): a
revocation made on this machine whose process was killed before telling it is taken (and the
authority's chains refused) within this."""
DUE_RETRY_MAX: Final = 30.0
"""The longest wait (seconds) before a running node tries a mark's sync again (the maintenance
round's period, `MAINTENANCE_SECONDS`)."""
DUE_TRIES: Final = 8
"""Syncs in a row a running node tries, from its poll of the marks, of a feed whose authority
it finds on no node here (about 2 minutes of doubling waits); then it stops trying until
another mark of that authority is made, it is told (`feed.sync`) or restarts. Its marks stand
all the while, the authority's chains refused (review 50j, duewatch 1). Handing out a chain
of a marked authority bounds its settling syncs alike (troth.node.syncdue; review 50k, due 1)."""
FEED_WALK_WINDOW: Final = 600
"""A peer's sync may walk the whole feed once per this many seconds with its pages after the
first charged to the node's budget only (a new node's sync of a long feed); past that, or on a
walk it starts anew, each page signed for it is charged to its own budget too."""
FEED_PAGE_SIGNS_PER_NODE: Final = 20
"""Feed pages a hosted authority signs per second on request for its members and anchors, all
together (burst 2 s of it): a member's delegates cannot multiply the per-peer rate, and no
stranger draws on it (nor a co-trusted authority's member)."""
FEED_PAGE_SIGNS_FOR_STRANGERS: Final = 4
"""Feed pages a hosted authority signs per second on request for strangers (identities with
no credential of that authority: admitted to enroll, or a co-trusted authority's members), all
together (burst 2 s of it): a pool of their own, so throwaway identities cannot leave members'
syncs "busy". The page at the feed's end, what an up-to-date node asks for, is shared and
charged to no one."""
MAX_FEED_SIGN_SOURCES: Final = 4096
"""Callers whose feed-signing budget and sync a hosted authority keeps at once, per class
(members and anchors; strangers): refilled budgets and the oldest syncs are forgotten first."""
MAX_TRACE_RATE_SOURCES: Final = 4096
"""Members whose trace byte budget a node keeps at once (refilled ones are forgotten first)."""
TRACE_QUEUE_RECORDS: Final = 4096
"""Records a trace client holds before they are acknowledged (a full queue refuses the next
record: an agent that cannot keep its audit trail stops)."""
TRACE_FLUSH_SECONDS: Final = 0.2
"""How long a trace client waits for more records before it sends a batch."""
TRACE_TRANSIENT_RETRIES: Final = 720
"""Times a trace client resends a record refused `not accepted yet` (feed copy stale, checkpoint
not attested yet), backing off up to 10 s (~1 h), before setting it aside; per process."""
TRACE_BACKDATED_WAIT_SECONDS: Final = 60.0
"""How long a trace client waits before it signs again and resends records its log refused
BACKDATED (its clock ran ahead: they wait in the bounded queue or outbox, docs/traces.md)."""
TRACE_KEPT_CHAINS: Final = 1024
"""Chains a trace client remembers the service keeps (not sent again; past this it forgets them
all and sends each once more)."""
TRACE_LOG_KNOWN_CACHE: Final = 4096
"""Signing keys, chain digests, and agents' heads and histories a trace log remembers in its
process (an append skips storing or reading them again): past it, it forgets them all (a member
mints keys and delegates freely: review 51g, caches 1; review 55b, log 1)."""
TRACE_OUTBOX_RECORDS: Final = 65_536
"""Records a node's trace outbox holds (queued for its trace service, or set aside refused):
past it `record()` raises TraceError OVER_LIMIT, so an agent that cannot keep its audit trail
stops (troth.trace.outbox)."""
TRACE_OUTBOX_BYTES: Final = 128 * 1024 * 1024
"""Bytes a node's trace outbox holds (envelopes, disclosures, attestations and chains of the
records queued or set aside); past it `record()` raises TraceError OVER_LIMIT."""
TRACE_OUTBOX_DENIAL_PERCENT: Final = 75
"""The share (percent) of TRACE_OUTBOX_RECORDS and TRACE_OUTBOX_BYTES that records of refusals
(kind `denial`: a broker's or a gate's) may fill: a member whose requests are refused, again and
again while the trace service is slow or out of reach, leaves the rest to what the node does
for every member. A denial past it is not recorded (OVER_LIMIT): its request is refused all
the same."""
TRACE_OUTBOX_SOURCE_PERCENT: Final = 25
"""The share (percent) of TRACE_OUTBOX_RECORDS and TRACE_OUTBOX_BYTES (and of an agent's
TRACE_QUEUE_RECORDS) that the records a node makes on behalf of one member (the identity a
broker's lease or a gate's decision is for) may fill: one member's operations, allowed or
refused, repeated while the trace service is slow or out of reach, leave the rest to the
others. Past it that member's next audited operation is refused (OVER_LIMIT): nothing is
dropped. The node's own records (no member) count only toward the whole bound."""
TRACE_OUTBOX_MEMBERS_PERCENT: Final = 90
"""The share (percent) of TRACE_OUTBOX_RECORDS and TRACE_OUTBOX_BYTES that the records made on
behalf of members may fill together (and of an agent's TRACE_QUEUE_RECORDS): the rest stays
for what the node does on its own — a lease's expiry, an operator's or a feed's revocation — so
members filling their shares can hold back no revocation."""
TRACE_MEMBER_CHECKPOINT_SECONDS: Final = 1
"""How often, at most, a member's `prove` through the trace service makes the node sign a
checkpoint (one covering the record asked about, when none does yet): sooner, it is refused
`over a limit`, to ask again. Each checkpoint is kept in the log and verified (a signature)
by every `troth trace verify`: a member proving every record it submits made one per record
(review 38b, trace 3)."""
MAX_TRACE_SHOW_DEPTH: Final = 64
"""Levels of the tree `troth trace show` nests (troth.trace.view.pieces): the records below a
record this deep are drawn as trees of their own, each naming the record it is under. One
level per record: an agent whose every record names the one before as parent (a member's,
through the trace service) made a tree as deep as its records, which recursion could not
draw and whose indentation grew with the square of its length (review 38b, view 2)."""
TRACE_OUTBOX_SHOWN: Final = 1000
"""Records set aside that `troth trace outbox` lists (the oldest first; the counts are whole)."""

# -- relays (troth.node.services.relay) ------------------------------------------------------
MAX_RELAYS: Final = 1024
"""Relay names one relay node forwards or holds for their owners, in total, unless the member's
authority holds less than its share (troth.node.shares): at most twice this (relays.json too)."""
MAX_RELAYS_PER_OWNER: Final = 16
"""Relay names one member may hold on one relay node, its delegates' included (they count
against the member at the root of their chains)."""
MAX_RELAY_FILE_BYTES: Final = 2 * MAX_RELAYS * (MAX_ADDRESS_TEXT + 128) + 1024
"""Largest relays.json (every name at its longest, with its owner's identifier)."""

MAX_OWN_RELAYS: Final = 256
"""Relay names one node keeps for itself, created at other nodes (`<node dir>/own-relays.json`,
troth.node.own_relays: created again after its restarts)."""
MAX_OWN_RELAYS_FILE_BYTES: Final = MAX_OWN_RELAYS * (
    (MAX_ROUTE_LENGTH + 1) * (MAX_ADDRESS_TEXT + 16) + 128
)
"""Largest own-relays.json (every relay route at its longest, with its identifier: a relay
route is at most MAX_ROUTE_LENGTH hops, `kept_relays` refuses more; one hop of room)."""

# -- no-route notices (troth.node.no_route; docs/protocols.md, "Unanswered channels") ---------
NOTICE_BURST: Final = 4
"""The most no-route notices a node sends back to back over one connection for one source (the
connection the dropped packet came on at the node before, every connection of one host there
one source when that node named them by host, or the node at the other end of the connection;
for a notice passed back, the connection it came from: troth.node.notice_budgets),
and takes back to back from one connection to pass back toward one of its own."""
NOTICE_INTERVAL: Final = 1.0
"""Seconds one source's share takes to regain one notice past its burst (NOTICE_BURST)."""
NOTICE_CONNECTION_BURST: Final = 8 * NOTICE_BURST
"""The most no-route notices a node sends back to back over one connection, every source's
together (and takes from one to pass back): eight sources' worth, so one source spends at
most an eighth of it (review 51h, notices 1 and 2: one spent all of it)."""
NOTICE_CONNECTION_INTERVAL: Final = NOTICE_INTERVAL / 8
"""Seconds a connection's total takes to regain one notice past its burst
(NOTICE_CONNECTION_BURST): eight sources' rate."""
MAX_NOTICE_SOURCES: Final = 16
"""The most sources whose notice budgets a node keeps per connection (each kind); past it, a
refilled one is dropped first, and with none refilled a notice is not sent (deny when in
doubt)."""
MAX_NOTICE_BUCKETS: Final = 4096
"""The most connections whose notice budgets a node keeps (each kind); past it, one whose total
and sources all refilled is dropped first, and with none a notice is not sent (deny when in
doubt)."""

# -- pinned routes (troth.node.pins) ---------------------------------------------------------
MAX_ROUTE_PINS: Final = 64
"""Routes a node keeps a pinned identity for (`<node dir>/pins.json`, troth.node.pins: the trace
service route node.json names, one per route it named)."""
MAX_PINS_FILE_BYTES: Final = MAX_ROUTE_PINS * (MAX_ROUTE_LENGTH * (MAX_ADDRESS_TEXT + 16) + 128)
"""Largest pins.json (every route at its longest, with its identifier)."""

# -- vouchers: whose chains a node verified for an identity (troth.node.vouchers) ---------------
MAX_VOUCHED_IDENTITIES: Final = 100_000
"""Identities a node remembers the vouching authorities of (its `vouchers` table, held in memory
too: ~300 bytes each). Past it, a new identity is still remembered while each of its authorities
holds fewer than its share (this bound split evenly between the authorities whose feeds are
held: one authority's free members cannot fill it for another's), so at most twice this; else
rows that can no longer change a judgment are swept, and when none can, a peer showing chains
the node has no row for yet is refused (docs/storage.md, "Vouchers")."""
MAX_VOUCHED_PER_MEMBER: Final = 4096
"""Identities whose vouching chains root at one member (the subject of a chain's first link, as
troth.node.access.member_accounts counts holdings) a node remembers: a member mints delegates
offline for free, so past it that member's lapsed rows are swept and, when none can go, only its
own new identity is refused — never another member's peer (docs/storage.md, "Vouchers")."""
MAX_VOUCHERS_PER_IDENTITY: Final = 16
"""Authorities a node remembers as vouching for one identity (the roots of the chains it
verified for it: trust anchors of the node, so far above what one identity holds)."""
MAX_REFUTED_CHANGES: Final = 65_536
"""Rows of `refuted_changes` a node keeps (the changes of stored copies from a checkpoint it
replaced, one row each, up to MAX_IDENTITY_CHANGES per copy; read by every process at each
reload and maintenance round, and held in memory: ~200 bytes each). Past it the oldest
copies' rows go first: a record only keeps the word of an authority that named a refuted
change out of the node's judgment of that identity (its voucher), so losing one can make the
node refuse more, never admit anyone (docs/storage.md, "Vouchers"; review 30a, refuted 1: one
member's fresh delegates, each forking from a checkpoint of its own, added 64 rows each for
good)."""
MAX_FORKS_PER_IDENTITY: Final = 4  # refused forks of one identity kept (review 49c, forks 1)
MAX_FORK_RECORDS: Final = 1024  # refused forks kept, local identities' aside (docs/storage.md)
MAX_FORK_RECORDS_PER_SOURCE: Final = 64
"""Refused forks kept of the identities of one source (the member at the root of the chains a
node verified for them, else the identity itself): past it that source's are not kept, and with
MAX_FORK_RECORDS kept the source holding the most loses its newest for another's (one member's
delegates' forks crowded out every other's: docs/storage.md, "Schema"; review 54m, identity 1)."""
VOUCHER_SWEEP_ROWS: Final = 256
"""Rows of one authority a sweep of the vouchers examines at once (forgotten, or kept for good)."""
