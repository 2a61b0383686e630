"""Review 36b, show: what `troth credential show REF` reads when REF could be a file too."""

from __future__ import annotations

from pathlib import Path

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


def subjects(shown: object) -> list[str]:
    chains = shown if isinstance(shown, list) else [shown]
    return [chain["chain"][-1]["subject"] for chain in chains]


@pytest.mark.xfail(strict=True, reason="review 36b, show 1: a planted file wins over REF")
def test_a_file_named_like_an_identity_does_not_replace_its_credentials(
    enrolled: dict[str, str], tmp_path: Path
) -> None:
    """Show 1: `troth credential show customer` read a file named `customer` in the working
    directory before looking for the identity: anyone who can write there (a shared directory)
    plants another member's chain (here support's) under the identity's name, or under its
    identifier text, and the operator is shown that chain, its subject and attributes, as
    customer's credentials. REF is an identity whenever it can be one (a name or identifier
    text); a file only when given as a path (a separator in it, or not a name) or with
    `--file`."""
    run("credential", "export", "support", "--out", str(tmp_path / "customer"))
    run("credential", "export", "support", "--out", str(tmp_path / enrolled["customer"]))
    for ref in ("customer", enrolled["customer"]):
        shown = run_json("credential", "show", ref)
        assert isinstance(shown, list), f"{ref}: the planted file was shown"
        assert subjects(shown) == [enrolled["customer"]]
