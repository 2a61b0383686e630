"""Review 36b, show: what `troth credential show REF` reads when REF could be a file too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run, run_json


@pytest.fixture
def enrolled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """acme with two enrolled members, customer and support; the working directory is a
    directory another user can write to (tmp_path stands for it)."""
    ids = {"authority": run_json("authority", "create", "acme")["identifier"]}
    ticket = run("authority", "ticket", "create", "--authority", "acme", "--uses", "2")
    for name in ("customer", "support"):
        ids[name] = run_json("identity", "create", name)["identifier"]
        run("enroll", ticket.stdout.strip(), "--as", name)
    monkeypatch.chdir(tmp_path)
    return ids


def subjects(shown: Any) -> list[str]:
    """The last subject of each chain `credential show --json` printed."""
    chains = shown if isinstance(shown, list) else [shown]
    return [str(chain["chain"][-1]["subject"]) for chain in chains]


def test_a_file_named_like_an_identity_does_not_replace_its_credentials(
    enrolled: dict[str, str], tmp_path: Path
) -> None:
    """Show 1: `troth credential show customer` read a file named `customer` in the working
    directory before looking for the identity: anyone who can write there (a shared directory)
    plants another member's chain (here support's) under the identity's name, or under its
    identifier text, and the operator is shown that chain, its subject and attributes, as
    customer's credentials. REF is an identity whenever it can be one (a name or identifier
    text); a file only when given as a path (a separator in it, or not a name) or with
    `--file FILE`. Was a strict xfail until `troth.node.verify.chain_file` decided what REF
    names."""
    run("credential", "export", "support", "--out", str(tmp_path / "customer"))
    run("credential", "export", "support", "--out", str(tmp_path / enrolled["customer"]))
    for ref in ("customer", enrolled["customer"]):
        shown = run_json("credential", "show", ref)
        assert isinstance(shown, list), f"{ref}: the planted file was shown"
        assert subjects(shown) == [enrolled["customer"]]


def test_a_file_is_read_when_given_as_a_path_or_with_file(
    enrolled: dict[str, str], tmp_path: Path
) -> None:
    """The control of show 1: the same file given as `./customer`, by its full path or with
    `--file customer` is read as a chain (support's, as it holds); REF and --file together
    (or neither) are a usage error."""
    run("credential", "export", "support", "--out", str(tmp_path / "customer"))
    for args in (("./customer",), (str(tmp_path / "customer"),), ("--file", "customer")):
        shown = run_json("credential", "show", *args)
        assert isinstance(shown, dict), args
        assert subjects(shown) == [enrolled["support"]]
    for wrong in ((), ("customer", "--file", "customer")):
        result = run("credential", "show", *wrong, code=2)
        assert "give one of IDENTITY|FILE or --file FILE" in result.stderr


def test_a_name_that_is_no_identity_but_a_file_says_how_to_read_the_file(
    enrolled: dict[str, str], tmp_path: Path
) -> None:
    """Show 1, as the operator meets it: `troth credential show chain.cbor` for a file in the
    working directory (it used to be read) is a name, and no identity has it: refused (exit 2)
    saying how to give the file."""
    run("credential", "export", "support", "--out", str(tmp_path / "chain.cbor"))
    result = run("credential", "show", "chain.cbor", code=2)
    assert "has no identity 'chain.cbor'" in result.stderr
    assert "for the file 'chain.cbor', give ./chain.cbor or --file chain.cbor" in result.stderr
