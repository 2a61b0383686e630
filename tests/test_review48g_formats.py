"""docs/formats.md against the code (review 48g, formats): every type tag and version the doc
writes is the one the encoder writes, and every figure of its Limits table is the constant of
src/troth/limits/ it names (formats 1: the table gave a record's disclosures 730,276 bytes,
the bound before review 47o; MAX_TRACE_RECORD_DISCLOSURE_BYTES is 555,496)."""

from __future__ import annotations

import ast
import base64
import dataclasses
import json
import re
from pathlib import Path

import pytest

from troth import limits as L
from troth.authority import requests, tickets
from troth.channel import packets, payloads
from troth.channel.secure import ChannelSettings
from troth.credentials import format as credential_format
from troth.credentials import revocation_entry
from troth.crypto import KeyType, PublicKey, sha256
from troth.crypto.keys import verify_signature
from troth.encoding import cbor
from troth.gates import bundles
from troth.identity import Identifier, attestation, change
from troth.integrations.mcp import frames
from troth.node.books import IdentifierBook
from troth.node.channel_limits import ChannelLimits
from troth.node.config import NodeConfig
from troth.node.control import OPERATIONS
from troth.node.own_relays import OwnRelays
from troth.node.pins import RoutePins
from troth.node.services import protocol
from troth.node.services.relay import RelayBook
from troth.routing import notice
from troth.secrets import audit
from troth.secrets.store import SqliteSecretStore
from troth.storage import SqliteDatabase, rollback
from troth.trace import export, outbox_store, outbox_tickets, record, record_decode, submit
from troth.transport.settings import TcpSettings
from troth.vault import KeyPurpose

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FORMATS = (DOCS / "formats.md").read_text()
KIB, MIB = 1024, 1024 * 1024

# every type tag the code writes, with the versions it writes or reads
WRITTEN: dict[str, set[int]] = {
    change.CHANGE_TYPE: {change.FORMAT_VERSION},
    change.HISTORY_TYPE: {change.FORMAT_VERSION},
    attestation.ATTESTATION_TYPE: {attestation._VERSION},
    credential_format.CREDENTIAL_TYPE: {credential_format.VERSION},
    credential_format.CHAIN_TYPE: {credential_format.VERSION},
    revocation_entry.ENTRY_TYPE: {revocation_entry.VERSION},
    revocation_entry.SNAPSHOT_TYPE: {revocation_entry.VERSION},
    revocation_entry.PAGE_TYPE: {revocation_entry.VERSION},
    tickets.TICKET_TYPE: {tickets.VERSION},
    requests.REQUEST_TYPE: {requests.VERSION},
    payloads.AUTH_TYPE: {payloads.VERSION},
    packets.ROUTE_ERROR_TYPE: {packets.ROUTE_ERROR_VERSION},
    notice.NO_ROUTE_TYPE: {1, notice.NO_ROUTE_VERSION},
    protocol.REQUEST: {protocol.VERSION},
    protocol.RESPONSE: {protocol.VERSION},
    frames.FRAME_TYPE: {frames.VERSION},
    bundles.BUNDLE_TYPE: {bundles.VERSION},
    bundles.SIGNED_BUNDLE_TYPE: {bundles.VERSION},
    record.RECORD_TYPE: set(record.VERSIONS),
    export.BUNDLE_TYPE: {export._VERSION, export._WINDOWED},
    submit.SUBMIT_TYPE: {submit.VERSION, submit.WINDOWS_VERSION},
    submit.RECEIPTS_TYPE: {submit.VERSION},
    rollback.GUARD_TYPE: {  # review 51d; 2: review 54p; 3: review 60a; 4: review 64j
        1,
        rollback.GUARD_VERSION,
        rollback.GUARD_RAISED_VERSION,
        rollback.GUARD_BOUND_VERSION,
    },
}

_WRITTEN_AS = re.compile(r'"(troth\.[a-z.-]+)"`?,\s*(?:"version":\s*)?`?(\d+)')
_HEADED = re.compile(r"`(troth\.[a-z.-]+)`, versions? (\d+)(?: and (\d+))?")


def _documented() -> list[tuple[str, str, int]]:
    found = []
    for doc in ("formats.md", "protocols.md"):
        text = (DOCS / doc).read_text()
        for match in _WRITTEN_AS.finditer(text):
            found.append((doc, match.group(1), int(match.group(2))))
        for match in _HEADED.finditer(text):
            for version in filter(None, match.groups()[1:]):
                found.append((doc, match.group(1), int(version)))
    return found


def test_the_doc_names_every_type_tag_the_code_writes() -> None:
    named = {tag for _, tag, _ in _documented()}
    assert set(WRITTEN) - named == set()


@pytest.mark.parametrize(("doc", "tag", "version"), _documented())
def test_each_documented_tag_and_version_is_the_codes(doc: str, tag: str, version: int) -> None:
    assert tag in WRITTEN, f"{doc}: {tag} is no type tag the code writes"
    assert version in WRITTEN[tag], f"{doc}: {tag} version {version}, code {WRITTEN[tag]}"


def _row(name: str) -> str:
    match = re.search(rf"^\| {re.escape(name)} \| (.*) \|$", FORMATS, re.MULTILINE)
    assert match, f"no row {name!r} in the Limits table"
    return match.group(1)


def _packet_overhead() -> int:
    return L.MAX_TRANSPORT_FRAME - packets.PACKET_LIMIT


LIMITS_TABLE: dict[str, list[str]] = {
    "CBOR document": [
        f"{L.MAX_CBOR_BYTES // MIB} MiB, depth {L.MAX_CBOR_DEPTH}, {L.MAX_CBOR_ITEMS:,} items"
    ],
    "identity history": [
        f"{L.MAX_IDENTITY_CHANGES} changes, {L.MAX_IDENTITY_HISTORY_BYTES // KIB} KiB",
        f"change index ≤ 2^{(L.MAX_CHANGE_INDEX + 1).bit_length() - 1} - 1",
    ],
    "change body / attestation": [f"{L.MAX_CHANGE_BYTES} bytes each"],
    "clock skew allowed": [f"{L.MAX_CLOCK_SKEW_SECONDS} s"],
    "node / identity name": [f"{L.MAX_NAME_LENGTH} characters"],
    "recorded MCP server grantors": [
        f"{L.MAX_MCP_GRANTOR_RECORDS:,} names",
        f"{L.MAX_MCP_GRANTORS} authorities each",
    ],
    "credential": [
        f"{L.MAX_CREDENTIAL_BYTES // KIB} KiB",
        f"{L.MAX_ATTRIBUTES} attributes; {L.MAX_ATTRIBUTE_VALUES} values per set; "
        f"{L.MAX_ATTRIBUTE_TEXT} characters per key or value",
    ],
    "delegation": [
        f"{L.MAX_CAVEATS} caveats of {L.MAX_CAVEAT_TEXT:,} characters; purpose "
        f"{L.MAX_PURPOSE_TEXT} characters; {L.MAX_DELEGATION_LINKS} links below the root"
    ],
    "chain bundle (read / made by `delegate`) / ticket": [
        f"{L.MAX_CHAIN_BYTES // KIB} KiB / {L.MAX_PRESENTED_CHAIN_BYTES:,} bytes / "
        f"{L.MAX_TICKET_BYTES // KIB} KiB"
    ],
    "revocation feed": [
        f"{L.MAX_FEED_ENTRIES:,} entries; entry {L.MAX_REVOCATION_ENTRY_BYTES:,} bytes; page "
        f"{L.MAX_FEED_PAGE_BYTES // KIB} KiB; reason {L.MAX_REVOCATION_REASON} characters"
    ],
    "refuted changes": [f"{L.MAX_REFUTED_CHANGES:,} recorded"],
    "member credentials": [f"{L.MAX_LIVE_CREDENTIALS_PER_MEMBER} unexpired per member"],
    "service message": [
        f"{L.MAX_SERVICE_MESSAGE // MIB} MiB (request or response)",
        f"an MCP frame 1 MiB - {(L.MAX_SERVICE_MESSAGE - L.MAX_MCP_FRAME) // KIB} KiB",
        f"lease list 1 MiB - {(L.MAX_SERVICE_MESSAGE - L.MAX_LEASE_LIST_BYTES) // KIB} KiB",
        f"one record's trace disclosures {L.MAX_TRACE_RECORD_DISCLOSURE_BYTES:,} bytes",
    ],
    "channel": [
        f"frame {L.MAX_CHANNEL_FRAME:,} bytes; {L.MAX_CHANNEL_CREDENTIALS} chains per handshake; "
        f"{L.MAX_REASSEMBLIES} reassemblies of at most {L.MAX_APPLICATION_MESSAGE // MIB} MiB",
        f"a BATCH member at least {L.MIN_BATCH_MESSAGE} bytes",
    ],
    "routing / TCP": [
        f"route {L.MAX_ROUTE_LENGTH} hops, address {L.MAX_ADDRESS_TEXT} characters, route "
        f"header {L.MAX_ROUTE_HEADER_BYTES:,} bytes; TCP frame {L.MAX_TRANSPORT_FRAME // KIB} KiB",
        f"channel packet {L.MAX_TRANSPORT_FRAME // KIB} KiB - {_packet_overhead():,}",
        f"is full {L.MAX_CONNECTION_QUEUE_BYTES // MIB} MiB",
        f"one peer address {L.MAX_QUEUED_BYTES_PER_SOURCE // MIB} MiB",
        f"for all connections {L.MAX_QUEUED_BYTES // MIB} MiB",
        f"their bytes {L.MAX_ROUTING_QUEUE_BYTES // 4 // MIB} MiB for the connections of one",
        f"(a quarter of the total), {L.MAX_ROUTING_QUEUE_BYTES // MIB} MiB for all connections",
    ],
    "relays": [
        f"{L.MAX_RELAYS:,} names on a node ({2 * L.MAX_RELAYS:,} within",
        f"{L.MAX_RELAYS_PER_OWNER} per owner identity",
        f"relays.json {L.MAX_RELAY_FILE_BYTES // KIB} KiB",
        f"own relay names {L.MAX_OWN_RELAYS}, each route at most {L.MAX_ROUTE_LENGTH} hops",
        f"own-relays.json {L.MAX_OWN_RELAYS_FILE_BYTES // KIB:,} KiB",
    ],
    "trace outbox": [
        f"{L.TRACE_OUTBOX_RECORDS:,} records and {L.TRACE_OUTBOX_BYTES // MIB} MiB",
        f"denials {L.TRACE_OUTBOX_DENIAL_PERCENT}%, one member "
        f"{L.TRACE_OUTBOX_SOURCE_PERCENT}%, all members {L.TRACE_OUTBOX_MEMBERS_PERCENT}%",
    ],
    "trace service / show": [
        f"at most every {L.TRACE_MEMBER_CHECKPOINT_SECONDS} s",
        f"nests {L.MAX_TRACE_SHOW_DEPTH} levels",
        f"at most {L.MAX_TRACE_SUBMIT_WINDOWS} history windows",
        f"{L.MAX_TRACE_SUBMIT_WINDOW_BYTES:,} bytes",
    ],
    "Cedar text": [
        f"{L.MAX_CEDAR_NESTING} levels of brackets",
        f"{L.MAX_CEDAR_OPERATORS:,} operators per statement",
        f"{L.MAX_CEDAR_ANCESTORS:,} (type, ancestor) pairs",
        f"its actions {L.MAX_CEDAR_ENVIRONMENTS:,} (principal type, resource type) environments",
        f"policies {L.MAX_POLICY_TEXT // KIB} Ki characters",
    ],
    "channel refresh": [f"{L.CHANNEL_REFRESH_BURST} in-band credential refreshes back to back"],
}


def test_the_table_s_exact_multiples_hold() -> None:
    """The table writes these in units: each is an exact multiple (else the unit would lie)."""
    assert L.MAX_CHANGE_INDEX == 2**32 - 1
    assert L.MAX_ATTESTATION_BYTES == L.MAX_CHANGE_BYTES  # "512 bytes each"
    assert L.CHANNEL_REFRESH_SECONDS == 1  # "one more a second"
    assert L.MAX_SERVICE_MESSAGE == MIB
    assert (L.MAX_SERVICE_MESSAGE - L.MAX_MCP_FRAME) % KIB == 0
    assert (L.MAX_SERVICE_MESSAGE - L.MAX_LEASE_LIST_BYTES) % KIB == 0
    assert L.MAX_QUEUED_BYTES_PER_SOURCE * 4 == L.MAX_QUEUED_BYTES  # "a quarter of the total"
    assert L.MAX_ROUTING_QUEUE_BYTES % (4 * MIB) == 0  # its quarter, in MiB
    for value in (L.MAX_CBOR_BYTES, L.MAX_APPLICATION_MESSAGE, L.TRACE_OUTBOX_BYTES):
        assert value % MIB == 0
    for value in (L.MAX_CHAIN_BYTES, L.MAX_TICKET_BYTES, L.MAX_FEED_PAGE_BYTES):
        assert value % KIB == 0


@pytest.mark.parametrize("name", sorted(LIMITS_TABLE))
def test_the_limits_table_row_is_the_constants(name: str) -> None:
    row = _row(name)
    for figure in LIMITS_TABLE[name]:
        assert figure in row, f"{name}: {figure!r} not in {row!r}"


def test_the_record_disclosure_bound_is_written_as_the_constant_everywhere() -> None:
    bound = f"{L.MAX_TRACE_RECORD_DISCLOSURE_BYTES:,}"
    overhead = f"{L.MAX_TRACE_PROOF_OVERHEAD:,}"
    assert L.MAX_TRACE_RECORD_DISCLOSURE_BYTES == L.MAX_SERVICE_MESSAGE - L.MAX_TRACE_PROOF_OVERHEAD
    for doc in ("formats.md", "protocols.md", "traces.md"):
        text = (DOCS / doc).read_text()
        for match in re.finditer(r"MAX_TRACE_RECORD_DISCLOSURE_BYTES`? \(([\d,]+)", text):
            assert match.group(1) == bound, doc
        for match in re.finditer(r"MAX_TRACE_PROOF_OVERHEAD`? \(([\d,]+)", text):
            assert match.group(1) == overhead, doc
        for match in re.finditer(r"([\d,]+) bytes \(`MAX_TRACE_RECORD_DISCLOSURE_BYTES`", text):
            assert match.group(1) == bound, doc


# -- trace record members ----------------------------------------------------------------------


def _decoded_members() -> dict[str, set[str]]:
    """The members record_decode.py takes in each object: `_object(value, "what", {...})`."""
    source = Path(record_decode.__file__).read_text()
    found: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "_object"
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[2], ast.Set)
        ):
            found[str(node.args[1].value)] = {ast.literal_eval(e) for e in node.args[2].elts}
    found["digests"] = set(record.REDACTABLE)
    return found


def _documented_members() -> tuple[set[str], dict[str, set[str]]]:
    section = FORMATS[FORMATS.index("**Payload**") : FORMATS.index("**The id namespace")]
    top: set[str] = set()
    inner: dict[str, set[str]] = {}
    for names, value in re.findall(r"^\| (`[^|]+`) \| (.*) \|$", section, re.MULTILINE):
        members = re.findall(r"`(\w+)`", names)
        top |= set(members)
        braces = re.match(r"`\{([^}]*)\}`", value)
        if braces and len(members) == 1:
            inner[members[0]] = {m.strip().rstrip("?") for m in braces.group(1).split(",")}
    return top, inner


def test_the_documented_record_members_are_those_the_decoder_takes() -> None:
    top, inner = _documented_members()
    assert top == set(record_decode._MEMBERS)
    decoded = _decoded_members()
    assert inner == {name: decoded[name] for name in inner}
    assert set(inner) == set(decoded) - {"record", "credential"}  # the record itself; a list item
    kinds = re.sub(r"\([^)]*\)", "", _row_of_kind())  # "(also an OTel ... span)"
    assert {kind.value for kind in record.Kind} == set(re.findall(r"`(\w+)`", kinds))


def _row_of_kind() -> str:
    match = re.search(r"^\| `kind` \| (.*) \|$", FORMATS, re.MULTILINE)
    assert match
    return match.group(1)


# -- the documented layouts, read off the golden vectors -------------------------------------

VECTORS = Path(__file__).resolve().parent / "vectors"


def _shape(value: object) -> object:
    """A decoded value with each byte string as `b<length>` and each time as `t`."""
    if isinstance(value, bytes):
        return f"b{len(value)}"
    if isinstance(value, list):
        return [_shape(item) for item in value]
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if type(value) is int and value > 1_000_000_000:
        return "t"
    return value


def _decoded(name: str, field: str, index: int | None = None) -> object:
    data = json.loads((VECTORS / name).read_text())["vectors"]
    if index is not None:
        data = data[index]
    return _shape(cbor.decode(bytes.fromhex(data[field])))


IDENTITY = "identity/identity_vectors.json"
CREDENTIALS = "credentials/credential_vectors.json"


@pytest.mark.parametrize(
    ("name", "field", "index", "layout"),
    [
        # "Change body": type, version, index, previous, [key-type, key], next-key digest, times
        (IDENTITY, "change0_body", 0, ["troth.identity.change", 2, 0, None, [1, "b32"], "b32"]),
        # "History": signed changes [body, signature, previous signature / null], checkpoint
        (IDENTITY, "history2", 0, ["troth.identity.history", 2]),
        (IDENTITY, "history2_from_change1", 0, ["troth.identity.history", 2]),
        # "Purpose-key attestation": [body, signature]
        (IDENTITY, "channel_attestation", 0, ["b145", "b64"]),
        # "Credentials": serial 16, subject, issuer, attributes, times, depth, null (a root)
        (CREDENTIALS, "root_credential_body", None, ["troth.credential", 1, "b16", "b32", "b32"]),
        (CREDENTIALS, "chain2", None, ["troth.credential.chain", 1]),
        (CREDENTIALS, "revocation_entries", None, None),
        (CREDENTIALS, "feed", None, ["troth.revocation.page", 2]),
    ],
)
def test_a_golden_vector_has_the_documented_layout(
    name: str, field: str, index: int | None, layout: list[object] | None
) -> None:
    if field == "revocation_entries":  # "Revocation feed": entry, kind 3 with its extra
        entries = json.loads((VECTORS / name).read_text())["vectors"][field]
        entry = _shape(cbor.decode(bytes.fromhex(entries[2])))
        assert entry == ["troth.revocation", 2, 2, 3, "b32", "b32", "t", "", [2, "b32"]]
        return
    value = _decoded(name, field, index)
    assert isinstance(value, list)
    assert layout is not None
    assert value[: len(layout)] == layout
    if field == "change0_body":
        assert len(value) == 9
        assert value[6:] == ["t", "t", "t"]
    if field == "history2":
        assert value[2] == [["b111", "b64", None], ["b144", "b64", "b64"]]
        assert value[3] is None
    if field == "history2_from_change1":
        assert value[3] == ["b32", "b32", 1]  # identifier, authority, index of the first change
    if field == "channel_attestation":
        data = json.loads((VECTORS / name).read_text())["vectors"][0][field]
        body = _shape(cbor.decode(cbor.decode(bytes.fromhex(data))[0]))
        # purpose 1 (secure channel) with an X25519 key (type 3), created_at, expires_at
        assert body == ["troth.identity.purpose-key", 1, "b32", "b32", 1, [3, "b32"], "t", "t"]
    if field == "root_credential_body":
        assert len(value) == 11
        assert value[6:] == ["t", "t", "t", 2, None]
    if field == "chain2":
        credentials, histories = value[2], value[3]
        assert [len(c) for c in credentials] == [3, 3]  # body, signature, attestation
        assert all(c[1] == "b64" for c in credentials)
        assert len(histories) == 2
    if field == "feed":
        # [snapshot, signature, attestation], start, [entry, ...], authority history
        assert len(value) == 6
        assert value[3] == 0
        assert len(value[2]) == 3
        assert len(value[4]) == 3
        data = json.loads((VECTORS / name).read_text())["vectors"][field]
        snapshot = _shape(cbor.decode(cbor.decode(bytes.fromhex(data))[2][0]))
        assert snapshot == ["troth.revocation.snapshot", 2, "b32", 3, "b32", 3, "t"]


def test_a_delegation_body_ends_in_parent_purpose_and_caveats() -> None:
    value = _decoded(CREDENTIALS, "delegation_body")
    assert isinstance(value, list)
    assert value[-1] == ["b32", "resolve complaint 123", ['context.complaint == "123"']]


def test_the_key_type_and_purpose_numbers_are_the_codes() -> None:
    table = FORMATS[FORMATS.index("## Key types") : FORMATS.index("## Identifiers")]
    assert re.findall(r"^\| (\d) \| (\S+)", table, re.MULTILINE) == [
        ("1", "Ed25519"),
        ("2", "ECDSA"),
        ("3", "X25519"),
    ]
    assert [int(KeyType.ED25519), int(KeyType.P256), int(KeyType.X25519)] == [1, 2, 3]
    assert "1 = secure channel (X25519), 2 = signing" in FORMATS
    assert (int(KeyPurpose.SECURE_CHANNEL), int(KeyPurpose.SIGNING)) == (1, 2)


def test_every_domain_separation_string_is_documented_and_in_the_code() -> None:
    """Each `troth.NAME/VERSION` prefix the code hashes, seals or signs under is written in
    docs/ (formats.md, or where the text it belongs to is), and each the docs write is the
    code's (the quota accounts' two were in no doc: review 48g, formats 6)."""
    source = ROOT / "src" / "troth"
    pattern = r'"(troth\.[a-z.-]+/\d+)'
    coded = {m for path in source.rglob("*.py") for m in re.findall(pattern, path.read_text())}
    written = {m for doc in DOCS.glob("*.md") for m in re.findall(pattern, doc.read_text())}
    prologue = re.findall(r"prologue `(troth\.[a-z.-]+/\d+)`", (DOCS / "protocols.md").read_text())
    assert coded - written == set(prologue)
    assert written - coded == set()


@pytest.mark.parametrize(
    ("field", "chained"), [("bundle_by_authority", False), ("bundle_by_admin", True)]
)
def test_a_policy_bundle_vector_has_the_documented_layout(field: str, chained: bool) -> None:
    """docs/formats.md, "Policy bundles": the signed bundle's 7 fields (a chain iff an admin
    signed) and the body's 11 (tool schemas as canonical JSON text, services' methods sorted)."""
    data = json.loads((VECTORS / "gates" / "bundle_vectors.json").read_text())["vectors"][field]
    bundle = cbor.decode(bytes.fromhex(data))
    shape = _shape(bundle)
    assert isinstance(shape, list)
    assert shape[:2] == ["troth.policy.bundle.signed", 1]
    assert shape[3] == "b64"
    assert len(shape) == 7
    assert (shape[6] is not None) == chained
    body = cbor.decode(bundle[2])
    assert _shape(body[:7]) == ["troth.policy.bundle", 1, "b32", "b32", body[4], "t", "t"]
    assert [type(v) for v in body[7:]] == [str, str, dict, dict]
    assert all(json.loads(schema) is not None for schema in body[9].values())
    assert all(methods == sorted(set(methods)) for methods in body[10].values())


def _section(title: str) -> str:
    start = FORMATS.index(f"## {title}")
    end = FORMATS.find("\n## ", start + 1)
    return FORMATS[start : end if end > 0 else None]


def test_node_json_holds_the_documented_fields() -> None:
    """docs/formats.md, "Node configuration": the fields node.json holds are those named."""
    config = NodeConfig("hub", token_serial="0a")  # written only when recorded (review 67j)
    assert "token_serial" not in json.loads(NodeConfig("hub").to_json())
    written = set(json.loads(config.to_json()))
    documented = set(re.findall(r"`([a-z_0-9]+)`", _section("Node configuration")))
    assert written == {field.name for field in dataclasses.fields(NodeConfig)}
    assert written - documented == set()
    assert json.loads(config.to_json())["version"] == 1


BOOKS = [
    ("Relay book", "relays", "relays"),
    ("Own relay book", "own", "relays"),
    ("Pin book", "pins", "pins"),
]


@pytest.mark.parametrize(("title", "book", "field"), BOOKS)
def test_a_book_file_is_the_documented_json(
    tmp_path: Path, title: str, book: str, field: str
) -> None:
    """docs/formats.md's relay, own relay and pin books: the JSON each writes and reads."""
    identifier = Identifier(bytes(32))
    books: dict[str, tuple[IdentifierBook, str, str]] = {
        "relays": (RelayBook(tmp_path / "relays.json"), "relays.json", "orders"),
        "own": (OwnRelays(tmp_path / "own-relays.json"), "own-relays.json", "/tcp/h:4000/relay/b"),
        "pins": (RoutePins(tmp_path / "pins.json"), "pins.json", "/tcp/h:4000/service/trace"),
    }
    kept, name, key = books[book]
    kept.save({key: identifier})
    assert kept.load() == {key: identifier}
    assert f'`{{"version": 1, "{field}": {{' in _section(title)
    assert f"<home>/nodes/<name>/{name}" in _section(title)
    assert json.loads((tmp_path / name).read_text()) == {
        "version": 1,
        field: {key: str(identifier)},
    }


def test_every_control_operation_is_documented_with_its_arguments() -> None:
    """docs/formats.md and docs/protocols.md, "Node control", name every operation of
    `OPERATIONS` with its argument fields (they named 10 of 16: no lease.*, broker.*, and
    formats.md no trust.reload, nor `expect`, `grantable_by`, protocols.md `authority_pin`)."""
    protocols = (DOCS / "protocols.md").read_text()
    table = protocols[protocols.index("## Node control") : protocols.index("## Load limits")]
    listed = " ".join(_section("Node control").split())  # wrapped lines joined
    for op, operation in OPERATIONS.items():
        names = [field.name for field in dataclasses.fields(operation.arguments)]
        assert f"`{op}`" in listed, op
        if names:
            assert "{" + ", ".join(names) + "}" in listed, op
        rows = [line for line in table.splitlines() if line.startswith("| `")]
        row = next(line for line in rows if f"`{op}`" in line.split(" | ")[0])
        for name in names:
            assert f"`{name}`" in row, (op, name)


def test_the_reassembly_budgets_are_written_as_the_code_computes_them() -> None:
    """docs/protocols.md: a member's and the node's reassembly budgets are 2 and 8 times a
    message and a frame, 16 MiB + 65,535 (it wrote 64 KiB, a byte more each time)."""
    protocols = (DOCS / "protocols.md").read_text()
    unit = L.MAX_APPLICATION_MESSAGE + L.MAX_CHANNEL_FRAME
    limits_now = ChannelLimits()
    assert limits_now.max_reassembly_per_peer == 2 * unit
    assert limits_now.max_reassembly_total == 8 * unit
    written = f"16 MiB + {L.MAX_CHANNEL_FRAME:,}"
    assert "16 MiB + 64 KiB" not in protocols
    assert protocols.count(written) >= 4


def _default_row(label: str) -> str:
    protocols = (DOCS / "protocols.md").read_text()
    rows = [line for line in protocols.splitlines() if line.startswith(f"| {label}")]
    assert len(rows) == 1, label
    return rows[0].split(" | ")[1]


def _defaults() -> list[tuple[str, str]]:
    tcp, channels, settings = TcpSettings(), ChannelLimits(), ChannelSettings()
    return [
        ("connect timeout", f"{tcp.connect_timeout:g} s"),
        ("first frame", f"{tcp.first_frame_timeout:g} s"),
        ("stalled frame", f"{tcp.frame_timeout:g} s"),
        ("idle |", f"{tcp.idle_timeout:g} s"),
        ("accepted connections in total", f"{tcp.max_connections:,}"),
        ("accepted connections per source", f"{tcp.max_connections_per_source}"),
        ("reply paths per connection", f"{tcp.max_reply_paths:,}"),
        ("write buffer per connection", f"{tcp.write_buffer // MIB} MiB"),
        ("queue per connection", f"{tcp.max_queued_bytes // MIB} MiB"),
        ("queues of the connections of one peer", f"{tcp.max_queued_total // 4 // MIB} MiB"),
        ("queues of all connections", f"{tcp.max_queued_total // MIB} MiB"),
        ("frames waiting to be routed per connection", f"{tcp.max_queued_frames}"),
        ("frames waiting to be routed from the conn", f"{tcp.routing_per_source // MIB} MiB"),
        ("frames waiting to be routed from all", f"{tcp.max_routing_total // MIB} MiB"),
        ("stall timeout", f"{tcp.stall_timeout:g} s"),
        ("write timeout", f"{tcp.write_timeout:g} s"),
        ("handshake timeout", f"{channels.handshake_timeout:g} s"),
        ("keepalive interval", f"{settings.keepalive_interval:g} s"),
        ("keepalive timeout", f"{settings.keepalive_timeout:g} s"),
        ("half-open handshakes per source", f"{channels.max_half_open_per_source}"),
        ("half-open handshakes in total", f"{channels.max_half_open}"),
        ("open channels one peer identity", f"{channels.max_channels_per_peer}"),
        ("open channels the peers of one member", f"{channels.max_channels_per_member}"),
        ("channels (handshaking or open)", f"{channels.max_channels_per_source}"),
        ("open channels peers opened, node-wide", f"{channels.max_open_channels:,}"),
        ("reassembly timeout", f"the channel settings' ({settings.reassembly_timeout} s)"),
        ("channel timer", f"every {channels.reassembly_sweep:g} s"),
        ("reply paths per channel", f"{channels.max_reply_paths:,}"),
    ]


@pytest.mark.parametrize(("label", "value"), _defaults())
def test_the_load_limit_tables_give_the_defaults(label: str, value: str) -> None:
    """docs/protocols.md's tables of a node's channel and TCP limits: each default is the
    code's (ChannelLimits, ChannelSettings, TcpSettings)."""
    assert _default_row(label.removesuffix(" |")).startswith(value)


def test_the_checkpoint_vector_is_the_documented_signed_note() -> None:
    """docs/formats.md, "Checkpoint": origin, size, base64 root, one `troth-time` line, a blank
    line, and `— origin base64(key id (4) || Ed25519 signature (64))`, the key id
    SHA-256(origin || 0x0A || 0x01 || public key)[:4] of the log's signing key."""
    vectors = json.loads((VECTORS / "trace" / "trace_vectors.json").read_text())["vectors"]
    note = vectors["checkpoint"]
    lines = note.split("\n")
    origin = lines[0]
    assert re.fullmatch(r"troth\.trace/T[0-9a-f]{64}", origin)
    assert lines[1] == "3"
    assert base64.b64decode(lines[2], validate=True).hex() == vectors["root"]
    assert re.fullmatch(r"troth-time [1-9]\d*", lines[3])
    assert (lines[4], lines[6]) == ("", "")
    dash, name, signature = lines[5].split(" ")
    assert (dash, name) == ("\u2014", origin)
    signed = base64.b64decode(signature, validate=True)
    assert len(signed) == 4 + 64
    body = cbor.decode(cbor.decode(bytes.fromhex(vectors["log_attestation"]))[0])
    key_type, key = body[5]
    assert (key_type, body[4]) == (int(KeyType.ED25519), int(KeyPurpose.SIGNING))
    assert signed[:4] == sha256(origin.encode() + b"\n\x01" + key)[:4]
    assert len(note.encode()) <= L.MAX_TRACE_CHECKPOINT_BYTES


@pytest.mark.parametrize("index", range(3))
def test_a_record_vector_is_the_documented_dsse_envelope(index: int) -> None:
    """docs/formats.md, "Trace records": canonical JSON `{"payload", "payloadType",
    "signatures": [{"keyid", "sig"}]}`, keyid the hex SHA-256 of the attestation, the signature
    the signing key's over PAE(type, payload) = "DSSEv1" SP LEN SP type SP LEN SP payload."""
    vectors = json.loads((VECTORS / "trace" / "trace_vectors.json").read_text())["vectors"]
    stored = vectors["records"][index]
    envelope = json.loads(stored["envelope"])
    assert stored["envelope"] == json.dumps(envelope, separators=(",", ":"), sort_keys=True)
    assert list(envelope) == ["payload", "payloadType", "signatures"]
    assert envelope["payloadType"] == record.PAYLOAD_TYPE
    (signature,) = envelope["signatures"]
    assert list(signature) == ["keyid", "sig"]
    payload = base64.b64decode(envelope["payload"], validate=True)
    assert payload == stored["payload"].encode()
    attestation = bytes.fromhex(vectors["log_attestation" if index == 2 else "agent_attestation"])
    assert signature["keyid"] == sha256(attestation).hex()
    kind, key = cbor.decode(cbor.decode(attestation)[0])[5]
    kind_text = record.PAYLOAD_TYPE.encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(kind_text), kind_text, len(payload), payload)
    verify_signature(PublicKey(KeyType(kind), key), base64.b64decode(signature["sig"]), pae)


def _leases_block() -> str:
    section = _section("Leases")
    return section[section.index("```") : section.index("```", section.index("```") + 3)]


def _table_text(block: str, table: str, tables: list[str]) -> str:
    """The text of `table`'s entry in the block: from its name to the next table's."""
    start = re.search(rf"^{table}\b", block, re.MULTILINE)
    assert start, table
    ends = [m.start() for t in tables if (m := re.search(rf"^{t}\b", block, re.MULTILINE))]
    end = min((e for e in ends if e > start.start()), default=len(block))
    return block[start.start() : end]


def test_the_broker_tables_hold_the_documented_columns(tmp_path: Path) -> None:
    """docs/formats.md, "Leases": each column of the broker's tables is named in its table's
    entry, each index too, and the audit kinds are AuditKind's."""
    db = SqliteDatabase(tmp_path / "node.db")
    SqliteSecretStore(db)
    conn = db.connection()
    conn.executescript(audit._SCHEMA)
    block = _leases_block()
    names = [
        row[0]
        for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if row[0].startswith("secret_")
    ]
    assert sorted(names) == sorted(re.findall(r"^(secret_\w+)", block, re.MULTILINE))
    for table in names:
        text = _table_text(block, table, names)
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
        if table == "secret_meta":  # a key-value table: its keys are documented
            columns = ["broker_id", "seal_key", "audit_key", "lease_chains_pruned", "token-key"]
        assert [c for c in columns if not re.search(rf"\b{c}\b", text)] == [], table
    indexes = [
        row[0]
        for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        if row[0].startswith("secret_") and not row[0].startswith("sqlite_")
    ]
    assert indexes
    assert [index for index in indexes if index not in block] == []
    kinds = re.search(r"kind \(([^)]*)\)", _table_text(block, "secret_audit", names))
    assert kinds
    assert sorted(kinds.group(1).split(", ")) == sorted(kind.value for kind in audit.AuditKind)
    db.close()


def test_the_node_database_tables_hold_the_documented_columns(tmp_path: Path) -> None:
    """docs/formats.md's blocks for `vault_keys`, `mcp_grantors` and the trace outbox name
    every column the code creates (`vault_keys` lacked key_type, purpose and created_at)."""
    db = SqliteDatabase(tmp_path / "node.db")
    conn = db.connection()
    for statement in (
        *outbox_store._SCHEMA,
        *outbox_store._SOURCES,
        *outbox_store._HELD,
        *outbox_store._ROTATED,  # review 72e, tickets 2
        outbox_tickets._SCHEMA,  # review 71g (its table documented, not made here: 71o)
    ):
        conn.execute(statement)

    def columns(table: str) -> list[str]:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]

    keys = _section("Sealed software keys")
    assert re.findall(r"^(\w+) +[A-Z]+ ", keys, re.MULTILINE) == columns("vault_keys")
    created = re.search(r"CREATE TABLE mcp_grantors \((.*?)\)", _section("Published MCP"), re.S)
    assert created
    written = [part.split()[0] for part in created.group(1).split(",")]
    assert written == columns("mcp_grantors")
    block = _section("Trace outbox")
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    outbox = [table for table in tables if table.startswith("trace_outbox")]
    assert sorted(outbox) == sorted(re.findall(r"^(trace_outbox\w*)", block, re.MULTILINE))
    for table in outbox:
        text = _table_text(block, table, outbox)
        assert [c for c in columns(table) if not re.search(rf"\b{c}\b", text)] == [], table
    db.close()
