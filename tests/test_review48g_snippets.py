"""The Python fragments of docs/ that are not run (docs/python.md and README.md run: tests/
test_examples.py, tests/test_readme.py) still say what the code is (review 48g, snippets 1):
each compiles, each of its imports resolves, and each call of a troth name it imports binds
to that name's signature (positional and keyword arguments as written); a name it does not
import is taken from the public packages (PUBLIC), as the doc's prose names them."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from typing import Any

import click
import pytest

import troth
from troth.cli.main import cli
from troth.node.channel_limits import ChannelLimits
from troth.transport.settings import TcpSettings

DOCS = Path(__file__).resolve().parent.parent / "docs"
RUN_ELSEWHERE = {"python.md"}
_TOP_LEVEL_AWAIT = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


def _fragments() -> list[tuple[str, int, str]]:
    found = []
    for doc in sorted(DOCS.glob("*.md")):
        if doc.name in RUN_ELSEWHERE:
            continue
        for number, text in enumerate(re.findall(r"```python\n(.*?)```", doc.read_text(), re.S)):
            found.append((doc.name, number, text))
    return found


PUBLIC = {
    "policy.md": ("troth.gates", "troth"),
    "secrets.md": ("troth.secrets", "troth.gates", "troth"),
    "traces.md": ("troth.trace", "troth"),
}
"""Where a doc's fragments take the names they do not import from (docs/secrets.md's
`ToolGate`), the first package that has one first (in docs/traces.md `Authority` is
troth.trace's)."""


def _public(doc: str) -> dict[str, Any]:
    names: dict[str, Any] = {}
    for package in reversed(PUBLIC.get(doc, ("troth",))):
        module = importlib.import_module(package)
        names.update({name: getattr(module, name) for name in module.__all__})
    return names


def _imported(doc: str, tree: ast.Module) -> dict[str, Any]:
    names: dict[str, Any] = _public(doc)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("troth"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                names[alias.asname or alias.name] = getattr(module, alias.name)
    return names


def _bindable(target: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(target)
    except (TypeError, ValueError):
        return None


def test_docs_hold_python_fragments() -> None:
    assert len(_fragments()) >= 4


@pytest.mark.parametrize(("doc", "number", "text"), _fragments(), ids=lambda v: str(v)[:20])
def test_a_fragment_compiles_imports_and_binds(doc: str, number: int, text: str) -> None:
    tree = ast.parse(text)
    compile(text, f"{doc}#{number}", "exec", flags=_TOP_LEVEL_AWAIT)
    names = _imported(doc, tree)  # an import that does not resolve raises here
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        target = None
        if isinstance(func, ast.Name) and func.id in names:
            target = names[func.id]
        elif (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id in names
        ):
            target = getattr(names[func.value.id], func.attr)  # AttributeError: renamed
        if target is None or any(isinstance(a, ast.Starred) for a in node.args):
            continue
        signature = _bindable(target)
        if signature is None:
            continue
        arguments = [None] * len(node.args)
        keywords = {k.arg: None for k in node.keywords if k.arg is not None}
        signature.bind(*arguments, **keywords)  # TypeError: the doc's call does not fit


# -- the commands the prose and the synopses name ----------------------------------------------

ROOT = DOCS.parent
PROSE = [ROOT / "README.md", *sorted(p for p in DOCS.glob("*.md") if p.name != "cli.md")]
"""docs/cli.md is generated from the commands (tests/test_cli_reference.py)."""
SHORTHAND = {"troth revoke identity/credential", "troth trace prove|redact|resolve RECORD_ID"}
"""Prose that names several commands at once."""


def _resolve(words: list[str]) -> click.Command:
    command: click.Command = cli
    context = click.Context(cli, info_name="troth")
    for word in words:
        if not isinstance(command, click.Group):
            break
        found = command.get_command(context, word)
        if found is None:
            break
        command = found
    return command


def _named_commands() -> list[tuple[str, str]]:
    """(doc, command line) for each `troth ...` in inline code and each line of a fenced block
    (a synopsis, a shell block) that starts with one, pipelines split."""
    found = []
    for path in PROSE:
        text = path.read_text()
        lines = [span.replace("\n", " ") for span in re.findall(r"`(troth [^`]+)`", text)]
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.DOTALL):
            for line in block.replace("\\\n", " ").splitlines():
                lines += [part.strip() for part in line.split("#")[0].split(" | ")]
        found += [(path.name, line) for line in lines if line.startswith("troth ")]
    return found


def test_the_docs_name_commands() -> None:
    assert len(_named_commands()) > 100


@pytest.mark.parametrize(("doc", "line"), _named_commands(), ids=lambda v: str(v)[:40])
def test_each_command_the_docs_name_exists_with_its_options(doc: str, line: str) -> None:
    if " ".join(line.split()) in SHORTHAND:
        return
    words = re.sub(r"[\[\]|]", " ", line).split()[1:]
    path = [w for w in words if not w.startswith("-") and re.fullmatch(r"[a-z][a-z-]*", w)]
    command = _resolve(path[:3])
    if isinstance(command, click.Group) and words == path[:1]:
        return  # a group named as such ("`troth lease` ...")
    assert not isinstance(command, click.Group), f"{doc}: {line!r} names no command"
    options = {o for param in command.params for o in (*param.opts, *param.secondary_opts)}
    named = [w.split("=")[0] for w in words if w.startswith("--")]
    assert [o for o in named if o not in options] == [], f"{doc}: {line!r}"


# -- the Python names the prose gives ----------------------------------------------------------

NOT_PYTHON = {
    "troth.credential",  # type tags (docs/formats.md)
    "troth.credential.chain",
    "troth.mcp.frame",
    "troth.role",  # attribute keys
    "troth.relay",
    "troth.decision",  # span attributes (docs/traces.md)
    "troth.policy.ids",
    "troth.bundle.revision",
    "troth.tool.server",
    "troth.claimed.span_id",
    "troth.claimed.parent_span_id",
    "troth.span.renamed",
    "troth.node.policy",  # a logger
}


def _dotted_names() -> list[tuple[str, str]]:
    pattern = r"`(troth(?:\.[A-Za-z_]\w*)+)(?:\([^`]*\))?`"
    return sorted(
        {(path.name, name) for path in PROSE for name in re.findall(pattern, path.read_text())}
    )


def _lookup(dotted: str) -> object:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            found = getattr(found, part)  # AttributeError: the doc names what is not there
        return found
    raise ImportError(dotted)


@pytest.mark.parametrize(("doc", "name"), _dotted_names(), ids=lambda v: str(v)[:40])
def test_each_python_name_the_docs_give_exists(doc: str, name: str) -> None:
    if name in NOT_PYTHON:
        return
    assert _lookup(name) is not None, f"{doc}: {name}"


def _classes() -> dict[str, list[type]]:
    """Every class troth defines, by name (a name may be several: troth.Authority and
    troth.authority.Authority)."""
    found: dict[str, list[type]] = {}
    for info in pkgutil.walk_packages(troth.__path__, "troth."):
        if info.name.startswith("troth.integrations"):
            continue  # needs an extra
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, type) and value.__module__ == info.name:
                found.setdefault(name, []).append(value)
    return found


def _members_named() -> list[tuple[str, str, str]]:
    pattern = r"`([A-Z][A-Za-z0-9]+)\.([a-z_]\w*)(?:\([^`]*\))?`"
    return sorted(
        {(path.name, *found) for path in PROSE for found in re.findall(pattern, path.read_text())}
    )


def test_each_class_the_docs_name_a_member_of_exists() -> None:
    """`Class.member` in README.md and docs/ names a class troth defines (formats.md named
    `Wallet.feed`: the class is CredentialWallet) that has that member: defined on it, a
    field, or set on `self` by it or a base (secrets.md named `BrokerService.own_authorities`,
    which is NodeTrust's)."""
    classes = _classes()
    named = _members_named()
    assert len(named) > 50
    assert [(doc, cls) for doc, cls, _ in named if cls not in classes] == []
    absent = [
        (doc, cls, member)
        for doc, cls, member in named
        if not any(hasattr(c, member) or member in _instance_attributes(c) for c in classes[cls])
    ]
    assert absent == []


def _instance_attributes(cls: type) -> set[str]:
    """The attributes `cls` and its bases set on `self` (`self.drops = 0`), and its fields."""
    found = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("troth"):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        found |= set(re.findall(r"self\.(\w+)(?::[^=\n]+)? = ", source))
    return found


def test_each_environment_setting_the_docs_name_is_a_field() -> None:
    """`TROTH_TCP_<FIELD>` sets a TcpSettings field, `TROTH_CHANNELS_<FIELD>` a ChannelLimits
    one (docs/protocols.md, "Load limits"): every one the docs write exists."""
    tcp = {field.name.upper() for field in dataclasses.fields(TcpSettings)}
    channels = {field.name.upper() for field in dataclasses.fields(ChannelLimits)}
    text = "\n".join(path.read_text() for path in PROSE)
    named_tcp = set(re.findall(r"TROTH_TCP_([A-Z_]*[A-Z])", text))
    named_channels = set(re.findall(r"TROTH_CHANNELS_([A-Z_]*[A-Z])", text))
    assert named_tcp
    assert named_channels
    assert named_tcp - tcp == set()
    assert named_channels - channels == set()
