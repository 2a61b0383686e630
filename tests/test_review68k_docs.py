"""Review 68k, docs: what the documents say about errors and the CLI, held to the code.

1. The error tree drawn in `troth.errors` (docs/python.md, "Errors": "The tree is drawn in
   `troth.errors`") left out `Congested`, the RoutingError a caller gets when its next hop's
   peer stopped reading: a reader of the tree did not know it could be raised. Every exception
   class the module defines is now drawn, under its base.
2. Its exit code table said a DecodeError exits 1 and a ConfigError 3, but
   `troth.cli.output.exit_code` gives the two that are also a ValueError, `MalformedText` and
   `OutOfRange`, 2 (usage, as README.md's table says of "a bad option or value"); and it named
   no code for a ChannelError refused for another reason than the network, a RoutingError or
   a RemoteError (all 1). The table now gives every class the code the CLI gives it (a class
   not named, the code of its nearest base named).
3. `troth bench --only PATTERN` matching no case answered "(troth bench --json lists them
   all)": followed, that runs every benchmark, minutes of a shared machine's two cores, to list
   twenty names. The refusal now names the benchmarks.
4. docs/storage.md ("Identity creation") told the reader to run `identity create --name X`
   again: `--name` is a spelling the CLI refuses ("--name is gone"), and
   tests/test_review56r_docs.py's parse of each command line shown let that refusal pass (a
   plain UsageError, like a missing argument), and read only spans that start with `troth`.
   Its progress lines were quoted in another order than printed (`created i/n (not yet
   committed)`) and its refusal was the single create's. Every command shown, `troth ...` or a
   bare `group command ...` span, is now parsed with gone spellings refused, and the quoted
   lines are what `troth identity create X --count n` prints.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import click
from click.testing import CliRunner

import troth.errors
from tests.test_review56r_docs import command_lines, parse
from troth.bench import ALL_CASES
from troth.cli.main import cli
from troth.cli.output import EXIT_IO, exit_code
from troth.errors import ChannelError, ChannelFailure, TrothError

DOC = troth.errors.__doc__ or ""


def _classes() -> dict[str, type[TrothError]]:
    """Every exception class troth.errors defines, by name."""
    return {
        name: value
        for name, value in vars(troth.errors).items()
        if inspect.isclass(value)
        and issubclass(value, TrothError)
        and value.__module__ == troth.errors.__name__
    }


def _tree() -> dict[str, str]:
    """The tree drawn in the docstring: each class name -> the name drawn above it."""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in DOC.splitlines():
        match = re.match(r"^([ │├└─]*)([A-Z]\w+)\b", line)
        if not match or ("──" not in match.group(1) and match.group(2) != "TrothError"):
            continue
        depth = len(match.group(1))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[match.group(2)] = stack[-1][1] if stack else ""
        stack.append((depth, match.group(2)))
    return parents


def _instance(cls: type[TrothError]) -> TrothError:
    """An instance of `cls` for its exit code (constructors differ; the code reads the type)."""
    error = cls.__new__(cls)
    if isinstance(error, ChannelError):
        error.reason = ChannelFailure.PEER_NOT_ALLOWED  # refused, not the network's failure
    return error


def _table() -> dict[str, int]:
    """The docstring's exit code table: each class name it lists -> the code it gives it."""
    text = " ".join(DOC.split("Exit codes", 1)[1].split())
    named: dict[str, int] = {}
    for code, names in re.findall(r"(\d) [^(;]*\(([^)]*)\)", text):
        for name in re.findall(r"\b[A-Z]\w+\b", names):
            named[name] = int(code)
    named.update({m: int(c) for c, m in re.findall(r"; (\d) ([A-Z]\w+);", text)})
    return named


def test_docs1_every_error_class_is_drawn_under_its_base() -> None:
    tree = _tree()
    assert tree["TrothError"] == ""
    drawn = {name: tree.get(name) for name in _classes()}
    wanted = {name: cls.__mro__[1].__name__ for name, cls in _classes().items()}
    wanted["TrothError"] = ""
    assert drawn == wanted


def test_docs2_the_exit_code_table_names_every_class_with_the_code_the_cli_gives() -> None:
    table = _table()
    assert table["ConfigError"] == 3
    assert table["NotFound"] == 2
    classes = _classes()
    del classes["TrothError"]  # the root: each layer's own class is named instead
    said = {  # a class not named exits as its nearest base named
        name: next((table[b.__name__] for b in cls.__mro__ if b.__name__ in table), None)
        for name, cls in classes.items()
    }
    assert said == {name: exit_code(_instance(cls)) for name, cls in classes.items()}


def test_docs2_a_channel_the_network_failed_exits_4_as_the_table_says() -> None:
    assert "a channel that timed out or whose connection closed" in " ".join(DOC.split())
    for reason in (ChannelFailure.TIMEOUT, ChannelFailure.PEER_CLOSED):
        error = ChannelError.__new__(ChannelError)
        error.reason = reason
        assert exit_code(error) == EXIT_IO


def test_docs3_a_pattern_matching_no_benchmark_names_them_instead_of_running_them() -> None:
    result = CliRunner().invoke(cli, ["bench", "--only", "no-such-bench", "--json"])
    assert result.exit_code == 2
    said = json.loads(result.stdout)
    assert said["error"] == "ValueError"
    assert "troth bench --json" not in said["message"]
    assert all(case.name in said["message"] for case in ALL_CASES)


ROOT = Path(__file__).resolve().parent.parent
GROUPS = sorted(name for name, command in cli.commands.items() if isinstance(command, click.Group))


def shown_commands() -> list[tuple[str, str]]:
    """(document, line) of every command the documents show: 56r's lines (blocks, `troth ...`
    spans) and each bare span naming a group's command (`identity create ...`)."""
    lines = list(command_lines())
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        if path.name == "cli.md":
            continue
        for match in re.finditer(rf"`((?:{'|'.join(GROUPS)}) [a-z][^`]*)`", path.read_text()):
            group, sub = match.group(1).split()[:2]
            if sub in getattr(cli.commands[group], "commands", {}):
                lines.append((path.name, f"troth {match.group(1)}"))
    return lines


def test_docs4_no_command_shown_uses_a_gone_spelling_or_an_option_its_command_lacks() -> None:
    lines = shown_commands()
    assert len(lines) > 400
    wrong = []
    for document, line in lines:
        try:
            parse(line)
        except click.UsageError as exc:
            message = exc.format_message()
            if "is gone" in message or isinstance(exc, click.NoSuchOption):
                wrong.append(f"{document}: {line!r}: {message}")
        except (ValueError, click.exceptions.Exit):  # quoting shlex does not take; --help
            continue
    assert wrong == []


def test_docs4_the_batch_creation_prints_what_docs_storage_quotes() -> None:
    storage = " ".join((ROOT / "docs" / "storage.md").read_text().split())
    quoted = ["created (not yet committed) i/n", "committing n identities ...", "committed n"]
    assert all(f"`{text}" in storage for text in quoted)
    runner = CliRunner()
    made = runner.invoke(cli, ["identity", "create", "x", "--count", "2"])
    assert made.exit_code == 0, made.output
    said = made.stderr
    assert all(text.replace(" n", " 2").replace("i/n", "2/2") in said for text in quoted), said
    assert "`troth identity create X --count n` again is refused with" in storage
    assert "`an identity named 'X-0' exists: T…`" in storage
    again = runner.invoke(cli, ["identity", "create", "x", "--count", "2", "--json"])
    assert again.exit_code == 1
    assert "an identity named 'x-0' exists: T" in json.loads(again.stdout)["message"]
