"""Review 56r, docs: what the documents state, held to the code, so that changing one without
the other fails here (beside tests/test_review48g_formats.py and test_review48g_snippets.py,
which hold the formats.md limits table, type tags, node.json, control operations, the broker's
columns, the load tables, and each command line's command and option names).

1. A limit named beside its value anywhere (`MAX_X` (8 KiB), `MAX_X`, 64, 16 MiB (`MAX_X`),
   `X` = 30 s) states the constant's current value, wherever it is defined (troth.limits and
   its submodules first, else the module that defines it). `MIN_REASSEMBLY_BUDGET` was
   "128 KiB", two frames of 65,535 bytes.
2. Every failure code a document names (`CredentialFailure.X`, ...) exists; every reason an
   authority answers is listed where its requests are (docs/formats.md, "Requests to an
   authority": none was, RATE_LIMITED of review 56g among them); the channel close codes are
   the enum's.
3. Every file a document names exists; every `troth ...` command line shown outside
   docs/cli.md parses with click's own parser, running nothing; every other TROTH_* variable
   is read somewhere and every option named alone is some command's.
4. Each grammar block of docs/formats.md and docs/protocols.md has as many fields as the
   golden vectors in tests/vectors/ of its type tag and version (the revocation page lacked a
   comma, so it read as five fields of six); the lease states, end reasons and broker methods
   are the code's.
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
from functools import cache
from pathlib import Path
from typing import Any

import click
import pytest

from troth import errors
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
    words = shlex.split(line.replace("[", "").replace("]", ""))[1:]
    # an elision: an option's value where it takes one, else nothing
    arguments = [
        "X" if word == "..." else word
        for before, word in zip(["", *words], words, strict=False)
        if word != "..." or before.startswith("--")
    ]
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


def test_every_command_line_shown_parses_with_the_clis_own_parser() -> None:
    """Beside tests/test_review48g_snippets.py's check of each line's command and option names,
    click parses it, running nothing: no option unknown where it stands, no argument more than
    the command takes (an argument left out, a placeholder's value, are shown as such)."""
    wrong, checked = [], 0
    for document, line in command_lines():
        try:
            parse(line)
        except ValueError:  # shell quoting shlex does not take (a caveat with `<`): README runs it
            continue
        except click.UsageError as exc:
            message = exc.format_message()
            if (
                isinstance(exc, click.NoSuchOption)
                or "extra argument" in message
                or ("No such command" in message and "identity/credential" not in line)
            ):
                wrong.append(f"{document}: {line!r}: {message}")
        except click.exceptions.Exit:
            pass
        checked += 1
    assert checked > 300
    assert not wrong, "\n".join(wrong)


def documented_formats() -> dict[tuple[str, int], set[int]]:
    """(type tag, version) -> the field counts the grammar blocks of formats.md and protocols.md
    give it (an elided form gives none)."""
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
                counts = shown.setdefault((match.group(1), int(match.group(2))), set())
                if not re.match(r'\[\s*"[^"]+",\s*\d+,\s*\.\.\.', grammar[match.start() :]):
                    counts.add(commas + 1)  # not an elided form: `["tag", 2, ..., [window]]`
    return shown


@cache
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


@pytest.mark.parametrize("tag", sorted(documented_formats()))
def test_each_documented_format_has_the_vectors_number_of_fields(tag: tuple[str, int]) -> None:
    assert documented_formats()[tag] <= vector_formats()[tag]


def section(document: str, heading: str) -> str:
    """`heading`'s section of docs/`document`, to the next heading of its level or above."""
    text = (ROOT / "docs" / document).read_text().split(heading, 1)[1]
    return re.split(r"^## ", text, flags=re.M)[0]


def test_the_lease_states_and_end_reasons_are_the_stores_numbers() -> None:
    """docs/formats.md, "Leases" (tests/test_review48g_formats.py holds its columns): the
    numbers `state` and `end_reason` are stored as."""
    from troth.secrets.lease import EndReason, LeaseState

    text = re.sub(r"\s+", " ", section("formats.md", "## Leases (`troth.secrets`"))
    states = ", ".join(f"{s.value} {s.name.lower()}" for s in LeaseState)
    ends = ", ".join(f"{r.value} {r.name.lower().replace('_', ' ')}" for r in EndReason)
    assert f"state ({states})" in text
    assert f"end_reason ({ends})" in text


def test_every_environment_variable_and_option_a_document_names_exists() -> None:
    """Beside tests/test_review48g_snippets.py's TROTH_TCP_* and TROTH_CHANNELS_* fields and
    the options of each command line shown: every other TROTH_* variable is read somewhere,
    and every option named alone (`--max-feed-age`) is an option of some command."""
    source = "\n".join(
        path.read_text() for root in ("src", "tests") for path in (ROOT / root).rglob("*.py")
    )
    options = all_options()
    unknown = []
    for path in READ:
        text = path.read_text()
        variables = set(re.findall(r"\bTROTH_[A-Z0-9_]*[A-Z0-9]\b", text))
        unknown += [
            f"{path.name}: {name}"
            for name in sorted(variables)
            if not name.startswith(("TROTH_TCP_", "TROTH_CHANNELS_")) and name not in source
        ]
        unknown += [
            f"{path.name}: {option}"
            for option in sorted(set(re.findall(r"`(--[a-z][a-z0-9-]+)", text)))
            if option not in options
        ]
    assert not unknown, "\n".join(unknown)


def all_options(command: click.Command = cli) -> set[str]:
    found = {option for param in command.params for option in (*param.opts, *param.secondary_opts)}
    for sub in getattr(command, "commands", {}).values():
        found |= all_options(sub)
    return found


def test_every_broker_method_is_in_the_broker_table() -> None:
    from troth.node.services.broker import BrokerService

    text = section("protocols.md", "## Broker service")
    documented = re.findall(r"^\| `([a-z-]+)` \|", text, re.M)
    methods = re.findall(r'^\s+"([a-z-]+)": Method\(', inspect.getsource(BrokerService), re.M)
    assert sorted(documented) == sorted(methods)


def size(n: int) -> str:
    for unit in ("MiB", "KiB"):
        if n % UNITS[unit] == 0:
            return f"{n // UNITS[unit]:,} {unit}"
    return f"{n:,} bytes"


def test_the_limit_lists_written_out_state_the_current_values() -> None:
    """The sentences that list a part's limits in words, no constant named: docs/secrets.md's
    and docs/formats.md's "Policy bundles"."""
    from troth import limits as n
    from troth.limits import gates as g
    from troth.limits import leases

    secrets = (
        f"secret name {n.MAX_SECRET_NAME} characters, value {size(n.MAX_SECRET_VALUE_BYTES)}, "
        f"config {size(n.MAX_SECRET_CONFIG_BYTES)}, max lease ttl {n.MAX_LEASE_TTL // 86_400} "
        f"days, {n.MAX_SECRET_GRANTORS} authorities in a secret's `grantable_by`, default "
        f"quota {n.DEFAULT_LEASE_QUOTA} open leases per account",
        f"issues and renewals {n.LEASE_ISSUE_BURST} at once then {n.LEASE_ISSUE_RATE} a second "
        f"per account and {n.LEASE_ISSUE_TOTAL_BURST:,} at once then {n.LEASE_ISSUE_TOTAL_RATE} "
        f'a second per broker ("Issue rate"), forwards {leases.LEASE_FORWARD_BURST} at once then '
        f"{leases.LEASE_FORWARD_RATE} a second per account and "
        f"{leases.LEASE_FORWARD_TOTAL_BURST:,} at once then {leases.LEASE_FORWARD_TOTAL_RATE} a "
        f"second per broker, {n.MAX_LEASE_SCOPES} scopes per lease",
        f"list answers {n.MAX_LEASE_LIST:,} leases",
        f"JWT {size(n.MAX_TOKEN_BYTES)}, JWKS {size(n.MAX_JWKS_BYTES)} / {n.MAX_JWKS_KEYS} keys, "
        f"http-inject request and response bodies {size(n.MAX_INJECT_REQUEST_BYTES)}, "
        f"{n.MAX_INJECT_HEADERS} headers of {size(n.MAX_INJECT_HEADER_BYTES)} and "
        f"{size(n.MAX_INJECT_HEADERS_TOTAL)} in all, target {n.MAX_INJECT_TARGET:,} characters, "
        f"{n.MAX_INJECT_RULES} rules per secret, a forward's timeout {n.MAX_INJECT_TIMEOUT} s; "
        f"the served broker runs at most {n.MAX_FORWARDS} forwards at once, "
        f"{n.MAX_FORWARDS_PER_AGENT} per identity.",
    )
    bundles = (
        f"a bundle {size(g.MAX_POLICY_BUNDLE_BYTES)} (so it fits one service message); policy "
        f"text {size(g.MAX_POLICY_TEXT)}, {g.MAX_POLICIES:,} policies, `@id` "
        f"{g.MAX_POLICY_ID_TEXT} characters; schema fragment {size(g.MAX_POLICY_SCHEMA_TEXT)}; "
        f"{g.MAX_TOOLS} tools, each schema {size(g.MAX_TOOL_SCHEMA_BYTES)} of canonical JSON, "
        f"nested at most {g.MAX_TOOL_SCHEMA_DEPTH} deep, {g.MAX_TOOL_PROPERTIES} properties per "
        f"object; {g.MAX_SERVICES} services of at most {g.MAX_SERVICES} methods; lifetime "
        f"{g.MAX_POLICY_BUNDLE_TTL // 86_400} days; tool-call arguments "
        f"{size(g.MAX_TOOL_ARGUMENTS_BYTES)} of JSON",
    )
    assert n.MAX_INJECT_RESPONSE_BYTES == n.MAX_INJECT_REQUEST_BYTES  # "bodies" share one figure
    stale = [
        f"{document}: {want!r}"
        for document, wants in (("secrets.md", secrets), ("formats.md", bundles))
        for want in wants
        if want not in flat(ROOT / "docs" / document)
    ]
    assert not stale, "\n".join(stale)


def test_every_refusal_the_broker_answers_or_a_validator_raises_is_named() -> None:
    """A broker's refusal travels as its SecretFailure name (docs/protocols.md, "Broker
    service"): every name is listed there, the JWT_* ones a validator's (docs/secrets.md)."""
    broker = flat(ROOT / "docs" / "protocols.md").split("## Broker service")[1].split("## ")[0]
    secrets = flat(ROOT / "docs" / "secrets.md")
    unnamed = [
        reason.name
        for reason in errors.SecretFailure
        if f"`{reason.name}`" not in (secrets if reason.name.startswith("JWT_") else broker)
    ]
    assert not unnamed


def test_every_identity_failure_is_named_in_the_formats() -> None:
    """docs/formats.md gives the text of each reason an identity's history or a purpose-key
    attestation is refused for (the attestation's decoding, identifier, purpose and staleness
    reasons were not given)."""
    formats = flat(ROOT / "docs" / "formats.md")
    unnamed = [f.name for f in errors.IdentityFailure if f"`{f.value}`" not in formats]
    assert not unnamed


@pytest.mark.parametrize(
    "failures",
    [errors.DecodeProblem, errors.CredentialFailure, errors.PolicyFailure, errors.TraceFailure],
)
def test_every_reason_of_the_other_layers_is_named_in_a_document(failures: Any) -> None:
    """Each reason a verifier can be refused with is named (its text or its name) somewhere a
    reader of the documents finds it."""
    text = " ".join(flat(path) for path in READ)
    unnamed = [f.name for f in failures if f.value not in text and f"`{f.name}`" not in text]
    assert not unnamed


def test_every_module_the_architecture_names_exists() -> None:
    """docs/architecture.md names modules relative to src/troth (`node/trust.py`), and the
    service modules of `node/services/` by their names."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    package = ROOT / "src" / "troth"
    named = set(re.findall(r"`((?:[a-z_]+/)+(?:[a-z_]+\.py)?)`", text))
    assert len(named) > 20
    missing = [
        path for path in sorted(named) if not (package / path.removeprefix("troth/")).exists()
    ]
    row = next(line for line in text.splitlines() if line.startswith("| `node/services/`"))
    services = re.findall(r"`([a-z_]+)`", re.sub(r"\([^()]*\)", "", row.split(" | ")[1]))
    missing += [
        f"node/services/{name}.py"
        for name in services
        if not (package / "node" / "services" / f"{name}.py").exists()
    ]
    assert not missing
