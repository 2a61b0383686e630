"""Review 56r, docs: the numbers, failure codes, paths, commands and format tags the documents
state, held to the code, so that changing one without the other fails here.

1. A limit named beside its value (`MAX_X` (8 KiB), `MAX_X`, 64, 16 MiB (`MAX_X`),
   `X` = 30 s) states the constant's current value, wherever it is defined (troth.limits and
   its submodules first, else the module that defines it).
2. docs/formats.md's table of limits states each limit's current value.
3. Every failure code a document names (`CredentialFailure.X`, ...) exists; every reason an
   authority answers is listed where its requests are (docs/formats.md, "Requests to an
   authority": RATE_LIMITED, review 56g, was not); the channel close codes are the enum's.
4. Every file a document names exists, and every `troth ...` command line shown outside
   docs/cli.md (which tests/test_cli_reference.py holds) parses: its commands and options
   exist.
5. The type tags and versions docs/formats.md and docs/protocols.md give are those of the
   golden vectors in tests/vectors/, with the same number of fields (the revocation page lacked
   a comma, so it read as five).
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import inspect
import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any

import click
import pytest

from troth import errors, limits
from troth.cli.main import cli
from troth.encoding import cbor
from troth.errors import DecodeError

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted(path for path in (ROOT / "docs").glob("*.md") if path.name != "cli.md")
READ = [*DOCS, ROOT / "README.md"]
LIMIT_MODULES = [
    "troth.limits",
    *(f"troth.limits.{m}" for m in ("authority", "gates", "leases", "routing", "traces")),
]

UNITS = {
    "KiB": 1024,
    "MiB": 1 << 20,
    "GiB": 1 << 30,
    "s": 1,
    "seconds": 1,
    "ms": 0.001,
    "min": 60,
    "minutes": 60,
    "hour": 3600,
    "hours": 3600,
    "day": 86_400,
    "days": 86_400,
    "bytes": 1,
}
_UNIT = r"KiB|MiB|GiB|seconds|minutes|min|hours?|days?|ms|s|bytes"
_NUMBER = rf"(?:2\^\d+|\d[\d,]*(?:\.\d+)?)(?:\s*(?:{_UNIT})\b)?"
VALUE = rf"{_NUMBER}(?:\s+(?:-|less)\s+{_NUMBER})*"
NAME = r"`(?:limits\.)?([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`"
# `NAME` (value   `NAME`, value   `NAME` = value   (not `A` + `NAME` (sum))
AFTER = re.compile(rf"(?<!\+ ){NAME}\**\s*(?:\(|, |= )\**(?:at most |at least |up to )?({VALUE})")
# value (`NAME`)   value (`NAME`:   value (`NAME`, text   (not a list of names)
BEFORE = re.compile(rf"({VALUE})\s*\({NAME}(?=[):]|, [^`])")
# Named next to a number that is not its value.
NOT_VALUES = {
    ("formats.md", "MAX_TRACE_SUBMIT_WINDOWS", "131,104 bytes"),  # the windows' bytes, named after
}


def flat(path: Path) -> str:
    return re.sub(r"\s*\n\s*", " ", path.read_text())


def number(text: str) -> float:
    """The value a document's `text` states: 1,024 / 8 KiB / 2^62 s / 128 KiB - 2 - 8,192."""
    total: float = 0
    for sign, term in re.findall(rf"(^|-|less)\s*({_NUMBER})", text):
        match = re.fullmatch(r"(2\^\d+|[\d,.]+)\s*(\w*)", term)
        assert match, term
        digits, unit = match.groups()
        value = 2 ** int(digits[2:]) if digits.startswith("2^") else float(digits.replace(",", ""))
        total += (-1 if sign else 1) * value * UNITS.get(unit, 1)
    return total


@cache
def constant(name: str) -> Any:
    """`name`'s value: in troth.limits or a submodule, else in the one module defining it."""
    for module in LIMIT_MODULES:
        if hasattr(importlib.import_module(module), name):
            return getattr(importlib.import_module(module), name)
    found = subprocess.run(
        ["grep", "-rlE", rf"^{name}(: [^=]+)? = ", str(ROOT / "src" / "troth")],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    for path in found:
        module = ".".join(Path(path).relative_to(ROOT / "src").with_suffix("").parts)
        value = getattr(importlib.import_module(module.removesuffix(".__init__")), name, None)
        if value is not None:
            return value
    return None


def stated() -> Iterator[tuple[str, str, str]]:
    """(document, constant, value text) for each limit named beside a value."""
    for path in READ:
        text = flat(path)
        for match in AFTER.finditer(text):
            yield path.name, match.group(1), match.group(2)
        for match in BEFORE.finditer(text):
            yield path.name, match.group(2), match.group(1)


def test_the_documents_name_many_limits_beside_their_values() -> None:
    numeric = [s for s in stated() if isinstance(constant(s[1]), int | float)]
    assert len(numeric) > 150


def test_every_limit_named_beside_a_value_states_the_constants_value() -> None:
    wrong = []
    for document, name, text in stated():
        value = constant(name)
        if not isinstance(value, int | float) or (document, name, text) in NOT_VALUES:
            continue
        if abs(number(text) - value) > 1e-9:
            wrong.append(f"{document}: `{name}` stated as {text!r}, is {value}")
    assert not wrong, "\n".join(wrong)


def test_the_exceptions_are_still_in_the_documents() -> None:
    assert set(stated()) >= NOT_VALUES


def size(n: int) -> str:
    for unit in ("MiB", "KiB"):
        if n % UNITS[unit] == 0:
            return f"{n // UNITS[unit]:,} {unit}"
    return f"{n:,} bytes"


def limits_table() -> dict[str, str]:
    text = (ROOT / "docs" / "formats.md").read_text().split("## Limits (`src/troth/limits/`)")[1]
    return dict(re.findall(r"^\| ([^|]+) \| (.+) \|$", text, re.M))


def test_the_formats_limits_table_states_the_current_values() -> None:
    from troth.channel.packets import PACKET_LIMIT
    from troth.limits import gates as g

    n = limits
    frame, packet = n.MAX_TRANSPORT_FRAME, n.MAX_TRANSPORT_FRAME - PACKET_LIMIT
    expected = {
        "CBOR document": f"{size(n.MAX_CBOR_BYTES)}, depth {n.MAX_CBOR_DEPTH}, "
        f"{n.MAX_CBOR_ITEMS:,} items",
        "identity history": f"{n.MAX_IDENTITY_CHANGES} changes, "
        f"{size(n.MAX_IDENTITY_HISTORY_BYTES)}",
        "change body / attestation": f"{n.MAX_CHANGE_BYTES} bytes each",
        "clock skew allowed": f"{n.MAX_CLOCK_SKEW_SECONDS} s",
        "node / identity name": f"{n.MAX_NAME_LENGTH} characters",
        "recorded MCP server grantors": f"{n.MAX_MCP_GRANTOR_RECORDS:,} names "
        f"(`MAX_MCP_GRANTOR_RECORDS`), {n.MAX_MCP_GRANTORS} authorities",
        "credential": f"{size(n.MAX_CREDENTIAL_BYTES)} (refused when made, as when read); "
        f"{n.MAX_ATTRIBUTES} attributes; {n.MAX_ATTRIBUTE_VALUES} values per set; "
        f"{n.MAX_ATTRIBUTE_TEXT} characters",
        "delegation": f"{n.MAX_CAVEATS} caveats of {n.MAX_CAVEAT_TEXT:,} characters; purpose "
        f"{n.MAX_PURPOSE_TEXT} characters; {n.MAX_DELEGATION_LINKS} links",
        "chain bundle (read / made by `delegate`) / ticket": f"{size(n.MAX_CHAIN_BYTES)} / "
        f"{n.MAX_PRESENTED_CHAIN_BYTES:,} bytes / {size(n.MAX_TICKET_BYTES)}",
        "revocation feed": f"{n.MAX_FEED_ENTRIES:,} entries; entry "
        f"{n.MAX_REVOCATION_ENTRY_BYTES:,} bytes; page {size(n.MAX_FEED_PAGE_BYTES)}; "
        f"reason {n.MAX_REVOCATION_REASON} characters",
        "refuted changes": f"{n.MAX_REFUTED_CHANGES:,} recorded",
        "member credentials": f"{n.MAX_LIVE_CREDENTIALS_PER_MEMBER} unexpired per member",
        "service message": f"{size(n.MAX_SERVICE_MESSAGE)} (request or response)",
        "channel": f"frame {n.MAX_CHANNEL_FRAME:,} bytes; {n.MAX_CHANNEL_CREDENTIALS} chains "
        f"per handshake; {n.MAX_REASSEMBLIES} reassemblies of at most "
        f"{size(n.MAX_APPLICATION_MESSAGE)}; a BATCH member at least {n.MIN_BATCH_MESSAGE} "
        f"bytes (`MIN_BATCH_MESSAGE`); a receiver derives the keys of at most "
        f"{n.MAX_REKEY_EPOCHS_AHEAD} epochs",
        "routing / TCP": f"route {n.MAX_ROUTE_LENGTH} hops, address {n.MAX_ADDRESS_TEXT} "
        f"characters, route header {n.MAX_ROUTE_HEADER_BYTES:,} bytes; TCP frame {size(frame)}; "
        f"channel packet {size(frame)} - {packet:,}; frames queued for a connection whose "
        f"write buffer is full {size(n.MAX_CONNECTION_QUEUE_BYTES)}, for the connections of one "
        f"peer address {size(n.MAX_QUEUED_BYTES_PER_SOURCE)} (a quarter of the total), for all "
        f"connections {size(n.MAX_QUEUED_BYTES)}",
        "relays": f"{n.MAX_RELAYS:,} names on a node ({2 * n.MAX_RELAYS:,} within the "
        f"authorities' shares), {n.MAX_RELAYS_PER_OWNER} per owner identity, names of "
        f"{n.MAX_ADDRESS_TEXT} characters; relays.json {size(n.MAX_RELAY_FILE_BYTES)}; a "
        f"node's own relay names {n.MAX_OWN_RELAYS}, each route at most {n.MAX_ROUTE_LENGTH} "
        f"hops (own-relays.json {size(n.MAX_OWN_RELAYS_FILE_BYTES)})",
        "trace outbox": f"{n.TRACE_OUTBOX_RECORDS:,} records and {size(n.TRACE_OUTBOX_BYTES)}, "
        f"queued and set aside together; denials {n.TRACE_OUTBOX_DENIAL_PERCENT}%, one member "
        f"{n.TRACE_OUTBOX_SOURCE_PERCENT}%, all members {n.TRACE_OUTBOX_MEMBERS_PERCENT}%",
        "trace service / show": f"at most every {n.TRACE_MEMBER_CHECKPOINT_SECONDS} s "
        "(`TRACE_MEMBER_CHECKPOINT_SECONDS`)",
        "Cedar text": f"{g.MAX_CEDAR_NESTING} levels of brackets (`<` in a schema); "
        f"{g.MAX_CEDAR_OPERATORS:,} operators per statement; a schema's hierarchy "
        f"{g.MAX_CEDAR_ANCESTORS:,} (type, ancestor) pairs, its actions "
        f"{g.MAX_CEDAR_ENVIRONMENTS:,} (principal type, resource type) environments; "
        f"policies {g.MAX_POLICY_TEXT // 1024} Ki characters",
        "channel refresh": f"{n.CHANNEL_REFRESH_BURST} in-band credential refreshes back to "
        "back, one more a second",
        "rollback guard": f"{n.MAX_ROLLBACK_GUARD_BYTES} bytes exactly",
    }
    assert n.CHANNEL_REFRESH_SECONDS == 1  # "one more a second"
    table = limits_table()
    stale = [f"{row}: wants {want!r}" for row, want in expected.items() if want not in table[row]]
    assert not stale, "\n".join(stale)


def test_every_failure_code_a_document_names_exists() -> None:
    missing = [
        match.group(0)
        for path in READ
        for match in re.finditer(r"\b(\w+Failure|DecodeProblem)\.([A-Z][A-Z_]+)\b", flat(path))
        if not hasattr(getattr(errors, match.group(1), None), match.group(2))
    ]
    assert not missing


def test_every_reason_an_authority_answers_is_listed_with_its_requests() -> None:
    section = (
        flat(ROOT / "docs" / "formats.md").split("## Requests to an authority")[1].split("## ")[0]
    )
    unlisted = [
        reason.name
        for reason in errors.AuthorityFailure
        if f"`{reason.name}`" not in section or f"`{reason.value}`" not in section
    ]
    assert not unlisted


def test_the_channel_close_codes_are_the_enums() -> None:
    text = flat(ROOT / "docs" / "protocols.md")
    listed = text.split("Close codes (the byte in CLOSE frames and `ChannelError.reason`): ")[
        1
    ].split(".")[0]
    expected = ", ".join(
        f"{code.value} {code.name.lower().replace('_', ' ')}" for code in errors.ChannelFailure
    )
    assert listed == expected


def test_every_file_a_document_names_exists() -> None:
    missing = []
    for path in [*READ, ROOT / "benchmarks" / "README.md"]:
        for match in re.finditer(
            r"(?<![\w/.-])((?:src/)?(?:troth|tests|benchmarks|docs)/[\w./*-]*[\w*/])",
            path.read_text(),
        ):
            named = match.group(1)
            tried = [named, f"src/{named}"] if named.startswith("troth/") else [named]
            if not any(
                list(ROOT.glob(each)) if "*" in each else (ROOT / each).exists() for each in tried
            ):
                missing.append(f"{path.relative_to(ROOT)}: {named}")
    # a profile of the time, when the services were one module (review 56r: left as measured)
    assert missing == ["benchmarks/README.md: troth/node/services.py"]


def command_lines() -> Iterator[tuple[str, str]]:
    for path in READ:
        text = path.read_text()
        for block in re.findall(r"```\w*\n(.*?)```", text, re.S):
            for line in block.replace("\\\n", " ").splitlines():
                if line.strip().removeprefix("$").strip().startswith("troth "):
                    yield path.name, line.strip().removeprefix("$").strip()
        for match in re.finditer(r"`(troth [a-z][^`]*)`", text):
            yield path.name, match.group(1)


def parse(line: str) -> None:
    """Parse `line` as the CLI would, to its last command, running nothing."""
    line = re.split(r"\s+#\s|\s*(?:\||&&|;|>|<<)\s*", line)[0]
    command: click.Command = cli
    arguments = shlex.split(line.replace("[", "").replace("]", "").replace("...", ""))[1:]
    context: click.Context | None = None
    name = "troth"
    while True:
        context = command.make_context(name, arguments, parent=context)
        if not isinstance(command, click.Group):
            return
        rest = [*context._protected_args, *context.args]
        if not rest:
            return
        found, sub, arguments = command.resolve_command(context, rest)
        assert found is not None
        assert sub is not None
        name, command = found, sub


def test_every_command_line_shown_names_commands_and_options_that_exist() -> None:
    unknown, checked = [], 0
    for document, line in command_lines():
        try:
            parse(line)
        except ValueError:  # shell quoting shlex does not take (a caveat with `<`): README runs it
            continue
        except click.NoSuchOption as exc:
            unknown.append(f"{document}: {line!r}: {exc.format_message()}")
        except (
            click.UsageError
        ) as exc:  # a placeholder's value, an argument left out: shown as such
            if "No such command" in exc.format_message() and "identity/credential" not in line:
                unknown.append(f"{document}: {line!r}: {exc.format_message()}")
        except click.exceptions.Exit:
            pass
        checked += 1
    assert checked > 300
    assert not unknown, "\n".join(unknown)


def documented_formats() -> dict[tuple[str, int], set[int]]:
    """(type tag, version) -> the field counts the grammar blocks of formats.md and protocols.md
    give it (an elided form, `..., ]`, gives none)."""
    shown: dict[tuple[str, int], set[int]] = {}
    for name in ("formats.md", "protocols.md"):
        for block in re.findall(r"```\w*\n(.*?)```", (ROOT / "docs" / name).read_text(), re.S):
            grammar = re.sub(r";[^\n]*", "", block)
            for match in re.finditer(r'\[\s*"(troth\.[a-z0-9.-]+)",\s*(\d+),', grammar):
                depth = parens = commas = 0
                for end in range(match.start(), len(grammar)):
                    char = grammar[end]
                    depth += (char in "[{") - (char in "]}")
                    parens += (char == "(") - (char == ")")
                    commas += char == "," and depth == 1 and parens == 0
                    if depth == 0:
                        break
                fields = shown.setdefault((match.group(1), int(match.group(2))), set())
                if "..., [" not in grammar[match.start() : end] and not re.search(
                    rf'"{re.escape(match.group(1))}", \d+, \.\.\.', grammar[match.start() : end]
                ):
                    fields.add(commas + 1)
    return shown


def vector_formats() -> dict[tuple[str, int], set[int]]:
    """(type tag, version) -> the field counts of the CBOR documents in tests/vectors/."""
    seen: dict[tuple[str, int], set[int]] = {}

    def walk(item: object) -> None:
        if isinstance(item, list):
            if len(item) > 1 and isinstance(item[0], str) and item[0].startswith("troth."):
                seen.setdefault((item[0], item[1]), set()).add(len(item))
            for each in item:
                walk(each)
        elif isinstance(item, dict):
            for each in item.values():
                walk(each)
        elif isinstance(item, bytes) and len(item) > 2:
            read(item)

    def read(data: bytes) -> None:
        with contextlib.suppress(DecodeError):  # bytes that are no CBOR document: keys, hashes
            walk(cbor.decode(data))

    def strings(item: object) -> Iterator[str]:
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            for each in item:
                yield from strings(each)
        elif isinstance(item, str):
            yield item

    for path in sorted((ROOT / "tests" / "vectors").rglob("*.json")):
        for text in strings(json.loads(path.read_text())):
            if re.fullmatch(r"(?:[0-9a-f]{2}){5,}", text):
                read(bytes.fromhex(text))
            elif text.startswith("troth-ticket:"):
                code = text.removeprefix("troth-ticket:")
                read(base64.urlsafe_b64decode(code + "=" * (-len(code) % 4)))
    return seen


def test_the_documented_type_tags_and_versions_are_the_golden_vectors() -> None:
    assert set(documented_formats()) == set(vector_formats())


@pytest.mark.parametrize("tag", sorted(documented_formats()))
def test_each_documented_format_has_the_vectors_number_of_fields(tag: tuple[str, int]) -> None:
    assert documented_formats()[tag] <= vector_formats()[tag]


def defaults_table(after: str) -> dict[str, str]:
    """The first markdown table after `after` in docs/protocols.md: its first cell -> second."""
    text = (ROOT / "docs" / "protocols.md").read_text().split(after, 1)[1]
    table = re.search(r"(?:^\|.*\|\n)+", text, re.M)
    assert table
    return dict(re.findall(r"^\| ([^|]+) \| ([^|]+) \|", table.group(0), re.M))


def stale_rows(table: dict[str, str], expected: dict[str, str]) -> list[str]:
    """The rows (one each whose label starts with a key of `expected`) whose value does not
    start with what `expected` says."""
    stale = []
    for start, want in expected.items():
        rows = [value for label, value in table.items() if label.startswith(start)]
        if len(rows) != 1 or not rows[0].startswith(want):
            stale.append(f"{start}: wants {want!r}, reads {rows}")
    return stale


def seconds(value: float) -> str:
    return f"{value:g} s"


def test_the_tcp_defaults_table_states_tcp_settings_defaults() -> None:
    from troth.transport import TcpSettings

    tcp = TcpSettings()
    expected = {
        "connect timeout": seconds(tcp.connect_timeout),
        "first frame": seconds(tcp.first_frame_timeout),
        "stalled frame": seconds(tcp.frame_timeout),
        "idle": seconds(tcp.idle_timeout),
        "accepted connections in total": f"{tcp.max_connections:,}, or half",
        "accepted connections per source": str(tcp.max_connections_per_source),
        "reply paths per connection": f"{tcp.max_reply_paths:,}",
        "frames waiting to be routed per connection": str(tcp.max_queued_frames),
        "frames waiting to be routed from all": size(tcp.max_routing_total),
        "write buffer per connection": size(tcp.write_buffer),
        "write buffers of all connections": size(tcp.write_buffer_total),
        "queue per connection": size(tcp.max_queued_bytes),
        "queues of all connections": size(tcp.max_queued_total),
        "stall timeout": seconds(tcp.stall_timeout),
        "write timeout": seconds(tcp.write_timeout),
    }
    table = defaults_table("**Limits** (`troth.transport.TcpSettings`, defaults")
    assert not stale_rows(table, expected)


def test_the_channel_defaults_table_states_channel_limits_defaults() -> None:
    from troth.channel.reassembly import REASSEMBLY_TIMEOUT
    from troth.channel.secure import KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT
    from troth.node.channel_ends import PROBE_AFTER, PROBE_WAIT
    from troth.node.channel_limits import ChannelLimits

    channel = ChannelLimits()
    message, frame = limits.MAX_APPLICATION_MESSAGE, limits.MAX_CHANNEL_FRAME
    assert channel.max_reassembly_per_peer == 2 * (message + frame)
    assert channel.max_reassembly_total == 8 * (message + frame)
    expected = {
        "handshake timeout": seconds(channel.handshake_timeout),
        "keepalive interval": f"{seconds(KEEPALIVE_INTERVAL)} idle",
        "keepalive timeout": seconds(KEEPALIVE_TIMEOUT),
        "unanswered channel": f"{seconds(PROBE_AFTER)} after a message with nothing "
        f"authenticated back, a PING; {seconds(PROBE_WAIT)} more",
        "half-open handshakes per source": str(channel.max_half_open_per_source),
        "half-open handshakes in total": str(channel.max_half_open),
        "open channels one peer identity opened": str(channel.max_channels_per_peer),
        "open channels the peers of one member": str(channel.max_channels_per_member),
        "channels (handshaking or open) that peers from one source": str(
            channel.max_channels_per_source
        ),
        "open channels peers opened, node-wide": f"{channel.max_open_channels:,}",
        "reassembly bytes per member": f"2 \N{MULTIPLICATION SIGN} ({size(message)} + {frame:,}",
        "reassembly bytes of all peers": f"8 \N{MULTIPLICATION SIGN} ({size(message)} + {frame:,})",
        "reassembly timeout": f"the channel settings' ({seconds(REASSEMBLY_TIMEOUT)})",
        "channel timer": f"every {seconds(channel.reassembly_sweep)}",
        "reply paths per channel": f"{channel.max_reply_paths:,}",
    }
    table = defaults_table("**Limits on a node** (`troth.node.channel_limits.ChannelLimits`")
    assert not stale_rows(table, expected)


def section(document: str, heading: str) -> str:
    """`heading`'s section of docs/`document`, to the next heading of its level or above."""
    text = (ROOT / "docs" / document).read_text().split(heading, 1)[1]
    return re.split(r"^## ", text, flags=re.M)[0]


def test_every_node_json_key_is_documented() -> None:
    from troth.node.config import NodeConfig

    named = set(re.findall(r"`([a-z_0-9]+)`", section("formats.md", "## Node configuration")))
    assert {field.name for field in fields(NodeConfig)} <= named


def test_the_lease_tables_columns_and_numbers_are_the_stores(tmp_path: Path) -> None:
    from troth.secrets.audit import AuditKind
    from troth.secrets.lease import EndReason, LeaseState
    from troth.secrets.store_schema import create_tables
    from troth.storage import SqliteDatabase

    text = re.sub(r"\s+", " ", section("formats.md", "## Leases (`troth.secrets`"))
    db = SqliteDatabase(tmp_path / "node.db")
    try:
        conn = db.connection()
        with db.transaction():
            create_tables(conn, db)
        columns = [row[1] for row in conn.execute("PRAGMA table_info(secret_leases)")]
    finally:
        db.close()
    described = text.split("secret_leases ", 1)[1].split("; indexes:")[0]
    assert [column for column in columns if not re.search(rf"\b{column}\b", described)] == []
    states = ", ".join(f"{s.value} {s.name.lower()}" for s in LeaseState)
    ends = ", ".join(f"{r.value} {r.name.lower().replace('_', ' ')}" for r in EndReason)
    assert f"state ({states})" in text
    assert f"end_reason ({ends})" in text
    kinds = re.search(r"secret_audit seq, at, kind \(([a-z, ]+)\)", text)
    assert kinds
    assert sorted(kinds.group(1).split(", ")) == sorted(kind.value for kind in AuditKind)


def test_every_environment_variable_and_option_a_document_names_exists() -> None:
    from troth.node.channel_limits import ChannelLimits
    from troth.transport import TcpSettings

    prefixed = {
        "TROTH_CHANNELS_": {field.name.upper() for field in fields(ChannelLimits)},
        "TROTH_TCP_": {field.name.upper() for field in fields(TcpSettings)},
    }
    source = "\n".join(path.read_text() for path in (ROOT / "src" / "troth").rglob("*.py"))
    tests = "\n".join(path.read_text() for path in (ROOT / "tests").glob("*.py"))
    options: set[str] = set()
    for _, command in commands():
        for param in command.params:
            options.update(param.opts, param.secondary_opts)
    unknown = []
    for path in READ:
        text = path.read_text()
        for name in sorted(set(re.findall(r"\bTROTH_[A-Z0-9_]*[A-Z0-9]\b", text))):
            prefix = next((p for p in prefixed if name.startswith(p)), None)
            known = (
                name.removeprefix(prefix) in prefixed[prefix]
                if prefix is not None
                else name in source or name in tests
            )
            if not known:
                unknown.append(f"{path.name}: {name}")
        unknown += [
            f"{path.name}: {option}"
            for option in sorted(set(re.findall(r"`(--[a-z][a-z0-9-]+)", text)))
            if option not in options
        ]
    assert not unknown, "\n".join(unknown)


def commands(
    command: click.Command = cli, path: str = "troth"
) -> Iterator[tuple[str, click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from commands(sub, f"{path} {name}")


def test_every_control_operation_and_argument_is_in_the_node_control_table() -> None:
    from troth.node.control import OPERATIONS

    text = section("protocols.md", "## Node control")
    documented: dict[str, set[str]] = {}
    for operations, arguments in re.findall(r"^\| (`[^|]+) \| ([^|]+) \|", text, re.M):
        for operation in re.findall(r"`([a-z.-]+)`", operations):
            documented[operation] = set(re.findall(r"`([a-z_]+)`", arguments))
    assert set(documented) == set(OPERATIONS)
    unnamed = [
        f"{operation}: {field.name}"
        for operation, spec in OPERATIONS.items()
        for field in fields(spec.arguments)
        if field.name not in documented[operation]
    ]
    assert not unnamed


def test_every_broker_method_is_in_the_broker_table() -> None:
    from troth.node.services.broker import BrokerService

    text = section("protocols.md", "## Broker service")
    documented = re.findall(r"^\| `([a-z-]+)` \|", text, re.M)
    methods = re.findall(r'^\s+"([a-z-]+)": Method\(', inspect.getsource(BrokerService), re.M)
    assert sorted(documented) == sorted(methods)
