"""The one error tree of troth. Each layer raises its own branch; the CLI maps them to exit codes.

    TrothError
    ├── DecodeError            bytes that are not a well-formed troth encoding (any layer's decoder)
    │   └── MalformedText      text not in the form it names: an identifier, a key handle, a
    │                          seal key (also a ValueError)
    ├── CryptoError            a primitive refused its input
    │   ├── InvalidSignature   a signature did not verify (opaque: no reason, no oracle)
    │   └── InvalidKey         public key bytes that are not a key of the stated type
    ├── VaultError             a key store failed
    │   ├── KeyNotFound        no key behind this handle
    │   └── UnsupportedKeyType this vault cannot hold keys of this type
    ├── StorageError           the database failed or a conditional write lost
    │   └── ConflictError      a compare-and-swap found a newer value
    ├── ConfigError            the node, home or environment is mis-configured
    │   └── OutOfRange         a setting given outside its bound (`setting`, `low`, `high`;
    │                          also a ValueError)
    ├── NotFound               no node / identity / key by that name
    ├── ArgumentError          a public API call given an argument it does not take
    │                          (`parameter`, `expected`; also a TypeError and a ValueError)
    ├── IdentityError          a change history or purpose-key attestation is invalid
    │                          (reason + change index)
    ├── CredentialError        a credential, delegation chain or revocation feed is invalid
    │                          (reason + link index)
    ├── AuthorityError         the authority refused: ticket, role, membership (reason)
    ├── PolicyError            a policy bundle, schema, policy set or caveat was refused (reason)
    │   └── PolicyNotChecked   its policies could not be checked now (the validating process
    │                          did not start or finish): no verdict on the bundle
    ├── ChannelError           a Noise handshake or secure channel failed; `reason` is the
    │                          close code sent to the peer
    ├── RoutingError           a message could not be routed (no route: default deny of the
    │   │                      router's allow-sets)
    │   ├── Congested          the next hop's peer stopped reading and its queue is full: this
    │   │                      frame was dropped (the destination is alive, not reading)
    │   └── Unreachable        the next hop could not be reached (connection refused, timed out)
    ├── Denied                 the node's access decision refused a request (`reasons` say who
    │                          refused whom and why)
    ├── TraceError             a trace record, proof, checkpoint or log is invalid, or the log
    │                          refused an append (reason + log index + record id)
    ├── RemoteError            a service answered a request with an error
    │   └── Busy               the node was at a limit of requests running, or the request's
    │                          next hop was congested: it did not run, send it again later
    └── SecretError            the secrets broker refused or failed: a lease, a token, an
                               engine, the audit (reason)

Exit codes (cli, `troth.cli.output.exit_code`; a class not named exits as its base): 0 ok;
1 invalid/denied (DecodeError, CryptoError, IdentityError, CredentialError, AuthorityError,
PolicyError, ConflictError, Denied, SecretError, TraceError, ChannelError, RoutingError,
RemoteError); 2 usage (bad arguments, ArgumentError, NotFound, and the errors that are also a
ValueError: MalformedText, OutOfRange); 3 ConfigError; 4 I/O (StorageError, VaultError, OSError,
Unreachable, a channel that timed out or whose connection closed).
"""

from __future__ import annotations

import enum

__all__ = [
    "ArgumentError",
    "AuthorityError",
    "AuthorityFailure",
    "Busy",
    "ChannelError",
    "ChannelFailure",
    "ConfigError",
    "ConflictError",
    "Congested",
    "CredentialError",
    "CredentialFailure",
    "CryptoError",
    "DecodeError",
    "DecodeProblem",
    "Denied",
    "IdentityError",
    "IdentityFailure",
    "InvalidKey",
    "InvalidSignature",
    "KeyNotFound",
    "MalformedText",
    "NotFound",
    "OutOfRange",
    "PolicyError",
    "PolicyFailure",
    "PolicyNotChecked",
    "RemoteError",
    "RoutingError",
    "SecretError",
    "SecretFailure",
    "StorageError",
    "TraceError",
    "TraceFailure",
    "TrothError",
    "Unreachable",
    "UnsupportedKeyType",
    "VaultError",
    "cut_text",
    "encodable_text",
    "one_line_text",
]


class TrothError(Exception):
    """Base of every error troth raises on purpose. Its text is always valid UTF-8: a lone
    surrogate in what it quotes is shown as a `\\udcff` escape (`troth.errors.encodable_text`)."""

    def __str__(self) -> str:
        return encodable_text(super().__str__())

    def diagnostics(self) -> str:
        """A text for people: what failed and why."""
        return str(self)


class DecodeProblem(enum.Enum):
    """What exactly was wrong with bytes that failed to decode."""

    MALFORMED = "malformed"
    NON_CANONICAL = "not in canonical form"
    TRAILING_BYTES = "trailing bytes"
    OVER_LIMIT = "over a limit"
    UNKNOWN_TYPE = "unknown type tag"
    UNKNOWN_VERSION = "unknown version"


class DecodeError(TrothError):
    """Input is not a well-formed encoding: malformed, non-canonical, trailing bytes, over a limit,
    or a type tag / version this troth does not know. `problem` says which."""

    def __init__(self, message: str, problem: DecodeProblem = DecodeProblem.MALFORMED) -> None:
        self.problem = problem
        super().__init__(message)


class MalformedText(DecodeError, ValueError):
    """Text that is not in the form it names (an identifier, a key handle, a seal key): a
    DecodeError, and the ValueError these parsers raised before it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, DecodeProblem.MALFORMED)


class CryptoError(TrothError):
    """A cryptographic primitive refused its input."""


class InvalidSignature(CryptoError):
    """A signature did not verify (opaque: no reason, no oracle)."""

    def __init__(self) -> None:
        super().__init__("signature does not verify")


class InvalidKey(CryptoError):
    """Public key bytes that are not a key of the stated type."""


class VaultError(TrothError):
    """A key store (software vault or HSM) failed."""


class KeyNotFound(VaultError):
    """No key behind this handle."""


class UnsupportedKeyType(VaultError):
    """This vault cannot hold keys of this type."""


class StorageError(TrothError):
    """The database failed, or a conditional write lost."""


class ConflictError(StorageError):
    """A name is taken, or a compare-and-swap found a newer value."""


class ConfigError(TrothError):
    """The node, the troth home or the environment is mis-configured."""


class OutOfRange(ConfigError, ValueError):
    """A setting given outside its bound (`setting` names it; `low` <= value <= `high` is
    allowed): a ConfigError, and the ValueError such checks raised before it."""

    def __init__(self, setting: str, value: int, low: int, high: int, why: str = "") -> None:
        self.setting, self.value, self.low, self.high = setting, value, low, high
        because = f" ({why})" if why else ""
        super().__init__(f"{setting} must be {low}-{high}, not {value}{because}")


class NotFound(TrothError):
    """No node, identity, authority or key by that name."""


class ArgumentError(TrothError, TypeError, ValueError):
    """A public API call given an argument it does not take: of another type, or a value out
    of its range. `parameter` names it, `expected` says what it takes. Also a TypeError and a
    ValueError, which such checks raised before (review 45a, API 1); the CLI's exit code 2."""

    def __init__(self, call: str, parameter: str, expected: str, got: str) -> None:
        self.call, self.parameter, self.expected, self.got = call, parameter, expected, got
        super().__init__(f"{call}: {parameter} must be {expected}, not {got}")


class IdentityFailure(enum.Enum):
    """Why a change history (or an attestation made under one) was refused."""

    MALFORMED = "malformed"
    UNKNOWN_VERSION = "unknown version"
    UNKNOWN_TYPE = "unknown type tag"
    OVER_LIMIT = "over a limit"
    TRAILING_BYTES = "trailing bytes"
    BROKEN_LINK = "broken hash link"
    BAD_SIGNATURE = "bad signature"
    BAD_PREVIOUS_SIGNATURE = "bad previous-key signature"
    MISSING_PREVIOUS_SIGNATURE = "missing previous-key signature"
    UNEXPECTED_PREVIOUS_SIGNATURE = "first change carries a previous-key signature"
    KEY_OUTSIDE_VALIDITY = "key used outside its validity"
    TIME_REVERSED = "change dated before its predecessor"
    FUTURE_CHANGE = "change dated in the future"
    NEXT_KEY_MISMATCH = "key does not match the pre-rotation commitment"
    FORK = "history forks from the stored copy"
    ROLLBACK = "history is older than the stored copy"
    IDENTIFIER_MISMATCH = "identifier does not match"
    UNATTESTED_CHECKPOINT = "checkpointed history not attested"
    COPY_CONFLICT = "history conflicts with a stored copy only another authority attested"
    """An enrollment ticket's authority history forks from (or is behind) a stored copy this
    node never linked (a checkpoint's word): this node cannot tell which side lies, so only
    the operator's explicit word admits it (`troth enroll --over-copy`; review 67i, enroll)."""
    ATTESTATION_INVALID = "purpose-key attestation invalid"
    ATTESTATION_STALE = "purpose-key attestation made under an older change"
    ATTESTATION_EXPIRED = "purpose-key attestation expired"
    ATTESTATION_NOT_YET_VALID = "purpose-key attestation not yet valid"
    """Created more than MAX_CLOCK_SKEW_SECONDS after the verifier's clock (review 48s, skew 2:
    it was `expired`, of a key whose window had not begun)."""
    WRONG_PURPOSE = "purpose key has the wrong purpose or key type"


class IdentityError(TrothError):
    """A history or attestation was refused: `reason`, and `change` (0-based index) when known."""

    def __init__(self, reason: IdentityFailure, detail: str = "", change: int | None = None):
        self.reason = reason
        self.detail = encodable_text(detail)
        self.change = change
        where = f"change {change}: " if change is not None else ""
        super().__init__(f"{where}{reason.value}" + (f" ({detail})" if detail else ""))


class CredentialFailure(enum.Enum):
    """Why a credential, a delegation chain or a revocation feed was refused."""

    MALFORMED = "malformed"
    UNKNOWN_VERSION = "unknown version"
    UNKNOWN_TYPE = "unknown type tag"
    OVER_LIMIT = "over a limit"
    TRAILING_BYTES = "trailing bytes"
    UNTRUSTED_ISSUER = "issuer is not a trust anchor"
    MISSING_HISTORY = "no change history for the issuer"
    ISSUER_INVALID = "issuer identity invalid"
    ATTESTATION_INVALID = "issuer signing-key attestation invalid"
    BAD_SIGNATURE = "bad signature"
    WRONG_SUBJECT = "subject is not the presenting identity"
    NOT_YET_VALID = "not yet valid"
    EXPIRED = "expired"
    MISALIGNED = "link issuer is not the previous link's subject"
    BROKEN_LINK = "link does not name its parent credential"
    NOT_A_DELEGATION = "delegation fields in the wrong place"
    AMPLIFIED = "delegation amplifies authority"
    DEPTH_EXCEEDED = "delegation deeper than allowed"
    CYCLE = "delegation cycle"
    REVOKED = "revoked"
    NO_FEED = "no revocation feed for the authority"
    STALE_FEED = "revocation feed is stale"
    FEED_INVALID = "revocation feed invalid"
    FEED_ROLLBACK = "revocation feed is older than or forks from the one held"
    SUPERSEDED = "superseded history"
    CAVEAT_UNSATISFIED = "caveat not satisfied"
    """A caveat of the chain is false for the context the verifier was given (review 49k)."""
    CAVEAT_UNEVALUATED = "caveat cannot be evaluated"
    """A caveat of the chain could not be evaluated: no context given, an error for the one
    given, or not a Cedar condition (review 49k: deny when in doubt)."""


class CredentialError(TrothError):
    """A credential or chain was refused: `reason`, and `link` (0 = the authority's credential)."""

    def __init__(self, reason: CredentialFailure, detail: str = "", link: int | None = None):
        self.reason = reason
        self.detail = encodable_text(detail)
        self.link = link
        where = f"link {link}: " if link is not None else ""
        super().__init__(f"{where}{reason.value}" + (f" ({detail})" if detail else ""))


class AuthorityFailure(enum.Enum):
    """Why an authority refused a request."""

    TICKET_UNKNOWN = "ticket unknown, used up or expired"
    ROLE_REQUIRED = "the caller's role does not allow this"
    RESERVED_ATTRIBUTE = "attributes under troth. are reserved to admins"
    NOT_A_MEMBER = "not a member of this authority"
    REQUEST_INVALID = "request invalid"
    NOT_UPSTREAM = "only an upstream issuer can revoke this link"
    NO_STANDING = "the requester's own credential is revoked or expired"
    QUOTA_EXCEEDED = "quota exceeded"
    FEED_LIMIT = "the revocation feed would exceed a limit"
    CLOCK_SKEW = "request made outside the allowed clock skew of the authority's time"
    """A request made, or a requester history dated, more than MAX_CLOCK_SKEW_SECONDS from
    the authority's clock (review 48s, skew 1: it was `request invalid`, as a forgery is)."""
    RATE_LIMITED = "too many enroll and refresh requests from this source: ask again later"
    """Past its source's budget of enroll and refresh requests (`limits.ENROLL_REQUESTS_BURST`;
    review 56g, budgets 1): refused before anything is checked; not a refusal for good."""
    RESTORED = (
        "the authority's node.db was restored from a copy: held until its operator releases it"
    )
    """A restore of the authority's node.db was found (its feed lacks what was revoked after
    the copy): it issues no credential and serves no feed page until its operator revokes
    again what it knows and releases it (`troth authority release-restored`; review 65o, feed
    2); not a refusal for good."""
    KEY_EXPIRED = "the authority's primary key has expired: it signs nothing more"
    """The authority's current primary key is past its `valid_until` (detail: that time and
    the authority's): every verifier refuses what it would sign, and an expired key cannot
    sign a rotation (docs/formats.md), so it issues no credential, VC or feed page; rotate
    an authority's key before it expires (review 75l, issuance 4: a bare IdentityError)."""


class AuthorityError(TrothError):
    """The authority refused: ticket, role, membership (`reason`)."""

    def __init__(self, reason: AuthorityFailure, detail: str = "") -> None:
        self.reason = reason
        self.detail = encodable_text(detail)
        super().__init__(reason.value + (f" ({detail})" if detail else ""))


class PolicyFailure(enum.Enum):
    """Why a policy bundle, schema, policy set or caveat was refused (troth.gates)."""

    MALFORMED = "malformed"
    UNKNOWN_TYPE = "unknown type tag"
    UNKNOWN_VERSION = "unknown version"
    OVER_LIMIT = "over a limit"
    UNTRUSTED_AUTHORITY = "the bundle's authority is not trusted"
    SIGNER_INVALID = "the signer's identity or credential is invalid"
    BAD_SIGNATURE = "bad signature"
    NOT_POLICY_ADMIN = "the signer is neither the authority nor a policy-admin"
    SIGNER_REVOKED = "the signer's credential or identity is revoked"
    SIGNER_SUPERSEDED = "the signer's history, or one its chain carries, is superseded"
    ROLLBACK = "the revision is not newer than the active bundle's"
    SAME_REVISION = "same revision, lower digest held"
    NOT_YET_VALID = "issued in the future"
    EXPIRED = "the bundle expired"
    NO_BUNDLE = "no policy bundle"
    RESTORED = "the bundle came back with a restored copy of node.db: held back until confirmed"
    STALE_FEED = "the authority's revocation feed is missing or stale"
    SCHEMA_INVALID = "schema invalid or unsupported"
    POLICIES_INVALID = "policies invalid"
    CAVEAT_INVALID = "caveat is not a single Cedar condition"


class PolicyError(TrothError):
    """A bundle, schema, policy set or caveat was refused: `reason`, and the validator's
    `messages` when it refused a policy set."""

    def __init__(
        self, reason: PolicyFailure, detail: str = "", messages: tuple[str, ...] = ()
    ) -> None:
        self.reason = reason
        self.detail = encodable_text(detail)
        self.messages = tuple(map(encodable_text, messages))
        super().__init__(reason.value + (f" ({detail})" if detail else ""))

    def diagnostics(self) -> str:
        return "\n".join((str(self), *(f"  {m}" for m in self.messages)))


class PolicyNotChecked(PolicyError):
    """OVER_LIMIT because the policies could not be checked now, not because of what they are:
    the process validating them did not start (EAGAIN, ENOMEM), missed its wall-clock wait, or
    was killed from outside or by the kernel's out-of-memory killer (troth.gates.policies).
    Refused (fail closed), but a BundleStore tries the bundle again (review 25, gates 3)."""


class ChannelFailure(enum.IntEnum):
    """Why a channel closed; the number is the close code on the wire (docs/protocols.md)."""

    NORMAL = 0
    HANDSHAKE_FAILED = 1
    DECRYPT_FAILED = 2
    REPLAY = 3
    PEER_INVALID = 4
    CREDENTIAL_INVALID = 5
    PEER_NOT_ALLOWED = 6
    REVOKED = 7
    TOO_LARGE = 8
    NONCE_EXHAUSTED = 9
    PROTOCOL = 10
    TIMEOUT = 11
    PEER_CLOSED = 12


class ChannelError(TrothError):
    """A handshake or secure channel failed; `reason` is the close code sent to the peer (or,
    `by_peer`, the one the peer's authenticated CLOSE frame gave: the peer's own decision)."""

    def __init__(self, reason: ChannelFailure, detail: str = "", *, by_peer: bool = False) -> None:
        self.reason = reason
        self.detail = encodable_text(detail)
        self.by_peer = by_peer
        label = reason.name.lower().replace("_", " ")
        super().__init__(label + (f" ({detail})" if detail else ""))


class RoutingError(TrothError):
    """No route, a bad address, or a destination this source may not reach."""


class Congested(RoutingError):
    """A frame was dropped at this node: its next hop is a connection whose peer stopped
    reading, and the frames queued for it are at their bound (docs/protocols.md, "TCP
    transport"). Not that the destination is gone: it is alive but not reading."""


class Unreachable(RoutingError):
    """The network did not carry a message to its next hop: connection refused, host
    unreachable, no answer in time (an I/O failure, not a refusal)."""


class RemoteError(TrothError):
    """A service on another node refused or failed a request; the message is its answer."""


class Busy(RemoteError):
    """A node refused a request at once, before running it, because it runs as many requests
    as it may (of the caller's member, over the caller's connection, or in all), or because
    the request's next hop there dropped it (`Congested`: the way on does not read): the
    caller may send it again later. The message starts with "busy". A handler that raises it
    (its own call answered busy) is answered `failed` (a RemoteError), for its request ran."""


class Denied(TrothError):
    """An access decision refused a request; `reasons` say who refused whom and why."""

    def __init__(self, reasons: tuple[str, ...]) -> None:
        self.reasons = tuple(map(encodable_text, reasons))
        super().__init__("denied: " + "; ".join(reasons) if reasons else "denied")


class SecretFailure(enum.Enum):
    """Why the secrets broker refused a lease, a token or a proxied request (docs/secrets.md)."""

    DENIED = "denied by policy"
    QUOTA_EXCEEDED = "lease quota exceeded"
    REVOKED = "revoked"
    EXPIRED = "expired"
    NO_SUCH_LEASE = "no such lease for this identity"
    NOT_CONFIGURED = "no such secret"
    BAD_REQUEST = "request invalid"
    CONFIG_INVALID = "secret configuration invalid"
    ENGINE_FAILED = "the secret engine failed"
    AUDIT_FAILED = "the audit record could not be written"
    JWT_MALFORMED = "token malformed"
    JWT_UNKNOWN_KEY = "token signed by an unknown key"
    JWT_BAD_SIGNATURE = "token signature invalid"
    JWT_WRONG_AUDIENCE = "token is for another audience"
    JWT_WRONG_ISSUER = "token is from another issuer"
    JWT_NOT_YET_VALID = "token not yet valid"
    JWT_NOT_OF_LEASE = "token is not one its lease carries"
    FORBIDDEN_REQUEST = "request not allowed by the secret's rules"
    UPSTREAM_FAILED = "the upstream service failed"
    BUSY = "too many requests in progress"


class SecretError(TrothError):
    """The broker refused or failed: `reason`; `detail` never holds a secret value."""

    def __init__(self, reason: SecretFailure, detail: str = "") -> None:
        self.reason = reason
        self.detail = encodable_text(detail)
        super().__init__(reason.value + (f" ({detail})" if detail else ""))


class TraceFailure(enum.Enum):
    """Why a trace record, proof, checkpoint or log was refused (docs/traces.md)."""

    MALFORMED = "malformed"
    UNKNOWN_TYPE = "unknown type tag"
    UNKNOWN_VERSION = "unknown version"
    OVER_LIMIT = "over a limit"
    UNKNOWN_KEY = "signing key not in the bundle"
    MISSING_HISTORY = "no change history for the signer"
    SIGNER_INVALID = "signer identity invalid"
    ATTESTATION_INVALID = "signing-key attestation invalid"
    ATTESTATION_STALE = "signing key attested under an older change"
    KEY_RETIRED = "signed by a key after its retirement"
    BAD_SIGNATURE = "bad signature"
    CHAIN_BROKEN = "per-agent chain broken"
    REPLAYED = "record already in the log"
    TIME_REVERSED = "record dated before the agent's previous record"
    TIME_OUT_OF_RANGE = "record time outside the log's window"
    BACKDATED = "record dated before a checkpoint that precedes it"
    """More than MAX_CLOCK_SKEW_SECONDS before a checkpoint earlier in the log: refused at
    append (the log's clock stepped back) and offline after a kept checkpoint or one the log
    holds whose root its records hash to (`troth.trace.backdating`; review 63s, traces 3;
    review 67h, traces 1; review 67k, traces 1)."""
    LEAF_MISMATCH = "record bytes differ from those appended"
    ROOT_MISMATCH = "Merkle root does not match the checkpoint"
    PROOF_INVALID = "proof does not verify"
    CHECKPOINT_INVALID = "checkpoint invalid"
    TRUNCATED = "log is shorter than the anchored checkpoint"
    FORKED = "checkpoint of the anchored size with another root"
    INCONSISTENT = "checkpoint not consistent with the anchored one"
    ROLLED_BACK = "kept checkpoint older than one accepted before"
    """The checkpoint a verifier keeps is older than (or forks from) the newest one a verifier
    of the node accepted of that log (`troth.trace.accepted`; review 52a, anchor 1)."""
    DISCLOSURE_MISMATCH = "disclosed value does not match the record"
    CHAIN_MISMATCH = "delegation chain does not match the record"
    CREDENTIAL_INVALID = "delegation chain does not verify"
    LINK_INVALID = "linked record missing or of the wrong kind"
    NOT_YET = "not accepted yet"
    """Refused for a passing condition on the node (its copy of a feed not fresh, a
    checkpoint it cannot attest yet): the record is sent again later, as signed (review 48n,
    docs/protocols.md, "Trace service")."""


class TraceError(TrothError):
    """A trace was refused: `reason`, and where: `index` (0-based log index) and `record` (the
    record id) when known."""

    def __init__(
        self,
        reason: TraceFailure,
        detail: str = "",
        *,
        index: int | None = None,
        record: str | None = None,
    ) -> None:
        self.reason = reason
        self.detail = encodable_text(detail)
        self.index = index
        self.record = None if record is None else encodable_text(record)
        place = [] if index is None else [f"record {index}"]
        if record is not None:
            place.append(f"id {record}")
        where = f"{', '.join(place)}: " if place else ""
        super().__init__(f"{where}{reason.value}" + (f" ({detail})" if detail else ""))

    def located(self, *, index: int | None, record: str | None) -> TraceError:
        """The same failure, at a log position (when the raiser did not know it)."""
        return TraceError(
            self.reason,
            self.detail,
            index=self.index if index is None else index,
            record=self.record if record is None else record,
        )


def cut_text(text: str, most: int) -> str:
    """`text` as an error quotes it: within `most` characters, saying how many were left out (a
    peer, a file or a policy chose it, up to a whole message), lone surrogates escaped
    (`encodable_text`)."""
    if len(text) <= most:
        return encodable_text(text)
    return f"{encodable_text(text[:most])}... ({len(text) - most} more characters)"


def encodable_text(text: str) -> str:
    """`text` as valid Unicode, which encodes as UTF-8: each lone surrogate (what Python makes
    of bytes that are not UTF-8 in argv, a file name or the environment, or text a caller or a
    peer passes) as a `\\udcff` escape, as `repr` shows it; other text as it is. An error that
    quotes it can then be printed, logged or sent (review 54v, errors 1)."""
    if not isinstance(text, str) or text.isascii():  # (a field of another type: as it is)
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
_CONTROLS.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})
# and the two Unicode line breaks outside C0 and C1, where `str.splitlines` (and a log viewer
# that follows Unicode) breaks a line too (review 65l, channels 2)
_CONTROLS.update({0x2028: "\\u2028", 0x2029: "\\u2029"})


def one_line_text(text: str) -> str:
    """`text` a peer gave, as an error quotes it: control characters (C0 with newline and CR,
    DEL, C1) and the line and paragraph separators (U+2028, U+2029) as escapes (`\\n`,
    `\\x1b`, `\\u2028`) and lone surrogates as `encodable_text` shows them, so that a log
    line of the error is one line, the node's own (review 54v, errors 6; review 65l,
    channels 2)."""
    return encodable_text(text.translate(_CONTROLS))
